"""The one entry point that finds a tabular dataset by name (the record types are in records.py).

A name resolves, in order, to: a built-in scikit-learn dataset; a .csv / .parquet / .pq file;
a folder of the UCI collection under the data root. ``uci:<name>`` skips the first two (the
collection also holds an ``iris`` and a ``wine``, which the built-ins would otherwise shadow).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from factcli.choices import TASKS
from factcli.errors import FactError

from .generated import BUILTIN_DATASETS, load_builtin  # scikit-learn's and generated tables
from .records import TabularData, resolve_data_root
from .table_file import load_table_file
from .uci import list_uci, load_uci

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
UCI_PREFIX = "uci:"
DATA_ROOT_HINT = "set FACT_DATA or data.root"


def uci_dir(data_root: str | os.PathLike | None) -> Path | None:
    """The folder holding the UCI dataset folders: <root>/uci, or the root itself if it is one."""
    root = resolve_data_root(data_root)
    if root is None:
        return None
    if (root / "uci").is_dir():
        return root / "uci"
    if root.is_dir() and list_uci(root):
        return root
    return None


def known_datasets(data_root: str | os.PathLike | None = None) -> list[str]:
    """Built-in names, then the UCI collection's names (files are not listed: any path works)."""
    uci = uci_dir(data_root)
    return sorted(BUILTIN_DATASETS) + (list_uci(uci) if uci is not None else [])


def load_tabular(
    name: str,
    *,
    data_root: str | os.PathLike | None = None,
    target: str | None = None,
    task: str = "auto",
    missing: str = "refuse",
) -> TabularData:
    """Load a dataset by name: built-in, then table file, then UCI folder (see module docstring).

    ``target`` names the label column of a table file; ``task`` is "classification",
    "regression" or "auto" (built-ins and UCI know theirs; files infer it from the target).
    """
    if task not in TASKS:
        raise FactError(f"unknown task '{task}'; set data.task to one of: {', '.join(TASKS)}")
    name = str(name)
    if not name.startswith(UCI_PREFIX):
        if name in BUILTIN_DATASETS:
            _refuse_target(name, target, "a built-in dataset")
            return _check_fixed_task(load_builtin(name), task)
        table = _as_table_path(name)
        if table is not None:
            return load_table_file(table, target=target, task=task, missing=missing)
    uci_name = name.removeprefix(UCI_PREFIX)
    uci = uci_dir(data_root)
    if uci is not None and (uci / uci_name).is_dir():
        _refuse_target(uci_name, target, "a UCI dataset")
        return _check_fixed_task(load_uci(uci, uci_name), task)
    raise FactError(_unknown_dataset_message(name, data_root, uci))


def _as_table_path(name: str) -> Path | None:
    """The path if ``name`` means a table file; None if it is not a file name at all."""
    path = Path(name).expanduser()
    if path.suffix.lower() in TABLE_SUFFIXES:
        if not path.is_file():
            raise FactError(f"file not found: {path}")
        return path
    if path.is_file():
        raise FactError(
            f"unsupported file type '{path.suffix or '(none)'}' for {path}; "
            f"use one of: {', '.join(TABLE_SUFFIXES)}"
        )
    return None


def _refuse_target(name: str, target: str | None, kind: str) -> None:
    # Silently ignoring a target the user asked for would fit the wrong labels without a word.
    if target is not None:
        raise FactError(
            f"'{name}' is {kind} with a fixed target; data.target only applies to "
            f".csv/.parquet files (remove it)"
        )


def _check_fixed_task(data: TabularData, task: str) -> TabularData:
    if task not in ("auto", data.task):
        raise FactError(
            f"'{data.name}' is a {data.task} dataset; data.task={task} does not apply "
            f"(use auto or {data.task})"
        )
    return data


def _unknown_dataset_message(name: str, data_root, uci: Path | None) -> str:
    builtin = sorted(BUILTIN_DATASETS)
    uci_names = list_uci(uci) if uci is not None else []
    parts = [f"unknown dataset '{name}': built-in: {', '.join(builtin)}"]
    if uci is None:
        root = resolve_data_root(data_root)
        if root is None:
            parts.append(f"no UCI data root set ({DATA_ROOT_HINT})")
        else:
            parts.append(f"no UCI data under {root} (expected {root / 'uci'}/<name>/; {DATA_ROOT_HINT})")
    else:
        parts.append(f"UCI under {uci}: {', '.join(uci_names)} ({len(uci_names)})")
    close = difflib.get_close_matches(name.removeprefix(UCI_PREFIX), builtin + uci_names, n=1)
    if close:
        parts.append(f"did you mean '{close[0]}'?")
    return "; ".join(parts)


# Squared distances sum d squares: a raw feature above this overflows them in float64.
FEATURE_LIMIT = 1e150


def standardize(X: np.ndarray, training_rows, names: list[str] | None = None) -> np.ndarray:
    """z-score every feature with the training rows' mean and standard deviation (a constant feature
    is only centred), so no statistic of the test rows leaks into training.

    Safe for any finite values: the textbook (x − mean) / std overflows for a column of 1e300 (its
    variance is inf and the column silently becomes zeros), so each column is first divided by its
    largest training magnitude, which leaves the z-score unchanged and every step finite.
    """
    magnitude = np.abs(X[training_rows]).max(0) if len(training_rows) else np.ones(X.shape[1])
    scaled = X / np.where(magnitude > 0, magnitude, 1.0)
    mean = scaled[training_rows].mean(0)
    std = scaled[training_rows].std(0)
    Z = (scaled - mean) / np.where(std > 0, std, 1.0)
    bad = ~np.isfinite(Z).all(0)
    if bad.any():
        column = _feature_name(names, int(np.flatnonzero(bad)[0]))
        raise FactError(
            f"feature {column} has held-out values far outside its training range (up to "
            f"{np.abs(X[:, bad]).max():.3g}): standardized they overflow; rescale or clip that column"
        )
    return Z


def check_kernel_scale(X: np.ndarray, names: list[str] | None, setting: str) -> None:
    """Unstandardized features must keep squared distances finite in float64."""
    too_large = np.abs(X).max(0) > FEATURE_LIMIT
    if too_large.any():
        column = _feature_name(names, int(np.flatnonzero(too_large)[0]))
        raise FactError(
            f"feature {column} has values up to {np.abs(X).max():.3g}: squared distances overflow float64; "
            f"standardize it ({setting}) or rescale it"
        )


def _feature_name(names: list[str] | None, j: int) -> str:
    return f"'{names[j]}'" if names else f"{j + 1}"
