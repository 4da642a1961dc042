"""The L1 (product-)Laplace kernel exp(−‖W(x − z)‖₁ / L), W = M^½ (diag(√M_kk) for a diagonal M).

Its training-row mathematics is in l1kernel.py; this file adds the statistics of a predictor over
Nyström centres, f(x) = Σ_j α_j k(x, c_j). With u = Wx and v_j = Wc_j the Jacobian (centres fixed) is

    J(x) = −(1/L) Σ_j K(x, c_j) α_j sign(u − v_j)ᵀ W        (c × d; sign(0) = 0, as autograd's |·|'),

so, with residuals r_i = f(x_i) − y_i,

    F    = −(1/n) Σ_i J_iᵀ r_i x_iᵀ = (1/(nL)) W Gᵀ X,      G_ik = Σ_j K_ij (r_i·α_j) sign(u_ik − v_jk),
    AGOP = (1/n) Σ_i J_iᵀ J_i = W [(1/(nL²)) Σ_i H_iᵀ H_i] W,  H_i[:, k] = Σ_j K_ij α_j sign(u_ik − v_jk).

For one coordinate k and a row block, sign(u_bk − v_jk) is a b×m matrix: G[:, k] is a row sum of its
product with A = K ∘ (r αᵀ), and H[:, :, k] one GEMM (sign ∘ K) α. One pass over row blocks of about
``block_elements`` kernel entries: O(n·m·d) for F, O(n·m·c·d) for AGOP (the L2 kernels' orders), with
O(b·m + b·c·d) memory besides the data: never n×n, never n×m×d.
"""

from __future__ import annotations

import torch

from . import l1kernel
from .kernel_base import CENTER_BLOCK_ELEMENTS, Kernel, Statistic, row_slices


class L1Kernel(Kernel, kernel_name="l1"):
    """exp(−‖M^½(x − z)‖₁ / L); its derivative weights are K itself (l1kernel.py)."""

    weights_are_gram = True
    distance_p = 1.0
    # Selected automatically, its M is diagonal (docs/SPEC.md §4: a full W rotates away the
    # per-coordinate structure the L1 kernel is good at).
    selected_form = "diagonal"
    simplicity = 1

    def gram(self, X, Z, M, out=None):
        return l1kernel.gram(X, Z, M, self.bandwidth, out)

    def derivative_weights(self, X, M, out=None):
        return l1kernel.gram(X, X, M, self.bandwidth, out)

    def fact_matrix(self, X, alpha, M, W):
        return l1kernel.fact_matrix(X, alpha, M, W, self.bandwidth)

    def agop_matrix(self, X, alpha, M, W, centered=False):
        return l1kernel.agop_matrix(X, alpha, M, W, self.bandwidth, centered=centered)

    def center_fact_matrix(self, X, Y, C, alpha, M, block_elements=CENTER_BLOCK_ELEMENTS):
        n, d = X.shape
        root, U, V = _rotated(X, C, M)
        alpha_w = alpha.to(X.dtype)
        S = torch.zeros(d, d, dtype=torch.float64, device=X.device)
        outputs = torch.empty(n, alpha.shape[1], dtype=torch.float64, device=X.device)
        for rows in row_slices(n, block_elements // max(1, C.shape[0])):
            K = self._block(U[rows], V)
            fitted = K @ alpha_w
            outputs[rows] = fitted
            A = K.mul_((fitted - Y[rows].to(X.dtype)) @ alpha_w.T)  # A_ij = K_ij (r_i·α_j)
            G = torch.empty_like(U[rows])
            for k in range(d):
                G[:, k] = (_signs(U[rows], V, k) * A).sum(1)
            S += (G.T @ X[rows]).double()
        S /= n * self.bandwidth
        return Statistic(_rotate_back(root, S, left_only=True), outputs)

    def center_agop(self, X, C, alpha, M, centered=False, block_elements=CENTER_BLOCK_ELEMENTS):
        n, d = X.shape
        m, c = alpha.shape
        root, U, V = _rotated(X, C, M)
        alpha_w = alpha.to(X.dtype)
        S = torch.zeros(d, d, dtype=torch.float64, device=X.device)
        total = torch.zeros(c, d, dtype=torch.float64, device=X.device)
        outputs = torch.empty(n, c, dtype=torch.float64, device=X.device)
        rows_per_block = min(block_elements // max(1, m), block_elements // max(1, c * d))
        for rows in row_slices(n, rows_per_block):
            K = self._block(U[rows], V)
            outputs[rows] = K @ alpha_w
            H = U.new_empty(K.shape[0], c, d)
            for k in range(d):
                H[:, :, k] = (_signs(U[rows], V, k) * K) @ alpha_w
            flat = H.reshape(-1, d).double()
            S += flat.T @ flat
            total += H.sum(0).double()
        if centered:
            S -= total.T @ total / n
        S /= n * self.bandwidth**2
        return Statistic(_rotate_back(root, S), outputs)

    def _block(self, U, V) -> torch.Tensor:
        """K = exp(−‖u − v‖₁ / L) between rotated rows: cdist sums |differences|, no cancellation."""
        return torch.cdist(U, V, p=1).mul_(-1.0 / self.bandwidth).exp_()


def _rotated(X, C, M):
    """(W, U = XWᵀ, V = CWᵀ); W None for M = I."""
    root = l1kernel.feature_root(M, X)
    if root is None:
        return None, X, C
    if l1kernel.is_diagonal(root):
        scale = root.diagonal()
        return root, X * scale, C * scale
    return root, X @ root.T, C @ root.T


def _signs(Ub: torch.Tensor, V: torch.Tensor, k: int) -> torch.Tensor:
    """sign(u_ik − v_jk) for the rows of a block against every centre (b × m)."""
    return torch.sub(Ub[:, k, None], V[None, :, k]).sign_()


def _rotate_back(root, S, left_only: bool = False):
    if root is None:
        return S
    W = root.double()
    return W @ S if left_only else W @ S @ W
