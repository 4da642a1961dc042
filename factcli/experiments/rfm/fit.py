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
from factcli.data.tabular import standardize
from factcli.runtime import resolve_device

from ..common.rfm import check_kernel_memory
from .benchmark import run_benchmark
from .folds import evaluate_folds, fit_options, select_on_tuning_split, splits_of
from .protocol import Selection, Task

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
    for candidate in selection.candidates:
        run.log(phase="select", **candidate)
    for fold, result in enumerate(results):
        for t, score in enumerate(result.path_scores):
            run.log(
                phase="test",
                iteration=t if cfg.protocol == "strict" else selection.iteration,
                ridge=selection.ridge,
                normalize_rows=selection.normalize,
                fold=fold,
                **{f"test_{metric}": score},
            )
    final_M = results[0].M
    np.save(run.file("feature_matrix.npy"), final_M.cpu().numpy())
    if cfg.plots:
        plot_run(run, selection, results, metric, final_M, data.feature_names)
    test_scores = [result.score for result in results]
    log.info(
        "validation %s %.4f at ridge=%g, normalize=%s, t=%d; test %s %.4f",
        metric,
        selection.val_score,
        selection.ridge,
        selection.normalize,
        selection.iteration,
        metric,
        float(np.mean(test_scores)),
    )
    return {
        "dataset": data.name,
        "n": data.n,
        "d": data.d,
        "task": data.task,
        "task_reason": data.task_reason,
        "classes": data.n_classes,
        "method": cfg.method,
        "protocol": cfg.protocol,
        "kernel": {"name": options.kernel.name, "bandwidth": options.kernel.bandwidth},
        "rescale": options.rescale,
        "precision": sorted(selection.precisions | {r.precision for r in results}),
        "chosen": {
            "ridge": selection.ridge,
            "normalize_rows": selection.normalize,
            "iteration": selection.iteration,
        },
        "metric": metric,
        f"val_{metric}": selection.val_score,
        f"test_{metric}": float(np.mean(test_scores)),
        f"fold_test_{metric}": test_scores,
        "device": str(device),
    }


def standardized(data, cfg, training_rows) -> np.ndarray:
    """z-scored features (training-row statistics), except for the already standardized UCI data."""
    choice = str(cfg.data.standardize)
    if choice in ("no", "False") or (choice == "auto" and data.source == "uci"):
        return data.X
    return standardize(data.X, training_rows)


def plot_run(run, selection: Selection, results, metric: str, M, feature_names) -> None:
    series = {}
    for row in selection.candidates:
        key = f"ridge={row['ridge']:g}{', x/‖x‖' if row['normalize_rows'] else ''}"
        xs, ys = series.setdefault(key, ([], []))
        xs.append(row["iteration"])
        ys.append(row[f"val_{metric}"])
    chosen = f"ridge={selection.ridge:g}{', x/‖x‖' if selection.normalize else ''}"
    test = {f"test {metric} (fold {i})": r.score for i, r in enumerate(results[:1])}
    plots.line_plot(
        run.plot_file("accuracy_vs_iteration.png"),
        "iteration t",
        f"validation {metric}",
        series,
        title="Selection: every grid point's iterates (chosen one thick)",
        highlight=chosen,
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
