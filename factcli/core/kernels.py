"""Kernels with a feature matrix M: k_M(x, z) for Laplace, Gaussian and inner-product kernels.

Two families (docs/SPEC.md §4):
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

from factcli.choices import KERNELS, TRANSLATION_INVARIANT_KERNELS
from factcli.core import InvalidInput

from . import l1kernel

# Element-wise passes over n×n matrices go in row blocks of about this many entries: their temporaries
# stay a few MB (a few percent of the matrix at n = 10,000) while each block is still large enough
# for torch's threads to share.
BLOCK_ELEMENTS = 1 << 20

# Predictions go in blocks of this many kernel entries (query rows × training points).
PREDICT_BLOCK_ELEMENTS = 4 * BLOCK_ELEMENTS

# Laplace's κ'(D²) ∝ 1/D is singular where points coincide; like RFM's AGOP we drop those pairs.
LAPLACE_MIN_DISTANCE = 1e-10


@dataclass(frozen=True)
class Kernel:
    """``name`` in KERNELS; ``bandwidth`` L (Laplace exp(−‖x−z‖_M / L), Gaussian exp(−‖x−z‖²_M / 2L²),
    l1 exp(−‖M^½(x−z)‖₁ / L), see l1kernel.py)."""

    name: str = "laplace"
    bandwidth: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in KERNELS:
            raise InvalidInput(f"unknown kernel {self.name!r}; choose one of {', '.join(KERNELS)}")
        if not self.bandwidth > 0:
            raise InvalidInput(f"kernel bandwidth must be positive, got {self.bandwidth}")

    @property
    def translation_invariant(self) -> bool:
        return self.name in TRANSLATION_INVARIANT_KERNELS

    # -- Gram matrix -------------------------------------------------------------------------
    def gram(
        self,
        X: torch.Tensor,
        Z: torch.Tensor,
        M: torch.Tensor | None,
        out: torch.Tensor | None = None,
    ):
        """K_ij = k_M(x_i, z_j), written into ``out`` (allocated if None)."""
        if self.name == "l1":
            return l1kernel.gram(X, Z, M, self.bandwidth, out)
        return self._fill(X, Z, M, out, self._kernel_of)

    def gram_by_differences(self, X: torch.Tensor, Z: torch.Tensor, M: torch.Tensor | None) -> torch.Tensor:
        """K_ij = k_M(x_i, z_j) with D²_ij = ‖(x_i − z_j)R‖², M = RRᵀ, from the differences themselves.

        ``gram``'s one-GEMM D² cancels and is shifted down by its rounding bound (see _gemm_factors),
        which perturbs entries of near points by up to √(noise)/L: harmless in a solve with a ridge,
        but enough to make a matrix that is factored without one (Nyström's K_mm) indefinite. Here a
        positive definite kernel stays so to rounding. O(|X|·|Z|·d) work: for small matrices only.
        """
        if not self.translation_invariant or self.name == "l1":  # no cancellation in these
            return self.gram(X, Z, M)
        if M is not None:
            values, vectors = torch.linalg.eigh(M)
            R = vectors * values.clamp_min(0.0).sqrt()
            X, Z = X @ R, Z @ R
        squared = torch.cdist(X, Z, compute_mode="donot_use_mm_for_euclid_dist").square_()
        self._kernel_of(squared)
        return squared

    def _kernel_of(self, block: torch.Tensor) -> None:
        """κ applied in place to a block of D² (or xᵀMz)."""
        if self.name == "laplace":
            block.sqrt_().mul_(-1.0 / self.bandwidth).exp_()
        elif self.name == "gaussian":
            block.mul_(-0.5 / self.bandwidth**2).exp_()
        elif self.name == "quadratic":
            block.square_()

    # -- derivative weights ------------------------------------------------------------------
    def derivative_weights(self, X: torch.Tensor, M: torch.Tensor | None, out: torch.Tensor | None = None):
        """W over the training points: 2κ'(D²_ij) (translation-invariant) or κ'(x_iᵀMx_j), in ``out``.

        The L1 kernel's derivative is K times a per-coordinate sign: its W is K (l1kernel.py).
        """
        if self.name == "l1":
            return l1kernel.gram(X, X, M, self.bandwidth, out)
        return self._fill(X, X, M, out, self._derivative_of)

    def _derivative_of(self, block: torch.Tensor) -> None:
        """2κ'(D²) (or κ'(xᵀMz)) applied in place to a block of D² (or xᵀMz)."""
        if self.name == "laplace":
            # 2κ'(D²) = −K/(L·D); zero where D < 1e-10 (the diagonal and duplicate points).
            distance = block.sqrt_()
            coincident = distance < LAPLACE_MIN_DISTANCE
            kernel = torch.mul(distance, -1.0 / self.bandwidth).exp_()
            torch.div(kernel, distance.mul_(-self.bandwidth), out=distance)
            distance.masked_fill_(coincident, 0.0)
        elif self.name == "gaussian":
            # 2κ'(D²) = −K / L².
            block.mul_(-0.5 / self.bandwidth**2).exp_().mul_(-1.0 / self.bandwidth**2)
        else:  # quadratic: κ(u) = u², κ'(u) = 2u
            block.mul_(2.0)

    def values_and_weights(self, X: torch.Tensor, Z: torch.Tensor, M: torch.Tensor | None):
        """(K, W) between the rows of X and of Z from one GEMM: K_ij = k_M(x_i, z_j) and the
        derivative weights W_ij = 2κ'(D²_ij) (or κ'(x_iᵀMz_j)), as in gram / derivative_weights.

        For a row block against a few thousand centres (the Nyström path), where both are needed.
        """
        left, right = self._gemm_factors(X, Z, M)
        block = left @ right.T
        if self.name == "quadratic":
            return block.square(), block.mul_(2.0)
        block.clamp_min_(0.0)
        if self.name == "gaussian":
            values = block.mul_(-0.5 / self.bandwidth**2).exp_()
            return values, values * (-1.0 / self.bandwidth**2)
        distance = block.sqrt_()
        values = torch.mul(distance, -1.0 / self.bandwidth).exp_()
        coincident = distance < LAPLACE_MIN_DISTANCE
        weights = torch.div(values, distance.mul_(-self.bandwidth), out=distance)
        return values, weights.masked_fill_(coincident, 0.0)

    def _fill(self, X, Z, M, out, transform):
        """``out`` ← transform(D² or xᵀMz), one row block at a time.

        Each block is produced by its own GEMM and transformed while it is still in cache, so the n×n
        matrix crosses main memory once instead of once per element-wise pass.
        """
        left, right = self._gemm_factors(X, Z, M)
        if out is None:
            out = torch.empty(X.shape[0], Z.shape[0], dtype=X.dtype, device=X.device)
        for start, block in row_blocks(out):
            rows = slice(start, start + block.shape[0])
            torch.matmul(left[rows], right.T, out=block)
            if self.translation_invariant:
                block.clamp_min_(0.0)  # D² below its rounding noise → exactly 0 (see _gemm_factors)
                if X is Z:
                    block[:, rows].diagonal().zero_()
            transform(block)
        return out

    def _gemm_factors(self, X, Z, M):
        """(A, B) with A·Bᵀ = xᵀMz, or for translation-invariant kernels, in one GEMM,

            D̃² = [XM, (1−s)‖x‖²_M, 1] · [−2Z, 1, (1−s)‖z‖²_M]ᵀ = D² − s(‖x‖²_M + ‖z‖²_M).

        D² = ‖x‖² + ‖z‖² − 2xᵀMz cancels for (near-)duplicate points and leaves rounding noise of
        order (d+2)·eps·(‖x‖² + ‖z‖²) instead of 0; its square root (~1e-3 in float32) would make
        duplicates look distinct and, through Laplace's 1/D, give them huge derivative weights.
        Shifting by that noise bound, s = 2(d+2)·eps, puts every such D² at or below 0, where the
        clamp makes it exactly 0; any other D² moves by no more than its own rounding error.
        """
        XM = X if M is None else X @ M
        if not self.translation_invariant:
            return XM, Z
        ZM = Z if M is None else Z @ M
        shrink = 1.0 - 2.0 * (X.shape[1] + 2) * torch.finfo(X.dtype).eps
        x_norms = (XM * X).sum(1, keepdim=True).mul_(shrink)
        z_norms = (ZM * Z).sum(1, keepdim=True).mul_(shrink)
        left = torch.cat([XM, x_norms, torch.ones_like(x_norms)], dim=1)
        right = torch.cat([-2.0 * Z, torch.ones_like(z_norms), z_norms], dim=1)
        return left, right


def row_blocks(matrix: torch.Tensor, max_elements: int | None = None):
    """(first row, view) of consecutive row blocks holding about ``max_elements`` (default
    BLOCK_ELEMENTS) entries each."""
    rows_per_block = max(1, (max_elements or BLOCK_ELEMENTS) // max(1, matrix.shape[1]))
    for start in range(0, matrix.shape[0], rows_per_block):
        yield start, matrix[start : start + rows_per_block]


def predict(
    kernel: Kernel, X_query, X_train, M, alpha, block_elements: int = PREDICT_BLOCK_ELEMENTS
) -> torch.Tensor:
    """f(x) = Σ_j α_j k_M(x, x_j) for every query row, in blocks so memory stays O(block·n)."""
    rows_per_block = max(1, block_elements // max(1, X_train.shape[0]))
    outputs = [kernel.gram(block, X_train, M) @ alpha for block in X_query.split(rows_per_block)]
    if not outputs:
        return alpha.new_zeros(0, alpha.shape[1])
    return torch.cat(outputs)
