"""Kernels of a Mahalanobis form: Laplace and Gaussian, k = κ(D²) with D² = ‖x − z‖²_M = (x − z)ᵀM(x − z),
and the inner-product kernel k = κ(u) with u = xᵀMz (quadratic, κ(u) = u²) (docs/SPEC.md §4).

Their derivative weights W_ij = 2κ'(D²_ij) (translation-invariant) or κ'(u_ij) (inner-product) give
every statistic in closed form. Gram matrices and weights are written into a caller-supplied buffer
with in-place element-wise passes, so an n×n matrix is allocated once per RFM iteration.
"""

from __future__ import annotations

import torch

from . import kernel_base
from .kernel_base import CENTER_BLOCK_ELEMENTS, Kernel, Statistic, row_blocks, row_slices

# Laplace's κ'(D²) ∝ 1/D is singular where points coincide; like RFM's AGOP we drop those pairs.
LAPLACE_MIN_DISTANCE = 1e-10

# Classes handled per pass of the class-by-class AGOP: enough that the product with W is a wide GEMM
# that reads the n×n matrix once per group (not once per class: 26 passes over 0.8 GB for letter in
# float64), few enough that the group's n × (classes·d) block stays O(n·d)-sized.
AGOP_GROUP_COLUMNS = 256


class MahalanobisKernel(Kernel):
    """The shared closed forms; a subclass gives κ (``_kernel_of``) and 2κ' (``_derivative_of``) in place."""

    def _kernel_of(self, block: torch.Tensor) -> None:
        raise NotImplementedError

    def _derivative_of(self, block: torch.Tensor) -> None:
        raise NotImplementedError

    def _values_and_weights_of(self, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(κ, 2κ') of a block of D² (or xᵀMz), the block reused for one of them."""
        values = block.clone()
        self._kernel_of(values)
        self._derivative_of(block)
        return values, block

    # -- Gram matrix and derivative weights --------------------------------------------------------
    def gram(self, X, Z, M, out=None):
        """K_ij = k_M(x_i, z_j), written into ``out`` (allocated if None)."""
        return self._fill(X, Z, M, out, self._kernel_of)

    def gram_by_differences(self, X, Z, M):
        """K_ij = k_M(x_i, z_j) with D²_ij = ‖(x_i − z_j)R‖², M = RRᵀ, from the differences themselves.

        ``gram``'s one-GEMM D² cancels and is shifted down by its rounding bound (see _gemm_factors),
        which perturbs entries of near points by up to √(noise)/L: harmless in a solve with a ridge,
        but enough to make a matrix that is factored without one (Nyström's K_mm) indefinite. Here a
        positive definite kernel stays so to rounding. O(|X|·|Z|·d) work: for small matrices only.
        """
        if not self.translation_invariant:  # no cancellation in xᵀMz
            return self.gram(X, Z, M)
        if M is not None:
            values, vectors = torch.linalg.eigh(M)
            R = vectors * values.clamp_min(0.0).sqrt()
            X, Z = X @ R, Z @ R
        squared = torch.cdist(X, Z, compute_mode="donot_use_mm_for_euclid_dist").square_()
        self._kernel_of(squared)
        return squared

    def derivative_weights(self, X, M, out=None):
        """W over the training points: 2κ'(D²_ij) (translation-invariant) or κ'(x_iᵀMx_j), in ``out``."""
        return self._fill(X, X, M, out, self._derivative_of)

    def values_and_weights(self, X, Z, M):
        """(K, W) between the rows of X and of Z from one GEMM, as gram / derivative_weights give them.

        For a row block against a few thousand centres (the Nyström path), where both are needed.
        """
        left, right = self._gemm_factors(X, Z, M)
        block = left @ right.T
        if self.translation_invariant:
            block.clamp_min_(0.0)
        return self._values_and_weights_of(block)

    def _fill(self, X, Z, M, out, transform):
        """``out`` ← transform(D² or xᵀMz), one row block at a time.

        Each block is produced by its own GEMM and transformed while it is still in cache, so the n×n
        matrix crosses main memory once instead of once per element-wise pass.
        """
        left, right = self._gemm_factors(X, Z, M)
        if out is None:
            out = torch.empty(X.shape[0], Z.shape[0], dtype=X.dtype, device=X.device)
        for start, block in row_blocks(out, kernel_base.BLOCK_ELEMENTS):
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

    # -- statistics over the training rows. W is overwritten. O(n²(c + d)) for FACT and O(n²·c·d)
    # -- for AGOP, with O(n·d) extra memory.
    def fact_matrix(self, X, alpha, M, W):
        """F = (1/n) Σ_i J_iᵀ α_i x_iᵀ, J_i = ∂f(x_i)/∂x with the centres held fixed.

        Closed form with C = W ∘ ααᵀ: F = (1/n) M Xᵀ (Diag(C·1) − C) X for translation-invariant kernels
        and F = (1/n) M Xᵀ C X for inner-product kernels.
        """
        n = X.shape[0]
        for start, block in row_blocks(W, kernel_base.BLOCK_ELEMENTS):
            block.mul_(alpha[start : start + block.shape[0]] @ alpha.T)
        C = W
        S = X.T @ (C @ X)
        if self.translation_invariant:
            S = X.T @ (C.sum(1, keepdim=True) * X) - S
        return _times_M(M, S) / n

    def agop_matrix(self, X, alpha, M, W, centered=False):
        """AGOP = (1/n) Σ_i J_iᵀ J_i, never forming the n×c×d tensor of Jacobians.

        Row k of J_i (before the factor M) is G_ik = R_ik x_i − Σ_j W_ij α_jk x_j for translation-invariant
        kernels (R = Wα) and G_ik = Σ_j W_ij α_jk x_j for inner-product kernels. Two exact ways to sum
        Σ_ik G_ik G_ikᵀ, whichever is cheaper: a group of classes at a time, O(n²·c·d) work and
        O(n·max(d, 256)) extra memory (one wide product with W per group); or in Gram form Xᵀ Q X,
        O(n³ + n²(c + d)) work and two extra n×n matrices, when n < c·d (e.g. modular arithmetic,
        c = p classes and d = 2p one-hot inputs).
        """
        n, d = X.shape
        by_class = n >= alpha.shape[1] * d
        S = (
            self._agop_by_class(X, alpha, W, centered)
            if by_class
            else self._agop_gram_form(X, alpha, W, centered)
        )
        S /= n
        return S if M is None else M @ S @ M

    def _agop_by_class(self, X, alpha, W, centered, group_columns=AGOP_GROUP_COLUMNS):
        n, d = X.shape
        W_alpha = W @ alpha if self.translation_invariant else None
        S = X.new_zeros(d, d)
        group = max(1, group_columns // d)
        for first in range(0, alpha.shape[1], group):
            classes = slice(first, first + group)
            weighted = alpha[:, classes, None] * X[:, None, :]  # n × m × d: row i, class k is α_ik x_i
            G = (W @ weighted.view(n, -1)).view(n, -1, d)  # G_ik = Σ_j W_ij α_jk x_j
            if W_alpha is not None:
                G = torch.sub(W_alpha[:, classes, None] * X[:, None, :], G, out=weighted)
            if centered:
                G = G - G.mean(0, keepdim=True)
            rows = G.reshape(-1, d)  # every (i, k) pair is one row: Σ_ik G_ik G_ikᵀ in one product
            S += rows.T @ rows
        return S

    def _agop_gram_form(self, X, alpha, W, centered):
        """Σ_ik G_ik G_ikᵀ = Xᵀ Q X with Q = (WW) ∘ ααᵀ − W ∘ Rαᵀ − (W ∘ Rαᵀ)ᵀ + Diag(‖R_i‖²).

        The first term is Σ_ik (Σ_j W_ij α_jk x_j)(Σ_m W_im α_mk x_m)ᵀ = Σ_jm (WW)_jm (α_j·α_m) x_j x_mᵀ
        (W symmetric); the last three appear for translation-invariant kernels only. Centring subtracts
        T Tᵀ / n with T = Σ_i G_i = Xᵀ(R − w∘α) (or Xᵀ(w∘α)), w = W·1.
        """
        n = X.shape[0]
        Q = W @ W
        for start, block in row_blocks(Q, kernel_base.BLOCK_ELEMENTS):
            block.mul_(alpha[start : start + block.shape[0]] @ alpha.T)
        row_sums = W.sum(1, keepdim=True)
        if self.translation_invariant:
            R = W @ alpha
            cross = (R @ alpha.T).mul_(W)
            Q.sub_(cross).sub_(cross.T)
            del cross
            Q.diagonal().add_(R.square().sum(1))
            total = X.T @ (R - row_sums * alpha)
        else:
            total = X.T @ (row_sums * alpha)
        S = X.T @ (Q @ X)
        if centered:
            S -= total @ total.T / n
        return S

    # -- statistics against Nyström centres, one pass over row blocks. J_i's row k is
    # -- Σ_j W_ij α_jk (x_i − c_j)ᵀ M (translation-invariant, W_ij = 2κ'(D²_ij)) or Σ_j W_ij α_jk c_jᵀ M.
    def center_fact_matrix(self, X, Y, C, alpha, M, block_elements=CENTER_BLOCK_ELEMENTS):
        """F = −(1/n) Σ_i J_iᵀ r_i x_iᵀ with the actual residuals r_i = f(x_i) − y_i.

        With A_ij = W_ij (r_i·α_j) and a = A·1, Σ_i J_iᵀ r_i x_iᵀ = M (Xᵀ Diag(a) X − (A C)ᵀ X) for
        translation-invariant kernels and M (A C)ᵀ X for inner-product ones. O(n·m·(c + d)).
        For an exact ridge solve (centres = training points) r = −λα, and F is λ times fact_matrix's.
        """
        n, d = X.shape
        S = torch.zeros(d, d, dtype=torch.float64, device=X.device)
        outputs = torch.empty(n, alpha.shape[1], dtype=torch.float64, device=X.device)
        alpha_w = alpha.to(X.dtype)
        for rows, values, weights in self._value_weight_blocks(X, C, M, block_elements):
            fitted = values @ alpha_w
            outputs[rows] = fitted
            A = weights.mul_((fitted - Y[rows].to(X.dtype)) @ alpha_w.T)
            Xb = X[rows]
            part = (A @ C).T @ Xb
            if self.translation_invariant:
                part = Xb.T @ (A.sum(1, keepdim=True) * Xb) - part
            S += part.double()
        S = S if M is None else M.double() @ S
        return Statistic(-S / n, outputs)

    def center_agop(
        self, X, C, alpha, M, centered=False, block_elements=CENTER_BLOCK_ELEMENTS, by_class=None
    ):
        """AGOP = (1/n) Σ_i J_iᵀ J_i = (1/n) M (Σ_ik g_ik g_ikᵀ) M, g_ik = R_ik x_i − Σ_j W_ij α_jk c_j
        (R = Wα; the first term only for translation-invariant kernels).

        Two exact ways to sum, the cheaper one unless ``by_class`` says: per class, P_k = W(α_k ∘ C),
        O(n·m·c·d); or in Gram form Σ_i ‖R_i‖² x_i x_iᵀ − Xᵀ(W ∘ Rαᵀ)C − its transpose
        + Cᵀ((WᵀW) ∘ ααᵀ)C, O(n·m·(m + c + d)) with one extra m×m matrix. Centring (per class, over i)
        subtracts T Tᵀ/n, T = Xᵀ R − Cᵀ(w ∘ α), w = Wᵀ1.
        """
        n, d = X.shape
        m, c = alpha.shape
        if by_class is None:
            by_class = c * d <= m
        S = torch.zeros(d, d, dtype=torch.float64, device=X.device)
        T = torch.zeros(d, c, dtype=torch.float64, device=X.device)
        WtW = None if by_class else torch.zeros(m, m, dtype=torch.float64, device=X.device)
        column_sums = torch.zeros(m, dtype=torch.float64, device=X.device)
        outputs = torch.empty(n, c, dtype=torch.float64, device=X.device)
        alpha_w = alpha.to(X.dtype)
        weighted_centers = (alpha_w[:, :, None] * C[:, None, :]).reshape(m, c * d) if by_class else None
        invariant = self.translation_invariant
        for rows, values, weights in self._value_weight_blocks(X, C, M, block_elements):
            outputs[rows] = values @ alpha_w
            Xb = X[rows]
            R = weights @ alpha_w if invariant else None
            column_sums += weights.sum(0).double()
            if invariant:
                T += (Xb.T @ R).double()
            if by_class:
                G = -(weights @ weighted_centers).view(-1, c, d)
                if invariant:
                    G += R[:, :, None] * Xb[:, None, :]
                flat = G.reshape(-1, d)
                S += (flat.T @ flat).double()
            else:
                WtW += (weights.T @ weights).double()
                if invariant:
                    cross = Xb.T @ (weights * (R @ alpha_w.T)) @ C
                    S += (Xb.T @ (R.square().sum(1, keepdim=True) * Xb) - cross - cross.T).double()
        Cd, ad = C.double(), alpha.double()
        if WtW is not None:
            S += Cd.T @ ((WtW * (ad @ ad.T)) @ Cd)
        if centered:
            T -= Cd.T @ (column_sums[:, None] * ad)
            S -= T @ T.T / n
        S /= n
        return Statistic(S if M is None else M.double() @ S @ M.double(), outputs)

    def _value_weight_blocks(self, X, C, M, block_elements):
        for rows in row_slices(X.shape[0], block_elements // max(1, C.shape[0])):
            values, weights = self.values_and_weights(X[rows], C, M)
            yield rows, values, weights


def _times_M(M, S):
    return S if M is None else M @ S


class LaplaceKernel(MahalanobisKernel, kernel_name="laplace"):
    """exp(−‖x − z‖_M / L)."""

    simplicity = 0

    def _kernel_of(self, block):
        block.sqrt_().mul_(-1.0 / self.bandwidth).exp_()

    def _derivative_of(self, block):
        # 2κ'(D²) = −K/(L·D); zero where D < 1e-10 (the diagonal and duplicate points).
        distance = block.sqrt_()
        coincident = distance < LAPLACE_MIN_DISTANCE
        kernel = torch.mul(distance, -1.0 / self.bandwidth).exp_()
        torch.div(kernel, distance.mul_(-self.bandwidth), out=distance)
        distance.masked_fill_(coincident, 0.0)

    def _values_and_weights_of(self, block):
        distance = block.sqrt_()
        values = torch.mul(distance, -1.0 / self.bandwidth).exp_()
        coincident = distance < LAPLACE_MIN_DISTANCE
        weights = torch.div(values, distance.mul_(-self.bandwidth), out=distance)
        return values, weights.masked_fill_(coincident, 0.0)


class GaussianKernel(MahalanobisKernel, kernel_name="gaussian"):
    """exp(−‖x − z‖²_M / 2L²)."""

    simplicity = 2

    def _kernel_of(self, block):
        block.mul_(-0.5 / self.bandwidth**2).exp_()

    def _derivative_of(self, block):
        # 2κ'(D²) = −K / L².
        block.mul_(-0.5 / self.bandwidth**2).exp_().mul_(-1.0 / self.bandwidth**2)

    def _values_and_weights_of(self, block):
        values = block.mul_(-0.5 / self.bandwidth**2).exp_()
        return values, values * (-1.0 / self.bandwidth**2)


class QuadraticKernel(MahalanobisKernel, kernel_name="quadratic"):
    """(xᵀMz)²: an inner-product kernel (the bandwidth is not used)."""

    translation_invariant = False
    simplicity = 3

    def _kernel_of(self, block):
        block.square_()

    def _derivative_of(self, block):
        block.mul_(2.0)  # κ(u) = u², κ'(u) = 2u

    def _values_and_weights_of(self, block):
        return block.square(), block.mul_(2.0)
