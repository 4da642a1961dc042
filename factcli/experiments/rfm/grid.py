"""Selection over kernels, bandwidths, ridges and row normalization, then RFM paths (docs/SPEC.md §5).

Two stages on the tuning split (rules in benchmarks/README.md, fixed before any run):

1. ``kernel_stage``: kernel ridge regression with M = I at every (normalization, bandwidth, ridge);
   one kernel matrix per (normalization, bandwidth) serves every ridge, and the validation Gram matrix
   is built once too. Shared by every method using that kernel; its best point is the tuned KRR.
2. ``feature_stage``: the RFM path t = 1..T from the best stage-0 (bandwidth, normalization) (or from
   every one), for every ridge, starting from stage 0's own t = 0 solve.

Both stages solve with ``options.solver`` (core/solvers.py: exact Cholesky, eigen for stage 0's ridges,
or Nyström centres with CG) under its one solve-check policy; a grid point no precision solves
accurately is counted (``failures``), never scored. Stage 0's fits are the paths' t = 0.

``choose`` picks the best validation score; equal scores go to the simplest candidate (fewer
iterations, larger ridge, larger bandwidth, no normalization, kernel order), never to grid order.
The ``noise`` rule keeps t = 0 unless a t > 0 candidate beats it by more than its standard error.

``GridSpec.folds`` = k > 1 scores every candidate on k inner folds of the tuning rows (training and
validation parts pooled) instead of the one validation part: its score is the mean of its k
validation scores, the bandwidths are multiples of the pooled rows' median distance (one number per
grid point on every fold), and the paths start on every fold from the best mean stage-0 setting.

Pure computation (tensors in, numbers out): no files, no printing; ``units`` (resume.py, given by
fit-rfm) keeps each finished unit in the run directory and hands back those an interrupted run finished.
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
    SEARCHES,
    SELECTION_RULES,
)
from factcli.core import InvalidInput, defaults
from factcli.core.kernels import Kernel
from factcli.core.rfm import Fit, InaccurateSolve, RFMOptions, rfm_path

from .protocol import FoldResult, Split, Task, fit_fold, inner_folds, normalize_rows

MEDIAN_ROWS = 1000  # rows (at an even stride) the median pairwise distance is estimated on


@dataclass(frozen=True)
class GridSpec:
    bandwidths: tuple[float, ...] = defaults.GRID_BANDWIDTHS
    bandwidth_unit: str = defaults.GRID_BANDWIDTH_UNIT  # median: L = s × median pairwise distance; absolute
    ridges: tuple[float, ...] = defaults.GRID_RIDGES
    normalizations: tuple[bool, ...] = defaults.GRID_NORMALIZATIONS
    search: str = defaults.GRID_SEARCH
    rule: str = defaults.GRID_RULE
    folds: int = defaults.GRID_FOLDS  # 1: the tuning split's validation part; k > 1: k inner folds

    def __post_init__(self) -> None:
        # Configs and estimators hand over lists (OmegaConf's, numpy's): one place makes them tuples.
        object.__setattr__(self, "bandwidths", tuple(float(s) for s in self.bandwidths))
        object.__setattr__(self, "ridges", tuple(float(r) for r in self.ridges))
        object.__setattr__(self, "normalizations", tuple(bool(v) for v in self.normalizations))
        for value, allowed, what in (
            (self.bandwidth_unit, BANDWIDTH_UNITS, "bandwidth unit"),
            (self.search, SEARCHES, "search"),
            (self.rule, SELECTION_RULES, "selection rule"),
        ):
            if value not in allowed:
                raise InvalidInput(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise InvalidInput("bandwidths must be a non-empty list of positive numbers")
        if not self.ridges or min(self.ridges) < 0:
            raise InvalidInput("ridges must be a non-empty list of non-negative numbers")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 1:
            raise InvalidInput(
                f"grid folds must be a whole number >= 1 (1: one validation part), got {self.folds!r}"
            )


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
    # How its solve went (within rfm.solve_tol, or it would have been refused): reported, not compared.
    solve_residual: float = field(default=math.nan, compare=False)
    cg_steps: int | None = field(default=None, compare=False)  # conjugate-gradient steps (Nyström)

    def simplicity(self) -> tuple:
        """Smaller is simpler: the tie rule's order."""
        kernel = Kernel(self.kernel, 1.0).simplicity
        return (self.iteration, -self.ridge, -self.bandwidth, self.normalize, kernel)

    def row(self, metric: str) -> dict:
        return {
            "kernel": self.kernel,
            "bandwidth": self.bandwidth,
            "normalize_rows": self.normalize,
            "ridge": self.ridge,
            "iteration": self.iteration,
            f"train_{metric}": self.train_score,
            f"val_{metric}": self.val_score,
            "solve_residual": self.solve_residual,
            "cg_steps": self.cg_steps,
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
    """Median pairwise distance (in the kernel's own distance: L1 for the l1 kernel, L2 otherwise) on
    ≤ max_rows rows at an even stride."""
    rows = X[:: max(1, math.ceil(X.shape[0] / max_rows))].double()
    distances = torch.cdist(rows, rows, p=Kernel(kernel_name, 1.0).distance_p)
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
    """Stage 0 for one kernel: every candidate, and every accepted fit (reused as the paths' t = 0)."""

    kernel: str
    candidates: list[Candidate]
    solves: dict  # (bandwidth, normalize, ridge) -> Fit, on the (centred) training rows
    precisions: set = field(default_factory=set)
    seconds: float = 0.0
    unsolved: int = 0  # grid points no precision could solve accurately (not candidates)


def kernel_stage(
    task: Task,
    kernel_name: str,
    spec: GridSpec,
    options: RFMOptions,
    split: Split,
    progress=None,
    units=None,
    scale_rows: torch.Tensor | None = None,
) -> KernelStage:
    """KRR with M = I at every grid point, solved by ``options.solver`` (precision, solve tolerance).

    Every ridge of one (normalization, bandwidth) shares its kernel matrix (the solver's ``fit_ridges``),
    and the validation predictions of all of them come from one blockwise pass with their α side by side.
    The bandwidths are multiples of the median distance among ``scale_rows`` (default: the training
    rows), after the grid point's normalization.
    """
    started = time.perf_counter()
    Y = task.targets(split.y_train)
    candidates, solves, precisions, unsolved = [], {}, set(), 0
    for normalize in spec.normalizations:
        A, B = split.normalized(normalize)
        invariant = Kernel(kernel_name, 1.0).translation_invariant
        center = A.mean(0, keepdim=True) if invariant else torch.zeros_like(A[:1])  # as rfm_path centres
        work = options.solver.start(A - center, Y, options.precision)
        eye = torch.eye(A.shape[1], dtype=torch.float64, device=A.device)
        R = A if scale_rows is None else normalize_rows(scale_rows, normalize)
        for bandwidth in bandwidth_values(kernel_name, spec, R - R.mean(0, keepdim=True)):
            if progress is not None:
                progress.stage(f"stage 0: {kernel_name} L={bandwidth:.3g}, x/|x|={normalize}")
            kept = None if units is None else units.stage0(kernel_name, normalize, bandwidth, work)
            if kept is not None:  # finished by an interrupted run (resume.py)
                candidates, unsolved = candidates + kept.candidates, unsolved + kept.unsolved
                precisions |= kept.precisions
                continue
            first = len(candidates)
            fits = work.fit_ridges(Kernel(kernel_name, bandwidth), eye, spec.ridges, options.solve_tol)
            done = [ridge for ridge in spec.ridges if isinstance(fits[ridge], Fit)]
            unsolved += len(spec.ridges) - len(done)
            outputs = _predict_together([fits[ridge] for ridge in done], B - center)
            for ridge, output in zip(done, outputs, strict=True):
                fit = fits[ridge]
                val, stderr = score_with_error(task, output, split.y_held_out)
                train = task.score(fit.predictor.training_outputs(Y, ridge), split.y_train)
                solves[(bandwidth, normalize, ridge)] = replace(
                    fit, predictor=replace(fit.predictor, center=center.to(fit.predictor.points))
                )
                precisions.add(fit.report.precision)
                report = fit.report
                candidates.append(
                    Candidate(
                        kernel_name,
                        bandwidth,
                        normalize,
                        float(ridge),
                        0,
                        val,
                        stderr,
                        train,
                        report.relative_residual,
                        report.cg_steps,
                    )
                )
                if progress is not None:
                    progress.iterate(0, f"ridge={ridge:g}, validation {task.metric} {val:.4f}")
            if units is not None:
                used = {fits[ridge].report.precision for ridge in done}
                units.keep_stage0(
                    kernel_name,
                    normalize,
                    bandwidth,
                    work,
                    candidates[first:],
                    len(spec.ridges) - len(done),
                    used,
                )
    if not candidates:
        raise InaccurateSolve(f"no {kernel_name} kernel solve of the grid was accurate, even in float64")
    seconds = time.perf_counter() - started
    return KernelStage(kernel_name, candidates, solves, precisions, seconds, unsolved)


def _predict_together(fits: list[Fit], query: torch.Tensor) -> list[torch.Tensor]:
    """Each fit's outputs on the (centred) query rows; fits on the same points in one kernel pass."""
    outputs, groups = {}, {}
    for index, fit in enumerate(fits):
        groups.setdefault(id(fit.predictor.points), []).append(index)
    for indices in groups.values():
        predictor = fits[indices[0]].predictor
        alphas = torch.cat([fits[i].alpha.to(predictor.points) for i in indices], dim=1)
        together = predictor.kernel.predict(query.to(predictor.points), predictor.points, predictor.M, alphas)
        for i, output in zip(indices, together.split(predictor.alpha.shape[1], dim=1), strict=True):
            outputs[i] = output
    return [outputs[i] for i in range(len(fits))]


@dataclass
class GridSelection:
    """The chosen candidate, its M, every candidate scored, and how selection went."""

    chosen: Candidate
    M: torch.Tensor | None  # None: chosen with t > 0 on inner folds, each of which learned its own M
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
    split: Split,
    progress=None,
    units=None,
    start: tuple[float, bool] | None = None,
) -> GridSelection:
    """RFM paths (options.method) from stage 0's best setting(s), for every ridge; then ``choose``.
    ``start``: the (bandwidth, normalization) to start from instead of this stage's best (inner folds
    start every fold's paths from the best mean setting)."""
    started = time.perf_counter()
    Y = task.targets(split.y_train)
    best0 = best_of(task, stage.candidates)
    settings = sorted({(c.bandwidth, c.normalize) for c in stage.candidates})
    first_setting = start if start is not None else (best0.bandwidth, best0.normalize)
    starts = [first_setting] if spec.search == "best" else settings
    candidates, Ms, precisions, failed = list(stage.candidates), {}, set(stage.precisions), 0
    for bandwidth, normalize in starts:
        A, B = split.normalized(normalize)
        for ridge in spec.ridges:
            kept = None if units is None else units.path(stage.kernel, bandwidth, normalize, float(ridge))
            if kept is not None:  # finished by an interrupted run (resume.py)
                candidates, failed = candidates + kept.candidates, failed + kept.failed
                Ms.update(kept.Ms)
                precisions |= kept.precisions
                continue
            first = stage.solves.get((bandwidth, normalize, float(ridge)))
            if first is None and units is not None:  # its stage-0 unit was reused: solved again
                first = units.start_fit(task, stage, spec, options, split, bandwidth, normalize, ridge)
            if first is None:
                continue  # stage 0 could not solve this point in any precision
            begun, failed_before = len(candidates), failed
            path_options = replace(options, kernel=Kernel(stage.kernel, bandwidth), ridge=float(ridge))
            if progress is not None:
                progress.stage(f"path: {stage.kernel} L={bandwidth:.3g}, ridge={ridge:g}, x/|x|={normalize}")
            try:
                for iterate in rfm_path(A, Y, path_options, first=first):
                    if iterate.t == 0:
                        continue  # stage 0's own candidate
                    val, stderr = score_with_error(task, iterate.predictor(B), split.y_held_out)
                    train = task.score(iterate.predictor.training_outputs(Y, ridge), split.y_train)
                    if progress is not None:
                        progress.iterate(iterate.t, f"validation {task.metric} {val:.4f}")
                    precisions.add(iterate.solve.precision)
                    candidate = Candidate(
                        stage.kernel,
                        bandwidth,
                        normalize,
                        float(ridge),
                        iterate.t,
                        val,
                        stderr,
                        train,
                        iterate.solve.relative_residual,
                        iterate.solve.cg_steps,
                    )
                    candidates.append(candidate)
                    Ms[candidate] = iterate.M
            except InaccurateSolve:
                failed += 1
            if units is not None:
                path = candidates[begun:]
                units.keep_path(
                    stage.kernel, bandwidth, normalize, ridge, path, Ms, failed - failed_before, precisions
                )
    chosen = choose(task, candidates, spec.rule)
    M = Ms.get(chosen, torch.eye(split.X_train.shape[1], dtype=torch.float64))
    seconds = stage.seconds + time.perf_counter() - started
    return GridSelection(chosen, M, candidates, precisions, seconds, stage.unsolved + failed, options.form)


def options_for_kernel(options: RFMOptions, kernel: str, auto: bool) -> RFMOptions:
    """The options a path with ``kernel`` runs with: a selected kernel (auto) brings its own form of M
    when it has one (the L1 kernel's is diagonal), otherwise M's form is as configured."""
    chosen = Kernel(kernel, options.kernel.bandwidth)
    form = chosen.selected_form if auto and chosen.selected_form else options.form
    return replace(options, kernel=chosen, form=form)


def select(
    task: Task,
    kernel_name: str,
    spec: GridSpec,
    options: RFMOptions,
    split: Split,
    stage_of=None,
    progress=None,
    units=None,
) -> GridSelection:
    """The whole selection for ``options.method`` (``laplace``: KRR, t = 0 only) on the tuning split.

    ``kernel_name`` may be ``auto``: stage 0 then runs for every kernel of AUTO_KERNELS, the best
    stage-0 point decides the kernel, and only that kernel's paths are run; the other kernels'
    stage-0 points stay candidates (none can win: their best already lost). ``stage_of(kernel)``
    gives a stage computed earlier (shared by methods); by default it is computed here. With
    ``spec.folds`` > 1 the selection is ``select_inner_folds``'s, whose stages are its folds' own.
    """
    if spec.folds > 1:
        return select_inner_folds(task, kernel_name, spec, options, split, progress)
    if stage_of is None:

        def stage_of(kernel):
            return kernel_stage(task, kernel, spec, options, split, progress, units)

    auto = kernel_name == AUTO_KERNEL
    kernels = AUTO_KERNELS if auto else (kernel_name,)
    stages = [stage_of(kernel) for kernel in kernels]
    best0 = best_of(task, [c for stage in stages for c in stage.candidates])
    stage = next(stage for stage in stages if stage.kernel == best0.kernel)
    if options.method == "laplace":
        selection = select_krr(task, stage, split.X_train.shape[1])
    else:
        path_options = options_for_kernel(options, best0.kernel, auto)
        selection = feature_stage(task, stage, spec, path_options, split, progress, units)
    for other in stages:
        if other is not stage:
            selection.candidates += other.candidates
            selection.seconds += other.seconds
            selection.failures += other.unsolved
            selection.precisions |= other.precisions
    return selection


def select_inner_folds(
    task: Task, kernel_name: str, spec: GridSpec, options: RFMOptions, split: Split, progress=None
) -> GridSelection:
    """``select`` with every candidate scored on ``spec.folds`` inner folds of the tuning rows.

    Each fold runs stage 0 and the paths as ``select`` does on one split, with the same bandwidths
    (multiples of the pooled rows' median distance) and paths from the same start (the best mean
    stage-0 setting); a candidate's score is the mean over the folds (``mean_candidates``). No one M
    is selected with t > 0 (each fold learned its own): only the strict protocol can evaluate it.
    """
    started = time.perf_counter()
    X = torch.cat([split.X_train, split.X_held_out])
    y = torch.cat([split.y_train, split.y_held_out])
    parts = [Split(X[a], y[a], X[b], y[b]) for a, b in inner_folds(task, y, spec.folds)]
    one = replace(spec, folds=1)
    auto = kernel_name == AUTO_KERNEL
    kernels = AUTO_KERNELS if auto else (kernel_name,)
    stages = {
        k: [kernel_stage(task, k, one, options, part, progress, scale_rows=X) for part in parts]
        for k in kernels
    }
    means0 = {k: mean_candidates(task, [stage.candidates for stage in stages[k]]) for k in kernels}
    best0 = best_of(task, [c for k in kernels for c in means0[k]])
    kernel = best0.kernel
    failures = sum(stage.unsolved for k in kernels for stage in stages[k])
    precisions = {p for k in kernels for stage in stages[k] for p in stage.precisions}
    form = options.form
    if options.method == "laplace":
        candidates = list(means0[kernel])
    else:
        path_options = options_for_kernel(options, kernel, auto)
        form = path_options.form
        start = (best0.bandwidth, best0.normalize)
        paths = [
            feature_stage(task, stage, one, path_options, part, progress, start=start)
            for stage, part in zip(stages[kernel], parts, strict=True)
        ]
        candidates = mean_candidates(task, [path.candidates for path in paths])
        failures += sum(
            path.failures - path_stage.unsolved
            for path, path_stage in zip(paths, stages[kernel], strict=True)
        )
        precisions |= {p for path in paths for p in path.precisions}
    chosen = choose(task, candidates, spec.rule)
    M = torch.eye(split.X_train.shape[1], dtype=torch.float64) if chosen.iteration == 0 else None
    candidates += [c for k in kernels if k != kernel for c in means0[k]]
    return GridSelection(chosen, M, candidates, precisions, time.perf_counter() - started, failures, form)


def mean_candidates(task: Task, per_fold: list[list[Candidate]]) -> list[Candidate]:
    """The candidates every fold scored, each with its scores averaged over the folds: validation and
    training score, the standard error of the mean (√Σ se² / k), the worst solve residual and CG steps."""

    def key(c: Candidate) -> tuple:
        return (c.kernel, c.bandwidth, c.normalize, c.ridge, c.iteration)

    tables = [{key(c): c for c in candidates} for candidates in per_fold]
    k = len(per_fold)
    out = []
    for name in tables[0]:
        if not all(name in table for table in tables):
            continue  # a grid point some fold could not solve is not scored
        group = [table[name] for table in tables]
        steps = [c.cg_steps for c in group]
        out.append(
            Candidate(
                *name,
                sum(c.val_score for c in group) / k,
                math.sqrt(sum(c.val_stderr**2 for c in group)) / k,
                sum(c.train_score for c in group) / k,
                max(c.solve_residual for c in group),
                None if None in steps else max(steps),
            )
        )
    if not out:
        raise InaccurateSolve("no grid point was solved accurately on every inner fold, even in float64")
    return out


def evaluate(
    task: Task,
    options: RFMOptions,
    selection: GridSelection,
    protocol: str,
    split: Split,
    progress=None,
    bags: int = defaults.BAGS,
) -> FoldResult:
    """One fold: strict relearns M_t on the fold's training part; paper reuses the selected M.
    ``bags`` > 1: the mean output of that many refits on the k-fold parts of the fold's training rows."""
    fit, how = chosen_fit(options, selection, protocol)
    chosen = selection.chosen
    if selection.M is None and how == "paper":
        raise InvalidInput(
            "the paper protocol reuses one M selected on the tuning split, and selection on inner folds "
            "learned one per fold: use the strict protocol (or grid folds=1)"
        )
    return fit_fold(task, fit, chosen.normalize, chosen.iteration, selection.M, how, split, progress, bags)


def chosen_fit(options: RFMOptions, selection: GridSelection, protocol: str) -> tuple[RFMOptions, str]:
    """The options of the selected setting, and how a refit makes it (with t = 0 both protocols are
    one solve with the selected M, the identity: no path to relearn)."""
    chosen = selection.chosen
    fit = replace(
        options, kernel=Kernel(chosen.kernel, chosen.bandwidth), ridge=chosen.ridge, form=selection.form
    )
    return fit, "paper" if chosen.iteration == 0 else protocol
