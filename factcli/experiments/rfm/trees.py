"""Tuned tree ensembles as benchmark rows: scikit-learn's random forest and LightGBM.

The same selection protocol as every other row: each grid point is fit on the tuning split's training
part and scored on its validation part; the best validation accuracy wins, ties going to the simpler
model; the chosen setting is then refit on each fold's training part and scored on its test part. The
grids were fixed (benchmarks/README.md) before any benchmark ran:

- random forest: ``FOREST_TREES`` trees, max_features ∈ {√d, d/2, d} (as fractions: sqrt, 0.5, 1.0),
  min_samples_leaf ∈ {1, 5}; ties to the larger leaf, then the fewer features per split.
- LightGBM: num_leaves ∈ {15, 63}, learning rate ∈ {0.05, 0.2}, min_child_samples ∈ {3, 20}; the
  number of trees by early stopping on the validation part's log-loss (at most ``LIGHTGBM_MAX_TREES``,
  stopping after ``LIGHTGBM_PATIENCE`` rounds without improvement), and the refits on the folds grow
  exactly that many trees; ties to fewer leaves, then larger children, then fewer trees.

Trees need no scaling and no row normalization: they see the features as the other rows do.
LightGBM is the optional ``bench`` extra (``pip install -e .[bench]``); the CLI runs without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from factcli.errors import FactError

TREE_KINDS = ("forest", "lightgbm")
FOREST_TREES = 200
FOREST_GRID = {"max_features": ("sqrt", 0.5, 1.0), "min_samples_leaf": (1, 5)}
LIGHTGBM_GRID = {"num_leaves": (15, 63), "learning_rate": (0.05, 0.2), "min_child_samples": (3, 20)}
LIGHTGBM_MAX_TREES = 1000
LIGHTGBM_PATIENCE = 50
SEED = 0


@dataclass(frozen=True)
class TreeChoice:
    params: dict = field(hash=False)
    val_accuracy: float

    def text(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.params.items())


@dataclass
class TreeSelection:
    kind: str
    chosen: TreeChoice
    candidates: list[TreeChoice]
    classes: int
    seconds: float


def _numpy(X: torch.Tensor, y: torch.Tensor):
    return X.double().cpu().numpy(), y.cpu().numpy().astype(np.int64)


def _threads() -> int:
    return torch.get_num_threads()  # the run's `threads=`


def _forest(params: dict):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=FOREST_TREES, n_jobs=_threads(), random_state=SEED, **params)


# Below this many training rows a thread, LightGBM runs on fewer: its OpenMP threads wait for each
# other by spinning, which on a busy machine dominated (iris' selection: 109 s on 2 threads, 1.5 s on 1).
LIGHTGBM_ROWS_PER_THREAD = 10_000


def _lightgbm_params(params: dict, classes: int, rows: int) -> dict:
    objective = {"objective": "binary"} if classes == 2 else {"objective": "multiclass", "num_class": classes}
    return {
        **objective,
        **params,
        "verbosity": -1,
        "num_threads": max(1, min(_threads(), rows // LIGHTGBM_ROWS_PER_THREAD)),
        "seed": SEED,
        "deterministic": True,
    }


def require_lightgbm():
    try:
        import lightgbm
    except ImportError:
        raise FactError(
            "the lightgbm row needs the lightgbm package: pip install -e '.[bench]' "
            "(or drop lightgbm from benchmark.baselines)"
        ) from None
    return lightgbm


def _predict_lightgbm(booster, X, classes: int, trees: int) -> np.ndarray:
    scores = booster.predict(X, num_iteration=trees)
    return (scores > 0.5).astype(np.int64) if classes == 2 else scores.argmax(axis=1)


def _fit_lightgbm(params: dict, classes: int, A, ya, B=None, yb=None):
    """The booster, and its number of trees: early-stopped on (B, yb) when given, else params' own."""
    lgb = require_lightgbm()
    params = dict(params)
    rounds = params.pop("trees", LIGHTGBM_MAX_TREES)
    train = lgb.Dataset(A, label=ya, free_raw_data=False)
    settings = _lightgbm_params(params, classes, len(A))
    if B is None:
        return lgb.train(settings, train, num_boost_round=rounds), rounds
    valid = lgb.Dataset(B, label=yb, reference=train)
    stop = lgb.early_stopping(LIGHTGBM_PATIENCE, verbose=False)
    booster = lgb.train(settings, train, num_boost_round=rounds, valid_sets=[valid], callbacks=[stop])
    return booster, max(1, booster.best_iteration)


def _one_class(ya, yb) -> float | None:
    """A training part with a single class: every model predicts it (LightGBM refuses to fit)."""
    return float(np.mean(yb == ya[0])) if len(np.unique(ya)) < 2 else None


def grid_points(kind: str) -> list[dict]:
    grid = FOREST_GRID if kind == "forest" else LIGHTGBM_GRID
    keys = list(grid)
    points = [{}]
    for key in keys:
        points = [{**point, key: value} for point in points for value in grid[key]]
    return points


def _simplicity(kind: str, params: dict, d: int) -> tuple:
    if kind == "forest":
        share = params["max_features"]
        features = math.sqrt(d) / d if share == "sqrt" else float(share)
        return (-params["min_samples_leaf"], features)
    return (params["num_leaves"], -params["min_child_samples"], params["trees"])


def select_tree(kind: str, classes: int, X_train, y_train, X_val, y_val) -> TreeSelection:
    """Every grid point fit on the training part, scored on the validation part; the best wins."""
    started = time.perf_counter()
    A, ya = _numpy(X_train, y_train)
    B, yb = _numpy(X_val, y_val)
    candidates = []
    for params in grid_points(kind):
        single = _one_class(ya, yb)
        if kind == "forest":
            accuracy = (
                single if single is not None else float(np.mean(_forest(params).fit(A, ya).predict(B) == yb))
            )
        elif single is not None:
            params, accuracy = {**params, "trees": 1}, single
        else:
            booster, trees = _fit_lightgbm(params, classes, A, ya, B, yb)
            params = {**params, "trees": trees}
            accuracy = float(np.mean(_predict_lightgbm(booster, B, classes, trees) == yb))
        candidates.append(TreeChoice(params, accuracy))
    d = A.shape[1]
    order = {id(c): i for i, c in enumerate(candidates)}
    chosen = min(candidates, key=lambda c: (-c.val_accuracy, _simplicity(kind, c.params, d), order[id(c)]))
    return TreeSelection(kind, chosen, candidates, classes, time.perf_counter() - started)


def evaluate_tree(selection: TreeSelection, X_train, y_train, X_test, y_test) -> float:
    """The chosen setting refit on (X_train, y_train), its accuracy on (X_test, y_test)."""
    A, ya = _numpy(X_train, y_train)
    B, yb = _numpy(X_test, y_test)
    single = _one_class(ya, yb)
    if single is not None:
        return single
    params = selection.chosen.params
    if selection.kind == "forest":
        return float(np.mean(_forest(params).fit(A, ya).predict(B) == yb))
    booster, trees = _fit_lightgbm(params, selection.classes, A, ya)
    return float(np.mean(_predict_lightgbm(booster, B, selection.classes, trees) == yb))
