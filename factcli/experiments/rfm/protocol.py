"""Selecting and evaluating an RFM on tabular data: the protocol of docs/SPEC.md §5, and its strict variant.

1. ``select``: for every grid point (ridge, row normalization), run the RFM path on the tuning
   training part and score every iterate M_t (t = 0..T) on the validation part; keep the best.
2. ``evaluate``: on each (train, test) fold, either reuse the selected M (``paper``: docs/SPEC.md §5 exactly)
   or relearn M on the fold's training part with the selected ridge, normalization and t
   (``strict``: no test label ever shapes the features), then solve and score on the test part.

Pure computation (tensors in, numbers out): no files, no printing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch

from factcli.core.rfm import Iterate, RFMOptions, rfm_path


@dataclass(frozen=True)
class Task:
    """How targets are encoded and predictions scored."""

    kind: str  # classification | regression
    n_outputs: int

    @property
    def metric(self) -> str:
        return "accuracy" if self.kind == "classification" else "mse"

    def targets(self, y: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
        """One-hot classes, or the regression targets as an n×t matrix."""
        if self.kind == "classification":
            return torch.nn.functional.one_hot(y.long(), self.n_outputs).to(dtype)
        return (y if y.ndim == 2 else y.unsqueeze(1)).to(dtype)

    def score(self, outputs: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy (argmax of raw outputs) or mean squared error."""
        y = y.to(outputs.device)  # scored where the outputs are: only the number leaves the device
        if self.kind == "classification":
            return float((outputs.argmax(1) == y.long()).double().mean())
        return float(((outputs.double() - self.targets(y)) ** 2).mean())

    def better(self, score: float, best: float | None) -> bool:
        if best is None:
            return True
        return score > best if self.kind == "classification" else score < best


def normalize_rows(X: torch.Tensor, enabled: bool) -> torch.Tensor:
    """x ← x / ‖x‖ (zero rows stay zero)."""
    if not enabled:
        return X
    return X / X.norm(dim=1, keepdim=True).clamp_min(1e-12)


@dataclass
class Selection:
    """The chosen hyperparameters, the chosen iterate's M, and every candidate's validation score."""

    ridge: float
    normalize: bool
    iteration: int
    M: torch.Tensor
    val_score: float
    candidates: list[dict] = field(default_factory=list)
    precisions: set = field(default_factory=set)
    seconds: float = 0.0


def select(
    task: Task, options: RFMOptions, ridges, normalizations, X_train, y_train, X_val, y_val, progress=None
) -> Selection:
    """Grid search over (normalization, ridge) and iteration t, scored on the validation part.

    ``progress`` (common/scalable.py FitProgress) hears of every grid point and iterate."""
    started = time.perf_counter()
    best: Selection | None = None
    candidates, precisions = [], set()
    Y_train = task.targets(y_train)
    for normalize in normalizations:
        A, B = normalize_rows(X_train, normalize), normalize_rows(X_val, normalize)
        for ridge in ridges:
            if progress is not None:
                point = len({(c["ridge"], c["normalize_rows"]) for c in candidates}) + 1
                total = len(ridges) * len(normalizations)
                progress.stage(f"grid point {point} of {total} (ridge={ridge:g}, x/|x|={normalize})")
            for iterate in rfm_path(A, Y_train, replace(options, ridge=float(ridge))):
                val = task.score(iterate.predictor(B), y_val)
                train = task.score(iterate.predictor.training_outputs(Y_train, ridge), y_train)
                precisions.add(iterate.solve.precision)
                candidates.append(
                    {
                        "iteration": iterate.t,
                        "ridge": float(ridge),
                        "normalize_rows": bool(normalize),
                        f"train_{task.metric}": train,
                        f"val_{task.metric}": val,
                    }
                )
                if progress is not None:
                    progress.iterate(iterate.t, f"validation {task.metric} {val:.4f}")
                if task.better(val, None if best is None else best.val_score):
                    best = Selection(float(ridge), bool(normalize), iterate.t, iterate.M, val)
    assert best is not None, "empty grid"
    best.candidates, best.precisions = candidates, precisions
    best.seconds = time.perf_counter() - started
    return best


@dataclass
class FoldResult:
    score: float
    M: torch.Tensor
    path_scores: list[float]  # test score of every iterate computed on this fold (strict: t = 0..t*)
    precision: str


def evaluate(
    task: Task,
    options: RFMOptions,
    selection: Selection,
    protocol: str,
    X_train,
    y_train,
    X_test,
    y_test,
    progress=None,
) -> FoldResult:
    """Fit on one fold's training part as the protocol says, score on its test part."""
    fit = replace(options, ridge=selection.ridge)
    parts = (X_train, y_train, X_test, y_test)
    return fit_fold(
        task, fit, selection.normalize, selection.iteration, selection.M, protocol, *parts, progress
    )


def fit_fold(
    task: Task,
    fit: RFMOptions,
    normalize: bool,
    iteration: int,
    M: torch.Tensor,
    protocol: str,
    X_train,
    y_train,
    X_test,
    y_test,
    progress=None,
) -> FoldResult:
    """One fold of the chosen setting (``fit`` carries its kernel and ridge): ``strict`` relearns
    M_0..M_iteration on the fold's training part, ``paper`` solves once with the selected ``M``."""
    A = normalize_rows(X_train, normalize)
    B = normalize_rows(X_test, normalize)
    Y = task.targets(y_train)
    if protocol == "paper":
        iterates = list(rfm_path(A, Y, replace(fit, method="laplace"), M0=M))  # laplace: solve only, M kept
    elif protocol == "strict":
        iterates = []
        for iterate in _take(rfm_path(A, Y, replace(fit, iters=iteration)), iteration):
            iterates.append(iterate)
            if progress is not None:
                progress.iterate(iterate.t)
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    path_scores = [task.score(iterate.predictor(B), y_test) for iterate in iterates]
    final = iterates[-1]
    return FoldResult(path_scores[-1], final.M, path_scores, final.solve.precision)


def _take(path, last_t: int) -> Iterator[Iterate]:
    for iterate in path:
        yield iterate
        if iterate.t >= last_t:
            break
