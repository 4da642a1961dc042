"""The one entry point that finds a tabular dataset by name (the record types are in records.py).

A name resolves, in order, to: a built-in scikit-learn dataset; a .csv / .parquet / .pq file;
a folder of the UCI collection under the data root. The collection also holds an ``iris``, a
``wine`` and a ``breast-cancer`` (not scikit-learn's ``breast_cancer``): ``builtin:<name>`` and
``uci:<name>`` name one source only, ``fact datasets`` lists every dataset once under a name that
means it alone (the collection's clashing ones as ``uci:<name>``), a bare name that the other source
also has (up to ``-``/``_``) says in the log which one it took, and the record of a UCI dataset
that clashes is named ``uci:<name>``.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

import numpy as np

from factcli.choices import TASKS
from factcli.errors import FactError

from .generated import BUILTIN_DATASETS, load_builtin  # scikit-learn's and generated tables
from .records import TabularData, resolve_data_root
from .table_file import load_table_file
from .uci import list_uci, load_uci

log = logging.getLogger("fact")

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
UCI_PREFIX = "uci:"
BUILTIN_PREFIX = "builtin:"
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


def _same_name(name: str) -> str:
    return name.lower().replace("-", "_")


def _clashes(uci_name: str) -> str | None:
    """The built-in dataset a UCI name could be taken for (same name up to case and -/_), or None."""
    return next((b for b in BUILTIN_DATASETS if _same_name(b) == _same_name(uci_name)), None)


def known_datasets(data_root: str | os.PathLike | None = None) -> list[str]:
    """Built-in names, then the UCI collection's, each dataset once under a name that means it alone:
    a UCI name that a built-in one shadows or resembles is listed as ``uci:<name>`` (files are not
    listed: any path works)."""
    uci = uci_dir(data_root)
    names = list_uci(uci) if uci is not None else []
    return sorted(BUILTIN_DATASETS) + [UCI_PREFIX + n if _clashes(n) else n for n in names]


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
    uci = uci_dir(data_root) if not name.startswith(BUILTIN_PREFIX) else None
    if name.startswith(BUILTIN_PREFIX):
        bare = name.removeprefix(BUILTIN_PREFIX)
        if bare not in BUILTIN_DATASETS:
            raise FactError(
                f"unknown built-in dataset '{bare}' in dataset={name}; "
                f"built-in: {', '.join(sorted(BUILTIN_DATASETS))}"
            )
        return _builtin(bare, target, task, uci)
    if not name.startswith(UCI_PREFIX):
        if name in BUILTIN_DATASETS:
            return _builtin(name, target, task, uci)
        table = _as_table_path(name)
        if table is not None:
            return load_table_file(table, target=target, task=task, missing=missing)
    uci_name = name.removeprefix(UCI_PREFIX)
    if uci is not None and (uci / uci_name).is_dir():
        _refuse_target(uci_name, target, "a UCI dataset")
        data = _check_fixed_task(load_uci(uci, uci_name), task)
        twin = _clashes(uci_name)
        if twin is not None:
            data.name = UCI_PREFIX + uci_name
            if not name.startswith(UCI_PREFIX):
                log.info(
                    "dataset=%s: the UCI collection's %s (scikit-learn's is builtin:%s)", name, name, twin
                )
        return data
    raise FactError(_unknown_dataset_message(name, data_root, uci))


def _builtin(name: str, target: str | None, task: str, uci: Path | None) -> TabularData:
    _refuse_target(name, target, "a built-in dataset")
    twins = [n for n in (list_uci(uci) if uci is not None else []) if _clashes(n) == name]
    if twins:
        log.info(
            "dataset=%s: scikit-learn's built-in %s (the UCI collection's is uci:%s)", name, name, twins[0]
        )
    return _check_fixed_task(load_builtin(name), task)


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
    bare = name.removeprefix(UCI_PREFIX).removeprefix(BUILTIN_PREFIX)
    close = difflib.get_close_matches(bare, builtin + uci_names, n=1)
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
