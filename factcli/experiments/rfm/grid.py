"""Selection over kernels, bandwidths, ridges and row normalization, then RFM paths (docs/SPEC.md §5).

Two stages on the tuning split (rules in benchmarks/README.md, fixed before any run):

1. ``kernel_stage``: kernel ridge regression with M = I at every (normalization, bandwidth, ridge);
   one kernel matrix per (normalization, bandwidth) serves every ridge, and the validation Gram matrix
   is built once too. Shared by every method using that kernel; its best point is the tuned KRR.
2. ``feature_stage``: the RFM path t = 1..T from the best stage-0 (bandwidth, normalization) (or from
   every one), for every ridge, starting from stage 0's own t = 0 solve.

With ``options.scalable`` (rfm.solver resolved to nystrom, experiments/common/scalable.py) both stages
run on the Nyström path: stage 0 is the path's t = 0 at every grid point (m centres, CG solves) and no
n×n matrix is built; the kernels are those it has (nystrom_rfm.NYSTROM_KERNELS; auto: laplace only).

``choose`` picks the best validation score; equal scores go to the simplest candidate (fewer
iterations, larger ridge, larger bandwidth, no normalization, kernel order), never to grid order.
The ``noise`` rule keeps t = 0 unless a t > 0 candidate beats it by more than its standard error.

Pure computation (tensors in, numbers out): no files, no printing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch

from factcli.choices import (
    AUTO_KERNEL,
    AUTO_KERNELS,
    BANDWIDTH_UNITS,
    RIDGE_SOLVERS,
    SEARCHES,
    SELECTION_RULES,
)
from factcli.core import InvalidInput, spectral
from factcli.core.kernels import Kernel, predict
from factcli.core.linalg import NotPositiveDefinite, SolveReport, dtype_name, solve_kernel_system
from factcli.core.nystrom_rfm import NYSTROM_KERNELS
from factcli.core.rfm import InaccurateSolve, RFMOptions, rfm_path

from .protocol import FoldResult, Task, fit_fold, normalize_rows

KERNEL_ORDER = ("laplace", "l1", "gaussian", "quadratic")  # the tie rule's last key, across kernels

MEDIAN_ROWS = 1000  # rows (at an even stride) the median pairwise distance is estimated on


@dataclass(frozen=True)
class GridSpec:
    bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    bandwidth_unit: str = "median"  # median: L = s × median pairwise distance; absolute: L = s
    ridges: tuple[float, ...] = (10.0, 1.0, 0.1, 0.01, 0.001)
    normalizations: tuple[bool, ...] = (False, True)
    search: str = "best"
    rule: str = "best"
    solver: str = "cholesky"  # stage 0: a Cholesky per ridge, or one eigendecomposition for all

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.bandwidth_unit, BANDWIDTH_UNITS, "bandwidth unit"),
            (self.search, SEARCHES, "search"),
            (self.rule, SELECTION_RULES, "selection rule"),
            (self.solver, RIDGE_SOLVERS, "stage-0 solver"),
        ):
            if value not in allowed:
                raise InvalidInput(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise InvalidInput("bandwidths must be a non-empty list of positive numbers")
        if not self.ridges or min(self.ridges) < 0:
            raise InvalidInput("ridges must be a non-empty list of non-negative numbers")


@dataclass(frozen=True)
class Candidate:
    kernel: str
    bandwidth: float
    normalize: bool
    ridge: float
    iteration: int
    val_score: float
    val_stderr: float
    train_score: float

    def simplicity(self) -> tuple:
        """Smaller is simpler: the tie rule's order."""
        return (self.iteration, -self.ridge, -self.bandwidth, self.normalize, KERNEL_ORDER.index(self.kernel))

    def row(self, metric: str) -> dict:
        return {
            "kernel": self.kernel,
            "bandwidth": self.bandwidth,
            "normalize_rows": self.normalize,
            "ridge": self.ridge,
            "iteration": self.iteration,
            f"train_{metric}": self.train_score,
            f"val_{metric}": self.val_score,
        }


def best_of(task: Task, candidates) -> Candidate:
    """Best validation score; equal scores go to the simplest candidate."""
    sign = -1.0 if task.kind == "classification" else 1.0
    return min(candidates, key=lambda c: (sign * c.val_score, c.simplicity()))


def choose(task: Task, candidates, rule: str = "best") -> Candidate:
    best = best_of(task, candidates)
    if rule == "noise" and best.iteration > 0:
        base = best_of(task, [c for c in candidates if c.iteration == 0])
        gain = (
            best.val_score - base.val_score
            if task.kind == "classification"
            else base.val_score - best.val_score
        )
        if gain <= base.val_stderr:
            return base
    return best


def score_with_error(task: Task, outputs: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The validation score and its standard error: √(p(1−p)/n) for accuracy, sd/√n for the MSE."""
    if task.kind == "classification":
        p = task.score(outputs, y)
        return p, math.sqrt(max(p * (1 - p), 0.0) / max(1, len(y)))
    errors = ((outputs.double().cpu() - task.targets(y.cpu())) ** 2).mean(1)
    return float(errors.mean()), float(errors.std() / math.sqrt(max(1, len(y)))) if len(y) > 1 else 0.0


def median_distance(kernel_name: str, X: torch.Tensor, max_rows: int = MEDIAN_ROWS) -> float:
    """Median pairwise distance (L1 for the l1 kernel, L2 otherwise) on ≤ max_rows rows at an even stride."""
    rows = X[:: max(1, math.ceil(X.shape[0] / max_rows))].double()
    distances = torch.cdist(rows, rows, p=1.0 if kernel_name == "l1" else 2.0)
    pairs = distances[torch.triu_indices(len(rows), len(rows), 1).unbind()]
    positive = pairs[pairs > 0]
    return float(positive.median()) if len(positive) else 1.0  # all rows equal: any scale will do


def bandwidth_values(kernel_name: str, spec: GridSpec, X: torch.Tensor) -> list[float]:
    if spec.bandwidth_unit == "absolute":
        return [float(s) for s in spec.bandwidths]
    scale = median_distance(kernel_name, X)
    return [float(s) * scale for s in spec.bandwidths]


@dataclass
class KernelStage:
    """Stage 0 for one kernel: every candidate, and every solve (reused as the paths' t = 0)."""

    kernel: str
    candidates: list[Candidate]
    solves: dict  # (bandwidth, normalize, ridge) -> (α, SolveReport), α on the centred training rows
    precisions: set = field(default_factory=set)
    seconds: float = 0.0
    unsolved: int = 0  # grid points no precision could solve accurately (not candidates)


def _checked(alpha: torch.Tensor, report: SolveReport, tol: float) -> tuple[torch.Tensor, SolveReport]:
    if not report.relative_residual <= tol:
        raise InaccurateSolve(
            f"kernel solve in {report.precision} has relative residual"
            f" {report.relative_residual:.1e} > {tol:.0e}"
        )
    return alpha, report


def _solve_all_ridges(
    kernel: Kernel, A: torch.Tensor, Y: torch.Tensor, ridges, tol: float, solver: str
) -> dict:
    """ridge -> (α, report), or the InaccurateSolve it raised.

    Cholesky: one n×n buffer holding the Gram matrix, factored in place for each ridge and restored
    from the triangle the factorization leaves untouched (O(n²), against O(n²d) to make it again:
    the L1 kernel's is a distance pass without a GEMM); the peak stays one n×n matrix, as an RFM
    iteration's. Eigen: K and its eigenvectors, two n×n matrices.
    """
    out = {}
    if solver == "eigen":
        spectrum = spectral.decompose(kernel.gram(A, A, None), Y)
    else:
        buffer = torch.empty(A.shape[0], A.shape[0], dtype=A.dtype, device=A.device)
        intact = False
    for ridge in ridges:
        try:
            if solver == "eigen":
                out[ridge] = _checked(*spectral.solve(spectrum, ridge), tol)
            else:
                if not intact:
                    kernel.gram(A, A, None, out=buffer)
                intact = False  # until the solve has restored it
                alpha, report = solve_kernel_system(buffer, Y, ridge, keep=True)
                intact = True
                out[ridge] = _checked(alpha, report, tol)
        except NotPositiveDefinite as error:
            out[ridge] = InaccurateSolve(
                f"kernel matrix is not positive definite in {dtype_name(A.dtype)} ({error})"
            )
        except InaccurateSolve as error:
            out[ridge] = error
    return out


def _nystrom_points(task: Task, kernel: Kernel, ridges, options: RFMOptions, A, B, Y, y_train, y_val) -> dict:
    """ridge -> (candidate scores, (α, report)) from the Nyström path's t = 0 (A, B uncentred), or the
    InaccurateSolve it raised."""
    out = {}
    for ridge in ridges:
        point = replace(options, kernel=kernel, ridge=float(ridge), method="laplace")
        try:
            (iterate,) = rfm_path(A, Y, point)
        except InaccurateSolve as error:
            out[ridge] = error
            continue
        val, stderr = score_with_error(task, iterate.predictor(B), y_val)
        train = task.score(iterate.predictor.training_outputs(Y, ridge), y_train)
        out[ridge] = ((val, stderr, train), (iterate.predictor.alpha, iterate.solve))
    return out


def kernel_stage(
    task: Task,
    kernel_name: str,
    spec: GridSpec,
    options: RFMOptions,
    X_train,
    y_train,
    X_val,
    y_val,
    progress=None,
) -> KernelStage:
    """KRR with M = I at every grid point; ``options`` gives precision and solve tolerance.

    The validation predictions of every ridge of one (normalization, bandwidth) come from one blockwise
    pass over the validation Gram matrix, with the ridges' α side by side. With ``options.scalable``
    every point is the Nyström path's t = 0 instead (its α lives on the centres; not reused).
    """
    started = time.perf_counter()
    Y = task.targets(y_train)
    if options.scalable is not None:
        candidates, solves, precisions, unsolved = [], {}, set(), 0
        for normalize in spec.normalizations:
            A, B = normalize_rows(X_train, normalize), normalize_rows(X_val, normalize)
            for bandwidth in bandwidth_values(kernel_name, spec, A - A.mean(0, keepdim=True)):
                if progress is not None:
                    progress.stage(f"stage 0: {kernel_name} L={bandwidth:.3g}, x/|x|={normalize}")
                kernel = Kernel(kernel_name, bandwidth)
                points = _nystrom_points(task, kernel, spec.ridges, options, A, B, Y, y_train, y_val)
                for ridge, point in points.items():
                    if isinstance(point, InaccurateSolve):
                        unsolved += 1
                        continue
                    (val, stderr, train), solve = point
                    solves[(bandwidth, normalize, ridge)] = solve
                    precisions.add(solve[1].precision)
                    candidates.append(
                        Candidate(kernel_name, bandwidth, normalize, float(ridge), 0, val, stderr, train)
                    )
                    if progress is not None:
                        progress.iterate(0, f"ridge={ridge:g}, validation {task.metric} {val:.4f}")
        if not candidates:
            raise InaccurateSolve(f"no {kernel_name} Nyström solve of the grid was accurate")
        return KernelStage(
            kernel_name, candidates, solves, precisions, time.perf_counter() - started, unsolved
        )
    dtypes = [torch.float64] if options.precision == "float64" else [torch.float32, torch.float64]
    candidates, solves, precisions, unsolved = [], {}, set(), 0
    for normalize in spec.normalizations:
        A, B = normalize_rows(X_train, normalize), normalize_rows(X_val, normalize)
        center = A.mean(0, keepdim=True)  # as rfm_path centres: the same α, reusable as its t = 0
        A, B = A - center, B - center
        for bandwidth in bandwidth_values(kernel_name, spec, A):
            if progress is not None:
                progress.stage(f"stage 0: {kernel_name} L={bandwidth:.3g}, x/|x|={normalize}")
            kernel = Kernel(kernel_name, bandwidth)
            pending = list(spec.ridges)
            for dtype in dtypes:  # auto: float32 first, float64 for the ridges it could not solve
                if not pending:
                    break
                Aw = A.to(dtype)
                solved = _solve_all_ridges(kernel, Aw, Y.to(dtype), pending, options.solve_tol, spec.solver)
                done = [r for r in pending if not isinstance(solved[r], InaccurateSolve)]
                if done:
                    alphas = torch.cat([solved[r][0] for r in done], dim=1)
                    outputs = predict(kernel, B.to(dtype), Aw, None, alphas).split(Y.shape[1], dim=1)
                for ridge, output in zip(done, outputs if done else [], strict=True):
                    alpha, report = solved[ridge]
                    val, stderr = score_with_error(task, output, y_val)
                    train = task.score(Y - ridge * alpha.to(Y), y_train)
                    solves[(bandwidth, normalize, ridge)] = (alpha, report)
                    precisions.add(report.precision)
                    candidates.append(
                        Candidate(kernel_name, bandwidth, normalize, float(ridge), 0, val, stderr, train)
                    )
                pending = [r for r in pending if r not in done]
            unsolved += len(pending)
    if not candidates:
        raise InaccurateSolve(f"no {kernel_name} kernel solve of the grid was accurate, even in float64")
    seconds = time.perf_counter() - started
    return KernelStage(kernel_name, candidates, solves, precisions, seconds, unsolved)


@dataclass
class GridSelection:
    """The chosen candidate, its M, every candidate scored, and how selection went."""

    chosen: Candidate
    M: torch.Tensor
    candidates: list[Candidate]
    precisions: set
    seconds: float
    failures: int = 0  # unsolvable stage-0 points + paths stopped early by an inaccurate solve
    form: str = "full"  # the form of M along the chosen path (relearned so on every fold)


def select_krr(task: Task, stage: KernelStage, d: int) -> GridSelection:
    chosen = best_of(task, stage.candidates)
    eye = torch.eye(d, dtype=torch.float64)
    return GridSelection(
        chosen, eye, list(stage.candidates), set(stage.precisions), stage.seconds, stage.unsolved
    )


def feature_stage(
    task: Task,
    stage: KernelStage,
    spec: GridSpec,
    options: RFMOptions,
    X_train,
    y_train,
    X_val,
    y_val,
    progress=None,
) -> GridSelection:
    """RFM paths (options.method) from stage 0's best setting(s), for every ridge; then ``choose``."""
    started = time.perf_counter()
    Y = task.targets(y_train)
    best0 = best_of(task, stage.candidates)
    settings = sorted({(c.bandwidth, c.normalize) for c in stage.candidates})
    starts = [(best0.bandwidth, best0.normalize)] if spec.search == "best" else settings
    candidates, Ms, precisions, failed = list(stage.candidates), {}, set(stage.precisions), 0
    for bandwidth, normalize in starts:
        A, B = normalize_rows(X_train, normalize), normalize_rows(X_val, normalize)
        for ridge in spec.ridges:
            first = stage.solves.get((bandwidth, normalize, float(ridge)))
            if first is None:
                continue  # stage 0 could not solve this point in any precision
            path_options = replace(options, kernel=Kernel(stage.kernel, bandwidth), ridge=float(ridge))
            if progress is not None:
                progress.stage(f"path: {stage.kernel} L={bandwidth:.3g}, ridge={ridge:g}, x/|x|={normalize}")
            try:
                for iterate in rfm_path(A, Y, path_options, first=first):
                    if iterate.t == 0:
                        continue  # stage 0's own candidate
                    val, stderr = score_with_error(task, iterate.predictor(B), y_val)
                    train = task.score(iterate.predictor.training_outputs(Y, ridge), y_train)
                    if progress is not None:
                        progress.iterate(iterate.t, f"validation {task.metric} {val:.4f}")
                    precisions.add(iterate.solve.precision)
                    candidate = Candidate(
                        stage.kernel, bandwidth, normalize, float(ridge), iterate.t, val, stderr, train
                    )
                    candidates.append(candidate)
                    Ms[candidate] = iterate.M
            except InaccurateSolve:
                failed += 1
    chosen = choose(task, candidates, spec.rule)
    M = Ms.get(chosen, torch.eye(X_train.shape[1], dtype=torch.float64))
    seconds = stage.seconds + time.perf_counter() - started
    return GridSelection(chosen, M, candidates, precisions, seconds, stage.unsolved + failed, options.form)


def options_for_kernel(options: RFMOptions, kernel: str, auto: bool) -> RFMOptions:
    """The options a path with ``kernel`` runs with. Selected kernels (auto): the L1 kernel's M is
    diagonal (docs/SPEC.md §4: a full W rotates away its per-coordinate structure), L2's as configured."""
    form = "diagonal" if auto and kernel == "l1" else options.form
    return replace(options, kernel=Kernel(kernel, options.kernel.bandwidth), form=form)


def select(
    task: Task,
    kernel_name: str,
    spec: GridSpec,
    options: RFMOptions,
    X_train,
    y_train,
    X_val,
    y_val,
    stage_of=None,
    progress=None,
) -> GridSelection:
    """The whole selection for ``options.method`` (``laplace``: KRR, t = 0 only).

    ``kernel_name`` may be ``auto``: stage 0 then runs for every kernel of AUTO_KERNELS, the best
    stage-0 point decides the kernel, and only that kernel's paths are run; the other kernels'
    stage-0 points stay candidates (none can win: their best already lost). ``stage_of(kernel)``
    gives a stage computed earlier (shared by methods); by default it is computed here. On the
    Nyström path (``options.scalable``) auto means the AUTO_KERNELS it has (NYSTROM_KERNELS).
    """
    if stage_of is None:

        def stage_of(kernel):
            return kernel_stage(task, kernel, spec, options, X_train, y_train, X_val, y_val, progress)

    auto = kernel_name == AUTO_KERNEL
    kernels = AUTO_KERNELS if auto else (kernel_name,)
    if options.scalable is not None and auto:
        kernels = tuple(k for k in kernels if k in NYSTROM_KERNELS)
    stages = [stage_of(kernel) for kernel in kernels]
    best0 = best_of(task, [c for stage in stages for c in stage.candidates])
    stage = next(stage for stage in stages if stage.kernel == best0.kernel)
    if options.method == "laplace":
        selection = select_krr(task, stage, X_train.shape[1])
    else:
        path_options = options_for_kernel(options, best0.kernel, auto)
        selection = feature_stage(task, stage, spec, path_options, X_train, y_train, X_val, y_val, progress)
    for other in stages:
        if other is not stage:
            selection.candidates += other.candidates
            selection.seconds += other.seconds
            selection.failures += other.unsolved
            selection.precisions |= other.precisions
    return selection


def evaluate(
    task: Task,
    options: RFMOptions,
    selection: GridSelection,
    protocol: str,
    X_train,
    y_train,
    X_test,
    y_test,
    progress=None,
) -> FoldResult:
    """One fold: strict relearns M_t on the fold's training part; paper reuses the selected M."""
    chosen = selection.chosen
    fit = replace(
        options, kernel=Kernel(chosen.kernel, chosen.bandwidth), ridge=chosen.ridge, form=selection.form
    )
    # With t = 0 both protocols are one solve with the selected M (the identity): no path to relearn.
    how = "paper" if chosen.iteration == 0 else protocol
    parts = (X_train, y_train, X_test, y_test)
    return fit_fold(task, fit, chosen.normalize, chosen.iteration, selection.M, how, *parts, progress)
