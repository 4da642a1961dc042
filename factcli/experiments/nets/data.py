"""The data train-net and verify-fact train on, by name, as tensors with a train/test split.

Images (mnist, cifar10, digits) are scaled to [0, 1] and keep their (channels, height, width) shape
so a ConvNet can use them (an MLP flattens them). Tabular datasets are standardized with the
training rows' statistics. Everything is seeded: the same seed gives the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from factcli.data.builtin import load_builtin
from factcli.data.images import load_cifar10, load_mnist
from factcli.data.modular import load_modular
from factcli.data.records import resolve_data_root
from factcli.data.tabular import load_tabular, standardize
from factcli.data.teacher import make_teacher
from factcli.errors import FactError


@dataclass
class NetData:
    name: str
    X_train: torch.Tensor  # (n, *input_shape), float32
    y_train: torch.Tensor  # classification: int64 labels (n,); regression: float32 (n, outputs)
    X_test: torch.Tensor
    y_test: torch.Tensor
    task: str  # classification | regression
    outputs: int  # network outputs: classes, or regression targets
    input_shape: tuple[int, ...]
    description: str  # where the rows came from, for the summary
    tokens: tuple[int, int] | None = None  # (sequence length, vocabulary) when rows are one-hot tokens

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


def load_net_data(name: str, data, seed: int) -> NetData:
    """``name`` as in the train-net schema; ``data`` is its DataConfig node."""
    if name in ("mnist", "cifar10"):
        return _image_files(name, data, seed)
    if name == "digits":
        return _digits(data, seed)
    if name == "teacher":
        return _teacher(data, seed)
    if name == "nfa_counterexample":
        return counterexample_data(data.counterexample.delta, data.counterexample.tau)
    if name == "modular":
        return modular_data(data.modular, seed)
    return _tabular(name, data, seed)


def modular_data(modular, seed: int) -> NetData:
    """The grokking task (docs/SPEC.md §7): every pair (a, b) of Z_p, label (a ∘ b) mod p, a seeded
    split; rows are the two one-hot tokens side by side (an MLP reads 2p inputs, a transformer two
    tokens of a p-symbol vocabulary)."""
    task = load_modular(int(modular.p), modular.operation, float(modular.train_fraction), seed)
    return NetData(
        "modular",
        task.inputs(task.train, torch.float32),
        task.labels[task.train],
        task.inputs(task.test, torch.float32),
        task.labels[task.test],
        "classification",
        task.p,
        (2 * task.p,),
        f"{task.description}: {len(task.train)} training pairs, {len(task.test)} test pairs",
        tokens=(2, task.p),
    )


def counterexample_data(delta: float, tau: float) -> NetData:
    """docs/SPEC.md §9: x ∈ {e1, τ e2, e1 + e2}, y = xᵀ diag(1, δ) x; the test set is the training set."""
    X = torch.tensor([[1.0, 0.0], [0.0, tau], [1.0, 1.0]], dtype=torch.float64)
    y = (X.pow(2) @ torch.tensor([1.0, delta], dtype=torch.float64))[:, None]
    return NetData(
        "nfa_counterexample", X, y, X, y, "regression", 1, (2,),
        f"SPEC §9 construction, delta={delta:g}, tau={tau:g} (3 points)",
    )  # fmt: skip


def test_rows(test_size: float, n: int) -> int:
    """data.test_size as a number of rows: a fraction of n if below 1, else a count."""
    return int(round(test_size * n)) if test_size < 1 else int(test_size)


def _rows_to_load(data) -> int | None:
    """How many rows to read so that train_size remain after holding out the test rows."""
    if data.train_size is None:
        return None
    if data.test_size >= 1:
        return data.train_size + int(data.test_size)
    return math.ceil(data.train_size / (1 - data.test_size))  # then round(f·n) test rows leave ≥ train_size


def _split_rows(n: int, train_size: int | None, test_size: float, seed: int, what: str):
    """Seeded disjoint (train, test) row indices out of n."""
    test_size = test_rows(test_size, n)
    if test_size < 0 or test_size >= n:
        raise FactError(f"{what} has {n} rows: data.test_size must lie in 0..{n - 1}, got {test_size}")
    available = n - test_size
    train_size = available if train_size is None else train_size
    if not 0 < train_size <= available:
        raise FactError(
            f"{what} has {n} rows, {test_size} held out for testing: data.train_size must lie in "
            f"1..{available}, got {train_size}"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[test_size : test_size + train_size]), np.sort(order[:test_size])


def _image_files(name: str, data, seed: int) -> NetData:
    load = load_mnist if name == "mnist" else load_cifar10
    directory = data.directory
    if directory is None:
        root = resolve_data_root(data.root)
        if root is None:
            raise FactError(
                f"dataset={name} needs its files: set data.directory, or data.root / FACT_DATA to a "
                f"folder holding {name}/ (fetch them with: fact fetch {name} DIR)"
            )
        directory = Path(root) / name
    if data.test_split is None:  # hold test rows out of the same files
        X, y = load(directory, data.split, subset=_rows_to_load(data), seed=seed)
        train, test = _split_rows(len(y), data.train_size, data.test_size, seed, f"{name} {data.split}")
        X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
        source = f"{len(train)} train / {len(test)} held-out test rows of the {data.split} files"
    else:
        X_train, y_train = load(directory, data.split, subset=data.train_size, seed=seed)
        X_test, y_test = load(directory, data.test_split, seed=seed + 1)
        keep = np.random.default_rng(seed + 1).permutation(len(y_test))
        keep = np.sort(keep[: test_rows(data.test_size, len(y_test))])
        X_test, y_test = X_test[keep], y_test[keep]
        source = f"{len(y_train)} {data.split} rows, {len(y_test)} {data.test_split} rows"
    return NetData(
        name, X_train, y_train, X_test, y_test, "classification", 10, tuple(X_train.shape[1:]),
        f"{name} from {directory}: {source}, pixels scaled to [0, 1]",
    )  # fmt: skip


def _digits(data, seed: int) -> NetData:
    table = load_builtin("digits")
    X = torch.from_numpy(table.X / 16.0).float().reshape(-1, 1, 8, 8)  # 0..16 intensities
    y = torch.from_numpy(table.y)
    train, test = _split_rows(len(y), data.train_size, data.test_size, seed, "digits")
    return NetData(
        "digits", X[train], y[train], X[test], y[test], "classification", 10, (1, 8, 8),
        f"scikit-learn digits (8x8): {len(train)} train / {len(test)} test rows, scaled to [0, 1]",
    )  # fmt: skip


def _teacher(data, seed: int) -> NetData:
    t = data.teacher
    n_train = 2000 if data.train_size is None else data.train_size
    n_total = n_train + int(data.test_size) if data.test_size >= 1 else round(n_train / (1 - data.test_size))
    made = make_teacher(n_total, t.dim, t.rank, t.classes, t.width, t.task, seed=seed)
    X = torch.from_numpy(made.X).float()
    if t.task == "classification":
        y, outputs = torch.from_numpy(made.y), t.classes
    else:
        y, outputs = torch.from_numpy(made.y).float(), t.classes
    return NetData(
        "teacher", X[:n_train], y[:n_train], X[n_train:], y[n_train:], t.task, outputs, (t.dim,),
        f"synthetic teacher: x ~ N(0, I_{t.dim}), a random tanh network on {t.rank} directions, "
        f"{t.task}, {n_train} train / {len(y) - n_train} test rows",
    )  # fmt: skip


def _tabular(name: str, data, seed: int) -> NetData:
    table = load_tabular(name, data_root=data.root)
    train, test = _split_rows(table.n, data.train_size, data.test_size, seed, name)
    X = torch.from_numpy(standardize(table.X, train, table.feature_names)).float()
    if table.task == "classification":
        y = torch.from_numpy(table.y)
    else:
        targets = table.y.reshape(table.n, -1)
        y_mean, y_scale = targets[train].mean(0), targets[train].std(0).clip(min=1e-12)
        y = torch.from_numpy((targets - y_mean) / y_scale).float()
    return NetData(
        table.name, X[train], y[train], X[test], y[test], table.task, table.n_outputs, (table.d,),
        f"{table.name} ({table.source}): {len(train)} train / {len(test)} test rows, "
        "standardized with training statistics",
    )  # fmt: skip
