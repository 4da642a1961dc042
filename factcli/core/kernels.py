"""Kernels with a feature matrix M: k_M(x, z) for Laplace, Gaussian and inner-product kernels.

Two families (SPEC §4):
- translation-invariant, k = κ(D²) with D² = ‖x − z‖²_M = (x − z)ᵀ M (x − z);
- inner-product, k = κ(u) with u = xᵀ M z.

Every kernel gives its Gram matrix and its *derivative weights* W, the matrix the feature statistics
are built from: W_ij = 2κ'(D²_ij) (translation-invariant) or κ'(u_ij) (inner-product). Both are
written into a caller-supplied buffer with in-place element-wise passes, so an n×n matrix is
allocated once per RFM iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Element-wise passes over n×n matrices go in row blocks of about this many entries: their temporaries
# stay a few MB (a few percent of the matrix at n = 10,000) while each block is still large enough
# for torch's threads to share.
BLOCK_ELEMENTS = 1 << 20

# Laplace's κ'(D²) ∝ 1/D is singular where points coincide; like RFM's AGOP we drop those pairs.
LAPLACE_MIN_DISTANCE = 1e-10

KERNELS = ("laplace", "gaussian", "quadratic")


@dataclass(frozen=True)
class Kernel:
    """``name`` in KERNELS; ``bandwidth`` L (Laplace exp(−‖x−z‖_M / L), Gaussian exp(−‖x−z‖²_M / 2L²))."""

    name: str = "laplace"
    bandwidth: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in KERNELS:
            raise ValueError(f"unknown kernel {self.name!r}; choose one of {', '.join(KERNELS)}")
        if not self.bandwidth > 0:
            raise ValueError(f"kernel bandwidth must be positive, got {self.bandwidth}")

    @property
    def translation_invariant(self) -> bool:
        return self.name in ("laplace", "gaussian")

    # -- Gram matrix -------------------------------------------------------------------------
    def gram(
        self,
        X: torch.Tensor,
        Z: torch.Tensor,
        M: torch.Tensor | None,
        out: torch.Tensor | None = None,
    ):
        """K_ij = k_M(x_i, z_j), written into ``out`` (allocated if None)."""
        out = self._inner_or_squared_distance(X, Z, M, out)
        if self.name == "laplace":
            out.sqrt_().mul_(-1.0 / self.bandwidth).exp_()
        elif self.name == "gaussian":
            out.mul_(-0.5 / self.bandwidth**2).exp_()
        elif self.name == "quadratic":
            out.square_()
        return out

    # -- derivative weights ------------------------------------------------------------------
    def derivative_weights(self, X: torch.Tensor, M: torch.Tensor | None, out: torch.Tensor | None = None):
        """W over the training points: 2κ'(D²_ij) (translation-invariant) or κ'(x_iᵀMx_j), in ``out``."""
        out = self._inner_or_squared_distance(X, X, M, out)
        if self.name == "laplace":
            # 2κ'(D²) = −K/(L·D); zero where D < 1e-10 (the diagonal and duplicate points).
            for _, block in row_blocks(out):
                distance = block.sqrt_()
                coincident = distance < LAPLACE_MIN_DISTANCE
                kernel = torch.exp(distance * (-1.0 / self.bandwidth))
                torch.div(kernel, distance, out=distance)
                distance.masked_fill_(coincident, 0.0).mul_(-1.0 / self.bandwidth)
        elif self.name == "gaussian":
            # 2κ'(D²) = −K / L².
            out.mul_(-0.5 / self.bandwidth**2).exp_().mul_(-1.0 / self.bandwidth**2)
        else:  # quadratic: κ(u) = u², κ'(u) = 2u
            out.mul_(2.0)
        return out

    def _inner_or_squared_distance(self, X, Z, M, out):
        """xᵀMz for inner-product kernels, ‖x − z‖²_M (clamped at 0) for translation-invariant ones."""
        XM = X if M is None else X @ M
        if out is None:
            out = torch.empty(X.shape[0], Z.shape[0], dtype=X.dtype, device=X.device)
        if not self.translation_invariant:
            return torch.matmul(XM, Z.T, out=out)
        # One GEMM gives D² directly: [XM, ‖x‖²_M, 1] · [−2Z, 1, ‖z‖²_M]ᵀ.
        ZM = Z if M is None else Z @ M
        x_norms = (XM * X).sum(1, keepdim=True)
        z_norms = (ZM * Z).sum(1, keepdim=True)
        ones_x = torch.ones_like(x_norms)
        ones_z = torch.ones_like(z_norms)
        left = torch.cat([XM, x_norms, ones_x], dim=1)
        right = torch.cat([-2.0 * Z, ones_z, z_norms], dim=1)
        torch.matmul(left, right.T, out=out)
        _zero_below_rounding_noise(out, x_norms, z_norms, X.shape[1])
        if X is Z:
            out.diagonal().zero_()
        return out


def _zero_below_rounding_noise(squared_distances, x_norms, z_norms, d):
    """Set D² to exactly 0 where it is below the rounding error of its own computation.

    D² = ‖x‖² + ‖z‖² − 2xᵀz cancels for (near-)duplicate points and leaves noise of order
    (d+2)·eps·(‖x‖² + ‖z‖²) instead of 0; its square root (~1e-3 in float32) would make duplicates
    look distinct and, through Laplace's 1/D, give them huge derivative weights. Also clamps at 0.
    """
    noise_scale = 2.0 * (d + 2) * torch.finfo(squared_distances.dtype).eps
    for start, block in row_blocks(squared_distances):
        noise = (x_norms[start : start + block.shape[0]] + z_norms.T).mul_(noise_scale)
        block.masked_fill_(block <= noise, 0.0)


def row_blocks(matrix: torch.Tensor, max_elements: int = BLOCK_ELEMENTS):
    """(first row, view) of consecutive row blocks holding about ``max_elements`` entries each."""
    rows_per_block = max(1, max_elements // max(1, matrix.shape[1]))
    for start in range(0, matrix.shape[0], rows_per_block):
        yield start, matrix[start : start + rows_per_block]


def predict(
    kernel: Kernel, X_query, X_train, M, alpha, block_elements: int = 4 * BLOCK_ELEMENTS
) -> torch.Tensor:
    """f(x) = Σ_j α_j k_M(x, x_j) for every query row, in blocks so memory stays O(block·n)."""
    rows_per_block = max(1, block_elements // max(1, X_train.shape[0]))
    outputs = [kernel.gram(block, X_train, M) @ alpha for block in X_query.split(rows_per_block)]
    if not outputs:
        return alpha.new_zeros(0, alpha.shape[1])
    return torch.cat(outputs)
