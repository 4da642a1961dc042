"""The protocol (protocol.py) over a dataset's row splits: the tuning split, then the test folds.

UCI datasets bring their own fixed splits; any other gets a seeded, stratified train / validation /
test split, each part checked non-empty first. Features are standardized with the training rows. An
impossible kernel solve, or memory running out, becomes one actionable line here.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from factcli.core.rfm import FeatureCollapse, InaccurateSolve
from factcli.core.solvers import CholeskySolver, EigenSolver
from factcli.data.tabular import check_kernel_scale, standardize
from factcli.errors import FactError

from ..common.rfm import COLLAPSE_ADVICE, rfm_options
from .grid import AUTO_KERNEL, GridSelection, GridSpec, evaluate, select
from .protocol import FoldResult, Split


def splits_of(data, cfg, held_out=None):
    """(tuning train, tuning val) and the list of (train, test) folds, as row-index arrays.

    With the user's test file (``held_out``, table_pair.py) its rows, the last ones, are the test set."""
    if data.splits is not None:
        return (data.splits.train, data.splits.val), list(data.splits.folds)
    check_split_sizes(data, cfg.data.test_fraction, cfg.data.val_fraction)
    rows = np.arange(data.n)
    if held_out is not None:
        training, test = rows[: data.n - held_out.rows], rows[data.n - held_out.rows :]
    else:
        training, test = _split(rows, _labels(data), cfg.data.test_fraction, cfg.seed)
    train, val = validation_split(training, _labels(data), cfg.data.val_fraction, cfg.seed)
    return (train, val), [(training, test)]


def check_split_sizes(data, test_fraction: float, val_fraction: float) -> None:
    """Every part non-empty, counted as scikit-learn's train_test_split counts: ⌈fraction · n⌉ held out."""
    test = math.ceil(test_fraction * data.n)
    val = math.ceil(val_fraction * (data.n - test))
    fit = data.n - test - val
    if min(fit, val, test) < 1:
        raise FactError(
            f"{data.name} has {data.n} rows: data.test_fraction={test_fraction:g} and "
            f"data.val_fraction={val_fraction:g} leave {fit} to fit, {val} to validate and {test} to test; "
            "each part needs at least one row (use more rows or other fractions)"
        )


def standardized(data, cfg, training_rows) -> np.ndarray:
    """z-scored features (training-row statistics), except for the already standardized UCI data;
    features that are all constant, or too large to use unstandardized, are refused in one line."""
    train = data.X[training_rows]
    if len(train) and (train == train[:1]).all():
        raise FactError(
            f"every feature of {data.name} is constant on the training rows: there is nothing to learn from"
        )
    if not standardizes(cfg, data):
        check_kernel_scale(data.X, data.feature_names, "data.standardize=yes")
        return data.X
    return standardize(data.X, training_rows, data.feature_names)


def standardizes(cfg, data) -> bool:
    """data.standardize as applied to ``data``: auto means yes, except for the standardized UCI data."""
    choice = str(cfg.data.standardize)
    return choice in ("yes", "True") or (choice == "auto" and data.source != "uci")


def validation_split(rows, labels, fraction: float, seed: int):
    """(rows to fit, rows to validate on) of the training rows, as fit-rfm and the CV estimators make
    them: stratified by ``labels`` (all rows' labels; None for regression), seeded with seed + 1 so
    that it differs from the test split seeded with ``seed``."""
    return _split(rows, labels, fraction, seed + 1)


def _labels(data):
    return data.y if data.task == "classification" else None


def _split(rows, all_labels, fraction, seed):
    from sklearn.model_selection import train_test_split

    labels = None if all_labels is None else all_labels[rows]
    try:
        return train_test_split(rows, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError:  # a class too small to stratify: split without stratification
        return train_test_split(rows, test_size=fraction, random_state=seed)


def fit_options(cfg, method: str):
    """fit-rfm's RFM options for ``method`` with the exact solver (grid.solver: stage 0's ridges by
    Cholesky or one eigendecomposition; common/scalable.with_choice swaps in Nyström). The bandwidth
    and ridge are placeholders: selection sets both grid point by grid point (grid.py)."""
    kernel = "laplace" if cfg.kernel.name == AUTO_KERNEL else cfg.kernel.name  # auto: chosen per path
    options = rfm_options(cfg, method, ridge=cfg.grid.ridges[0], bandwidth=1.0, kernel=kernel)
    solver = EigenSolver() if cfg.grid.solver == "eigen" else CholeskySolver()
    return replace(options, solver=solver)


def grid_spec(cfg) -> GridSpec:
    grid = cfg.grid
    return GridSpec(
        bandwidths=grid.bandwidths,
        bandwidth_unit=grid.bandwidth_unit,
        ridges=grid.ridges,
        normalizations=grid.normalize_rows,
        search=grid.search,
        rule=grid.rule,
    )


def select_on_tuning_split(task, options, cfg, X, y, tuning, progress=None, units=None) -> GridSelection:
    """Stage 0 (kernel ridge regression over the grid), then the method's paths (grid.py), both with
    ``options.solver`` (on the Nyström path no n×n matrix is made); ``units``: resume.Units."""
    split = Split.of(X, y, *tuning)
    with clear_solver_errors(options.precision):
        return select(task, cfg.kernel.name, grid_spec(cfg), options, split, progress=progress, units=units)


def evaluate_folds(task, options, selection, protocol, X, y, folds, progress=None) -> list[FoldResult]:
    results = []
    with clear_solver_errors(options.precision):
        for index, (train_rows, test_rows) in enumerate(folds):
            if progress is not None:
                progress.stage(f"refit {index + 1} of {len(folds)} ({protocol} protocol)")
            split = Split.of(X, y, train_rows, test_rows)
            results.append(evaluate(task, options, selection, protocol, split, progress))
    return results


@contextmanager
def clear_solver_errors(precision: str = "auto"):
    """An impossible kernel solve, or memory running out mid-way, becomes one actionable line (float64
    is advised only when it is not already the precision)."""
    try:
        yield
    except FeatureCollapse as error:
        raise FactError(f"{error}: {COLLAPSE_ADVICE}") from None
    except InaccurateSolve as error:
        also = "" if precision == "float64" else " or use rfm.precision=float64"
        raise FactError(f"{error}; raise the smallest ridge in grid.ridges{also}") from None
    except MemoryError as error:
        raise FactError(
            f"out of memory during the kernel solve ({error}); use a subset or a larger machine"
        ) from None
