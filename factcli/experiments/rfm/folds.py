"""The protocol (protocol.py) over a dataset's row splits: the tuning split, then the test folds.

UCI datasets bring their own fixed splits; any other gets a seeded, stratified train / validation /
test split. An impossible kernel solve, or memory running out, becomes one actionable line here.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from factcli.core.rfm import InaccurateSolve
from factcli.errors import FactError

from ..common.rfm import rfm_options
from .protocol import FoldResult, Selection, evaluate, select


def splits_of(data, cfg, held_out=None):
    """(tuning train, tuning val) and the list of (train, test) folds, as row-index arrays.

    With the user's test file (``held_out``, table_pair.py) its rows, the last ones, are the test set."""
    if data.splits is not None:
        return (data.splits.train, data.splits.val), list(data.splits.folds)
    rows = np.arange(data.n)
    if held_out is not None:
        training, test = rows[: data.n - held_out.rows], rows[data.n - held_out.rows :]
    else:
        training, test = _split(rows, data, cfg.data.test_fraction, cfg.seed)
    train, val = _split(training, data, cfg.data.val_fraction, cfg.seed + 1)
    return (train, val), [(training, test)]


def _split(rows, data, fraction, seed):
    from sklearn.model_selection import train_test_split

    labels = data.y[rows] if data.task == "classification" else None
    try:
        return train_test_split(rows, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError:  # a class too small to stratify: split without stratification
        return train_test_split(rows, test_size=fraction, random_state=seed)


def fit_options(cfg, method: str):
    """fit-rfm's RFM options for ``method``; the grid's ridges replace the ridge point by point
    (protocol.select)."""
    return rfm_options(cfg, method, ridge=cfg.grid.ridges[0])


def select_on_tuning_split(task, options, cfg, X, y, tuning, progress=None) -> Selection:
    train, val = (torch.as_tensor(rows, device=X.device) for rows in tuning)
    grid = (cfg.grid.ridges, cfg.grid.normalize_rows)
    with clear_solver_errors():
        return select(task, options, *grid, X[train], y[train], X[val], y[val], progress)


def evaluate_folds(task, options, selection, protocol, X, y, folds, progress=None) -> list[FoldResult]:
    results = []
    with clear_solver_errors():
        for index, (train_rows, test_rows) in enumerate(folds):
            if progress is not None:
                progress.stage(f"refit {index + 1} of {len(folds)} ({protocol} protocol)")
            train = torch.as_tensor(train_rows, device=X.device)
            test = torch.as_tensor(test_rows, device=X.device)
            results.append(
                evaluate(task, options, selection, protocol, X[train], y[train], X[test], y[test], progress)
            )
    return results


@contextmanager
def clear_solver_errors():
    """An impossible kernel solve, or memory running out mid-way, becomes one actionable line."""
    try:
        yield
    except InaccurateSolve as error:
        raise FactError(
            f"{error}; raise the smallest ridge in grid.ridges or use rfm.precision=float64"
        ) from None
    except MemoryError as error:
        raise FactError(
            f"out of memory during the kernel solve ({error}); use a subset or a larger machine"
        ) from None
