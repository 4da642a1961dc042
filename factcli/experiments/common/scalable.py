"""Exact or Nyström: which solver an RFM fit uses, what it will cost, and where a long fit is.

``rfm.solver=auto`` keeps the exact n×n solve up to ``rfm.exact_max_rows`` training rows (and while its
matrix fits in memory) and switches to Nyström centres above that. The rule is a fixed size, not a
measured speed, so the same command gives the same numbers on every machine; the time estimate is
made (and logged) before the heavy work starts, from a short timing of this machine's kernel blocks.
"""

from __future__ import annotations

import functools
import logging
import math
import statistics
import time
from dataclasses import dataclass, replace

import torch

from factcli.core.kernels import PREDICT_BLOCK_ELEMENTS, Kernel
from factcli.core.nystrom import worth_forming_normal_matrix
from factcli.core.solvers import NystromSolver
from factcli.errors import FactError
from factcli.progress import format_duration, interactive
from factcli.runtime import available_memory_bytes, format_bytes

log = logging.getLogger("fact")

# Fits whose estimate exceeds this are announced as long before they start (with the numbers).
LONG_FIT_SECONDS = 3600.0
# Progress lines go to the log (and console) only for fits estimated to take at least this long.
LOGGED_FIT_SECONDS = 10.0
# A long solve's CG steps are logged at most this often.
CG_LOG_SECONDS = 30.0


@dataclass(frozen=True)
class SolverChoice:
    solver: str  # exact | nystrom
    reason: str
    centers: int | None = None


def choose_solver(rfm_cfg, n: int, precision: str, device, memory_limit_gb: float | None) -> SolverChoice:
    """The solver for a fit whose largest training part has n rows (see the module docstring)."""
    requested = str(rfm_cfg.solver)
    options = nystrom_options(rfm_cfg, seed=0)
    if requested == "exact":
        return SolverChoice("exact", "rfm.solver=exact")
    if requested == "nystrom":
        return SolverChoice("nystrom", "rfm.solver=nystrom", checked_centers(options, n))
    itemsize = 8 if precision == "float64" else 4
    kernel_bytes = 1.1 * n * n * itemsize
    available = available_memory_bytes(device) if memory_limit_gb is None else memory_limit_gb * 2**30
    if n <= rfm_cfg.exact_max_rows and kernel_bytes <= available:
        return SolverChoice(
            "exact", f"auto: {n:,} training rows <= rfm.exact_max_rows={rfm_cfg.exact_max_rows}"
        )
    why = (
        f"{n:,} training rows > rfm.exact_max_rows={rfm_cfg.exact_max_rows}"
        if n > rfm_cfg.exact_max_rows
        else f"the {n}×{n} kernel matrix needs {format_bytes(kernel_bytes)} of {format_bytes(available)}"
    )
    return SolverChoice("nystrom", f"auto: {why}", checked_centers(options, n))


def nystrom_options(rfm_cfg, seed: int, progress=None) -> NystromSolver:
    try:
        return NystromSolver(
            centers=None if rfm_cfg.centers is None else int(rfm_cfg.centers),
            seed=int(seed),
            cg_max_iters=int(rfm_cfg.cg_max_iters),
            progress=progress,
        )
    except ValueError as error:
        raise FactError(f"rfm.centers: {error}") from None


def checked_centers(options: NystromSolver, n: int) -> int:
    try:
        return options.centers_for(n)
    except ValueError as error:
        raise FactError(str(error)) from None


def with_choice(options, choice: SolverChoice, rfm_cfg, seed: int, progress=None):
    """RFMOptions for the chosen solver (the exact one as ``options`` has it, or Nyström)."""
    if choice.solver == "exact":
        return options
    return replace(options, solver=nystrom_options(rfm_cfg, seed, progress))


# ------------------------------------------------------------------------------- estimates


# Every term of a fit's time that grows with n, d or the grid is counted from the work the engine
# does (kernel matrices, their factors, feature statistics, updates of M, predictions), each at a rate
# measured once per process by a short timing on this machine (``rates``): float32/float64 GEMMs,
# symmetric eigendecompositions (per d³), element-wise passes that write a new tensor, and the L1
# kernel's distance and sign passes, which have no BLAS and so cannot be timed by the GEMM rate. A full
# M costs d³ per update (and per L1 kernel matrix: its root); every kernel matrix of a Mahalanobis kernel
# multiplies the rows by M (n·d² each, a diagonal M included); predictions redo those products per block.


@dataclass(frozen=True)
class Rates:
    """This machine's speeds, as the estimates use them (seconds, flop/s)."""

    gemm32: float  # flop/s of a float32 matrix product
    gemm64: float  # flop/s of a float64 one
    eigh32: float  # seconds per d³ of torch.linalg.eigh, float32 (the L1 kernel's root of M)
    eigh64: float  # seconds per d³, float64 (the update of a full M)
    element: float  # seconds per float32 entry of an element-wise pass writing a new tensor
    l1: float  # seconds per (row, point, coordinate) of the L1 kernel's distance pass
    l1_statistic: float  # seconds per (row, point, coordinate) of its FACT statistic's sign pass


def rates() -> Rates:
    """This machine's rates at the current number of torch threads, measured once per process and
    thread count (~0.5 s; ~1.5 s on a loaded machine): the median of three timings of each probe, not
    the fastest: on a shared machine the fit runs at the typical speed, not the luckiest moment's."""
    return _measured_rates(torch.get_num_threads())


@functools.cache
def _measured_rates(threads: int) -> Rates:
    a32 = torch.randn(1024, 1024)
    a64 = a32.double()
    s32, s64 = (torch.randn(_EIGH_PROBE, _EIGH_PROBE, dtype=t) for t in (torch.float32, torch.float64))
    s32, s64 = s32 @ s32.T, s64 @ s64.T
    entries = torch.randn(1 << 22)
    l1 = Kernel("l1", 1.0)
    X, Z = torch.randn(256, 128), torch.randn(256, 128)
    alpha = torch.randn(256, 1)
    K = l1.gram(X, X, None)
    return Rates(
        gemm32=2 * 1024**3 / _typical(lambda: torch.mm(a32, a32)),
        gemm64=2 * 1024**3 / _typical(lambda: torch.mm(a64, a64)),
        eigh32=_typical(lambda: torch.linalg.eigh(s32)) / _EIGH_PROBE**3,
        eigh64=_typical(lambda: torch.linalg.eigh(s64)) / _EIGH_PROBE**3,
        element=_typical(lambda: entries.exp()) / entries.numel(),
        l1=_typical(lambda: l1.gram(X, Z, None)) / (256 * 256 * 128),
        l1_statistic=_typical(lambda: l1.fact_matrix(X, alpha, None, K.clone())) / (256 * 256 * 128),
    )


# Side of the eigendecomposition probe: large enough to run at its asymptotic d³ speed (within ~30% of
# d = 2,000 here), small enough to take ~0.05 s.
_EIGH_PROBE = 512

# A Cholesky factorization's n³/3 flops run at this fraction of the measured GEMM rate: 0.74 and 0.80
# at n = 4,000 and 8,000 (float32, one thread, here). A probe small enough to time at start-up runs
# at about half the large sizes' speed, so the fraction is taken from those sizes instead.
CHOLESKY_EFFICIENCY = 0.75


def _typical(work, repeats: int = 3) -> float:
    work()  # warm-up: allocations, thread pool
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return max(statistics.median(times), 1e-9)


@dataclass(frozen=True)
class Work:
    """The shape of a fit's work: n training rows, d features, c outputs, ``queries`` rows predicted
    after each kernel matrix (validation or test rows), the feature matrix's ``form`` and ``method``."""

    n: int
    d: int
    c: int
    queries: int = 0
    form: str = "full"
    method: str = "fact"
    itemsize: int = 4  # 4: float32 solves (precision auto), 8: float64


def _element_wise(kernel: Kernel) -> bool:
    """The L1 kernel: distances and signs per coordinate (no GEMM), the only kernel with p = 1."""
    return kernel.distance_p == 1.0


def kernel_seconds(kernel: Kernel, work: Work, rows: int, points: int, full: bool, calls: int = 1) -> float:
    """``calls`` kernel matrices with ``rows`` rows in all against ``points`` points (a prediction is
    made in blocks: one call per block, each redoing the points' side); ``full``: M is not diagonal."""
    r, d = rates(), work.d
    gemm = r.gemm32 if work.itemsize == 4 else r.gemm64
    entries = rows * points
    if not _element_wise(kernel):  # a Mahalanobis kernel: XM and ZM (M = I included), one GEMM
        per_call = 2 * points * d * d / gemm + 4 * d * d * r.element
        return (
            calls * per_call
            + 2 * rows * d * d / gemm
            + 2 * entries * (d + 2) / gemm
            + 4 * entries * r.element
        )
    if full:  # L1 with a full M: its root W = M^½ per call, then U = XWᵀ
        per_call = r.eigh32 * d**3 + 2 * d**3 / gemm + 2 * points * d * d / gemm
        per_row = 2 * d * d / gemm
    else:  # diagonal (or M = I): a few passes over the d×d matrix, columns scaled
        per_call, per_row = 12 * d * d * r.element, d * r.element
    return calls * per_call + rows * per_row + entries * d * r.l1 + 2 * entries * r.element


def prediction_seconds(
    kernel: Kernel, work: Work, points: int, full: bool, outputs: int | None = None
) -> float:
    """Outputs at ``work.queries`` rows from ``points`` points, in blocks of PREDICT_BLOCK_ELEMENTS."""
    if work.queries <= 0:
        return 0.0
    blocks = math.ceil(work.queries * points / PREDICT_BLOCK_ELEMENTS)
    gemm = rates().gemm32 if work.itemsize == 4 else rates().gemm64
    columns = work.c if outputs is None else outputs
    return (
        kernel_seconds(kernel, work, work.queries, points, full, blocks)
        + 2 * work.queries * points * columns / gemm
    )


def statistic_seconds(kernel: Kernel, work: Work, full: bool) -> float:
    """The method's statistic over the n training rows (exact path) and the update of M from it."""
    r, n, d, c = rates(), work.n, work.d, work.c
    gemm = r.gemm32 if work.itemsize == 4 else r.gemm64
    nfa = work.method == "nfa"
    if _element_wise(kernel):  # L1: the sign passes (the weights are K, kept from the solve)
        seconds = n * n * d * (r.l1_statistic + (2 * c / gemm if nfa else 0.0)) + 2 * n * d * d / gemm
        seconds += (4 if nfa else 2) * d**3 / gemm  # W S (W S W): W = M^½ is a d×d matrix, diagonal or not
        if nfa:
            seconds += 2 * n * c * d * d / gemm
        if full:
            seconds += r.eigh32 * d**3 + 2 * d**3 / gemm + 2 * n * d * d / gemm
    else:
        seconds = kernel_seconds(kernel, work, n, n, full) + n * n * r.element  # the derivative weights
        if not nfa:
            seconds += (2 * n * n * d + 4 * n * d * d + 2 * d**3) / gemm
        elif n >= c * d:  # class by class
            seconds += (2 * n * n * c * d + 2 * n * c * d * d + 4 * d**3) / gemm
        else:  # Gram form: two more n×n products
            seconds += (4 * n**3 + 2 * n * n * (c + d) + 2 * n * d * d + 4 * d**3) / gemm
    return seconds + update_seconds(work)


def update_seconds(work: Work) -> float:
    """M from its statistic (rfm.update_feature_matrix), in float64: a power of a d×d matrix for a full
    M (one eigendecomposition and products), a few passes over it for a diagonal one."""
    r, d = rates(), work.d
    passes = 16 * d * d * r.element  # conversions, copies, the rescaling, the iterate's own copy of M
    if work.form == "diagonal":
        return passes
    products = {"nfa": 2, "fact": 4, "fact-geo": 8}.get(work.method, 4)
    return passes + r.eigh64 * d**3 + products * d**3 / r.gemm64


def exact_solve_seconds(work: Work, grid_solver: str = "cholesky") -> float:
    """One factorization of the n×n kernel matrix (Cholesky, or the eigen route's decomposition)."""
    r, n = rates(), work.n
    if grid_solver == "eigen":
        return (r.eigh32 if work.itemsize == 4 else r.eigh64) * n**3
    gemm = r.gemm32 if work.itemsize == 4 else r.gemm64
    return n**3 / 3 / (CHOLESKY_EFFICIENCY * gemm) + 2 * n * n * work.c / gemm


def nystrom_solve_seconds(
    kernel: Kernel, work: Work, m: int, full: bool, cg_max_iters: int = 100, ridges: int = 1
) -> float:
    """One Nyström system (core/nystrom.py NystromSystem: the passes over the n×m kernel blocks with
    M's products, K_mm by differences with M's eigendecomposition, its factor and T Tᵀ) and the solves
    of ``ridges`` ridges on it (each an m×m Cholesky factor and its CG steps)."""
    r, n, d, c = rates(), work.n, work.d, work.c
    gemm = r.gemm32 if work.itemsize == 4 else r.gemm64
    blocks = math.ceil(n * m / NystromSolver.block_elements)
    per_pass = kernel_seconds(kernel, work, n, m, full, blocks)
    cg_steps = min(cg_max_iters, 20)  # 13-20 in the runs measured here
    if n * m * work.itemsize <= NystromSolver.cache_bytes:  # blocks kept: one pass, then cheap CG steps
        # A step multiplies the kept n×m blocks by c columns and back: at few columns that reads the
        # blocks twice at memory speed (an element-wise pass each), not at the GEMM rate.
        system, step = per_pass, max(4 * n * m * c / gemm, 2 * n * m * r.element)
    elif m < worth_forming_normal_matrix(d):  # K_nmᵀK_nm formed in float64: two passes and a GEMM
        system, step = 2 * per_pass + 2 * n * m * m / (0.5 * gemm), 4 * m * m * c / r.gemm64
    else:  # the blocks remade at every CG step
        system, step = per_pass, per_pass
    centres = r.eigh64 * d**3 + 4 * m * d * d / r.gemm64 + m * m * d * r.l1  # K_mm by differences
    cholesky = m**3 / 3 / (CHOLESKY_EFFICIENCY * r.gemm64)
    factors = cholesky + 2 * m**3 / r.gemm64  # K_mm's Cholesky factor T and T Tᵀ, float64
    per_ridge = cholesky + cg_steps * step  # the preconditioner's factor, CG
    return system + centres + factors + ridges * per_ridge


def nystrom_statistic_seconds(kernel: Kernel, work: Work, m: int, full: bool) -> float:
    """The statistic against m centres (one pass over the blocks, with the products it adds) and the
    update of M."""
    r, n, d, c = rates(), work.n, work.d, work.c
    gemm = r.gemm32 if work.itemsize == 4 else r.gemm64
    blocks = math.ceil(n * m / NystromSolver.block_elements)
    per_pass = kernel_seconds(kernel, work, n, m, full, blocks)
    if _element_wise(kernel):
        signs = n * m * d * (r.l1_statistic + (2 * c / gemm if work.method == "nfa" else 0.0))
        return 1.5 * per_pass + signs + 2 * n * d * d / gemm + 4 * d**3 / r.gemm64 + update_seconds(work)
    work_terms = min(c * d, m + c + d) if work.method == "nfa" else c + d
    seconds = 1.5 * per_pass + 4 * n * m * work_terms / gemm + 4 * n * d * d / gemm + 4 * d**3 / r.gemm64
    return seconds + update_seconds(work)


def median_seconds(kernel: Kernel, n: int, d: int) -> float:
    """The median pairwise distance that scales a grid's bandwidths (grid.median_distance: ≤ 1,000 rows,
    float64, the L1 kernel's by an element-wise pass)."""
    r, rows = rates(), min(n, 1000)
    if _element_wise(kernel):
        return rows * rows * d * r.l1 * 2
    return 2 * rows * rows * d / r.gemm64 + 8 * rows * rows * r.element


def estimate_seconds(
    kernel: Kernel,
    choice: SolverChoice,
    n: int,
    d: int,
    c: int,
    solves: int,
    statistics: int,
    method: str,
    cg_max_iters: int = 100,
    form: str = "full",
) -> float:
    """Seconds of one path's ``solves`` kernel solves and ``statistics`` statistics (with the updates
    of M) at n rows, M = I at t = 0, then ``form``: for a command that runs a single path (parity);
    fit-rfm counts its grid with the pieces above (rfm/fit.py estimate_fit)."""
    work = Work(n, d, c, form=form, method=method)
    full = form == "full"
    learned = min(statistics, solves)
    if choice.solver == "exact":
        solve = kernel_seconds(kernel, work, n, n, False) + exact_solve_seconds(work)
        later = kernel_seconds(kernel, work, n, n, full) + exact_solve_seconds(work)
        return (
            solve * (solves - learned) + later * learned + statistics * statistic_seconds(kernel, work, full)
        )
    m = choice.centers
    first = nystrom_solve_seconds(kernel, work, m, False, cg_max_iters)
    later = nystrom_solve_seconds(kernel, work, m, full, cg_max_iters)
    statistic = nystrom_statistic_seconds(kernel, work, m, full)
    return first * (solves - learned) + later * learned + statistics * statistic


# ------------------------------------------------------------------------------- memory


def nystrom_memory_bytes(n: int, d: int, c: int, m: int, itemsize: int, cache_bytes: float) -> float:
    """Peak of a Nyström path's kernel work: data and outputs O(n·(d + c)), m×m factors, blocks, the
    kernel cache (the d×d matrices and the table's copies: fit_memory_bytes)."""
    data = n * (d + 3 * c) * 8 + n * d * itemsize
    square = 5 * m * m * 8
    blocks = 8 * (1 << 22) * itemsize
    cache = n * m * itemsize if n * m * itemsize <= cache_bytes else 0
    return data + square + blocks + cache


@dataclass(frozen=True)
class MemoryNeed:
    """A fit's peak memory beyond what the process holds when it is estimated, by part (bytes)."""

    kernel: float  # the n×n matrix (exact) or the Nyström path's blocks, factors and cache
    feature_matrices: float  # the d×d matrices: the kept iterates' M and an update's workspace
    matrices: int  # how many d×d matrices that is
    data: float  # the table's copies and the n×d products made from it

    @property
    def total(self) -> float:
        return self.kernel + self.feature_matrices + self.data


def fit_memory(
    choice: SolverChoice,
    n: int,
    d: int,
    c: int,
    rows: int,
    itemsize: int,
    kept: int,
    solved: int = 0,
    grid_solver: str = "cholesky",
    redo: bool = False,
) -> MemoryNeed:
    """Peak memory of a fit on n training rows out of ``rows``, keeping ``kept`` learned d×d matrices
    (float64: selection keeps every path's M_t until it has chosen; refits keep theirs) and ``solved``
    stage-0 fits, each holding M in the working precision (a float32 solve converts M = I, a copy per
    fit, kept as the paths' t = 0 until selection ends; float64 needs no copy). ``redo``: a float32
    solve may be redone in float64 (precision auto), in a float64 n×n matrix that replaces its own."""
    if choice.solver == "exact":
        buffers = 2 if grid_solver == "eigen" else 1  # the eigen route holds the matrix and its vectors
        kernel = (buffers * n * n + 2 * PREDICT_BLOCK_ELEMENTS) * (8 if redo else itemsize)
    else:
        kernel = nystrom_memory_bytes(n, d, c, choice.centers, itemsize, NystromSolver.cache_bytes)
        kernel += 2 * PREDICT_BLOCK_ELEMENTS * itemsize  # a block of predictions and its temporary
    # An update's working matrices (M, its statistic in both precisions, F Fᵀ, the eigensolver's input,
    # vectors and workspace, the scaled product, the new M); without learning (kept = 0) M = I and a copy.
    working = 10 if kept else 3
    matrices = kept + working + (solved if itemsize < 8 else 0)
    square = (kept + working) * d * d * 8 + (solved * d * d * itemsize if itemsize < 8 else 0)
    # The table as tensors (float64), its training and held-out parts, row-normalized copies, the working
    # precision's rows and the two n×(d+2) factors of a kernel matrix (or the L1 kernel's rotated rows).
    data = 3 * rows * d * 8 + 6 * n * (d + 2) * itemsize
    return MemoryNeed(kernel, square, matrices, data)


def announce(choice: SolverChoice, estimate: float, memory: float | None) -> None:
    """Log the solver, its reason, the estimate; say so plainly when the fit will be long."""
    centres = f" with {choice.centers} centres" if choice.centers else ""
    memory_text = f", about {format_bytes(memory)} of memory" if memory is not None else ""
    log.info(
        "solver: %s%s (%s); estimated %s%s",
        choice.solver,
        centres,
        choice.reason,
        format_duration(estimate),
        memory_text,
    )
    if estimate > LONG_FIT_SECONDS:
        advice = "fewer rfm.centers" if choice.solver == "nystrom" else "rfm.solver=nystrom"
        log.warning(
            f"this fit is estimated to take %s (above %s): consider {advice}, a shorter grid or a subset",
            format_duration(estimate),
            format_duration(LONG_FIT_SECONDS),
        )


# ------------------------------------------------------------------------------- progress


class FitProgress:
    """Where a fit is: the stage (grid point, path, refit), the solve within it, its CG step, the
    iterates done of those expected and the time left.

    On a terminal a progress bar (transient); elsewhere nothing but the log lines, which are written
    for fits estimated to take at least LOGGED_FIT_SECONDS (at DEBUG level below that). CG steps are
    logged at most every CG_LOG_SECONDS; every line names its solve and step, so no two read alike.
    """

    def __init__(self, total_iterates: int, estimate_seconds: float):
        self.total = total_iterates
        self.estimate = estimate_seconds
        self.level = logging.INFO if estimate_seconds >= LOGGED_FIT_SECONDS else logging.DEBUG
        self.where = ""
        self.done = 0  # iterates finished (or reused)
        self.reused = 0  # of them, reused from an interrupted run (they took no time here)
        self.solve = 0  # the solve within the stage that the CG steps belong to
        self._last_step = 0
        self._progress = None
        self._task = None
        self._started = time.perf_counter()
        self._last_cg_log = -math.inf

    def __enter__(self):
        self._started = time.perf_counter()
        if interactive():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("fit", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False

    def expect(self, total_iterates: int) -> None:
        """The number of iterates is known better now (after selection: folds × (t* + 1) remain)."""
        self.total = total_iterates
        if self._progress is not None:
            self._progress.update(self._task, total=self.total)

    def stage(self, text: str) -> None:
        """A new stage (grid point i of N, fold j of 4): logged and shown."""
        self.where, self.solve, self._last_step = text, 0, 0
        log.log(self.level, "%s", text)
        self._show(text)

    def iterate(self, t: int, detail: str = "") -> None:
        """An RFM iterate finished."""
        self.done += 1
        more = f" ({detail})" if detail else ""
        log.log(self.level, "%s: iteration t=%d done%s; %s", self.where, t, more, self.tally())
        if self._progress is not None:
            self._progress.advance(self._task)
        self._show(f"{self.where} · t={t + 1}")

    def advance(self, iterates: int, why: str) -> None:
        """Iterates counted done without running them (``why``: reused from an interrupted run)."""
        self.done += iterates
        self.reused += iterates
        if self._progress is not None:
            self._progress.advance(self._task, iterates)
            self._show(f"{self.where} · {why}")

    def step(self, stage: str, done: int, total: int) -> None:
        """The Nyström solver's callback: CG steps (shown; logged at most every CG_LOG_SECONDS)."""
        if stage != "cg":
            return
        if done <= self._last_step or self._last_step == 0:  # CG starts again: the next solve
            self.solve += 1
        self._last_step = done
        self._show(f"{self.where} · solve {self.solve} · CG step {done} (≤ {total})")
        now = time.perf_counter()
        if now - self._last_cg_log >= CG_LOG_SECONDS:
            log.log(
                self.level,
                "%s: solve %d, CG step %d of at most %d; %s",
                self.where, self.solve, done, total, self.tally(),
            )  # fmt: skip
            self._last_cg_log = now

    def tally(self) -> str:
        """Iterates done of those expected and the time left: measured once an iterate has run here,
        the estimate made before the fit until then."""
        elapsed = time.perf_counter() - self._started
        ran = self.done - self.reused
        left_iterates = max(self.total - self.done, 0)
        left = elapsed / ran * left_iterates if ran > 0 else max(self.estimate - elapsed, 0.0)
        return f"{self.done} of {self.total} iterates done, about {format_duration(left)} left"

    def _show(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)
