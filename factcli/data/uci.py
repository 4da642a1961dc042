"""The UCI collection as preprocessed by Fernandez-Delgado et al. (2014): one folder per dataset.

``<root>/<name>/`` holds ``<name>.txt`` (key= value descriptor), the data file it names in
``fich1=`` (tab-separated; header; row number, standardized features, 0-based label),
``conxuntos.dat`` (train and validation indices) and ``conxuntos_kfold.dat`` (4 train/test
pairs). Everything is checked against the descriptor, so a damaged download fails here, naming the
file, and not as a strange accuracy later. ``fich2=`` (a separate test file) is not shipped and is
ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factcli.errors import FactError

from .records import TabularData, UciSplits

REQUIRED_KEYS = (
    "n_entradas",
    "n_clases",
    "fich1",
    "n_patrons1",
    "n_patrons_entrena",
    "n_patrons_valida",
)
N_FOLDS = 4


def list_uci(root: str | Path) -> list[str]:
    """Sorted names of the folders under ``root`` that hold a ``<name>.txt`` descriptor."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / f"{p.name}.txt").is_file())


def uci_rows(root: str | Path, name: str) -> int:
    """Rows of ``<root>/<name>`` as its descriptor declares them (without reading the data)."""
    return read_descriptor(Path(root) / name / f"{name}.txt", name)["n_patrons1"]


def load_uci(root: str | Path, name: str) -> TabularData:
    """Load ``<root>/<name>`` with its splits; every malformed piece raises FactError."""
    folder = Path(root) / name
    info = read_descriptor(folder / f"{name}.txt", name)
    n_rows, n_features, n_declared = info["n_patrons1"], info["n_entradas"], info["n_clases"]

    X, y, feature_names = _read_data_file(folder, name, info["fich1"], n_rows, n_features)
    data_label = f"{name}/{info['fich1']}"
    if y.size and (y.min() < 0 or y.max() >= n_declared):
        bad = y.min() if y.min() < 0 else y.max()
        raise FactError(
            f"{data_label}: label {bad} outside 0..{n_declared - 1} (n_clases= {n_declared} in {name}.txt)"
        )
    # Labels lie in 0..n_clases-1, so max(declared, present) is the declared count. A declared
    # class with no rows is kept, so one-hot targets keep the collection's width.
    n_classes = n_declared

    train, val = _read_index_lines(folder / "conxuntos.dat", name, 2, n_rows)
    _check_split(f"{name}/conxuntos.dat", "training and validation", train, val)
    for what, got, key in (
        ("training", train, "n_patrons_entrena"),
        ("validation", val, "n_patrons_valida"),
    ):
        if len(got) != info[key]:
            raise FactError(
                f"{name}/conxuntos.dat: {len(got)} {what} indices but {name}.txt declares {key}= {info[key]}"
            )
    kfold = _read_index_lines(folder / "conxuntos_kfold.dat", name, 2 * N_FOLDS, n_rows)
    folds = [(kfold[2 * k], kfold[2 * k + 1]) for k in range(N_FOLDS)]
    for k, (fold_train, fold_test) in enumerate(folds):
        _check_split(f"{name}/conxuntos_kfold.dat", f"fold {k + 1} train and test", fold_train, fold_test)

    return TabularData(
        name=name,
        X=X,
        y=y,
        task="classification",
        feature_names=feature_names,
        class_names=[str(k) for k in range(n_classes)],
        splits=UciSplits(train=train, val=val, folds=folds),
        source="uci",
        task_reason="the UCI collection is classification",
    )


def read_descriptor(path: Path, name: str) -> dict:
    """``key= value`` lines -> dict; the required counts as ints, fich1 as a file name."""
    label = f"{name}/{path.name}"
    if not path.is_file():
        raise FactError(f"{label} not found; every UCI dataset folder needs its descriptor")
    info: dict = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise FactError(f"{label} line {number}: expected key= value, found '{line.strip()}'")
        info[key.strip()] = value.strip()
    for key in REQUIRED_KEYS:
        if not info.get(key):
            raise FactError(f"{label}: missing '{key}=' (needs {', '.join(REQUIRED_KEYS)})")
        if key != "fich1":
            try:
                info[key] = int(info[key])
            except ValueError:
                message = f"{label}: {key}= must be an integer, found '{info[key]}'"
                raise FactError(message) from None
    if Path(info["fich1"]).name != info["fich1"]:
        raise FactError(f"{label}: fich1= must name a file in the dataset folder, found '{info['fich1']}'")
    return info


def _read_data_file(folder: Path, name: str, file_name: str, n_rows: int, n_features: int):
    import pandas as pd

    label = f"{name}/{file_name}"
    path = folder / file_name
    if not path.is_file():
        raise FactError(f"{label} not found (named by fich1= in {name}.txt)")
    try:
        frame = pd.read_csv(path, sep="\t", header=0, dtype=np.float64)
    except pd.errors.EmptyDataError:
        raise FactError(f"{label}: file is empty") from None
    except ValueError as err:  # ragged rows, text where numbers belong
        raise FactError(f"{label}: cannot parse ({' '.join(str(err).split())})") from None
    if len(frame) != n_rows:
        raise FactError(f"{label}: {len(frame)} rows but {name}.txt declares n_patrons1= {n_rows}")
    # Columns: row number, the features, the label.
    if frame.shape[1] - 2 != n_features:
        raise FactError(
            f"{label}: {frame.shape[1] - 2} feature columns but {name}.txt declares n_entradas= {n_features}"
        )
    values = frame.to_numpy()
    n_missing = int(np.isnan(values).sum())
    if n_missing:
        first_row = int(np.argwhere(np.isnan(values))[0, 0]) + 1
        plural = "s" * (n_missing > 1)
        raise FactError(
            f"{label}: {n_missing} missing or empty value{plural} (first in data row {first_row})"
        )
    if not np.isfinite(values).all():
        raise FactError(f"{label}: infinite values in the data")
    X = np.ascontiguousarray(values[:, 1:-1])
    labels = values[:, -1]
    if not np.all(labels == np.round(labels)):
        raise FactError(f"{label}: the last column (class label) has non-integer values")
    feature_names = [str(c) for c in frame.columns[1:-1]]
    return X, labels.astype(np.int64), feature_names


def _read_index_lines(path: Path, name: str, n_lines: int, n_rows: int) -> list[np.ndarray]:
    """``n_lines`` lines of whitespace-separated 0-based row indices, each checked in range."""
    label = f"{name}/{path.name}"
    if not path.is_file():
        raise FactError(f"{label} not found; the UCI protocol needs its fixed splits")
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if len(lines) != n_lines:
        raise FactError(f"{label}: expected {n_lines} lines of indices, found {len(lines)}")
    parsed = []
    for number, line in enumerate(lines, start=1):
        try:
            indices = np.array(line.split(), dtype=np.int64)
        except ValueError:
            bad = next(t for t in line.split() if not t.lstrip("-").isdigit())
            raise FactError(f"{label} line {number}: '{bad}' is not an integer index") from None
        out = indices[(indices < 0) | (indices >= n_rows)]
        if out.size:
            raise FactError(f"{label} line {number}: index {out[0]} outside 0..{n_rows - 1}")
        parsed.append(indices)
    return parsed


def _check_split(label: str, what: str, first: np.ndarray, second: np.ndarray) -> None:
    # An index on both sides of a split would leak training rows into the score.
    shared = np.intersect1d(first, second)
    if shared.size:
        raise FactError(
            f"{label}: {what} share {shared.size} index(es) (e.g. {shared[0]}); a split must be disjoint"
        )
