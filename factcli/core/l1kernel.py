"""The L1 (product-)Laplace kernel exp(−‖W(x − z)‖₁ / L) and its feature statistics (docs/SPEC.md §4).

W = M^½ (the symmetric root) for a full feature matrix M, W = diag(√M_kk) for a diagonal one. The
kernel is not a function of ‖x − z‖_M, so the closed forms of kernels.py do not apply; FACT and AGOP
need only the Jacobians J_i = ∂f(x_i)/∂x (centres fixed), which with u = W x read

    J_i = −(1/L) Σ_j K_ij α_j sign(u_i − u_j)ᵀ W        (c × d; sign(0) = 0, as autograd's |·|'),

so with A = K ∘ ααᵀ and g_i = −(1/L) Σ_j A_ij sign(u_i − u_j):

    F    = (1/n) Σ_i J_iᵀ α_i x_iᵀ = (1/n) W Gᵀ X,
    AGOP = (1/n) Σ_i J_iᵀ J_i      = W [(1/(nL²)) Σ_i H_iᵀ H_i] W,   H_i = Σ_j K_ij α_j sign(u_i − u_j)ᵀ.

Both are sums over pairs of a per-coordinate sign: the n×n×d tensor of signs is never formed. Rows
are taken in blocks and coordinates in chunks, so a pass holds about ``L1_BLOCK_ELEMENTS`` signs at a
time; the cost is O(n²d) for F and O(n²cd) for AGOP, with O(n·d) extra memory besides the block.
"""

from __future__ import annotations

import torch

from .linalg import psd_power

# Signs handled per pass (rows × columns × coordinates): ~32 MB in float64, a few percent of an n×n
# matrix at n = 10,000, and large enough for the batched products to run at BLAS speed.
L1_BLOCK_ELEMENTS = 1 << 22


def is_diagonal(M: torch.Tensor) -> bool:
    return bool(torch.count_nonzero(M - torch.diag_embed(M.diagonal())) == 0)


def feature_root(M: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """W with WᵀW = M: diag(√M_kk) when M is diagonal (no rotation), else the symmetric root M^½.

    None stands for W = I (M = I, the first iterate).
    """
    if M is None:
        return None
    M = M.to(like)
    if is_diagonal(M):
        return torch.diag_embed(M.diagonal().clamp_min(0).sqrt())
    return psd_power(M, 0.5)


def _apply(X: torch.Tensor, W: torch.Tensor | None) -> torch.Tensor:
    """U = X Wᵀ (rows u_i = W x_i); a diagonal W scales columns instead of multiplying."""
    if W is None:
        return X
    if is_diagonal(W):
        return X * W.diagonal()
    return X @ W.T


def gram(X, Z, M, bandwidth: float, out: torch.Tensor | None = None, rows_per_block: int | None = None):
    """K_ij = exp(−‖W(x_i − z_j)‖₁ / L), written into ``out`` in row blocks.

    cdist with p = 1 sums |differences| directly: no cancellation, so duplicates are exactly at 0.
    """
    W = feature_root(M, X)
    U, V = _apply(X, W), _apply(Z, W)
    if out is None:
        out = torch.empty(X.shape[0], Z.shape[0], dtype=X.dtype, device=X.device)
    step = rows_per_block or max(1, (1 << 20) // max(1, Z.shape[0]))
    for start in range(0, X.shape[0], step):
        block = out[start : start + step]
        block.copy_(torch.cdist(U[start : start + step], V, p=1))
        block.mul_(-1.0 / bandwidth).exp_()
    return out


def _sign_blocks(U: torch.Tensor, block_elements: int):
    """(row slice, coordinate slice, signs) with signs[b, k, j] = sign(u_bk − u_jk), block by block."""
    n, d = U.shape
    coords = max(1, min(d, block_elements // max(1, n)))
    rows = max(1, block_elements // max(1, n * coords))
    Ut = U.T.contiguous()  # d × n: the coordinate-major copy makes every block a strided broadcast
    buffer = torch.empty(rows, coords, n, dtype=U.dtype, device=U.device)
    for r0 in range(0, n, rows):
        r = slice(r0, min(n, r0 + rows))
        for k0 in range(0, d, coords):
            k = slice(k0, min(d, k0 + coords))
            signs = buffer[: r.stop - r.start, : k.stop - k.start]
            torch.sub(U[r, k].unsqueeze(2), Ut[k].unsqueeze(0), out=signs).sign_()
            yield r, k, signs


def fact_matrix(X, alpha, M, K, bandwidth: float, block_elements: int = L1_BLOCK_ELEMENTS) -> torch.Tensor:
    """F = (1/n) W Gᵀ X with g_i = −(1/L) Σ_j K_ij (α_i·α_j) sign(u_i − u_j). ``K`` is overwritten."""
    n = X.shape[0]
    W = feature_root(M, X)
    U = _apply(X, W)
    step = max(1, (1 << 20) // max(1, n))
    for start in range(0, n, step):  # A = K ∘ ααᵀ, in place, a row block at a time
        K[start : start + step].mul_(alpha[start : start + step] @ alpha.T)
    A = K
    G = torch.empty_like(X)
    for r, k, signs in _sign_blocks(U, block_elements):
        G[r, k] = torch.bmm(signs, A[r].unsqueeze(2)).squeeze(2)
    G.mul_(-1.0 / bandwidth)
    S = G.T @ X / n
    return S if W is None else W @ S


def agop_matrix(
    X, alpha, M, K, bandwidth: float, centered: bool = False, block_elements: int = L1_BLOCK_ELEMENTS
) -> torch.Tensor:
    """AGOP = W [(1/(nL²)) Σ_i H_iᵀ H_i] W, H_i = Σ_j K_ij α_j sign(u_i − u_j)ᵀ, a block of rows at a time.

    Centred: Σ_i (H_i − H̄)ᵀ(H_i − H̄) = Σ_i H_iᵀ H_i − n H̄ᵀ H̄. ``K`` is only read.
    """
    n, d = X.shape
    c = alpha.shape[1]
    W = feature_root(M, X)
    U = _apply(X, W)
    S = X.new_zeros(d, d)
    total = X.new_zeros(c, d)
    H = weighted = None  # H for the current row block: b × c × d, filled a coordinate chunk at a time
    for r, k, signs in _sign_blocks(U, block_elements):
        if k.start == 0:  # a new row block: fold the finished one into S
            if H is not None:
                S += H.reshape(-1, d).T @ H.reshape(-1, d)
                total += H.sum(0)
            H = X.new_empty(r.stop - r.start, c, d)
            weighted = K[r].unsqueeze(2) * alpha.unsqueeze(0)  # b × n × c: K_bj α_jc
        H[:, :, k] = torch.bmm(signs, weighted).transpose(1, 2)
    if H is not None:
        S += H.reshape(-1, d).T @ H.reshape(-1, d)
        total += H.sum(0)
    if centered:
        S -= total.T @ total / n
    S /= n * bandwidth**2
    return S if W is None else W @ S @ W
