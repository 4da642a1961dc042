"""Schema of ``fact fit-rfm``: FACT-RFM and its baselines on tabular data (docs/SPEC.md §4-5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from factcli.choices import (
    AUTO_KERNEL,
    BANDWIDTH_UNITS,
    BASELINES,
    FORMS,
    METHODS,
    MISSING,
    PRECISIONS,
    PROTOCOLS,
    RESCALE_RULES,
    RIDGE_SOLVERS,
    SEARCHES,
    SELECTION_RULES,
    STANDARDIZE,
    TASKS,
    TRANSLATION_INVARIANT_KERNELS,
)
from factcli.core import defaults
from factcli.errors import FactError

from . import _checks as check
from . import choose
from .rfm import ScalableRfmConfig, validate_solver


@dataclass
class DataConfig:
    root: str | None = None  # data root holding uci/ (default: $FACT_DATA)
    target: str | None = None  # target column of a CSV / Parquet file
    task: str = "auto"  # classification | regression | auto (from the data, said in the summary)
    standardize: str = "auto"  # auto (yes, except the already standardized UCI collection) | yes | no
    test_fraction: float = 0.2  # held-out test split (datasets without fixed splits)
    val_fraction: float = defaults.VALIDATION_FRACTION  # of the remaining training data, to select on
    test: str | None = None  # the user's own test file (same columns as dataset): no test split is made
    missing: str = "refuse"  # numeric missing values: refuse | median (of training rows; counted)


@dataclass
class FitKernelConfig:
    """fit-rfm selects the bandwidth L from grid.bandwidths, so its kernel group names the kernel only."""

    # auto (selected on validation: laplace with rfm.form, or l1 with a diagonal M) | laplace | gaussian
    # | l1 (exp(−‖M^½(x − z)‖₁ / L)). auto: chosen on the shipped UCI datasets by the rule in
    # benchmarks/README.md, so the default is the kernel that did best there.
    name: str = defaults.TABULAR_KERNEL


@dataclass
class GridConfig:
    """Selected on the validation split, then the model is refit on all training data (docs/SPEC.md §5).

    Stage 0 fits kernel ridge regression (M = I) at every bandwidth × normalization × ridge; the
    feature-learning paths start from the best stage-0 bandwidth and normalization, for every ridge.
    Equal validation scores go to the simplest model: fewer iterations, larger ridge, larger bandwidth,
    no normalization. Paper (docs/SPEC.md §5): grid.bandwidths=[10] grid.bandwidth_unit=absolute.
    """

    ridges: list[float] = field(default_factory=lambda: list(defaults.GRID_RIDGES))
    normalize_rows: list[bool] = field(default_factory=lambda: list(defaults.GRID_NORMALIZATIONS))  # x/‖x‖
    bandwidths: list[float] = field(default_factory=lambda: list(defaults.GRID_BANDWIDTHS))
    # median: L = s × median pairwise distance of the training rows | absolute
    bandwidth_unit: str = defaults.GRID_BANDWIDTH_UNIT
    search: str = defaults.GRID_SEARCH  # best: paths from the best t = 0 setting | all: from every one
    rule: str = defaults.GRID_RULE  # best | noise: t > 0 only when it beats t = 0 by more than its std. error
    solver: str = "cholesky"  # t = 0: one Cholesky per ridge | eigen: one eigendecomposition for all (2 n×n)


@dataclass
class BenchmarkConfig:
    name: str = "uci"
    datasets: list[str] = field(default_factory=list)  # empty: every dataset under the data root
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    # Beside the methods' own t = 0 row (laplace: KRR with the configured kernel, auto by default).
    baselines: list[str] = field(default_factory=lambda: ["l1-krr", "l2-krr", "svc-rbf"])
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    shard: int = 0  # this process takes datasets shard, shard + num_shards, ...
    num_shards: int = 1
    results_dir: str | None = None  # shared folder of finished results (resume, shards); default: run dir
    # (for the shards of one sweep, -m benchmark.shard=range(N): the sweep directory)
    max_samples: int = 100_000  # the paper skips larger datasets


@dataclass
class Config:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads (null: $OMP_NUM_THREADS or every core)
    dataset: str = "breast_cancer"  # built-in name, a .csv/.parquet path, or a UCI dataset name
    method: str = "fact"
    protocol: str = "strict"  # strict: M relearned on each training part; paper: docs/SPEC.md §5 exactly
    data: DataConfig = field(default_factory=DataConfig)
    kernel: FitKernelConfig = field(default_factory=FitKernelConfig)
    # M ← FFᵀ: chosen on the shipped UCI datasets by the rule in benchmarks/README.md.
    # rfm.solver: exact or Nyström (experiments/common/scalable.py decides auto from n and memory).
    rfm: ScalableRfmConfig = field(
        default_factory=lambda: ScalableRfmConfig(fact_power=defaults.TABULAR_FACT_POWER)
    )
    grid: GridConfig = field(default_factory=GridConfig)
    benchmark: BenchmarkConfig | None = None
    memory_limit_gb: float | None = None  # refuse kernel matrices above this (default: available memory)
    plots: bool = True


def validate(cfg) -> None:
    choose(cfg.method, METHODS, "method")
    choose(cfg.protocol, PROTOCOLS, "protocol")
    choose(cfg.kernel.name, (AUTO_KERNEL, *TRANSLATION_INVARIANT_KERNELS), "kernel")
    choose(cfg.rfm.rescale, RESCALE_RULES, "rescale rule")
    choose(cfg.rfm.form, FORMS, "rfm.form")
    choose(cfg.grid.bandwidth_unit, BANDWIDTH_UNITS, "grid.bandwidth_unit")
    choose(cfg.grid.search, SEARCHES, "grid.search")
    choose(cfg.grid.rule, SELECTION_RULES, "grid.rule")
    choose(cfg.grid.solver, RIDGE_SOLVERS, "grid.solver")
    choose(cfg.rfm.precision, PRECISIONS, "precision")
    choose(cfg.data.task, TASKS, "task")
    choose(cfg.data.missing, MISSING, "data.missing")
    validate_solver(cfg.rfm)
    choose(str(cfg.data.standardize), STANDARDIZE, "data.standardize")
    if not 0 < cfg.data.test_fraction < 1 or not 0 < cfg.data.val_fraction < 1:
        raise FactError("data.test_fraction and data.val_fraction must lie strictly between 0 and 1")
    if not cfg.grid.bandwidths or min(cfg.grid.bandwidths) <= 0:
        raise FactError("grid.bandwidths must be a non-empty list of positive numbers")
    if not cfg.rfm.fact_power > 0:
        raise FactError(f"rfm.fact_power must be positive, got {cfg.rfm.fact_power}")
    if not cfg.grid.ridges or min(cfg.grid.ridges) < 0:
        raise FactError("grid.ridges must be a non-empty list of non-negative ridges")
    if cfg.rfm.iters < 0:
        raise FactError(f"rfm.iters must be >= 0, got {cfg.rfm.iters}")
    check.nonempty(cfg, "grid.normalize_rows")
    check.positive(cfg, "rfm.nfa_power", "rfm.solve_tol", "memory_limit_gb")
    check.at_least(cfg, 1, "threads")
    if cfg.benchmark is not None:
        check.nonempty(cfg, "benchmark.methods", "benchmark.protocols")
        check.distinct(cfg, "benchmark.datasets", "benchmark.methods", "benchmark.protocols")
        for method in cfg.benchmark.methods:
            choose(method, METHODS, "method")
        for baseline in cfg.benchmark.baselines:
            choose(baseline, BASELINES, "baseline")
        for protocol in cfg.benchmark.protocols:
            choose(protocol, PROTOCOLS, "protocol")
        if not 0 <= cfg.benchmark.shard < cfg.benchmark.num_shards:
            raise FactError("benchmark.shard must lie in 0 .. benchmark.num_shards - 1")
        check.at_least(cfg, 1, "benchmark.max_samples")
