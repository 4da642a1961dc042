"""The Recursive Feature Machine loop: solve, feature statistic, update rule, rescaling (docs/SPEC.md §4).

``rfm_path`` yields every iterate (t = 0..iters) so callers can score each M_t on held-out data,
log it, or stop early. One n×n buffer is allocated per path and reused by every iteration: it holds
the kernel matrix, then its Cholesky factor, then the derivative weights W, then C = W ∘ ααᵀ.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from factcli.choices import FORMS, METHODS, PRECISIONS, RESCALE_RULES
from factcli.core import InvalidInput

from . import l1kernel
from .kernels import Kernel, predict, row_blocks
from .linalg import NotPositiveDefinite, SolveReport, dtype_name, psd_power, solve_kernel_system


class InaccurateSolve(ArithmeticError):
    """The kernel system is singular or too ill-conditioned at this ridge, even in float64."""


class FeatureCollapse(InaccurateSolve):
    """The learned feature matrix is zero or not finite: no ridge or precision brings it back."""


@dataclass(frozen=True)
class RFMOptions:
    """Everything that defines one RFM path. ``method='laplace'`` means no feature learning."""

    kernel: Kernel = field(default_factory=Kernel)
    method: str = "fact"
    ridge: float = 1e-3
    iters: int = 5
    nfa_power: float = 0.5  # NFA: M ← AGOP^s (the original tabular RFM code used s = 1)
    fact_power: float = 1.0  # FACT: M ← |F|^s, |F| = (FFᵀ)^½ (s = 1: the paper; s = 2: M ← FFᵀ)
    form: str = "full"  # full M, or diagonal (one weight per coordinate: M_kk ← the statistic's diagonal)
    centered_agop: bool = False
    rescale: str = "trace"  # trace: tr M = d; max: max |M_ij| = 1; none
    precision: str = "auto"  # auto: float32, redone in float64 when the solve is inaccurate
    solve_tol: float = 1e-3  # largest accepted relative residual ‖Y − (K + λI)α‖ / ‖Y‖
    scalable: object | None = None  # a nystrom_rfm.NystromOptions: Nyström centres instead of n×n solves

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.method, METHODS, "method"),
            (self.rescale, RESCALE_RULES, "rescale rule"),
            (self.precision, PRECISIONS, "precision"),
            (self.form, FORMS, "feature-matrix form"),
        ):
            if value not in allowed:
                raise InvalidInput(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        if self.ridge < 0 or self.iters < 0:
            raise InvalidInput("ridge and iters must be non-negative")


@dataclass
class KernelPredictor:
    """f(x) = Σ_j α_j k_M(x − c, x_j − c): a fitted kernel machine (c centres the data for accuracy)."""

    kernel: Kernel
    X: torch.Tensor  # centred training inputs
    center: torch.Tensor
    M: torch.Tensor
    alpha: torch.Tensor

    def __call__(self, X_query: torch.Tensor) -> torch.Tensor:
        query = X_query.to(self.X) - self.center
        return predict(self.kernel, query, self.X, self.M, self.alpha)

    def training_outputs(self, Y: torch.Tensor, ridge: float) -> torch.Tensor:
        """f at the training points: Kα = Y − λα exactly, no second kernel pass needed."""
        return Y - ridge * self.alpha.to(Y)


@dataclass
class Iterate:
    """Iterate t of a path: the feature matrix M_t, the predictor fitted with it, and its solve."""

    t: int
    M: torch.Tensor
    predictor: KernelPredictor
    solve: SolveReport


# ---------------------------------------------------------------------------------------------
# Feature statistics. W is the n×n matrix of derivative weights (Kernel.derivative_weights); it is
# overwritten. Both are O(n²(c + d)) for FACT and O(n²·c·d) for AGOP, with O(n·d) extra memory.
# ---------------------------------------------------------------------------------------------


def fact_matrix(kernel: Kernel, X, alpha, M, W) -> torch.Tensor:
    """F = (1/n) Σ_i J_iᵀ α_i x_iᵀ, J_i = ∂f(x_i)/∂x with the centres held fixed.

    Closed form with C = W ∘ ααᵀ: F = (1/n) M Xᵀ (Diag(C·1) − C) X for translation-invariant kernels
    and F = (1/n) M Xᵀ C X for inner-product kernels.
    """
    if kernel.name == "l1":
        return l1kernel.fact_matrix(X, alpha, M, W, kernel.bandwidth)
    n = X.shape[0]
    for start, block in row_blocks(W):
        block.mul_(alpha[start : start + block.shape[0]] @ alpha.T)
    C = W
    CX = C @ X
    S = X.T @ CX
    if kernel.translation_invariant:
        S = X.T @ (C.sum(1, keepdim=True) * X) - S
    return _times_M(M, S) / n


def agop_matrix(kernel: Kernel, X, alpha, M, W, centered: bool = False) -> torch.Tensor:
    """AGOP = (1/n) Σ_i J_iᵀ J_i, never forming the n×c×d tensor of Jacobians.

    Row k of J_i (before the factor M) is G_ik = R_ik x_i − Σ_j W_ij α_jk x_j for translation-invariant
    kernels (R = Wα) and G_ik = Σ_j W_ij α_jk x_j for inner-product kernels. Two exact ways to sum
    Σ_ik G_ik G_ikᵀ, whichever is cheaper: a group of classes at a time, O(n²·c·d) work and
    O(n·max(d, 256)) extra memory (one wide product with W per group); or
    in Gram form Xᵀ Q X, O(n³ + n²(c + d)) work and two extra n×n matrices, when n < c·d (e.g. modular
    arithmetic, c = p classes and d = 2p one-hot inputs).
    """
    if kernel.name == "l1":
        return l1kernel.agop_matrix(X, alpha, M, W, kernel.bandwidth, centered=centered)
    n, d = X.shape
    by_class = n >= alpha.shape[1] * d
    S = (
        _agop_by_class(kernel, X, alpha, W, centered)
        if by_class
        else _agop_gram_form(kernel, X, alpha, W, centered)
    )
    S /= n
    return S if M is None else M @ S @ M


# Classes handled per pass of the class-by-class AGOP: enough that the product with W is a wide GEMM
# that reads the n×n matrix once per group (not once per class: 26 passes over 0.8 GB for letter in
# float64), few enough that the group's n × (classes·d) block stays O(n·d)-sized.
AGOP_GROUP_COLUMNS = 256


def _agop_by_class(kernel: Kernel, X, alpha, W, centered: bool, group_columns=AGOP_GROUP_COLUMNS):
    n, d = X.shape
    W_alpha = W @ alpha if kernel.translation_invariant else None
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


def _agop_gram_form(kernel: Kernel, X, alpha, W, centered: bool) -> torch.Tensor:
    """Σ_ik G_ik G_ikᵀ = Xᵀ Q X with Q = (WW) ∘ ααᵀ − W ∘ Rαᵀ − (W ∘ Rαᵀ)ᵀ + Diag(‖R_i‖²).

    The first term is Σ_ik (Σ_j W_ij α_jk x_j)(Σ_m W_im α_mk x_m)ᵀ = Σ_jm (WW)_jm (α_j·α_m) x_j x_mᵀ
    (W symmetric); the last three appear for translation-invariant kernels only. Centring subtracts
    T Tᵀ / n with T = Σ_i G_i = Xᵀ(R − w∘α) (or Xᵀ(w∘α)), w = W·1. (Derived by the grokking work.)
    """
    n = X.shape[0]
    Q = W @ W
    for start, block in row_blocks(Q):
        block.mul_(alpha[start : start + block.shape[0]] @ alpha.T)
    row_sums = W.sum(1, keepdim=True)
    if kernel.translation_invariant:
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


def _times_M(M, S):
    return S if M is None else M @ S


def update_feature_matrix(options: RFMOptions, statistic: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """The method's update rule applied to its statistic (AGOP for nfa, F for fact / fact-geo).

    Diagonal form: the same rules on the statistic's diagonal, M_kk ← AGOP_kk^s, |F_kk|^s or
    (|F_kk| M_kk)^½ (fact-geo): one weight per coordinate, no rotation of the coordinates.
    """
    if options.form == "diagonal":
        new_M = torch.diag_embed(_diagonal_update(options, statistic.diagonal(), M.diagonal()))
    elif options.method == "nfa":
        new_M = psd_power(statistic, options.nfa_power)
    elif options.method == "fact":
        new_M = psd_power(statistic @ statistic.T, options.fact_power / 2)
    elif options.method == "fact-geo":
        new_M = psd_power(statistic @ M @ M @ statistic.T, 0.25)
    else:
        raise InvalidInput(f"method {options.method!r} learns no features")
    return rescale_feature_matrix(new_M, options.rescale)


def _diagonal_update(options: RFMOptions, statistic: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    if options.method == "nfa":
        return statistic.clamp_min(0).pow(options.nfa_power)
    if options.method == "fact":
        return statistic.abs().pow(options.fact_power)
    if options.method == "fact-geo":
        return (statistic.abs() * weights).sqrt()
    raise InvalidInput(f"method {options.method!r} learns no features")


def rescale_feature_matrix(M: torch.Tensor, rule: str) -> torch.Tensor:
    """Fix F's arbitrary scale, without which M collapses within a few iterations (docs/SPEC.md §4,
    step 4)."""
    if rule == "none":
        return M
    size = M.trace() if rule == "trace" else M.abs().max()
    if not torch.isfinite(size) or size <= 0:
        raise FeatureCollapse("the feature matrix collapsed to zero (the fit is exact or degenerate)")
    scale = M.shape[0] / size if rule == "trace" else 1.0 / size
    return M * scale


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def rfm_path(
    X: torch.Tensor,
    Y: torch.Tensor,
    options: RFMOptions,
    M0: torch.Tensor | None = None,
    first: tuple[torch.Tensor, SolveReport] | None = None,
) -> Iterator[Iterate]:
    """Yield iterates t = 0..options.iters (only t = 0 for the ``laplace`` baseline).

    X (n×d) and Y (n×c) may be float32 or float64; the working precision follows
    ``options.precision``. With ``auto``, float32 is used until a solve is inaccurate, then the rest of
    the path runs in float64. M0 defaults to the identity. ``first`` is the t = 0 solve (α, report)
    when the caller has it already (same X, Y, M0, kernel and ridge): it is used instead of solving
    again, and its precision is kept for the rest of the path. With ``options.scalable`` set, the path
    is nystrom_rfm.nystrom_path (m centres, CG solves) instead, and ``first`` is not used (the Nyström
    t = 0 is solved again: an exact α has no meaning on the centres).
    """
    if options.scalable is not None:
        from .nystrom_rfm import nystrom_path

        yield from nystrom_path(X, Y, options, M0)
        return
    dtype = torch.float64 if options.precision == "float64" else torch.float32
    if first is not None:
        dtype = first[0].dtype
    last_t = 0 if options.method == "laplace" else options.iters
    d = X.shape[1]
    M = torch.eye(d, dtype=torch.float64, device=X.device) if M0 is None else M0.to(torch.float64)
    buffer = None
    t = 0
    while t <= last_t:
        center = X.mean(0, keepdim=True) if options.kernel.translation_invariant else torch.zeros_like(X[:1])
        Xw, Yw, Mw = (X - center).to(dtype), Y.to(dtype), M.to(dtype)
        if buffer is None or buffer.dtype != dtype:
            buffer = None  # release a float32 buffer before allocating its float64 replacement
            buffer = torch.empty(X.shape[0], X.shape[0], dtype=dtype, device=X.device)
        given = t == 0 and first is not None  # the caller's t = 0 solve: nothing in the buffer
        # The L1 kernel's derivative weights are K itself: the solve keeps it for the statistic.
        kept = options.kernel.name == "l1" and not given
        try:
            alpha, report = first if given else _solve(options, Xw, Yw, Mw, buffer, kept)
        except InaccurateSolve:
            if options.precision == "auto" and dtype == torch.float32:
                dtype = torch.float64
                continue
            raise
        predictor = KernelPredictor(options.kernel, Xw, center.to(dtype), Mw, alpha)
        yield Iterate(t, M.clone(), predictor, report)
        if t == last_t:
            break
        W = buffer if kept else options.kernel.derivative_weights(Xw, Mw, out=buffer)
        if options.method == "nfa":
            statistic = agop_matrix(options.kernel, Xw, alpha, Mw, W, centered=options.centered_agop)
        else:
            statistic = fact_matrix(options.kernel, Xw, alpha, Mw, W)
        M = update_feature_matrix(options, statistic.to(torch.float64), M)
        t += 1


def _solve(options: RFMOptions, X, Y, M, buffer, keep: bool = False) -> tuple[torch.Tensor, SolveReport]:
    K = options.kernel.gram(X, X, M, out=buffer)
    try:
        alpha, report = solve_kernel_system(K, Y, options.ridge, keep=keep)
    except NotPositiveDefinite as error:
        raise InaccurateSolve(
            f"kernel matrix is not positive definite in {dtype_name(X.dtype)} ({error})"
        ) from None
    if not report.relative_residual <= options.solve_tol:
        raise InaccurateSolve(
            f"kernel solve in {dtype_name(X.dtype)} has relative residual {report.relative_residual:.1e}"
            f" > {options.solve_tol:.0e}"
        )
    return alpha, report
