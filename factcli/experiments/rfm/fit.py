"""`fact fit-rfm`: FACT-RFM (or nfa, fact-geo, the Laplace baseline) on one tabular dataset.

Hyperparameters (ridge, row normalization) and the iteration t are chosen on a validation split;
then, per the protocol, the model is refit on all training data and scored on held-out test data.
UCI datasets use their own fixed splits (tuning split, then the 4 folds); others get a seeded,
stratified train / validation / test split. With ``benchmark=uci`` the whole collection is run
instead (see benchmark.py). Above rfm.exact_max_rows training rows (rfm.solver=auto) selection and
refits run on the Nyström path (experiments/common/scalable.py, core/solvers.py), every kernel too.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from factcli import plots
from factcli.choices import AUTO_KERNEL, AUTO_KERNELS
from factcli.data import load_tabular
from factcli.errors import FactError
from factcli.messages import say
from factcli.runtime import resolve_device

from ..common import scalable
from ..common.rfm import check_kernel_memory
from .benchmark import run_benchmark
from .estimate import estimate_fit
from .folds import evaluate_folds, fit_options, select_on_tuning_split, splits_of, standardized
from .grid import GridSelection
from .protocol import Task
from .reading import report_feature_learning
from .resume import Units, fingerprint

log = logging.getLogger("fact")


def run(cfg, run) -> dict:
    if cfg.benchmark is not None:
        return run_benchmark(cfg, run)
    held_out = None
    if cfg.data.test is not None:
        data, held_out = load_with_test_file(cfg)
    else:
        data = load_tabular(
            cfg.dataset,
            data_root=cfg.data.root,
            target=cfg.data.target,
            task=cfg.data.task,
            missing=cfg.data.missing,
        )
    device = resolve_device(cfg.device)
    tuning, folds = splits_of(data, cfg, held_out)
    imputed = impute_missing(data, training_rows=np.concatenate(tuning))
    X = standardized(data, cfg, training_rows=np.concatenate(tuning))
    task = Task(data.task, data.n_outputs)
    options = fit_options(cfg, cfg.method)
    largest = max(len(rows) for rows, _ in [tuning, *folds])
    choice = scalable.choose_solver(cfg.rfm, largest, options.precision, device, cfg.memory_limit_gb)
    if choice.solver == "exact":
        remedy = "use rfm.solver=auto or rfm.solver=nystrom (n×centres kernel blocks, not n²), a subset"
        check_kernel_memory(largest, options.precision, device, cfg.memory_limit_gb, remedy)
    estimate, memory = estimate_fit(cfg, choice, options, data, largest, len(folds), device)
    log.info(
        "%s: %s; d=%d %s%s, method=%s, protocol=%s",
        data.name,
        rows_text(tuning, folds, held_out, cfg.data.test_fraction),
        data.d,
        data.task,
        f" ({data.n_classes} classes)" if data.n_classes else "",
        cfg.method,
        cfg.protocol,
    )

    Xt = torch.tensor(X, device=device)  # copies: loaders may hand out read-only arrays
    yt = torch.tensor(data.y, device=device)
    scalable.announce(choice, estimate, memory)
    stage0, paths = grid_solves(cfg, options, choice)
    iterates = stage0 + paths + len(folds) * (options.iters + 1)
    with scalable.FitProgress(iterates, estimate) as progress:
        options = scalable.with_choice(options, choice, cfg.rfm, cfg.seed, progress.step)
        units = finished_units(cfg, run, Xt, yt, tuning, progress)
        selection = select_on_tuning_split(task, options, cfg, Xt, yt, tuning, progress, units)
        if units.report() is not None:
            log.info("%s", units.report())
        refit_iterates = 1 if cfg.protocol == "paper" else selection.chosen.iteration + 1
        progress.expect(len(selection.candidates) + len(folds) * refit_iterates)
        results = evaluate_folds(task, options, selection, cfg.protocol, Xt, yt, folds, progress)
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
                solve_residual=result.path_residuals[t],
                cg_steps=result.path_cg_steps[t],
                fold=fold,
                **{f"test_{metric}": score},
            )
    final_M = results[0].M
    np.save(run.file("feature_matrix.npy"), final_M.cpu().numpy())
    if cfg.plots:
        plot_run(run, selection, results, metric)
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
    reading = report_feature_learning(run, selection, results, metric, data.feature_names, cfg.plots)
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
        "solver": {"name": choice.solver, "reason": choice.reason, "centers": choice.centers},
        "imputed_missing": imputed,
        "read_as": data.read_as,
        "feature_learning": reading,
        "reused_from_interrupted_run": units.summary(),
        **held_out_summary(held_out),
    }


def rows_text(tuning, folds, held_out, test_fraction: float) -> str:
    """Which rows are which: the training rows (the tuning split's parts within them) and the test
    rows, never the two counted together; a dataset with its own folds says so."""
    fit, validate = (len(rows) for rows in tuning)
    if len(folds) == 1:
        ((train, test),) = folds
        source = (
            Path(held_out.path).name if held_out else f"a seeded split, data.test_fraction={test_fraction:g}"
        )
        return (
            f"{len(train):,} training rows ({fit:,} to fit, {validate:,} to validate for selection), "
            f"{len(test):,} test rows ({source})"
        )

    def sizes(counts) -> str:
        return f"{min(counts):,}" if min(counts) == max(counts) else f"{min(counts):,}-{max(counts):,}"

    trains, tests = [len(train) for train, _ in folds], [len(test) for _, test in folds]
    return (
        f"selection on its tuning split ({fit:,} to fit, {validate:,} to validate), then {len(folds)} folds "
        f"of {sizes(trains)} training and {sizes(tests)} test rows (the dataset's own splits)"
    )


def finished_units(cfg, run, X, y, tuning, progress) -> Units:
    """The selection units an interrupted run left in this run directory, kept there as they finish."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(cfg, resolve=True)
    return Units(run.path, config, fingerprint(X, y, *tuning), X.device, progress)


def load_with_test_file(cfg):
    """data.test: the user's test file, encoded as the training file was learned (table_pair.py)."""
    from factcli.data.table_pair import load_with_test_file as load_pair

    if not str(cfg.dataset).lower().endswith((".csv", ".parquet", ".pq")):
        raise FactError(f"data.test needs a table file as dataset (.csv/.parquet), got '{cfg.dataset}'")
    data, held_out = load_pair(
        cfg.dataset, cfg.data.test, target=cfg.data.target, task=cfg.data.task, missing=cfg.data.missing
    )
    if held_out.unseen_categories:
        counts = ", ".join(f"{c}: {k}" for c, k in held_out.unseen_categories.items())
        log.info("test rows with a category never seen in training (encoded as none): %s", counts)
    return data, held_out


def held_out_summary(held_out) -> dict:
    if held_out is None:
        return {}
    return {
        "test_file": held_out.path,
        "test_rows": held_out.rows,
        "unseen_test_categories": held_out.unseen_categories,
    }


def impute_missing(data, training_rows) -> dict:
    """data.missing=median: NaN numbers ← their column's median over the training rows; counts per column."""

    missing = np.isnan(data.X)
    if not missing.any():
        return {}
    with warnings.catch_warnings():  # an all-missing column is refused just below, by name
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(data.X[training_rows], axis=0)
    empty = [data.feature_names[j] for j in np.flatnonzero(np.isnan(medians) & missing.any(0))]
    if empty:
        raise FactError(
            f"numeric column{'s' * (len(empty) > 1)} {', '.join(map(repr, empty))} "
            "has no values in the training rows; drop it or fill it"
        )
    counts = missing.sum(0)
    data.X = np.where(missing, medians[None, :], data.X)
    imputed = {data.feature_names[j]: int(counts[j]) for j in np.flatnonzero(counts)}
    log.info("imputed missing values with training medians: %s", say(imputed))
    return imputed


def grid_solves(cfg, options, choice) -> tuple[int, int]:
    """(stage-0 solves, feature-learning iterates) of selection (grid.py): every kernel × bandwidth ×
    normalization × ridge at t = 0, then t = 1..T for every ridge from the best (or every) setting."""
    kernels = 1
    if cfg.kernel.name == AUTO_KERNEL:
        kernels = len(AUTO_KERNELS)
    settings = len(cfg.grid.bandwidths) * len(cfg.grid.normalize_rows)
    stage0 = kernels * settings * len(cfg.grid.ridges)
    iters = 0 if options.method == "laplace" else options.iters
    starts = 1 if cfg.grid.search == "best" else settings
    return stage0, starts * len(cfg.grid.ridges) * iters


def plot_run(run, selection: GridSelection, results, metric: str) -> None:
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
