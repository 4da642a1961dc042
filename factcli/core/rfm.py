"""The Recursive Feature Machine loop: solve, feature statistic, update rule, rescaling (docs/SPEC.md §4).

``rfm_path`` yields every iterate (t = 0..iters) so callers can score each M_t on held-out data,
log it, or stop early. The loop is the same for every solver: the solver strategy (solvers.py: exact
Cholesky, eigen, Nyström) fits α and computes the statistic its fit allows, under one solve-check
policy; the kernel (kernels.py) owns the mathematics of both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from factcli.choices import FORMS, METHODS, PRECISIONS, RESCALE_RULES
from factcli.core import InvalidInput, defaults

from .kernels import Kernel
from .linalg import SolveReport, psd_power
from .solvers import CholeskySolver, Fit, InaccurateSolve, KernelPredictor, Solver, with_center

__all__ = ["Fit", "InaccurateSolve", "KernelPredictor", "RFMOptions", "rfm_path"]


class FeatureCollapse(InaccurateSolve):
    """The learned feature matrix is zero or not finite: no ridge or precision brings it back."""


@dataclass(frozen=True)
class RFMOptions:
    """Everything that defines one RFM path. ``method='laplace'`` means no feature learning.

    The defaults are core/defaults.py's, as are the configs' (schema/rfm.py) and the estimators'.
    """

    kernel: Kernel = field(default_factory=Kernel)
    method: str = defaults.METHOD
    ridge: float = defaults.RIDGE
    iters: int = defaults.ITERS
    nfa_power: float = defaults.NFA_POWER  # NFA: M ← AGOP^s
    fact_power: float = defaults.FACT_POWER  # FACT: M ← |F|^s, |F| = (FFᵀ)^½ (s = 2: M ← FFᵀ)
    form: str = defaults.FORM  # full M, or diagonal (one weight per coordinate: the statistic's diagonal)
    centered_agop: bool = defaults.CENTERED_AGOP
    rescale: str = defaults.RESCALE  # trace: tr M = d; max: max |M_ij| = 1; none
    precision: str = defaults.PRECISION  # auto: float32, redone in float64 when the solve is inaccurate
    solve_tol: float = (
        defaults.SOLVE_TOL
    )  # largest accepted relative residual of a solve (solvers.fit_checked)
    solver: Solver = field(default_factory=CholeskySolver)  # exact, eigen or Nyström (solvers.py)

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

    @property
    def last_t(self) -> int:
        """The last iterate of a path: 0 for the ``laplace`` baseline (no feature learning)."""
        return 0 if self.method == "laplace" else self.iters


@dataclass
class Iterate:
    """Iterate t of a path: the feature matrix M_t, the predictor fitted with it, and its solve."""

    t: int
    M: torch.Tensor
    predictor: KernelPredictor
    solve: SolveReport


def fact_matrix(kernel: Kernel, X, alpha, M, W) -> torch.Tensor:
    """F = (1/n) Σ_i J_iᵀ α_i x_iᵀ over the training rows (the kernel's closed form; W overwritten)."""
    return kernel.fact_matrix(X, alpha, M, W)


def agop_matrix(kernel: Kernel, X, alpha, M, W, centered: bool = False) -> torch.Tensor:
    """AGOP = (1/n) Σ_i J_iᵀ J_i over the training rows (the kernel's closed form)."""
    return kernel.agop_matrix(X, alpha, M, W, centered=centered)


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
    first: Fit | None = None,
) -> Iterator[Iterate]:
    """Yield iterates t = 0..options.last_t.

    X (n×d) and Y (n×c) may be float32 or float64; the working precision follows
    ``options.precision`` and the solver's check (solvers.fit_checked). M0 defaults to the identity.
    ``first`` is the t = 0 fit when the caller has it already (made by the same solver on the same
    rows, centred as here, with M0, the kernel and the ridge): it is used instead of solving again,
    and its precision is kept for the rest of the path.
    """
    kernel = options.kernel
    center = X.mean(0, keepdim=True) if kernel.translation_invariant else torch.zeros_like(X[:1])
    work = options.solver.start(X - center, Y, options.precision)
    M = torch.eye(X.shape[1], dtype=torch.float64, device=X.device) if M0 is None else M0.to(torch.float64)
    for t in range(options.last_t + 1):
        if t == 0 and first is not None:
            fit = first
            work.adopt(first)
        else:
            fit = work.fit(kernel, M, options.ridge, options.solve_tol)
        fit = with_center(fit, center)
        yield Iterate(t, M.clone(), fit.predictor, fit.report)
        if t == options.last_t:
            break
        statistic = work.statistic(kernel, fit, options.method, options.centered_agop)
        M = update_feature_matrix(options, statistic.to(torch.float64), M)
