"""Euclidean projection of score vectors onto the probability simplex.

A kernel machine fitted to one-hot targets outputs scores that estimate class probabilities but need
not be non-negative or sum to one. The closest probability vector in Euclidean distance,
p = max(s − θ, 0) with θ chosen so that Σ p = 1, is found by sorting (Duchi et al., 2008, "Efficient
projections onto the l1-ball"): O(c log c) per row, all rows at once. For two classes it is
p₁ = clip((1 + s₁ − s₀) / 2, 0, 1), increasing in the margin s₁ − s₀.
"""

from __future__ import annotations

import numpy as np


def project_to_simplex(scores: np.ndarray) -> np.ndarray:
    """Row-wise argmin_p ‖p − s‖ over p ≥ 0, Σ p = 1, for an (n, c) array of finite scores."""
    scores = np.asarray(scores, dtype=np.float64)
    n, c = scores.shape
    ordered = -np.sort(-scores, axis=1)  # descending
    excess = np.cumsum(ordered, axis=1) - 1.0
    counts = np.arange(1, c + 1)
    # ρ: the largest k with ordered_k − excess_k / k > 0 (the k = 1 condition always holds).
    support = ordered - excess / counts > 0
    rho = c - 1 - np.argmax(support[:, ::-1], axis=1)
    theta = excess[np.arange(n), rho] / (rho + 1)
    return np.maximum(scores - theta[:, None], 0.0)
