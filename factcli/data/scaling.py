"""z-scoring that survives any finite value, and the checks that make unscaled data safe for a kernel.

The textbook ``(x − mean) / std`` overflows for a column of 1e300 (the variance squares it to inf, and
the column silently becomes zeros). Dividing each column by its largest training magnitude first makes
every step finite, and the result is the same z-score.
"""

from __future__ import annotations

import numpy as np

from factcli.errors import FactError

# Squared distances sum d squares: a feature above this overflows them in float64.
FEATURE_LIMIT = 1e150


def standardize(X: np.ndarray, rows: np.ndarray, names: list[str]) -> np.ndarray:
    """z-score every column with the mean and standard deviation of ``rows`` (constant columns: centred)."""
    magnitude = np.abs(X[rows]).max(0) if len(rows) else np.ones(X.shape[1])
    magnitude = np.where(magnitude > 0, magnitude, 1.0)
    scaled = X / magnitude
    mean = scaled[rows].mean(0)
    std = scaled[rows].std(0)
    Z = (scaled - mean) / np.where(std > 0, std, 1.0)
    bad = ~np.isfinite(Z).all(0)
    if bad.any():
        column = names[int(np.flatnonzero(bad)[0])]
        raise FactError(
            f"feature '{column}' has held-out values far outside its training range (up to "
            f"{np.abs(X[:, bad]).max():.3g}): standardized they overflow; rescale or clip that column"
        )
    return Z


def check_kernel_scale(X: np.ndarray, names: list[str], setting: str) -> None:
    """Unstandardized features must keep squared distances finite in float64."""
    too_large = np.abs(X).max(0) > FEATURE_LIMIT
    if too_large.any():
        column = names[int(np.flatnonzero(too_large)[0])]
        raise FactError(
            f"feature '{column}' has values up to {np.abs(X).max():.3g}: squared distances overflow float64; "
            f"standardize it ({setting}) or rescale it"
        )
