"""How an RFM path solves its kernel system: one strategy object per solver, one accuracy policy for all.

- ``CholeskySolver``: the exact n×n solve, factored in place (linalg.solve_kernel_system). One n×n
  buffer per path holds the kernel matrix, its factor, then the derivative weights.
- ``EigenSolver``: the exact solve too, but a grid's ridges of one kernel matrix come from one
  eigendecomposition (spectral.py): two n×n matrices, every ridge at O(n²c).
- ``NystromSolver``: m centres and preconditioned conjugate gradients (nystrom.py): never n×n.

A strategy's ``start(X, Y)`` returns the path's working state (a ``Work``), which fits α for a given
M and ridge and computes the method's statistic for that fit. Whatever the strategy, ``fit_checked``
is the one solve-check policy: a solve whose relative residual is above ``solve_tol`` (or that cannot
be factored) is redone with the strategy's more accurate setting (float64; for CG, also more steps),
which then holds for the rest of the path; if it is still inaccurate the solve is refused with
``InaccurateSolve``, never scored. The report of every accepted solve (residual, precision, CG steps)
goes into the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from . import InvalidInput, defaults, spectral
from .kernels import CENTER_BLOCK_ELEMENTS, Kernel
from .linalg import NotPositiveDefinite, SolveReport, dtype_name, solve_kernel_system
from .nystrom import CGReport, NystromSystem, default_centers, nystrom_solve, sample_centers

# CG steps of a Nyström solve redone because its residual was above solve_tol: this many times more.
CG_RETRY_FACTOR = 4
# Kernel distances square the coordinates (and sum d of them): float32 overflows beyond about 1e19,
# float64 beyond about 1e154. Above the first a path starts in float64; above the second it is refused.
FLOAT32_LARGEST_FEATURE = 1e17
FLOAT64_LARGEST_FEATURE = 1e150


class InaccurateSolve(ArithmeticError):
    """The kernel system is singular or too ill-conditioned at this ridge, even in float64."""


@dataclass
class KernelPredictor:
    """f(x) = Σ_j α_j k_M(x − s, p_j − s) over the points p_j (the training rows, or Nyström centres);
    s centres the data for accuracy. ``fitted``: f at the training rows when the solve gives it
    (Nyström); None for an exact solve, whose Kα = Y − λα needs no kernel pass."""

    kernel: Kernel
    points: torch.Tensor  # centred training rows or centres, in the solve's precision
    center: torch.Tensor
    M: torch.Tensor
    alpha: torch.Tensor
    fitted: torch.Tensor | None = None  # n×c

    def __call__(self, X_query: torch.Tensor) -> torch.Tensor:
        query = X_query.to(self.points) - self.center
        return self.kernel.predict(query, self.points, self.M, self.alpha.to(self.points))

    def training_outputs(self, Y: torch.Tensor, ridge: float) -> torch.Tensor:
        """f at the training points, in Y's precision (exact solve: Kα = Y − λα, no kernel pass)."""
        if self.fitted is None:
            return Y - ridge * self.alpha.to(Y)
        return self.fitted.to(Y)


@dataclass
class Fit:
    """One accepted solve: its α, its report and the predictor it defines."""

    alpha: torch.Tensor
    report: SolveReport
    predictor: KernelPredictor


class Work:
    """A path's working state for one strategy (made by ``Solver.start``)."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor, precision: str):
        self.X, self.Y, self.precision = X, Y, precision
        self.dtype = torch.float64 if precision == "float64" else torch.float32
        self._converted: dict = {}
        largest = float(X.abs().max()) if X.numel() else 0.0
        if largest > FLOAT64_LARGEST_FEATURE:
            raise InvalidInput(
                f"feature values up to {largest:.2g} overflow the kernel's squared distances even in "
                "float64; scale the features (e.g. standardize them) before fitting"
            )
        if largest > FLOAT32_LARGEST_FEATURE and precision == "auto":
            self.dtype = torch.float64  # float32 would overflow: not a retry, the start
        elif largest > FLOAT32_LARGEST_FEATURE and precision == "float32":
            raise InvalidInput(
                f"feature values up to {largest:.2g} overflow float32 kernel distances; "
                "use precision float64 (or auto), or scale the features"
            )

    def rows(self) -> torch.Tensor:
        """The training rows in the working precision (one copy per precision, shared by its fits)."""
        if self.dtype not in self._converted:
            self._converted[self.dtype] = self.X.to(self.dtype)
        return self._converted[self.dtype]

    def adopt(self, fit: Fit) -> None:
        """Continue a path from a fit made earlier by the same strategy (a grid's stage 0)."""
        self.dtype = fit.predictor.points.dtype

    def fit(self, kernel: Kernel, M: torch.Tensor, ridge: float, tol: float) -> Fit:
        """One solve, checked: (α, report) whose residual is within ``tol``, or InaccurateSolve."""
        return fit_checked(self, lambda: self._solve(kernel, M, ridge), tol)

    def fit_ridges(self, kernel: Kernel, M: torch.Tensor, ridges, tol: float) -> dict:
        """ridge -> Fit, or the InaccurateSolve that refused it, for every ridge of one kernel matrix.

        The same policy as ``fit``, applied to the ridges together: every ridge in the first
        precision, then the ridges it could not solve accurately in the more accurate setting.
        """
        out, pending = {}, list(ridges)
        while True:
            fixed, solve = _Fixed(self.dtype), self._ridge_solver(kernel, M)
            for ridge in pending:
                try:
                    out[ridge] = fit_checked(fixed, lambda ridge=ridge, solve=solve: solve(ridge), tol)
                except InaccurateSolve as error:
                    out[ridge] = error
            pending = [ridge for ridge in pending if isinstance(out[ridge], InaccurateSolve)]
            if not pending or not self.escalate():
                return out

    def _ridge_solver(self, kernel: Kernel, M: torch.Tensor) -> Callable[[float], Fit]:
        return lambda ridge: self._solve(kernel, M, ridge)

    def escalate(self) -> bool:
        """Switch to the more accurate setting for the rest of the path; False when there is none."""
        if self.precision == "auto" and self.dtype == torch.float32:
            self.dtype = torch.float64
            return True
        return False

    def statistic(self, kernel: Kernel, fit: Fit, method: str, centered: bool) -> torch.Tensor:
        raise NotImplementedError

    def _solve(self, kernel: Kernel, M: torch.Tensor, ridge: float) -> Fit:
        raise NotImplementedError


def fit_checked(work: Work, solve: Callable[[], Fit], tol: float) -> Fit:
    """The solve-check policy (see the module docstring)."""
    while True:
        try:
            fit = solve()
            if fit.report.relative_residual <= tol:
                return fit
            problem = (
                f"kernel solve in {fit.report.precision} has relative residual"
                f" {fit.report.relative_residual:.1e} > {tol:.0e}{_steps(fit.report)}"
            )
        except NotPositiveDefinite as error:
            problem = f"kernel matrix is not positive definite in {dtype_name(work.dtype)} ({error})"
        if not work.escalate():
            raise InaccurateSolve(problem)


def _steps(report: SolveReport) -> str:
    return f" after {report.iterations} CG steps" if isinstance(report, CGReport) else ""


# ------------------------------------------------------------------------------- exact


@dataclass(frozen=True)
class CholeskySolver:
    """The exact solve (K + λI)α = Y, in place (one n×n buffer per path)."""

    name = "exact"

    def start(self, X: torch.Tensor, Y: torch.Tensor, precision: str) -> Work:
        return ExactWork(X, Y, precision)


@dataclass(frozen=True)
class EigenSolver(CholeskySolver):
    """The exact solve; a grid's ridges of one kernel matrix from one eigendecomposition."""

    def start(self, X, Y, precision):
        return EigenWork(X, Y, precision)


class ExactWork(Work):
    def __init__(self, X, Y, precision):
        super().__init__(X, Y, precision)
        self.buffer: torch.Tensor | None = None
        self.holds: tuple | None = None  # (kernel, M) whose Gram matrix the buffer holds intact

    def _working(self, M):
        X = self.rows()
        if self.buffer is None or self.buffer.dtype != self.dtype:
            self.buffer = None  # release a float32 buffer before allocating its float64 replacement
            self.buffer = torch.empty(X.shape[0], X.shape[0], dtype=self.dtype, device=X.device)
            self.holds = None
        return X, M.to(self.dtype)

    def _solve(self, kernel, M, ridge):
        X, Mw = self._working(M)
        if self.holds is None or self.holds[0] != kernel or not torch.equal(self.holds[1], Mw):
            kernel.gram(X, X, Mw, out=self.buffer)
        self.holds = None  # until the solve has restored it
        # Kept (restored in O(n²)) for the next ridge, and for a kernel whose weights are K itself.
        alpha, report = solve_kernel_system(self.buffer, self.Y.to(self.dtype), ridge, keep=True)
        self.holds = (kernel, Mw)
        return Fit(alpha, report, KernelPredictor(kernel, X, None, Mw, alpha))

    def statistic(self, kernel, fit, method, centered):
        X, M = fit.predictor.points, fit.predictor.M
        if self.buffer is None or self.buffer.dtype != X.dtype:
            self.buffer = torch.empty(X.shape[0], X.shape[0], dtype=X.dtype, device=X.device)
            self.holds = None
        kept = kernel.weights_are_gram and self.holds is not None and self.holds[0] == kernel
        kept = kept and torch.equal(self.holds[1], M)
        W = self.buffer if kept else kernel.derivative_weights(X, M, out=self.buffer)
        self.holds = None  # the statistic overwrites W
        if method == "nfa":
            return kernel.agop_matrix(X, fit.alpha, M, W, centered=centered)
        return kernel.fact_matrix(X, fit.alpha, M, W)


class EigenWork(ExactWork):
    """Every ridge of one kernel matrix from one eigendecomposition (per precision)."""

    def _ridge_solver(self, kernel, M):
        X, Mw = self._working(M)
        spectrum = spectral.decompose(kernel.gram(X, X, Mw), self.Y.to(self.dtype))

        def solve(ridge):
            alpha, report = spectral.solve(spectrum, ridge)
            return Fit(alpha, report, KernelPredictor(kernel, X, None, Mw, alpha))

        return solve


class _Fixed(Work):
    """A precision with nothing to escalate to (the eigen route escalates all its ridges together)."""

    def __init__(self, dtype):
        self.dtype, self.precision = dtype, "fixed"

    def escalate(self):
        return False


# ------------------------------------------------------------------------------- Nyström


@dataclass(frozen=True)
class NystromSolver:
    """How the Nyström path solves. ``centers`` None: default_centers(n)."""

    centers: int | None = None
    seed: int = 0
    cg_tol: float = 1e-4  # relative residual of the preconditioned system, worst output column
    cg_max_iters: int = defaults.CG_MAX_ITERS
    cache_bytes: float = 2 * 2**30  # keep the n×m kernel blocks between CG steps when they fit here
    block_elements: int = CENTER_BLOCK_ELEMENTS
    # (stage, done, total) after each CG step and each pass; for progress bars, never for results.
    progress: Callable[[str, int, int], None] | None = field(default=None, compare=False)

    name = "nystrom"

    def __post_init__(self) -> None:
        if self.centers is not None and self.centers < 1:
            raise InvalidInput(f"the number of centres must be at least 1, got {self.centers}")
        if not self.cg_tol > 0 or self.cg_max_iters < 1:
            raise InvalidInput("cg_tol must be positive and cg_max_iters at least 1")

    def centers_for(self, n: int) -> int:
        m = default_centers(n) if self.centers is None else self.centers
        if m > n:
            raise InvalidInput(f"{m} centres but only {n} training rows; use rfm.centers <= {n}")
        return m

    def start(self, X, Y, precision):
        return NystromWork(X, Y, precision, self)


class NystromWork(Work):
    """The centres are rows of the training data drawn once per path with the seed, so every M_t is
    learned with the same centres; each solve starts from the previous one's α (same kernel)."""

    def __init__(self, X, Y, precision, solver: NystromSolver):
        super().__init__(X, Y, precision)
        self.solver = solver
        self.max_iters = solver.cg_max_iters
        self.center_rows = sample_centers(self.rows(), solver.centers_for(X.shape[0]), solver.seed)
        self.previous: Fit | None = None

    def escalate(self):
        if self.max_iters > self.solver.cg_max_iters:
            return False
        self.max_iters *= CG_RETRY_FACTOR
        if self.precision == "auto":
            self.dtype = torch.float64
        return True

    def adopt(self, fit):
        super().adopt(fit)
        self.previous = fit

    def centers(self) -> torch.Tensor:
        """The centres in the working precision (one copy per precision, shared by its fits)."""
        key = ("centers", self.dtype)
        if key not in self._converted:
            self._converted[key] = self.rows()[self.center_rows]
        return self._converted[key]

    def _solve(self, kernel, M, ridge):
        X, Mw, centers = self.rows(), M.to(self.dtype), self.centers()
        previous = self.previous
        warm = previous is not None and previous.predictor.kernel == kernel
        solver = self.solver
        alpha, fitted, report = nystrom_solve(
            kernel,
            X,
            self.Y.to(self.dtype),
            centers,
            Mw,
            ridge,
            tol=solver.cg_tol,
            max_iters=self.max_iters,
            initial=previous.alpha if warm else None,
            block_elements=solver.block_elements,
            cache_bytes=solver.cache_bytes,
            progress=solver.progress,
        )
        return Fit(alpha, report, KernelPredictor(kernel, centers, None, Mw, alpha, fitted))

    def fit(self, kernel, M, ridge, tol):
        fit = super().fit(kernel, M, ridge, tol)
        self.previous = fit
        return fit

    def _ridge_solver(self, kernel, M):
        """Every ridge from one NystromSystem (K_mm's factor, the kept kernel rows, K_nmᵀY); no warm
        start across ridges: each is a path's own t = 0."""
        X, Mw, centers, solver = self.rows(), M.to(self.dtype), self.centers(), self.solver
        system = NystromSystem(
            kernel, X, self.Y.to(self.dtype), centers, Mw, solver.block_elements, solver.cache_bytes
        )

        def solve(ridge):
            alpha, fitted, report = system.solve(
                ridge, tol=solver.cg_tol, max_iters=self.max_iters, progress=solver.progress
            )
            return Fit(alpha, report, KernelPredictor(kernel, centers, None, Mw, alpha, fitted))

        return solve

    def statistic(self, kernel, fit, method, centered):
        X = self.rows()
        predictor, block = fit.predictor, self.solver.block_elements
        if method == "nfa":
            result = kernel.center_agop(X, predictor.points, fit.alpha, predictor.M, centered, block)
        else:
            result = kernel.center_fact_matrix(X, self.Y, predictor.points, fit.alpha, predictor.M, block)
        if self.solver.progress is not None:
            self.solver.progress("statistic", 1, 1)
        return result.matrix


def with_center(fit: Fit, center: torch.Tensor) -> Fit:
    """The fit with its predictor's data centre s set (the work ran on X − s)."""
    return replace(fit, predictor=replace(fit.predictor, center=center.to(fit.predictor.points)))


Solver = CholeskySolver | NystromSolver
