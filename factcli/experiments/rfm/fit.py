"""`fact fit-rfm`: FACT-RFM (or nfa, fact-geo, the Laplace baseline) on one tabular dataset.

Hyperparameters (ridge, row normalization) and the iteration t are chosen on a validation split;
then, per the protocol, the model is refit on all training data and scored on held-out test data.
UCI datasets use their own fixed splits (tuning split, then the 4 folds); others get a seeded,
stratified train / validation / test split. With ``benchmark=uci`` the whole collection is run
instead (see benchmark.py).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from factcli import plots
from factcli.data import load_tabular
from factcli.runtime import resolve_device

from ..common.rfm import check_kernel_memory
from .benchmark import run_benchmark
from .folds import evaluate_folds, fit_options, select_on_tuning_split, splits_of, standardized
from .grid import GridSelection
from .protocol import Task

log = logging.getLogger("fact")


def run(cfg, run) -> dict:
    if cfg.benchmark is not None:
        return run_benchmark(cfg, run)
    data = load_tabular(cfg.dataset, data_root=cfg.data.root, target=cfg.data.target, task=cfg.data.task)
    device = resolve_device(cfg.device)
    tuning, folds = splits_of(data, cfg)
    X = standardized(data, cfg, training_rows=np.concatenate(tuning))
    task = Task(data.task, data.n_outputs)
    options = fit_options(cfg, cfg.method)
    largest = max(len(rows) for rows, _ in [tuning, *folds])
    check_kernel_memory(largest, options.precision, device, cfg.memory_limit_gb)
    log.info(
        "%s: n=%d d=%d %s%s, method=%s, protocol=%s",
        data.name,
        data.n,
        data.d,
        data.task,
        f" ({data.n_classes} classes)" if data.n_classes else "",
        cfg.method,
        cfg.protocol,
    )

    Xt = torch.tensor(X, device=device)  # copies: loaders may hand out read-only arrays
    yt = torch.tensor(data.y, device=device)
    selection = select_on_tuning_split(task, options, cfg, Xt, yt, tuning)
    results = evaluate_folds(task, options, selection, cfg.protocol, Xt, yt, folds)
    metric = task.metric
    chosen = selection.chosen
    for candidate in selection.candidates:
        run.log(phase="select", **candidate.row(metric))
    for fold, result in enumerate(results):
        for t, score in enumerate(result.path_scores):
            run.log(
                phase="test",
                iteration=t if cfg.protocol == "strict" else chosen.iteration,
                bandwidth=chosen.bandwidth,
                ridge=chosen.ridge,
                normalize_rows=chosen.normalize,
                fold=fold,
                **{f"test_{metric}": score},
            )
    final_M = results[0].M
    np.save(run.file("feature_matrix.npy"), final_M.cpu().numpy())
    if cfg.plots:
        plot_run(run, selection, results, metric, final_M, data.feature_names)
    test_scores = [result.score for result in results]
    log.info(
        "validation %s %.4f at L=%.4g, ridge=%g, normalize=%s, t=%d; test %s %.4f",
        metric,
        chosen.val_score,
        chosen.bandwidth,
        chosen.ridge,
        chosen.normalize,
        chosen.iteration,
        metric,
        float(np.mean(test_scores)),
    )
    return {
        "dataset": data.name,
        "n": data.n,
        "d": data.d,
        "task": data.task,
        "task_source": data.task_source,
        "task_reason": data.task_reason,
        "classes": data.n_classes,
        "method": cfg.method,
        "protocol": cfg.protocol,
        "kernel": {"name": chosen.kernel, "bandwidth": chosen.bandwidth, "configured": cfg.kernel.name},
        "rfm": {"form": selection.form, "fact_power": options.fact_power, "iters": options.iters},
        "rescale": options.rescale,
        "precision": sorted(selection.precisions | {r.precision for r in results}),
        "chosen": {
            "bandwidth": chosen.bandwidth,
            "ridge": chosen.ridge,
            "normalize_rows": chosen.normalize,
            "iteration": chosen.iteration,
        },
        "failures": selection.failures,
        "metric": metric,
        f"val_{metric}": chosen.val_score,
        f"test_{metric}": float(np.mean(test_scores)),
        f"fold_test_{metric}": test_scores,
        "device": str(device),
    }


def plot_run(run, selection: GridSelection, results, metric: str, M, feature_names) -> None:
    """Validation score along every feature-learning path (its t = 0 is the stage-0 fit it started from)."""

    def key(c) -> str:
        return f"L={c.bandwidth:.3g}, ridge={c.ridge:g}{', x/‖x‖' if c.normalize else ''}"

    paths = {key(c) for c in selection.candidates if c.iteration > 0} | {key(selection.chosen)}
    series = {}
    for c in sorted(selection.candidates, key=lambda c: c.iteration):
        if key(c) in paths:
            xs, ys = series.setdefault(key(c), ([], []))
            xs.append(c.iteration)
            ys.append(c.val_score)
    test = {f"test {metric} (fold {i})": r.score for i, r in enumerate(results[:1])}
    plots.line_plot(
        run.plot_file("accuracy_vs_iteration.png"),
        "iteration t",
        f"validation {metric}",
        series,
        title="Selection: every path's iterates (chosen one thick)",
        highlight=key(selection.chosen),
        hlines=test,
    )
    strict_path = results[0].path_scores
    if len(strict_path) > 1:
        plots.line_plot(
            run.plot_file("test_vs_iteration.png"),
            "iteration t",
            f"test {metric}",
            {"refit on training data": (list(range(len(strict_path))), strict_path)},
            title="Final model: test score of each iterate",
        )
    plots.heatmaps(
        run.plot_file("feature_matrix.png"),
        {"learned M": M},
        title="Feature matrix M",
        labels=list(feature_names),
    )
