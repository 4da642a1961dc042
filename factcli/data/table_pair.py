"""A training table and the user's own test table (data.test): the encoding is learned from the
training file alone (table_file.py) and applied to both, so nothing in the test file — its rows, a
fractional label, a category or a text cell — changes the task, the columns, the categories or the
classes. Both files must have the same columns (in any order). A test cell the training encoding
cannot read (text in a number column) is refused in one line naming the cells; a category the
training file never had is encoded as none of its categories (all zeros in that column's block) and
counted per column in the summary; a class it never had is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factcli.data.records import TabularData
from factcli.data.table_file import learn_encoding, read_frame
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
    train_path, test_path = Path(train_path), Path(test_path)
    if not test_path.is_file():
        raise FactError(f"data.test: file not found: {test_path}")
    train, test = read_frame(train_path), read_frame(test_path)
    train.columns, test.columns = [str(c) for c in train.columns], [str(c) for c in test.columns]
    only_train = [c for c in train.columns if c not in test.columns]
    only_test = [c for c in test.columns if c not in train.columns]
    if only_train or only_test:
        parts = [f"missing from the test file: {', '.join(only_train)}"] * bool(only_train)
        parts += [f"not in the training file: {', '.join(only_test)}"] * bool(only_test)
        raise FactError(f"data.test={test_path} has other columns than {train_path.name}: {'; '.join(parts)}")
    if len(test) < 1:
        raise FactError(f"data.test={test_path} has no data rows")
    encoding = learn_encoding(train, train_path, target=target, task=task, missing=missing)
    X_train, y_train, _ = encoding.apply(train, str(train_path), training=True)
    X_test, y_test, unseen = encoding.apply(test[list(train.columns)], f"the test file {test_path}")
    data = encoding.tabular(
        np.vstack([X_train, X_test]),
        np.concatenate([y_train, y_test]),
        train_path.stem,
        f"file:{train_path} + test:{test_path}",
    )
    return data, HeldOut(str(test_path), len(test), unseen)
