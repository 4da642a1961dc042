"""Schema of ``fact fit-rfm``: FACT-RFM and its baselines on tabular data (docs/SPEC.md §4-5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from factcli.choices import (
    METHODS,
    MISSING,
    PRECISIONS,
    PROTOCOLS,
    RESCALE_RULES,
    STANDARDIZE,
    TASKS,
    TRANSLATION_INVARIANT_KERNELS,
)
from factcli.errors import FactError

from . import choose
from .rfm import KernelConfig, ScalableRfmConfig, validate_solver


@dataclass
class DataConfig:
    root: str | None = None  # data root holding uci/ (default: $FACT_DATA)
    target: str | None = None  # target column of a CSV / Parquet file
    task: str = "auto"  # classification | regression | auto (from the data, said in the summary)
    standardize: str = "auto"  # auto (yes, except the already standardized UCI collection) | yes | no
    test_fraction: float = 0.2  # held-out test split (datasets without fixed splits)
    val_fraction: float = 0.25  # of the remaining training data, for selecting hyperparameters
    test: str | None = None  # the user's own test file (same columns as dataset): no test split is made
    missing: str = "refuse"  # numeric missing values: refuse | median (of training rows; counted)


@dataclass
class GridConfig:
    """Selected on the validation split, then the model is refit on all training data."""

    ridges: list[float] = field(default_factory=lambda: [10.0, 1.0, 0.1, 0.01, 0.001])
    normalize_rows: list[bool] = field(default_factory=lambda: [False, True])  # x ← x / ‖x‖


@dataclass
class BenchmarkConfig:
    name: str = "uci"
    datasets: list[str] = field(default_factory=list)  # empty: every dataset under the data root
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    shard: int = 0  # this process takes datasets shard, shard + num_shards, ...
    num_shards: int = 1
    results_dir: str | None = None  # shared folder of finished results (resume, shards); default: run dir
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
    kernel: KernelConfig = field(default_factory=KernelConfig)
    rfm: ScalableRfmConfig = field(default_factory=ScalableRfmConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    benchmark: BenchmarkConfig | None = None
    memory_limit_gb: float | None = None  # refuse kernel matrices above this (default: available memory)
    plots: bool = True


def validate(cfg) -> None:
    choose(cfg.method, METHODS, "method")
    choose(cfg.protocol, PROTOCOLS, "protocol")
    choose(cfg.kernel.name, TRANSLATION_INVARIANT_KERNELS, "kernel")
    choose(cfg.rfm.rescale, RESCALE_RULES, "rescale rule")
    choose(cfg.rfm.precision, PRECISIONS, "precision")
    choose(cfg.data.task, TASKS, "task")
    choose(cfg.data.missing, MISSING, "data.missing")
    validate_solver(cfg.rfm)
    choose(str(cfg.data.standardize), STANDARDIZE, "data.standardize")
    if not 0 < cfg.data.test_fraction < 1 or not 0 < cfg.data.val_fraction < 1:
        raise FactError("data.test_fraction and data.val_fraction must lie strictly between 0 and 1")
    if cfg.kernel.bandwidth <= 0:
        raise FactError(f"kernel.bandwidth must be positive, got {cfg.kernel.bandwidth}")
    if not cfg.grid.ridges or min(cfg.grid.ridges) < 0:
        raise FactError("grid.ridges must be a non-empty list of non-negative ridges")
    if cfg.rfm.iters < 0:
        raise FactError(f"rfm.iters must be >= 0, got {cfg.rfm.iters}")
    if cfg.benchmark is not None:
        for method in cfg.benchmark.methods:
            choose(method, METHODS, "method")
        for protocol in cfg.benchmark.protocols:
            choose(protocol, PROTOCOLS, "protocol")
        if not 0 <= cfg.benchmark.shard < cfg.benchmark.num_shards:
            raise FactError("benchmark.shard must lie in 0 .. benchmark.num_shards - 1")
