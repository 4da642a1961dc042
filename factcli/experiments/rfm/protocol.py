"""What selection (grid.py) and evaluation share: the task, the data split, and one fold's fit.

``fit_fold`` fits the chosen setting on a fold's training part, either reusing the selected M
(``paper``: docs/SPEC.md §5 exactly) or relearning M_0..M_t on the fold's training part (``strict``: no
test label ever shapes the features), then scores on the fold's held-out part. With ``bags`` = k > 1 it
fits k models instead, one on each k-fold training part of the fold's training rows (``inner_folds``),
and scores the mean of their outputs: bagging the refit, so that one unlucky draw of rows weighs less.

Pure computation (tensors in, numbers out): no files, no printing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch

from factcli.core import InvalidInput
from factcli.core.rfm import Iterate, RFMOptions, rfm_path

INNER_SEED = 0  # the inner folds' shuffle: fixed, so a variant's folds are the same on every run


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


@dataclass(frozen=True)
class Split:
    """Rows to fit on and rows to score on: the tuning split (validation part) or a fold (test part)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_held_out: torch.Tensor
    y_held_out: torch.Tensor

    @classmethod
    def of(cls, X: torch.Tensor, y: torch.Tensor, train_rows, held_out_rows) -> Split:
        train = torch.as_tensor(train_rows, device=X.device)
        held_out = torch.as_tensor(held_out_rows, device=X.device)
        return cls(X[train], y[train], X[held_out], y[held_out])

    def normalized(self, enabled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(training rows, held-out rows), each x ← x / ‖x‖ when ``enabled``."""
        return normalize_rows(self.X_train, enabled), normalize_rows(self.X_held_out, enabled)


def inner_folds(task: Task, y: torch.Tensor, k: int, seed: int = INNER_SEED) -> list[tuple]:
    """k (training rows, held-out rows) index pairs partitioning the rows of y: scikit-learn's shuffled
    k-fold, stratified by class for classification (unstratified when no class has k rows)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if k < 2 or len(y) < k:
        raise InvalidInput(
            f"{k} inner folds need k >= 2 and at least k rows ({len(y)} here); use fewer folds"
        )
    labels = y.cpu().numpy()
    folds = KFold(k, shuffle=True, random_state=seed)
    if task.kind == "classification":
        try:  # a class with fewer than k rows is expected on small tables: it is spread as far as it goes
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
                return [
                    (torch.as_tensor(a), torch.as_tensor(b))
                    for a, b in StratifiedKFold(k, shuffle=True, random_state=seed).split(labels, labels)
                ]
        except ValueError:  # every class has fewer than k rows: nothing to stratify by
            pass
    return [(torch.as_tensor(a), torch.as_tensor(b)) for a, b in folds.split(labels)]


def normalize_rows(X: torch.Tensor, enabled: bool) -> torch.Tensor:
    """x ← x / ‖x‖ (zero rows stay zero)."""
    if not enabled:
        return X
    return X / X.norm(dim=1, keepdim=True).clamp_min(1e-12)


@dataclass
class FoldResult:
    score: float
    M: torch.Tensor
    path_scores: list[float]  # test score of every iterate computed on this fold (strict: t = 0..t*)
    precision: str
    # How each of those iterates' solve went: relative residual, CG steps (None: a direct solve).
    path_residuals: list[float] = field(default_factory=list)
    path_cg_steps: list[int | None] = field(default_factory=list)


def fit_fold(
    task: Task,
    fit: RFMOptions,
    normalize: bool,
    iteration: int,
    M: torch.Tensor,
    protocol: str,
    split: Split,
    progress=None,
    bags: int = 1,
) -> FoldResult:
    """One fold of the chosen setting (``fit`` carries its kernel and ridge), fitted by ``refit`` on the
    fold's training part and scored on its held-out part.

    ``bags`` = k > 1: k refits, one on each k-fold training part of the fold's training rows; each
    iterate's score is that of the k models' mean output (the one-hot regression outputs, before the
    argmax), and M is the mean of their M (what the ensemble learned, on average)."""
    B = normalize_rows(split.X_held_out, normalize)
    if bags == 1:
        parts = [(split.X_train, split.y_train)]
    else:
        parts = [(split.X_train[a], split.y_train[a]) for a, _ in inner_folds(task, split.y_train, bags)]
    models = [refit(task, fit, normalize, iteration, M, protocol, X, y, progress) for X, y in parts]
    length = min(len(iterates) for iterates in models)  # equal unless a path stopped early
    path_scores, residuals, steps = [], [], []
    for t in range(length):
        outputs = torch.stack([iterates[t].predictor(B).double() for iterates in models]).mean(0)
        path_scores.append(task.score(outputs, split.y_held_out))
        residuals.append(max(iterates[t].solve.relative_residual for iterates in models))
        counts = [iterates[t].solve.cg_steps for iterates in models]
        steps.append(None if None in counts else max(counts))
    finals = [iterates[length - 1] for iterates in models]
    final_M = torch.stack([final.M for final in finals]).mean(0)
    precision = "+".join(sorted({final.solve.precision for final in finals}))
    return FoldResult(path_scores[-1], final_M, path_scores, precision, residuals, steps)


def refit(
    task: Task, fit: RFMOptions, normalize: bool, iteration: int, M, protocol: str, X, y, progress=None
):
    """The iterates of the chosen setting fitted on the rows X, y: ``strict`` relearns M_0..M_iteration
    on them, ``paper`` solves once with the selected ``M`` (one iterate)."""
    A, Y = normalize_rows(X, normalize), task.targets(y)
    if protocol == "paper":
        return list(rfm_path(A, Y, replace(fit, method="laplace"), M0=M))  # laplace: solve only, M kept
    if protocol != "strict":
        raise ValueError(f"unknown protocol {protocol!r}")
    iterates = []
    for iterate in _take(rfm_path(A, Y, replace(fit, iters=iteration)), iteration):
        iterates.append(iterate)
        if progress is not None:
            progress.iterate(iterate.t)
    return iterates


def _take(path, last_t: int) -> Iterator[Iterate]:
    for iterate in path:
        yield iterate
        if iterate.t >= last_t:
            break
