"""fit-rfm's estimate of its time and memory, made (and logged) before the heavy work starts.

The protocol's work is counted as grid.py and protocol.py do it: stage 0 (per kernel, normalization
and bandwidth one kernel matrix with M = I and every ridge's solve), the feature-learning paths from the
best setting(s), the refits of the folds; every kernel matrix is scored on the held rows. Each piece's
cost is common/scalable.py's, at rates measured on this machine. Memory counts the kernel work, every
d×d matrix held (selection keeps each path's M_t until it chooses) and the table's copies; a fit that
cannot fit is refused before anything is computed.
"""

from __future__ import annotations

import math
from dataclasses import replace

import psutil

from factcli.choices import AUTO_KERNEL, AUTO_KERNELS
from factcli.core.kernels import Kernel
from factcli.runtime import format_bytes, require_memory

from ..common import scalable


def estimate_fit(cfg, choice, options, data, n: int, folds: int, device) -> tuple[float, float]:
    """(seconds, peak bytes) of the whole protocol, before it starts: stage 0 over the grid, the paths,
    the refits, each kernel matrix scored on the held rows; a fit whose kernel work, d×d matrices and
    copies of the table cannot fit in memory is refused here, with the numbers and what would fit."""
    kernels = AUTO_KERNELS if cfg.kernel.name == AUTO_KERNEL else (cfg.kernel.name,)
    grid, iters = cfg.grid, 0 if options.method == "laplace" else options.iters
    settings, ridges = len(grid.bandwidths) * len(grid.normalize_rows), len(grid.ridges)
    itemsize = 8 if options.precision == "float64" else 4
    d, c, form, method = data.d, data.n_outputs, options.form, options.method
    # Selection runs on the tuning split's rows (scored on its validation rows), the refits on each
    # fold's training part (scored on its test rows): n³ work differs by (1 − val_fraction)³ between them.
    tune_n, tune_queries = tuning_rows(cfg, data, n)
    tune = scalable.Work(tune_n, d, c, tune_queries, form, method, itemsize)
    refit_work = scalable.Work(n, d, c, max(1, data.n - n), form, method, itemsize)
    tune_choice = choice if choice.solver == "exact" else replace(choice, centers=min(choice.centers, tune_n))
    stage0 = sum(stage_seconds(cfg, options, tune_choice, Kernel(name, 1.0), tune) for name in kernels)
    # The paths run with the kernel stage 0 picks, unknown before it: the candidates' mean.
    paths = [path_seconds(cfg, options, tune_choice, name, tune)[0] for name in kernels]
    refits = [path_seconds(cfg, options, choice, name, refit_work) for name in kernels]
    starts = 1 if grid.search == "best" else settings
    # A strict refit relearns M up to the chosen t, known only after selection: counted at half the
    # path, which keeps the estimate within 2× whichever t is chosen (the paths dominate at the default T).
    refit = iters / 2 if cfg.protocol == "strict" else 0
    selection = sum(starts * ridges * iters * step for step in paths) / len(paths)
    refitting = sum(folds * (refit * step + first) for step, first in refits) / len(refits)
    seconds = stage0 + selection + refitting
    kept = starts * ridges * iters + folds * (iters + 1) if iters else 0
    # Stage 0's Cholesky route converts M once per ridge; the eigen route and Nyström once per setting.
    per_setting = ridges if choice.solver == "exact" and grid.solver != "eigen" else 1
    solved = len(kernels) * settings * per_setting
    redo = options.precision == "auto"
    need = scalable.fit_memory(
        choice, n, data.d, data.n_outputs, data.n, itemsize, kept, solved, grid.solver, redo
    )
    limit = None if cfg.memory_limit_gb is None else cfg.memory_limit_gb * 2**30
    what, remedy = _memory_what(n, data.d, choice), _memory_remedy(n, data.d, choice, need, options.method)
    require_memory(need.total, device, what, limit, remedy)
    return seconds, need.total + resident_bytes()


def tuning_rows(cfg, data, n: int) -> tuple[int, int]:
    """(rows selection fits on, rows it scores on): the dataset's own tuning split, or the validation
    split that folds.splits_of takes from the n training rows (⌈val_fraction · n⌉ held out)."""
    if data.splits is not None:
        return len(data.splits.train), max(1, len(data.splits.val))
    held = math.ceil(cfg.data.val_fraction * n)
    return max(1, n - held), max(1, held)


def stage_seconds(cfg, options, choice, kernel, work) -> float:
    """Stage 0 of one kernel: the median distance, then per (normalization, bandwidth) one kernel
    matrix with M = I, every ridge's solve, and the validation outputs of all of them in one pass."""
    grid = cfg.grid
    ridges = len(grid.ridges)
    if choice.solver == "exact":
        solve = scalable.kernel_seconds(kernel, work, work.n, work.n, False)
        # One Cholesky per ridge, or one eigendecomposition serving every ridge (grid.solver=eigen).
        factors = 1 if grid.solver == "eigen" else ridges
        solve += factors * scalable.exact_solve_seconds(work, grid.solver)
        points = work.n
    else:  # one system per setting serves every ridge
        solve = scalable.nystrom_solve_seconds(
            kernel, work, choice.centers, False, cfg.rfm.cg_max_iters, ridges
        )
        points = choice.centers
    predict = scalable.prediction_seconds(kernel, work, points, False, work.c * ridges)
    medians = len(grid.normalize_rows) * scalable.median_seconds(kernel, work.n, work.d)
    return medians + len(grid.bandwidths) * len(grid.normalize_rows) * (solve + predict)


def path_seconds(cfg, options, choice, name: str, work) -> tuple[float, float]:
    """(one iterate t ≥ 1 of a path: statistic, update, solve, outputs; a path's t = 0 refit) with the
    kernel ``name`` and the form of M it runs with (the L1 kernel's is diagonal when selected)."""
    kernel = Kernel(name, 1.0)
    form = kernel.selected_form if cfg.kernel.name == AUTO_KERNEL and kernel.selected_form else options.form
    work = replace(work, form=form)
    full = form == "full"
    if choice.solver == "exact":
        solve = scalable.kernel_seconds(kernel, work, work.n, work.n, full) + scalable.exact_solve_seconds(
            work
        )
        statistic, points = scalable.statistic_seconds(kernel, work, full), work.n
    else:
        m = choice.centers
        solve = scalable.nystrom_solve_seconds(kernel, work, m, full, cfg.rfm.cg_max_iters)
        statistic, points = scalable.nystrom_statistic_seconds(kernel, work, m, full), m
    predict = scalable.prediction_seconds(kernel, work, points, full)
    if options.method == "laplace":
        statistic = 0.0
    return statistic + solve + predict, solve + predict


def _memory_what(n: int, d: int, choice) -> str:
    if choice.solver == "exact":
        return f"the fit (n={n}, d={d})"
    return f"the Nyström fit (n={n}, {choice.centers} centres)"


def _memory_remedy(n: int, d: int, choice, need, method: str) -> str:
    """The parts of the need, largest first, and the way to shrink the largest."""
    kernel = f"the {n}×{n} kernel matrix" if choice.solver == "exact" else "the kernel blocks and factors"
    parts = sorted(
        [
            (need.feature_matrices, f"{need.matrices} d×d matrices at d={d}"),
            (need.kernel, kernel),
            (need.data, "copies of the table"),
        ],
        reverse=True,
    )
    held = ", ".join(f"{what} {format_bytes(size)}" for size, what in parts)
    if need.feature_matrices >= max(need.kernel, need.data) and method == "laplace":
        advice = "use fewer columns or fewer grid points (each stage-0 fit holds a copy of M = I)"
    elif need.feature_matrices >= max(need.kernel, need.data):
        advice = (
            "use fewer columns, method=laplace (learns no d×d matrix), or fewer rfm.iters and grid.ridges "
            "(every learned M is kept until selection ends)"
        )
    elif need.kernel >= need.data:
        advice = (
            "use rfm.solver=nystrom with fewer rfm.centers, or a subset of the rows"
            if choice.solver == "exact"
            else "use fewer rfm.centers or a subset of the rows"
        )
    else:
        advice = "use fewer columns or a subset of the rows"
    return f"it holds {held}: {advice}"


def resident_bytes() -> int:
    """What this process holds now (the announced peak is this plus the fit's own need)."""
    return int(psutil.Process().memory_info().rss)
