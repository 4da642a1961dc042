"""fact verify-fact: FACT checked layer by layer on a trained network.

Input: ``source=`` a train-net run directory or checkpoint; without one, the configured network is
trained first (in this run directory, exactly as train-net would). Output: fact_layers.csv and
fact_layers.json (one row per layer: correlations of WᵀW with F, Fᵀ, (F Fᵀ)^{1/2}, NFA, eNFA at every
power, FACT's relative error, bFACT against W Wᵀ, the residual, λ and the loss convention), a bar
chart of the correlations and heatmaps of WᵀW beside F and AGOP^{1/2} for the chosen layers.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from factcli.core.fact import psd_power, relative_error
from factcli.core.losses import CONVENTIONS
from factcli.errors import FactError
from factcli.plots import bar_plot, heatmaps
from factcli.rundir import write_csv, write_json
from factcli.runtime import resolve_device

from ..common.optim import FACT_VALIDITY
from .checkpoint import CHECKPOINT, find_checkpoint, load_checkpoint, model_from_checkpoint
from .data import load_net_data
from .metrics import DTYPES, agreement_rows, statistics
from .train import run as train_net
from .train import training_targets

log = logging.getLogger("fact")

TABLE = "fact_layers"


def run(cfg, run) -> dict:
    device = resolve_device(cfg.device)
    if cfg.source is None:
        trained_cfg, model, training = _train_first(cfg, run, device)
        source = f"trained in this run ({training['stop_reason']} after {training['steps']} steps)"
    else:
        path = find_checkpoint(cfg.source)
        payload = load_checkpoint(path)
        trained_cfg = OmegaConf.create(payload.get("config") or {})
        if "dataset" not in trained_cfg or "optim" not in trained_cfg:
            raise FactError(f"checkpoint {path} carries no train-net config; it cannot be verified")
        _use_current_data_location(trained_cfg, cfg)
        model = model_from_checkpoint(payload, path).to(device)
        source, training = f"{path} (step {payload.get('step')})", None
    lam = float(trained_cfg.optim.weight_decay)
    data = load_net_data(trained_cfg.dataset, trained_cfg.data, int(trained_cfg.seed))
    X = data.X_train.to(device)
    Y, _ = training_targets(data, trained_cfg.loss, DTYPES[cfg.verify.dtype])
    both = cfg.verify.fact_method == "both" or (
        cfg.verify.fact_method == "auto" and len(X) <= cfg.verify.per_sample_max_rows
    )
    stats = statistics(
        model, X, Y.to(device), trained_cfg.loss, lam, dtype=cfg.verify.dtype,
        batch_size=cfg.verify.batch_size, per_sample=both, enfa=cfg.verify.enfa,
        agop=cfg.verify.nfa,
    )  # fmt: skip
    rows = agreement_rows(stats.layers, cfg.verify.nfa_power, tuple(cfg.verify.enfa_powers))
    for row, layer in zip(rows, stats.layers, strict=True):
        if layer.fact_per_sample is not None:
            row["fact_paths_relerr"] = relative_error(layer.fact, layer.fact_per_sample)
        row["lambda"] = lam
        row["loss_convention"] = CONVENTIONS[trained_cfg.loss]
    write_csv(run.file(f"{TABLE}.csv"), rows)
    write_json(run.file(f"{TABLE}.json"), rows)
    plots = cfg.plots and _plots(cfg, run, rows, stats.layers)
    for row in rows:
        log.info(
            "%s %-8s residual %.2e  FACT %.4f  (FFᵀ)^½ %.4f  NFA %s  eNFA %s",
            row["layer"], row["shape"], row["residual"], row["fact"], row["fact_sym"],
            _fmt(row.get("nfa")), _fmt(row.get(f"enfa_s{cfg.verify.enfa_powers[0]:g}")),
        )  # fmt: skip
    return _summary(cfg, trained_cfg, rows, stats.loss, source, training, data, plots)


def _train_first(cfg, run, device):
    summary = train_net(cfg, run)
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


def _plots(cfg, run, rows, layers) -> bool:
    groups = {"FACT (F)": "fact", "FACT (FFᵀ)^½": "fact_sym", "NFA": "nfa"}
    groups.update({f"eNFA s={s:g}": f"enfa_s{s:g}" for s in cfg.verify.enfa_powers})
    bar_plot(
        run.plot_file("correlations_per_layer.png"),
        [r["layer"] for r in rows],
        {label: [r.get(key, float("nan")) for r in rows] for label, key in groups.items()},
        y_label="Pearson correlation with WᵀW",
        title="Agreement of each ansatz with the learned features",
    )
    for number in cfg.verify.heatmap_layers:
        if number > len(layers):
            raise FactError(f"verify.heatmap_layers asks for layer {number}; the network has {len(layers)}")
        layer = layers[number - 1]
        if layer.weight.shape[1] > cfg.verify.heatmap_max_dim:
            log.info("skipping heatmaps of W%d: %d > verify.heatmap_max_dim", number, layer.weight.shape[1])
            continue
        matrices = {"WᵀW": layer.gram, "F = −(1/λ)Wᵀ∇L": layer.fact}
        if layer.agop is not None:
            matrices[f"AGOP^{cfg.verify.nfa_power:g}"] = psd_power(layer.agop, cfg.verify.nfa_power)
        heatmaps(run.plot_file(f"heatmaps_W{number}.png"), matrices, title=f"layer W{number}")
    return True


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
        "fact_validity": FACT_VALIDITY[trained_cfg.optim.name],
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
    if "nfa" in first:
        summary["layers_where_fact_beats_nfa"] = f"{sum(r['fact'] > r['nfa'] for r in rows)}/{len(rows)}"
    if training is not None:
        summary["training"] = {k: training.get(k) for k in ("stop_reason", "stop_detail", "steps")}
    return summary


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
