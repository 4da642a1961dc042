"""fact verify-fact: FACT checked layer by layer on a trained network.

Input: ``source=`` a train-net run directory or checkpoint; ``network=FILE.py:FUNCTION`` (with
``weights=``, ``inputs=``, ``lam=``) any network of the user's (user_network.py); without either,
the configured network is trained first (in this run directory, exactly as train-net would). The
table is ``core.layer_table.layer_table``'s; before any correlation the console and summary.json
say whether the network is at a critical point of L_λ (report.py, reading.py). Output:
fact_layers.csv and fact_layers.json (one row per layer: correlations of WᵀW with F, Fᵀ,
(F Fᵀ)^{1/2}, NFA, eNFA at every power, FACT's relative error, bFACT against W Wᵀ, the residual,
λ and the loss convention), a bar chart of the correlations and heatmaps of WᵀW beside F and
AGOP^{1/2} for the chosen layers.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from factcli.core.losses import CONVENTIONS, per_sample_loss
from factcli.errors import FactError
from factcli.runtime import resolve_device

from .checkpoint import CHECKPOINT, find_checkpoint, load_checkpoint, model_from_checkpoint
from .data import load_net_data
from .metrics import DTYPES
from .report import TABLE, report, verified_table
from .train import fact_validity, training_targets
from .train import run as train_net
from .user_network import verify_user_network

log = logging.getLogger("fact")


def run(cfg, run) -> dict:
    device = resolve_device(cfg.device)
    if cfg.network is not None:
        return verify_user_network(cfg, run, device)
    warnings: list[str] = []
    if cfg.source is None:
        trained_cfg, model, training = _train_first(cfg, run, device)
        finished = training.get("finish") is not None
        source = f"trained in this run ({training['stop_reason']} after {training['steps']} steps)"
    else:
        path = find_checkpoint(cfg.source)
        payload = load_checkpoint(path)
        trained_cfg = OmegaConf.create(payload.get("config") or {})
        if "dataset" not in trained_cfg or "optim" not in trained_cfg:
            raise FactError(f"checkpoint {path} carries no train-net config; it cannot be verified")
        _use_current_data_location(trained_cfg, cfg)
        warnings = untrained_or_diverged(payload, path)
        model = model_from_checkpoint(payload, path).to(device)
        source, training = f"{path} (step {payload.get('step')})", None
        finished = payload.get("finish_start") is not None
    lam = float(trained_cfg.optim.weight_decay)
    data = load_net_data(trained_cfg.dataset, trained_cfg.data, int(trained_cfg.seed))
    X = data.X_train.to(device)
    Y, _ = training_targets(data, trained_cfg.loss, DTYPES[cfg.verify.dtype])
    table = verified_table(cfg, model, (X, Y.to(device)), per_sample_loss(trained_cfg.loss), lam)
    validity = fact_validity(trained_cfg.optim.name, finished)
    rows, reading, plots = report(cfg, run, table, CONVENTIONS[trained_cfg.loss], validity)
    summary = _summary(cfg, trained_cfg, rows, table.loss, source, training, data, plots)
    summary["fact_validity"] = validity
    summary = {"convergence": reading, **summary, "skipped_layers": table.skipped}
    return {**summary, "warnings": warnings} if warnings else summary


def untrained_or_diverged(payload: dict, path) -> list[str]:
    """Refuse weights that are NaN or infinite (a diverged run); warn about a never-trained network."""
    import torch

    weights = payload.get("model") or {}
    broken = [
        name for name, value in weights.items() if torch.is_tensor(value) and not value.isfinite().all()
    ]
    if broken:
        raise FactError(
            f"checkpoint {path} has non-finite weights ({', '.join(broken[:3])}): its training diverged, "
            "so there is nothing to verify; retrain it (e.g. with a smaller optim.lr)"
        )
    if int(payload.get("step") or 0) > 0:
        return []
    warning = (
        f"checkpoint {path} was never trained (step 0): FACT holds at a stationary point of training, so "
        "these are the agreements at initialization"
    )
    log.warning("warning: %s", warning)
    return [warning]


def _train_first(cfg, run, device):
    summary = train_net(cfg, run, announce=False)
    if summary.get("stop_reason") == "estimate_only":
        raise FactError("train.estimate_only=true: nothing was trained, so nothing to verify")
    payload = load_checkpoint(run.file(CHECKPOINT))
    model = model_from_checkpoint(payload, run.file(CHECKPOINT)).to(device)
    return cfg, model, summary


def _use_current_data_location(trained_cfg, cfg) -> None:
    """Data may have moved since training: a data root / directory given now takes precedence."""
    for key in ("root", "directory"):
        if cfg.data.get(key) is not None:
            trained_cfg.data[key] = cfg.data[key]


def _summary(cfg, trained_cfg, rows, loss, source, training, data, plots) -> dict:
    first = rows[0]
    summary = {
        "source": source,
        "dataset": data.description,
        "train_rows": len(data.y_train),
        "lambda": float(trained_cfg.optim.weight_decay),
        "loss": trained_cfg.loss,
        "loss_convention": CONVENTIONS[trained_cfg.loss],
        "optimizer": trained_cfg.optim.name,
        "fact_validity": None,  # set by the caller: it depends on whether the L-BFGS finish ran
        "fact_method": "both (identity and per-sample hooks)"
        if "fact_per_sample" in first
        else "identity F = -(1/lambda) W^T grad L",
        "train_loss": loss,
        "max_residual": max(r["residual"] for r in rows),
        "fact_corr_min": min(r["fact"] for r in rows),
        "fact_relerr_max": max(r["fact_relerr"] for r in rows),
        "first_layer": {k: first.get(k) for k in ("fact", "fact_sym", "nfa", "enfa_s0.5", "enfa_s1")},
        "layers": rows,
        "table": f"{TABLE}.csv",
        "plots": plots,
    }
    compared = [r for r in rows if "nfa" in r]  # identity-only rows have no NFA
    if compared:
        beats = sum(r["fact"] > r["nfa"] for r in compared)
        summary["layers_where_fact_beats_nfa"] = f"{beats}/{len(compared)}"
    if training is not None:
        summary["training"] = {k: training.get(k) for k in ("stop_reason", "stop_detail", "steps")}
    return summary
