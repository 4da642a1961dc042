"""CSV and Parquet tables: one named target column, every other column a feature.

Everything learned from data — how each column is read, the categories, the task, the classes — is
learned from one file, the training file (``learn_encoding``), and then applied, unchanged, to it and
to a test file (``TableEncoding.apply``; table_pair.py), so no test cell can change how training is
encoded. Numbers and dates stored as text are read as numbers (cells.py, which says how); other text
columns are one-hot encoded ("color=red"), a missing text value being a category of its own
("color=<missing>"). Missing numbers are refused unless ``missing="median"`` (data.missing) asks the
caller to impute them from training rows (they stay NaN here); infinite values are always refused: a
silent fill would change the experiment without anyone deciding it. Without data.task, the task is
guessed from the training file's target (task_guess.py).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factcli.errors import FactError

from .cells import ColumnCells, number_text, read_as, read_column
from .records import TabularData
from .task_guess import MAX_CLASSES, guess_task

log = logging.getLogger("fact")

# |y| above this overflows y² in float64 (every loss and residual squares the targets).
TARGET_LIMIT = 1e150
MISSING_LEVEL = "<missing>"  # the category of a missing text value
# A text feature with more distinct values than this, and than half its rows, is an identifier or
# free text: one-hot it would add a column per row.
MAX_LEVELS = 50
SEPARATORS = (",", ";", "\t", "|")  # the first wins a tie


def load_table_file(
    path: str | Path, *, target: str | None, task: str = "auto", missing: str = "refuse"
) -> TabularData:
    """Read ``path`` (.csv, .parquet, .pq) and split it into features and the ``target`` column."""
    path = Path(path)
    frame = read_frame(path)
    encoding = learn_encoding(frame, path, target=target, task=task, missing=missing)
    X, y, _ = encoding.apply(frame, str(path), training=True)
    return encoding.tabular(X, y, path.stem, f"file:{path}")


@dataclass
class _Feature:
    column: str
    cells: ColumnCells  # the training file's, read
    levels: list[str] = field(default_factory=list)  # one-hot: the training categories, sorted

    @property
    def names(self) -> list[str]:
        if self.cells.is_number:
            return [f"{self.column} (days since 1970-01-01)" if self.cells.is_date else self.column]
        return [f"{self.column}={level}" for level in self.levels]


@dataclass
class TableEncoding:
    """How a table becomes (X, y), learned from the training file alone."""

    target: str
    task: str
    task_reason: str
    task_source: str
    features: list[_Feature]
    target_cells: ColumnCells
    classes: list | None  # classification: the training labels (floats or text), sorted
    missing: str

    @property
    def feature_names(self) -> list[str]:
        return [name for feature in self.features for name in feature.names]

    @property
    def read_as(self) -> dict[str, str]:
        """Columns whose text was read as numbers or dates → how (for the log and the summary)."""
        columns = [(f.column, f.cells) for f in self.features] + [(self.target, self.target_cells)]
        return {column: cells.note for column, cells in columns if cells.note}

    def tabular(self, X, y, name: str, source: str) -> TabularData:
        return TabularData(
            name=name,
            X=X,
            y=y,
            task=self.task,
            feature_names=self.feature_names,
            class_names=None if self.classes is None else [_label_text(c) for c in self.classes],
            source=source,
            task_reason=self.task_reason,
            task_source=self.task_source,
            read_as=self.read_as,
        )

    def apply(
        self, frame, where: str, training: bool = False
    ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """(X, y, unseen) of ``frame`` under this encoding; unseen counts, per text column, the cells
        whose category the training file never had (all zeros in that column's block). ``training``:
        ``frame`` is the training file, whose columns learn_encoding has already read."""
        cells = (
            {f.column: f.cells for f in self.features} | {self.target: self.target_cells} if training else {}
        )
        blocks, unseen = [], {}
        for feature in self.features:
            read = cells.get(feature.column) or read_as(
                frame[feature.column], feature.cells, f"column '{feature.column}'", where
            )
            if read.is_number:
                blocks.append(read.numbers[:, None])
                continue
            labels = np.where(_is_missing(read.labels), MISSING_LEVEL, read.labels).astype(str)
            levels = np.asarray(feature.levels, dtype=str)
            onehot = labels[:, None] == levels[None, :]
            blocks.append(onehot.astype(np.float64))
            count = int((~onehot.any(1)).sum())
            if count:
                unseen[feature.column] = count
        X = np.hstack(blocks) if blocks else np.zeros((len(frame), 0))
        _refuse_bad_numbers(X, self, where)
        target = cells.get(self.target) or read_as(
            frame[self.target], self.target_cells, f"target '{self.target}'", where
        )
        return X, self._labels(target, where), unseen

    def _labels(self, target: ColumnCells, where: str) -> np.ndarray:
        values = target.numbers if target.is_number else target.labels
        _refuse_missing_target(values, self.target, where)
        if self.task == "regression":
            return values.astype(np.float64)
        keys = [_class_key(v) for v in values]
        index = {_class_key(c): k for k, c in enumerate(self.classes)}
        unknown = sorted({_label_text(v) for v, key in zip(values, keys, strict=True) if key not in index})
        if unknown:
            raise FactError(
                f"{where} has classes never seen in the training file: {', '.join(unknown)} "
                f"(target '{self.target}' has {', '.join(_label_text(c) for c in self.classes)})"
            )
        return np.array([index[key] for key in keys], dtype=np.int64)


def learn_encoding(frame, path: Path, *, target: str | None, task: str, missing: str) -> TableEncoding:
    """How to encode tables like ``frame`` (the training file): read, categories, task, classes."""
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if target is None:
        raise FactError(f"{path} needs a target column: set data.target to one of: {', '.join(columns)}")
    if target not in columns:
        raise FactError(
            f"column '{target}' not found in {path}; set data.target to one of: {', '.join(columns)}"
        )
    if len(frame) < 2:
        raise FactError(f"{path} has {len(frame)} data row(s); fitting needs at least 2")
    if len(columns) < 2:
        raise FactError(f"{path} has no feature columns besides the target '{target}'")
    features = []
    for column in columns:
        if column == target:
            continue
        cells = read_column(frame[column], f"column '{column}'", str(path))
        feature = _Feature(column, cells)
        if not cells.is_number:
            labels = cells.labels
            feature.levels = sorted(set(np.where(_is_missing(labels), MISSING_LEVEL, labels).astype(str)))
            if len(feature.levels) > max(MAX_LEVELS, len(frame) / 2):
                raise FactError(
                    f"column '{column}' in {path} has {len(feature.levels)} distinct text values in "
                    f"{len(frame)} rows: one-hot encoded, each would be a feature of its own; it looks like "
                    "an identifier or free text: drop the column (or encode it as numbers yourself)"
                )
        features.append(feature)
    _refuse_empty(features, path)
    target_cells = read_column(frame[target], f"target '{target}'", str(path))
    task, reason, classes = _learn_target(target_cells, target, task, path)
    encoding = TableEncoding(
        target=target,
        task=task,
        task_reason=reason,
        task_source="given" if reason.startswith("task set") else "guessed",
        features=features,
        target_cells=target_cells,
        classes=classes,
        missing=missing,
    )
    for column, note in encoding.read_as.items():
        log.info("column '%s' of %s: %s", column, path.name, note)
    return encoding


def read_frame(path: Path):
    """The table in ``path``; a CSV's separator (, ; tab |) is the one that splits its header into
    the most columns; a header naming one column twice is refused (pandas would rename one)."""
    import pandas as pd

    if not path.is_file():
        raise FactError(f"file not found: {path}")
    try:
        if path.suffix.lower() == ".csv":
            separator = _check_header(path)
            return pd.read_csv(path, sep=separator, encoding="utf-8-sig", na_values=["?"])
        try:
            import pyarrow  # noqa: F401  (pandas' Parquet engine)
        except ImportError:
            raise FactError("reading Parquet needs pyarrow: pip install 'fact[parquet]'") from None
        frame = pd.read_parquet(path)
        _refuse_duplicates([str(c) for c in frame.columns], path)
        return frame
    except pd.errors.EmptyDataError:
        message = f"{path} is empty; a table needs a header line and at least 2 rows"
        raise FactError(message) from None
    except (ValueError, OSError, csv.Error) as err:  # pandas' ParserError and pyarrow's are ValueErrors
        reason = " ".join(str(err).split()) or type(err).__name__
        raise FactError(f"cannot read {path}: {reason}") from None


def _check_header(path: Path) -> str:
    """The CSV's separator, after refusing a header that names a column twice."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        header = ""
        for line in file:
            if line.strip():
                header = line
                break
    if not header:
        return ","
    fields = {sep: next(csv.reader([header], delimiter=sep)) for sep in SEPARATORS}
    separator = max(SEPARATORS, key=lambda sep: len(fields[sep]))
    _refuse_duplicates([name.strip() for name in fields[separator]], path)
    return separator


def _refuse_duplicates(names: list[str], path: Path) -> None:
    # pandas would keep both as "a" and "a.1" (or drop one): the user's data.target or their reading
    # of the features would silently meet the wrong column.
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(names, start=1):
        if name:
            seen.setdefault(name, []).append(position)
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    if twice:
        listed = "; ".join(f"'{n}' (columns {', '.join(map(str, w))})" for n, w in twice.items())
        raise FactError(f"{path} names a column more than once: {listed}; give every column its own name")


def _refuse_empty(features: list[_Feature], path: Path) -> None:
    """A number column with no value at all: there is nothing to learn or impute from."""
    for feature in features:
        if feature.cells.is_number and np.isnan(feature.cells.numbers).all():
            raise FactError(f"column '{feature.column}' in {path} has no values; drop it before fitting")


def _refuse_bad_numbers(X: np.ndarray, encoding: TableEncoding, where: str) -> None:
    """Infinite values always; missing numbers unless imputation is asked for."""
    finite_or_nan = np.isfinite(X) | np.isnan(X)
    if not finite_or_nan.all():
        j = int(np.flatnonzero(~finite_or_nan.all(0))[0])
        k = int((~finite_or_nan[:, j]).sum())
        raise FactError(
            f"column '{encoding.feature_names[j]}' has {k} infinite value{'s' * (k > 1)} "
            f"in {where}; replace them with finite numbers before fitting"
        )
    if encoding.missing == "refuse" and np.isnan(X).any():
        counts = [int(k) for k in np.isnan(X).sum(0)]
        what = ", ".join(
            f"column '{encoding.feature_names[j]}' has {counts[j]} missing value{'s' * (counts[j] > 1)}"
            for j in np.flatnonzero(counts)
        )
        raise FactError(f"{what} in {where}; fill or drop them before fitting or set data.missing=median")


def _refuse_missing_target(values: np.ndarray, target: str, where) -> None:
    missing = _is_missing(values)
    if missing.any():
        k = int(missing.sum())
        raise FactError(
            f"target '{target}' has {k} missing value{'s' * (k > 1)} in {where}; "
            "fill or drop those rows before fitting"
        )


def _learn_target(cells: ColumnCells, target: str, task: str, path: Path):
    """(task, task_reason, classes) from the training file's target column."""
    numbers = cells.numbers
    labels = numbers if cells.is_number else cells.labels
    _refuse_missing_target(labels, target, path)
    numeric = cells.is_number
    if numeric and not np.isfinite(numbers).all():
        n_bad = int((~np.isfinite(numbers)).sum())
        raise FactError(
            f"target '{target}' has {n_bad} infinite value{'s' * (n_bad > 1)} in "
            f"{path}; replace them with finite numbers before fitting"
        )
    integral = numeric and bool(np.all(numbers == np.round(numbers)))
    distinct = sorted(set(labels.tolist()))
    n_rows = len(labels)

    if task == "auto":
        guess = guess_task(
            target, numeric=numeric, integral=integral, n_rows=n_rows, n_distinct=len(distinct)
        )
        task, reason = guess.task, guess.reason
        if not numeric and len(distinct) > max(MAX_CLASSES, n_rows / 2):
            raise FactError(
                f"target '{target}' in {path} has {len(distinct)} distinct text values in {n_rows} rows: "
                "it looks like an identifier, not class labels; choose another data.target "
                "(or set data.task=classification to insist)"
            )
    else:
        reason = f"task set explicitly (data.task={task})"
        if task == "classification" and numeric and not integral:
            example = numbers[numbers != np.round(numbers)][0]
            raise FactError(
                f"target '{target}' in {path} has non-integer values (e.g. {example:g}); classification "
                "needs class labels: use data.task=regression (or round the labels)"
            )
    if task == "regression":
        if not numeric:
            raise FactError(
                f"target '{target}' in {path} is not numeric; regression needs numbers "
                f"(set data.task=classification)"
            )
        if np.abs(numbers).max() > TARGET_LIMIT:
            raise FactError(
                f"target '{target}' in {path} has values up to {np.abs(numbers).max():.3g}, too large to "
                "square in float64; rescale it (e.g. divide by a power of ten) before fitting"
            )
        return task, reason, None
    if len(distinct) < 2:
        raise FactError(
            f"only one class ('{_label_text(distinct[0])}') in target '{target}'; "
            "classification needs at least two"
        )
    return task, reason, distinct  # sorted: numerically for numbers, as text otherwise


def _is_missing(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.array([v is None for v in values], dtype=bool)
    return np.isnan(values)


def _class_key(value):
    """Numbers compare as numbers (1 == 1.0), text as its canonical label."""
    return float(value) if isinstance(value, float | int | np.number) else str(value)


def _label_text(level) -> str:
    return number_text(float(level)) if isinstance(level, float | int | np.number) else str(level)
