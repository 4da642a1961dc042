"""The selection fit-rfm used before its current grid (experiments/rfm/grid.py), kept only so that the
benchmark scripts that compare against it (bench_grid.py's *today*, variants.py's ``fact-today`` row)
can still be rerun; its committed results are in benchmarks/uci-previous/ and benchmarks/variants/.

For every (row normalization, ridge) of the grid, in grid order, the RFM path at the configured kernel
and bandwidth (no bandwidth search, no kernel selection) is scored at every iterate t on the
validation part; the first best score wins. The folds are then fitted as the current protocol fits
them (protocol.fit_fold: strict relearns M on each training part).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from factcli.core.linalg import timing_factorizations
from factcli.core.rfm import InaccurateSolve, RFMOptions, rfm_path
from factcli.experiments.rfm.protocol import Split, Task, fit_fold, normalize_rows
from factcli.experiments.rfm.suite import TABLE_COLUMNS


@dataclass
class Selection:
    ridge: float
    normalize: bool
    iteration: int
    M: torch.Tensor
    val_score: float
    precisions: set = field(default_factory=set)


def select(task: Task, options: RFMOptions, ridges, normalizations, split: Split) -> Selection:
    best: Selection | None = None
    precisions = set()
    Y = task.targets(split.y_train)
    for normalize in normalizations:
        A, B = normalize_rows(split.X_train, normalize), normalize_rows(split.X_held_out, normalize)
        for ridge in ridges:
            for iterate in rfm_path(A, Y, replace(options, ridge=float(ridge))):
                val = task.score(iterate.predictor(B), split.y_held_out)
                precisions.add(iterate.solve.precision)
                if task.better(val, None if best is None else best.val_score):
                    best = Selection(float(ridge), bool(normalize), iterate.t, iterate.M, val)
    assert best is not None, "empty grid"
    best.precisions = precisions
    return best


def rows(suite, label: str, method: str, protocols) -> list[dict]:
    """The table rows (suite.TABLE_COLUMNS) of the old selection for ``method`` on the suite's dataset."""
    options = replace(suite.options, method=method)
    base = {"dataset": suite.data.name, "n": suite.data.n, "d": suite.data.d, "classes": suite.data.n_classes}
    base |= {
        "label": label,
        "kind": "legacy",
        "kernel": options.kernel.name,
        "method": method,
        "form": "full",
    }
    out = []
    with timing_factorizations() as clock:
        started = time.perf_counter()
        try:
            chosen = select(suite.task, options, list(suite.spec.ridges), [False, True], suite.tuning)
        except ArithmeticError as error:
            return [
                {**dict.fromkeys(TABLE_COLUMNS, math.nan), **base, "protocol": p, "error": str(error)}
                for p in protocols
            ]
        selected_at = time.perf_counter()
        for protocol in protocols:
            t0 = time.perf_counter()
            fit = replace(options, ridge=chosen.ridge)
            try:
                scores = [
                    100
                    * fit_fold(
                        suite.task,
                        fit,
                        chosen.normalize,
                        chosen.iteration,
                        chosen.M,
                        protocol,
                        Split(suite.X[train], suite.y[train], suite.X[test], suite.y[test]),
                    ).score
                    for train, test in suite.folds
                ]
            except InaccurateSolve as error:
                out.append(
                    {
                        **dict.fromkeys(TABLE_COLUMNS, math.nan),
                        **base,
                        "protocol": protocol,
                        "error": str(error),
                    }
                )
                continue
            out.append(
                {
                    **base,
                    "protocol": protocol,
                    "bandwidth": options.kernel.bandwidth,
                    "ridge": chosen.ridge,
                    "normalize_rows": chosen.normalize,
                    "iteration": chosen.iteration,
                    "val_accuracy": 100 * chosen.val_score,
                    "failures": 0,
                    "precision": "+".join(sorted(chosen.precisions)),
                    **{f"fold{i + 1}_accuracy": s for i, s in enumerate(scores)},
                    "test_accuracy": float(np.mean(scores)),
                    "selection_seconds": selected_at - started,
                    "eval_seconds": time.perf_counter() - t0,
                    "error": "",
                }
            )
    for row in out:
        row["cholesky_seconds"] = clock.seconds
    return out
