"""The L1 (product-)Laplace kernel exp(−‖W(x − z)‖₁ / L) and its feature statistics (docs/SPEC.md §4).

W = M^½ (the symmetric root) for a full feature matrix M, W = diag(√M_kk) for a diagonal one. The
kernel is not a function of ‖x − z‖_M, so the closed forms of kernels.py do not apply; FACT and AGOP
need only the Jacobians J_i = ∂f(x_i)/∂x (centres fixed), which with u = W x read

    J_i = −(1/L) Σ_j K_ij α_j sign(u_i − u_j)ᵀ W        (c × d; sign(0) = 0, as autograd's |·|'),

so with A = K ∘ ααᵀ and g_i = −(1/L) Σ_j A_ij sign(u_i − u_j):

    F    = (1/n) Σ_i J_iᵀ α_i x_iᵀ = (1/n) W Gᵀ X,
    AGOP = (1/n) Σ_i J_iᵀ J_i      = W [(1/(nL²)) Σ_i H_iᵀ H_i] W,   H_i = Σ_j K_ij α_j sign(u_i − u_j)ᵀ.

Both are sums over pairs of a per-coordinate sign: the n×n×d tensor of signs is never formed. Each
statistic is one pass over the pairs, after the Gram matrix's one pass, with no n×n buffer besides K.

Two kinds of coordinate (of u, so a diagonal M keeps the table's own; a full M mixes them):

- *discrete*, at most ``L1_GEMM_MAX_LEVELS`` distinct values v_1 < … < v_m (binary, ordinal and
  one-hot columns, which are half the work on the UCI tables): every pass is a matrix product, at
  BLAS speed. With t_il = [u_i > v_l] (l < m) and δ_l = v_{l+1} − v_l,
  |u_i − u_j| = Σ_l δ_l (t_il (1 − t_jl) + (1 − t_il) t_jl), a sum of non-negative terms (no
  cancellation: duplicates are exactly at 0); with e_jl = [u_j = v_l],
  Σ_j A_ij sign(u_i − u_j) = Σ_l sign(u_i − v_l) (A E)_il.
- *continuous*: the distances by torch.cdist (p = 1, which sums |differences| directly), FACT's G by
  cdist's own backward (one fused sign-and-sum pass, G_ik = Σ_j A_ij sign(u_ik − u_jk) exactly), and
  AGOP's H by batched products with a block of signs laid out rows × points × coordinates.

Rows are taken in blocks so a pass holds about ``L1_BLOCK_ELEMENTS`` temporaries at a time; O(n²d)
work for the continuous coordinates, O(n² Σ m) at BLAS speed for the discrete ones.
"""

from __future__ import annotations

import torch

from .linalg import psd_power

# Temporaries per pass (rows × points × coordinates): ~32 MB in float64, a few percent of an n×n
# matrix at n = 10,000, and large enough for the batched products to run at BLAS speed.
L1_BLOCK_ELEMENTS = 1 << 22

# A coordinate with at most this many distinct values goes through matrix products: 2(m − 1)
# columns of a GEMM for the distances and m − 1 for the signs (c(m − 1) for AGOP), at BLAS speed
# against one element-wise pass. Set by that count, not tuned: only binary columns are measured
# (benchmarks/bench_l1.py, 3-13× faster than element-wise).
L1_GEMM_MAX_LEVELS = 8


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


def _apply(X: torch.Tensor, W: torch.Tensor | None, distinct: bool = True) -> torch.Tensor:
    """U = X Wᵀ (rows u_i = W x_i); a diagonal W scales columns instead of multiplying.

    A product rounds a row differently by its place in the matrix, which would set duplicate points
    apart by an ulp and give their pair a sign of ±1 instead of 0: with ``distinct``, equal rows are
    multiplied once. (Between two tables, where only the kernel's value is used, an ulp is harmless.)
    """
    if W is None:
        return X
    if is_diagonal(W):
        return X * W.diagonal()
    if not distinct:
        return X @ W.T
    rows, inverse = torch.unique(X, dim=0, return_inverse=True)
    return (rows @ W.T)[inverse]


class _Levels:
    """The coordinates of u over some rows, by kind (see the module docstring).

    ``continuous`` and ``discrete`` index the coordinates with more than ``L1_GEMM_MAX_LEVELS``
    distinct values and those with 2 to that many; a constant coordinate is in neither (it adds
    nothing to a distance or a sign). ``values`` holds the discrete coordinates' values, each
    coordinate's increasing and contiguous, and ``column`` the coordinate of each value.
    """

    def __init__(self, U: torch.Tensor):
        d = U.shape[1]
        # A continuous coordinate shows more than the limit in its first rows, almost always: only
        # the others are sorted in full.
        head = U[:256].T.sort(1).values
        candidates = torch.nonzero((head[:, 1:] != head[:, :-1]).sum(1) < L1_GEMM_MAX_LEVELS).flatten()
        ordered = U[:, candidates].T.sort(1).values  # candidates × n
        new = torch.ones_like(ordered, dtype=torch.bool)
        new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        counts = new.sum(1)
        few = (counts > 1) & (counts <= L1_GEMM_MAX_LEVELS)
        self.discrete = candidates[few]
        self.values = ordered[few][new[few]]
        self.column = self.discrete.repeat_interleave(counts[few])
        rest = torch.ones(d, dtype=torch.bool, device=U.device)
        rest[candidates[counts <= L1_GEMM_MAX_LEVELS]] = False  # discrete or constant
        self.continuous = torch.nonzero(rest).flatten()

    def thresholds(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(column, v_l, δ_l = v_{l+1} − v_l) for every value but each coordinate's largest."""
        inner = self.column[:-1] == self.column[1:]
        lower = self.values[:-1][inner]
        return self.column[:-1][inner], lower, self.values[1:][inner] - lower

    def lowest_signs(self, U: torch.Tensor) -> torch.Tensor:
        """sign(u_ik − v_1) = [u_ik > v_1] for every discrete coordinate k (its smallest value v_1)."""
        first = torch.ones_like(self.column, dtype=torch.bool)
        first[1:] = self.column[1:] != self.column[:-1]
        return (U[:, self.discrete] > self.values[first]).to(U.dtype)

    def chunks(self, U: torch.Tensor, width: int):
        """(column, e, s) for at most ``width`` values v_l at a time, every value but each discrete
        coordinate's smallest: e_jl = [u_j = v_l] and s_il = sign(u_i − v_l) − sign(u_i − v_1).

        Σ_l sign(u_i − v_l) S_il = sign(u_i − v_1) Σ_l S_il + Σ_{l>1} s_il S_il, and Σ_l S_il is a
        row sum, so the smallest value costs no column of the products (half of them, binary).
        """
        first = torch.ones_like(self.column, dtype=torch.bool)
        first[1:] = self.column[1:] != self.column[:-1]
        lowest = self.values[first][torch.cumsum(first, 0) - 1]  # v_1 of each value's coordinate
        column, values, lowest = self.column[~first], self.values[~first], lowest[~first]
        for start in range(0, len(values), width):
            part = slice(start, start + width)
            u = U[:, column[part]]
            signs = torch.sign(u - values[part]) - (u > lowest[part]).to(U.dtype)
            yield column[part], (u == values[part]).to(U.dtype), signs


def gram(X, Z, M, bandwidth: float, out: torch.Tensor | None = None, rows_per_block: int | None = None):
    """K_ij = exp(−‖W(x_i − z_j)‖₁ / L), written into ``out`` in row blocks.

    Continuous coordinates by cdist (p = 1), discrete ones by one product P Qᵀ of their threshold
    indicators; both sum non-negative terms, so duplicates are exactly at 0.
    """
    W = feature_root(M, X)
    if Z is X:  # the training points against themselves (every solve and statistic)
        U = V = _apply(X, W)
        levels = _Levels(U)
    else:  # predictions: a block of queries against the training points
        U, V = _apply(X, W, distinct=False), _apply(Z, W, distinct=False)
        levels = _Levels(torch.cat([U, V]))
    if out is None:
        out = torch.empty(X.shape[0], Z.shape[0], dtype=X.dtype, device=X.device)
    column, lower, step = levels.thresholds()
    above_U, above_V = (U[:, column] > lower).to(U.dtype), (V[:, column] > lower).to(U.dtype)
    P = torch.cat([above_U * step, (1 - above_U) * step], 1)  # Σ_l δ_l (t_il (1 − t_jl) + (1 − t_il) t_jl)
    Q = torch.cat([1 - above_V, above_V], 1)
    every = len(levels.continuous) == U.shape[1]
    Uc, Vc = (U, V) if every else (U[:, levels.continuous], V[:, levels.continuous])
    rows = rows_per_block or max(1, (1 << 20) // max(1, Z.shape[0]))
    for start in range(0, X.shape[0], rows):
        block = out[start : start + rows]
        if Uc.shape[1]:
            block.copy_(torch.cdist(Uc[start : start + rows], Vc, p=1))
        else:
            block.zero_()
        if P.shape[1]:
            block.addmm_(P[start : start + rows], Q.T)
        block.mul_(-1.0 / bandwidth).exp_()
    return out


def _sign_sums(U: torch.Tensor, A: torch.Tensor, block_elements: int) -> torch.Tensor:
    """G_ik = Σ_j A_ij sign(u_ik − u_jk) (n × d) for an n×n A."""
    n, d = U.shape
    levels = _Levels(U)
    G = U.new_zeros(n, d)
    continuous = levels.continuous
    if len(continuous):
        # cdist's backward is the gradient of Σ_ij A_ij ‖u_i − u_j‖₁ in u_i, which is G: one fused
        # pass (p = 1 never reads the distances it is given). It holds rows × n × coordinates.
        Uc = U[:, continuous].contiguous()
        rows = max(1, block_elements // (n * len(continuous)))
        unused = U.new_empty(min(rows, n), n)
        Gc = torch.empty_like(Uc)
        for start in range(0, n, rows):
            r = slice(start, min(n, start + rows))
            Gc[r] = torch.ops.aten._cdist_backward(A[r], Uc[r], Uc, 1.0, unused[: r.stop - r.start])
        G[:, continuous] = Gc
    if len(levels.discrete):
        G[:, levels.discrete] = levels.lowest_signs(U) * A.sum(1, keepdim=True)
    for column, onehot, signs in levels.chunks(U, max(1, block_elements // n)):
        G.index_add_(1, column, (A @ onehot).mul_(signs))
    return G


def fact_matrix(X, alpha, M, K, bandwidth: float, block_elements: int = L1_BLOCK_ELEMENTS) -> torch.Tensor:
    """F = (1/n) W Gᵀ X with g_i = −(1/L) Σ_j K_ij (α_i·α_j) sign(u_i − u_j). ``K`` is overwritten."""
    n = X.shape[0]
    W = feature_root(M, X)
    U = _apply(X, W)
    step = max(1, (1 << 20) // max(1, n))
    for start in range(0, n, step):  # A = K ∘ ααᵀ, in place, a row block at a time
        K[start : start + step].mul_(alpha[start : start + step] @ alpha.T)
    G = _sign_sums(U, K, block_elements).mul_(-1.0 / bandwidth)
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
    levels = _Levels(U)
    continuous = levels.continuous
    Uc = U[:, continuous]
    coords = max(1, min(len(continuous), block_elements // n))
    rows = max(1, block_elements // (n * max(coords, c)))
    signs_buffer = U.new_empty(min(rows, n), n, coords) if len(continuous) else None
    classes_by_point = alpha.T.unsqueeze(0)  # 1 × c × n
    lowest_signs = levels.lowest_signs(U) if len(levels.discrete) else None
    chunks = list(levels.chunks(U, max(1, block_elements // (n * c))))
    S = X.new_zeros(d, d)
    total = X.new_zeros(c, d)
    for start in range(0, n, rows):
        r = slice(start, min(n, start + rows))
        b = r.stop - r.start
        H = X.new_zeros(b, c, d)  # H for this row block, a coordinate chunk at a time
        if signs_buffer is not None:
            weighted = K[r].unsqueeze(1) * classes_by_point  # b × c × n: K_bj α_jc
            for k0 in range(0, len(continuous), coords):
                k = slice(k0, min(len(continuous), k0 + coords))
                signs = signs_buffer[:b, :, : k.stop - k.start]  # b × n × coordinates
                torch.sub(Uc[r, k].unsqueeze(1), Uc[:, k].unsqueeze(0), out=signs).sign_()
                H[:, :, continuous[k]] = torch.bmm(weighted, signs)
        if lowest_signs is not None:
            H[:, :, levels.discrete] = (K[r] @ alpha).unsqueeze(2) * lowest_signs[r].unsqueeze(1)
        for column, onehot, signs in chunks:
            by_class = (alpha.unsqueeze(2) * onehot.unsqueeze(1)).reshape(n, -1)  # α_jc e_jl: n × (c·w)
            sums = (K[r] @ by_class).view(b, c, -1)
            H.index_add_(2, column, sums.mul_(signs[r].unsqueeze(1)))
        S += H.reshape(-1, d).T @ H.reshape(-1, d)
        total += H.sum(0)
    if centered:
        S -= total.T @ total / n
    S /= n * bandwidth**2
    return S if W is None else W @ S @ W
