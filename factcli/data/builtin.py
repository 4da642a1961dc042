"""scikit-learn's bundled datasets (no download), as raw float64 features.

Features are not standardized here: the experiment standardizes on its own training split, so that
no statistic of the test rows leaks into training.
"""

from __future__ import annotations

import numpy as np

from .records import TabularData

# name -> (sklearn loader function name, task)
BUILTIN_DATASETS = {
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
}


def load_builtin(name: str) -> TabularData:
    """One of BUILTIN_DATASETS; class labels are sklearn's 0..C-1, class_names in that order."""
    from sklearn import datasets

    loader_name, task = BUILTIN_DATASETS[name]
    loader = getattr(datasets, loader_name)
    # diabetes is mean-centred and scaled by default; ask for the raw measurements like the others.
    bunch = loader(scaled=False) if name == "diabetes" else loader()
    X = np.asarray(bunch.data, dtype=np.float64)
    feature_names = [str(f) for f in bunch.feature_names]
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        class_names = [str(c) for c in bunch.target_names]
    else:
        y = np.asarray(bunch.target, dtype=np.float64)
        class_names = None
    return TabularData(
        name=name,
        X=X,
        y=y,
        task=task,
        feature_names=feature_names,
        class_names=class_names,
        source="builtin",
        task_reason=f"'{name}' is a built-in {task} dataset",
    )
