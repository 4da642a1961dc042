"""The record types of tabular data, shared by every loader (built-in, table file, UCI), and where
the data root is."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class UciSplits:
    """The collection's fixed splits, as 0-based int64 row indices."""

    train: np.ndarray  # conxuntos.dat line 1: fit during hyperparameter search
    val: np.ndarray  # conxuntos.dat line 2: score during hyperparameter search
    folds: list[tuple[np.ndarray, np.ndarray]]  # conxuntos_kfold.dat: 4 (train, test) pairs


@dataclass
class TabularData:
    name: str
    X: np.ndarray  # float64, (n, d), finite
    y: np.ndarray  # classification: int64 in 0..C-1, (n,); regression: float64 (n,) or (n, t)
    task: str  # "classification" | "regression"
    feature_names: list[str]
    class_names: list[str] | None  # classification only; class_names[k] is the label of y == k
    splits: UciSplits | None = None  # only for the UCI collection
    source: str = ""  # "builtin" | "uci" | "file:<path>"
    task_reason: str = ""  # one sentence: how the task was decided
    task_source: str = "dataset"  # dataset (it fixes the task) | guessed (from the target) | given
    read_as: dict[str, str] = field(default_factory=dict)  # column → how its text became numbers

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes (including declared classes with no rows); None for regression."""
        return len(self.class_names) if self.class_names is not None else None

    @property
    def n_outputs(self) -> int:
        """Width of the model's output: one-hot classes, or the number of regression targets."""
        if self.task == "classification":
            return int(self.n_classes)
        return 1 if self.y.ndim == 1 else int(self.y.shape[1])


def resolve_data_root(data_root: str | os.PathLike | None) -> Path | None:
    """The data root: the argument if given, else $FACT_DATA, else None."""
    if data_root is None or str(data_root) == "":
        data_root = os.environ.get("FACT_DATA") or None
    return Path(data_root).expanduser() if data_root is not None else None
