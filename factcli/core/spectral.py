"""Every ridge of one kernel matrix from one symmetric eigendecomposition, with leave-one-out scores.

With K = QΛQᵀ, (K + λI)⁻¹ = Q (Λ + λ)⁻¹ Qᵀ for every λ at once: after the O(n³) factorization each
ridge costs O(n²c) for α = Q (Λ + λ)⁻¹ QᵀY and O(n²) more for the diagonal of (K + λI)⁻¹, which gives
the exact leave-one-out residuals of kernel ridge regression (no intercept):

    y_i − f₋ᵢ(x_i) = α_i / [(K + λI)⁻¹]_ii.

An eigendecomposition costs several Cholesky factorizations (measured in benchmarks/bench_grid.py), so
it pays when many ridges share one matrix or when the leave-one-out scores are wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .linalg import SolveReport


@dataclass
class Spectrum:
    """K = Q diag(eigenvalues) Qᵀ with QᵀY kept for the solves, and K itself for the residuals."""

    eigenvalues: torch.Tensor
    Q: torch.Tensor
    QtY: torch.Tensor
    K: torch.Tensor
    Y: torch.Tensor


def decompose(K: torch.Tensor, Y: torch.Tensor) -> Spectrum:
    """Eigendecompose the symmetric K (not modified) once; Y (n×c) is projected once."""
    eigenvalues, Q = torch.linalg.eigh(K)
    return Spectrum(eigenvalues, Q, Q.T @ Y.to(K), K, Y.to(K))


def solve(spectrum: Spectrum, ridge: float) -> tuple[torch.Tensor, SolveReport]:
    """α = (K + λI)⁻¹ Y and its relative residual ‖Y − (K + λI)α‖ / ‖Y‖ measured against K itself.

    Eigenvalues of a PSD K that rounding pushed below 0 are kept as they are: clipping them would
    solve a different system, and the residual reports the damage when λ is too small to absorb them.
    """
    alpha = spectrum.Q @ (spectrum.QtY / (spectrum.eigenvalues + ridge).unsqueeze(1))
    residual = spectrum.Y - spectrum.K @ alpha - ridge * alpha
    relative = torch.linalg.norm(residual) / torch.linalg.norm(spectrum.Y).clamp_min(1e-300)
    return alpha, SolveReport(float(relative), spectrum.K.dtype)


def leave_one_out_predictions(spectrum: Spectrum, ridge: float, alpha: torch.Tensor) -> torch.Tensor:
    """f₋ᵢ(x_i) for every training point: y_i − α_i / [(K + λI)⁻¹]_ii, O(n²) given α."""
    inverse_diagonal = spectrum.Q.square() @ (1.0 / (spectrum.eigenvalues + ridge))
    return spectrum.Y - alpha / inverse_diagonal.unsqueeze(1)
