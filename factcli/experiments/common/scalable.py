"""Exact or Nyström: which solver an RFM fit uses, what it will cost, and where a long fit is.

``rfm.solver=auto`` keeps the exact n×n solve up to ``rfm.exact_max_rows`` training rows (and while its
matrix fits in memory) and switches to Nyström centres above that. The rule is a fixed size, not a
measured speed, so the same command gives the same numbers on every machine; the time estimate is
made (and logged) before the heavy work starts, from a short timing of this machine's kernel blocks.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import torch

from factcli.core.kernels import Kernel
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


def nystrom_memory_bytes(n: int, d: int, c: int, m: int, itemsize: int, cache_bytes: float) -> float:
    """Peak of a Nyström path: data and outputs O(n·(d + c)), m×m factors, blocks, the kernel cache."""
    data = n * (d + 3 * c) * 8 + n * d * itemsize
    square = 5 * m * m * 8
    blocks = 8 * (1 << 22) * itemsize
    cache = n * m * itemsize if n * m * itemsize <= cache_bytes else 0
    return data + square + blocks + cache


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
) -> float:
    """Seconds for ``solves`` kernel solves and ``statistics`` feature statistics at n rows, from a
    short timing of a GEMM and of one kernel block on this machine (an estimate, logged as such)."""
    flops = _gemm_rate()
    if choice.solver == "exact":
        solve = (n**3 / 3 + 2 * n * n * (d + c)) / (0.5 * flops)
        statistic = 2 * n * n * ((c * d) if method == "nfa" else (c + d)) / flops
        return solves * solve + statistics * statistic
    m = choice.centers
    per_pass = _block_seconds(kernel, d, m) * n / max(1, (1 << 22) // m)
    cg_steps = min(cg_max_iters, 20)  # 13-20 in the runs measured here
    if n * m * 4 <= NystromSolver.cache_bytes:  # blocks kept: one pass, then cheap CG steps
        solve = per_pass + cg_steps * 4 * n * m * c / flops
    elif m < worth_forming_normal_matrix(d):  # K_nmᵀK_nm formed in float64: two passes and a GEMM
        solve = 2 * per_pass + 2 * n * m * m / (0.5 * flops)
    else:  # the blocks remade at every CG step
        solve = (1 + cg_steps) * per_pass
    solve += 3 * m**3 / (0.5 * flops)  # the two m×m Cholesky factors and T Tᵀ, float64
    work = min(c * d, m + c + d) if method == "nfa" else c + d
    statistic = 1.5 * per_pass + 4 * n * m * work / flops
    return solves * solve + statistics * statistic


def _gemm_rate() -> float:
    a = torch.randn(1024, 1024)
    torch.mm(a, a)
    started = time.perf_counter()
    torch.mm(a, a)
    return 2 * 1024**3 / max(time.perf_counter() - started, 1e-6)


def _block_seconds(kernel: Kernel, d: int, m: int) -> float:
    """One row block of kernel values against m centres (every kernel's blocks of a pass are made so)."""
    rows = max(1, (1 << 22) // m)
    X, C = torch.randn(rows, d), torch.randn(m, d)
    started = time.perf_counter()
    kernel.gram(X, C, None)
    return time.perf_counter() - started


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
