"""Generated tables whose labels depend on a few of many features: data on which a learned feature
matrix M should beat M = I, and where it is known which features it should find.

``signal_in_noise`` (the default demo, `make run`): 800 rows of 16 independent standard normal features;
the class is 1 where signal_1 · signal_2 + ½ signal_3 > 0. The 13 ``noise_*`` columns are independent of
the label. A kernel with M = I weighs all 16 alike; FACT-RFM should put M's mass on signal_1 and
signal_2 (the interaction) and some on signal_3. The table is fixed (its own seed): ``seed=`` changes
the split, not the data.

Registered with the scikit-learn built-ins: ``BUILTIN_DATASETS`` and ``load_builtin`` here are those of
builtin.py with these tables added, so every place that knows the built-ins knows them.
"""

from __future__ import annotations

import numpy as np

from . import builtin
from .records import TabularData


def signal_in_noise(n: int = 800, signals: int = 3, noise: int = 13, seed: int = 0) -> TabularData:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, signals + noise))
    y = (X[:, 0] * X[:, 1] + 0.5 * X[:, 2] > 0).astype(np.int64)
    return TabularData(
        name="signal_in_noise",
        X=X,
        y=y,
        task="classification",
        feature_names=[f"signal_{j + 1}" for j in range(signals)] + [f"noise_{j + 1}" for j in range(noise)],
        class_names=["0", "1"],
        source="builtin",
        task_reason="'signal_in_noise' is a generated classification dataset",
    )


GENERATED = {"signal_in_noise": signal_in_noise}

BUILTIN_DATASETS = {
    **builtin.BUILTIN_DATASETS,
    **{name: ("generated", "classification") for name in GENERATED},
}


def load_builtin(name: str) -> TabularData:
    """A generated table by name, else one of scikit-learn's (builtin.load_builtin)."""
    if name in GENERATED:
        return GENERATED[name]()
    return builtin.load_builtin(name)
