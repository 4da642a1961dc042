"""A training table and the user's own test table (data.test): one encoding, learned from training rows.

Both files must have the same columns. They are read and encoded together, training rows first, so
numbers, one-hot columns and classes line up; then every one-hot column whose category never occurs in
the training file is dropped: a test row with such a category has all zeros in that column's block (it
matches no training category), and the summary counts these cells per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factcli.data.records import TabularData
from factcli.data.table_file import _read_frame, load_table_file
from factcli.errors import FactError


@dataclass
class HeldOut:
    """How the test file entered: its rows are the last ``rows`` of the data."""

    path: str
    rows: int
    unseen_categories: dict[str, int] = field(default_factory=dict)  # column → test cells


def load_with_test_file(
    train_path, test_path, *, target: str | None, task: str = "auto", missing: str = "refuse"
) -> tuple[TabularData, HeldOut]:
    import pandas as pd

    train_path, test_path = Path(train_path), Path(test_path)
    if not test_path.is_file():
        raise FactError(f"data.test: file not found: {test_path}")
    train, test = _read_frame(train_path), _read_frame(test_path)
    train.columns, test.columns = [str(c) for c in train.columns], [str(c) for c in test.columns]
    only_train = [c for c in train.columns if c not in test.columns]
    only_test = [c for c in test.columns if c not in train.columns]
    if only_train or only_test:
        parts = [f"missing from the test file: {', '.join(only_train)}"] * bool(only_train)
        parts += [f"not in the training file: {', '.join(only_test)}"] * bool(only_test)
        raise FactError(f"data.test={test_path} has other columns than {train_path.name}: {'; '.join(parts)}")
    if len(test) < 1:
        raise FactError(f"data.test={test_path} has no data rows")
    frame = pd.concat([train, test[list(train.columns)]], ignore_index=True)
    data = load_table_file(train_path, target=target, task=task, missing=missing, frame=frame)
    n_train = len(train)
    data.name, data.source = train_path.stem, f"file:{train_path} + test:{test_path}"
    if data.task == "classification":
        seen = np.zeros(len(data.class_names), dtype=bool)
        seen[np.unique(data.y[:n_train])] = True
        if not seen.all():
            unseen = [data.class_names[k] for k in np.flatnonzero(~seen)]
            raise FactError(
                f"data.test={test_path} has classes never seen in {train_path.name}: {', '.join(unseen)}"
            )
    text_columns = [
        c
        for c in frame.columns
        if c != target
        and not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    unseen = _drop_unseen_levels(data, n_train, text_columns)
    return data, HeldOut(str(test_path), len(test), unseen)


def _drop_unseen_levels(data: TabularData, n_train: int, text_columns: list[str]) -> dict[str, int]:
    """Drop one-hot columns of categories absent from the training rows (in place); count their cells."""
    owner = {}
    for column in text_columns:
        for j, name in enumerate(data.feature_names):
            if name.startswith(f"{column}="):
                owner.setdefault(j, column)
    keep = np.ones(data.d, dtype=bool)
    unseen: dict[str, int] = {}
    for j, column in owner.items():
        if not data.X[:n_train, j].any():
            keep[j] = False
            unseen[column] = unseen.get(column, 0) + int(data.X[n_train:, j].sum())
    data.X = data.X[:, keep]
    data.feature_names = [n for n, k in zip(data.feature_names, keep, strict=True) if k]
    return unseen
