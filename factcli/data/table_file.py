"""CSV and Parquet tables: one named target column, every other column a feature.

Non-numeric feature columns are one-hot encoded ("color=red"); a missing text value is a category of
its own ("color=<missing>"); a column of numbers with a few stray text cells is refused, naming the
cells, rather than one-hot encoded into dozens of columns. Missing numbers are refused unless
``missing="median"`` (data.missing) asks the caller to impute them from training rows (they stay NaN
here); infinite values are always refused: a silent fill would change the experiment without anyone
deciding it. Without data.task, the task is guessed from the target (task_guess.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factcli.errors import FactError

from .records import TabularData
from .task_guess import MAX_CLASSES, guess_task

# A text column whose cells are numbers but for a few is a numeric column with typos, not categories.
NUMERIC_SHARE = 0.9
# |y| above this overflows y² in float64 (every loss and residual squares the targets).
TARGET_LIMIT = 1e150
MISSING_LEVEL = "<missing>"  # the category of a missing text value


def load_table_file(
    path: str | Path, *, target: str | None, task: str = "auto", missing: str = "refuse", frame=None
) -> TabularData:
    """Read ``path`` (.csv, .parquet, .pq) and split it into features and the ``target`` column.

    ``frame``: the table already read (table_pair joins a training and a test file)."""
    path = Path(path)
    frame = _read_frame(path) if frame is None else frame
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
    _refuse_missing(frame, path, target, missing)

    X, feature_names = _encode_features(frame.drop(columns=[target]), path)
    y, task, class_names, reason = _encode_target(frame[target], target, task, path)
    return TabularData(
        task_source="given" if reason.startswith("task set") else "guessed",
        name=path.stem,
        X=X,
        y=y,
        task=task,
        feature_names=feature_names,
        class_names=class_names,
        source=f"file:{path}",
        task_reason=reason,
    )


def _read_frame(path: Path):
    import pandas as pd

    if not path.is_file():
        raise FactError(f"file not found: {path}")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        try:
            import pyarrow  # noqa: F401  (pandas' Parquet engine)
        except ImportError:
            raise FactError("reading Parquet needs pyarrow: pip install 'fact[parquet]'") from None
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        message = f"{path} is empty; a table needs a header line and at least 2 rows"
        raise FactError(message) from None
    except (ValueError, OSError) as err:  # pandas' ParserError and pyarrow's errors are ValueErrors
        reason = " ".join(str(err).split()) or type(err).__name__
        raise FactError(f"cannot read {path}: {reason}") from None


def _refuse_missing(frame, path: Path, target: str, missing: str) -> None:
    """Missing targets always, missing numbers unless imputation is asked for (text: own category)."""
    import pandas as pd

    counts = frame.isna().sum()
    bad = [
        (column, int(k))
        for column, k in counts.items()
        if k > 0
        and (column == target or (missing == "refuse" and pd.api.types.is_numeric_dtype(frame[column])))
    ]
    if bad:
        what = ", ".join(f"column '{c}' has {k} missing value{'s' * (k > 1)}" for c, k in bad)
        hint = "" if any(c == target for c, _ in bad) else " or set data.missing=median"
        raise FactError(f"{what} in {path}; fill or drop them before fitting{hint}")


def _encode_features(features, path: Path) -> tuple[np.ndarray, list[str]]:
    """Numeric columns as they are, the others one-hot in place, in the table's column order."""
    import pandas as pd

    blocks, names = [], []
    for column in features.columns:
        values = features[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            n_inf = int(np.isinf(numbers).sum())
            if n_inf:
                raise FactError(
                    f"column '{column}' has {n_inf} infinite value{'s' * (n_inf > 1)} "
                    f"in {path}; replace them with finite numbers before fitting"
                )
            blocks.append(numbers[:, None])
            names.append(column)
        else:
            _refuse_stray_text(values, f"column '{column}'", path)
            labels = values.astype(object).where(values.notna(), MISSING_LEVEL).astype(str).to_numpy()
            levels = np.unique(labels)
            blocks.append((labels[:, None] == levels[None, :]).astype(np.float64))
            names.extend(f"{column}={level}" for level in levels)
    return np.hstack(blocks), names


def _refuse_stray_text(values, what: str, path: Path) -> None:
    """A mostly-numeric text column: name the cells that are not numbers (row = 1-based data row)."""
    import pandas as pd

    parsed = (pd.to_numeric(values, errors="coerce").notna() | values.isna()).to_numpy()  # missing: own level
    if parsed.all() or parsed.mean() < NUMERIC_SHARE:
        return
    stray = np.flatnonzero(~parsed)
    cells = ", ".join(f"row {i + 1}: {values.iloc[i]!r}" for i in stray[:3])
    more = f" and {len(stray) - 3} more" if len(stray) > 3 else ""
    raise FactError(
        f"{what} in {path} holds numbers except {len(stray)} cell{'s' * (len(stray) > 1)} ({cells}{more}); "
        "fix or remove those cells (rows counted from 1 after the header)"
    )


def _encode_target(values, target: str, task: str, path: Path):
    """(y, task, class_names, task_reason) for the target column under the requested task."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric:
        _refuse_stray_text(values, f"target '{target}'", path)
    numbers = values.to_numpy(dtype=np.float64) if numeric else None
    if numeric and not np.isfinite(numbers).all():
        n_bad = int((~np.isfinite(numbers)).sum())
        raise FactError(
            f"target '{target}' has {n_bad} infinite value{'s' * (n_bad > 1)} in "
            f"{path}; replace them with finite numbers before fitting"
        )
    integral = numeric and bool(np.all(numbers == np.round(numbers)))
    n_distinct = int(values.nunique())

    if task == "auto":
        guess = guess_task(
            target, numeric=numeric, integral=integral, n_rows=len(values), n_distinct=n_distinct
        )
        task, reason = guess.task, guess.reason
        if not numeric and n_distinct > max(MAX_CLASSES, len(values) / 2):
            raise FactError(
                f"target '{target}' in {path} has {n_distinct} distinct text values in {len(values)} rows: "
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
    if task == "regression" and numeric and np.abs(numbers).max() > TARGET_LIMIT:
        raise FactError(
            f"target '{target}' in {path} has values up to {np.abs(numbers).max():.3g}, too large to square "
            "in float64; rescale it (e.g. divide by a power of ten) before fitting"
        )

    if task == "regression":
        if not numeric:
            raise FactError(
                f"target '{target}' in {path} is not numeric; regression needs numbers "
                f"(set data.task=classification)"
            )
        return numbers, task, None, reason

    # Classes in sorted order: numerically for numbers, as text otherwise.
    labels = numbers if numeric else values.astype(str).to_numpy()
    levels, y = np.unique(labels, return_inverse=True)
    class_names = [_label_text(level) for level in levels]
    if len(levels) < 2:
        raise FactError(
            f"only one class ('{class_names[0]}') in target '{target}'; classification needs at least two"
        )
    return y.astype(np.int64).reshape(-1), task, class_names, reason


def _label_text(level) -> str:
    # 3.0 reads as "3": integer labels stored as floats stay readable.
    if isinstance(level, float | np.floating) and float(level).is_integer():
        return str(int(level))
    return str(level)
