"""`fact grokking`: modular arithmetic with FACT-RFM, NFA-RFM or a network (docs/SPEC.md §7-8).

One run = one learner on one task (p, operation, training fraction, seed). metrics.csv has one row
per RFM iteration (or per logged optimizer step); the summary gives the figures a sweep compares:
``first_iteration_99`` (first iterate with test accuracy ≥ 0.99, or null), the jump, early accuracy,
circulant deviation at the start and the end, and for the RFMs the docs/SPEC.md §8 τ-proportionality R².
"""

from __future__ import annotations

import logging

import numpy as np

from factcli.choices import GROKKING_NETWORKS
from factcli.data.modular import load_modular
from factcli.messages import reached
from factcli.runtime import resolve_device

from ..common.trace import first_reaching
from .net import ADAMW_NOTE, run_net
from .plots import plot_run
from .rfm import run_rfm, tau_proportionality
from .scores import finite_or_none, first_staying, jump_step

log = logging.getLogger("fact")

TAU_NOTE = (
    "SPEC 8's AGOP = sum tau_ij M x_i a_i^T a_j x_j^T M holds for inner-product kernels; for this "
    "translation-invariant kernel K' = 2 kappa'(D^2) and the R^2 is only indicative (kernel.name=quadratic)"
)


def run(cfg, run) -> dict:
    device = resolve_device(cfg.device)  # the launcher has set cfg.threads (runtime.set_threads)
    data = load_modular(int(cfg.p), cfg.operation, float(cfg.train_fraction), int(cfg.seed))
    log.info(
        "%s: %d training pairs, %d test pairs; learner %s on %s",
        data.description,
        len(data.train),
        len(data.test),
        cfg.learner,
        device,
    )
    if cfg.learner in GROKKING_NETWORKS:
        path, x_key = run_net(cfg, data, device), "step"
    else:
        path, x_key = run_rfm(cfg, data, device), "iteration"
    others = {learner: run_rfm(cfg, data, device, learner) for learner in cfg.compare}
    run.log_many([row for each in (path, *others.values()) for row in each.rows])
    np.savez_compressed(
        run.file("feature_matrices.npz"),
        steps=np.array([row[x_key] for row in path.rows]),
        matrices=np.stack([M.numpy() for M in path.matrices]),
        **{
            f"matrices_{learner}": np.stack([M.numpy() for M in other.matrices])
            for learner, other in others.items()
        },
    )
    summary = summarize(cfg, data, path, x_key)
    if others:
        summary["compare"] = {learner: compared(cfg, data, other) for learner, other in others.items()}
    if cfg.learner in GROKKING_NETWORKS:
        summary |= network_summary(cfg, path)
        if cfg.net.optimizer == "adamw":
            summary["fact_note"] = ADAMW_NOTE
    elif cfg.measures.tau:
        summary["tau"] = tau_summary(cfg, data, path, summary["jump_iteration"], device)
        summary["tau_r2"] = summary["tau"]["end"]["r2"]
        if cfg.kernel.name != "quadratic":
            summary["tau_note"] = TAU_NOTE
    if cfg.plots:
        plot_run(run, cfg, data, {cfg.learner: path, **others}, x_key, summary["jump_iteration"])
    if path.error:
        summary["stopped_early"] = path.error
        log.warning("stopped early: %s (the iterates before it are kept)", path.error)
    log.info(
        "test accuracy %.4f at the end; first >= 0.99 %s; jump %s",
        summary["final_test_accuracy"],
        reached(summary["first_iteration_99"], x_key),
        reached(summary["jump_iteration"], x_key),
    )
    return summary


def summarize(cfg, data, path, x_key: str) -> dict:
    rows = path.rows
    xs = [row[x_key] for row in rows]
    test = [row["test_accuracy"] for row in rows]
    train = [row["train_accuracy"] for row in rows]
    early = [row["test_accuracy"] for row in rows if row[x_key] <= cfg.measures.early_iterations]
    start = 1 if len(rows) > 1 else 0  # M_0 = I has no a–b block to measure
    summary = {
        "learner": cfg.learner,
        "task": data.description,
        "p": data.p,
        "operation": data.operation,
        "train_fraction": float(cfg.train_fraction),
        "n_train": len(data.train),
        "n_test": len(data.test),
        "iteration_unit": "RFM iteration" if x_key == "iteration" else "optimizer step",
        "iterations": xs[-1],
        "final_test_accuracy": test[-1],
        "best_test_accuracy": max(test),
        "final_train_accuracy": train[-1],
        "min_train_accuracy": min(train),
        "early_test_accuracy": max(early) if early else None,
        "first_iteration_50": first_reaching(xs, test, 0.5),
        "first_iteration_99": first_reaching(xs, test, 0.99),
        "stays_99_from": first_staying(xs, test, 0.99),
        "jump_iteration": jump_step(xs, test),
        "final_test_loss": rows[-1]["test_loss"],
        **deviation_summary(rows, start),
        "run_seconds": round(path.seconds, 3),
    }
    if x_key == "iteration":
        summary |= {
            "kernel": cfg.kernel.name,
            "bandwidth": float(cfg.kernel.bandwidth),
            "ridge": float(cfg.rfm.ridge),
            "rescale": cfg.rfm.rescale,
            "seconds_per_iteration": round(path.seconds / len(rows), 3),
        }
        if cfg.learner == "nfa":
            summary |= {"nfa_power": float(cfg.rfm.nfa_power), "centered_agop": bool(cfg.rfm.centered_agop)}
    return summary


COMPARED = ("first_iteration_99", "jump_iteration", "early_test_accuracy", "final_test_accuracy")
COMPARED += ("min_train_accuracy", "circulant_deviation_start", "circulant_deviation_end", "run_seconds")


def compared(cfg, data, path) -> dict:
    """The headline figures of a learner in ``compare``."""
    full = summarize(cfg, data, path, "iteration")
    return {key: full[key] for key in COMPARED}


def deviation_summary(rows, start: int) -> dict:
    """Both deviations at the start (iteration 1) and the end, and which structure the block took."""
    summary = {}
    for kind in ("circulant", "anticirculant"):
        summary[f"{kind}_deviation_start"] = finite_or_none(rows[start][f"{kind}_deviation"])
        summary[f"{kind}_deviation_end"] = finite_or_none(rows[-1][f"{kind}_deviation"])
    start_value, end_value = summary["circulant_deviation_start"], summary["circulant_deviation_end"]
    if start_value and end_value is not None:
        summary["circulant_deviation_ratio"] = end_value / start_value  # end / iteration 1
    ends = (summary["circulant_deviation_end"], summary["anticirculant_deviation_end"])
    if None not in ends:
        summary["cross_block_structure"] = (
            "circulant: B[b, a] = c(b - a)" if ends[0] <= ends[1] else "anti-circulant: B[b, a] = h(a + b)"
        )
    return summary


def network_summary(cfg, path) -> dict:
    steps = [row["step"] for row in path.rows]
    train = [row["train_accuracy"] for row in path.rows]
    test = [row["test_accuracy"] for row in path.rows]
    fit = first_reaching(steps, train, 1.0)
    generalized = first_reaching(steps, test, 0.95)
    last_measured = next((row for row in reversed(path.rows) if "fact_corr" in row), {})
    summary = {
        "first_step_train_100": fit,
        "first_step_test_95": generalized,
        "generalization_delay_steps": None if fit is None or generalized is None else generalized - fit,
        "final_fact_corr": last_measured.get("fact_corr"),
        "final_nfa_corr": last_measured.get("nfa_corr"),
        "final_residual_W1": last_measured.get("residual_W1"),
        "optimizer": cfg.net.optimizer,
        "weight_decay": float(cfg.net.weight_decay),
        "architecture": path.details.get("architecture"),
    }
    if cfg.learner == "net":
        summary |= {"width": int(cfg.net.width), "activation": cfg.net.activation}
    if "preconditioned_fact_corr" in last_measured:  # AdamW: the FACT of its own fixed points
        summary["final_preconditioned_fact_corr"] = last_measured["preconditioned_fact_corr"]
        summary["final_preconditioned_residual_W1"] = last_measured["preconditioned_residual_W1"]
    return summary


def tau_summary(cfg, data, path, jump: int | None, device) -> dict:
    """docs/SPEC.md §8 R² at the first iterate, the jump and the last iterate."""
    indices = {"start": 0, "end": len(path.matrices) - 1}
    if jump is not None:
        indices["jump"] = jump
    return {name: tau_proportionality(cfg, data, path.matrices[i], device) for name, i in indices.items()}
