"""Schema of ``fact fit-rfm``: FACT-RFM and its baselines on tabular data (SPEC §4-5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import choose

METHODS = ("laplace", "nfa", "fact", "fact-geo")
PROTOCOLS = ("strict", "paper")


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
class KernelConfig:
    name: str = "laplace"  # laplace | gaussian
    bandwidth: float = 10.0  # L


@dataclass
class RfmConfig:
    iters: int = 5  # feature-learning iterations T; the best t in 0..T is chosen on validation
    nfa_power: float = 0.5  # nfa: M ← AGOP^s
    centered_agop: bool = False
    rescale: str = "trace"  # trace (tr M = d) | max (max |M_ij| = 1) | none
    precision: str = "auto"  # auto (float32, redone in float64 when inaccurate) | float32 | float64
    solve_tol: float = 1e-3  # largest accepted relative residual of the kernel solve
    solver: str = "auto"  # auto (exact up to exact_max_rows training rows, then nystrom) | exact | nystrom
    exact_max_rows: int = 20_000  # auto: largest training part solved exactly (n×n)
    centers: int | None = None  # nystrom: centres m (null: every row up to 2,000, then 2,000)
    cg_max_iters: int = 100  # nystrom: most conjugate-gradient steps per solve


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
    protocol: str = "strict"  # strict: M relearned on each training part; paper: SPEC §5 exactly
    data: DataConfig = field(default_factory=DataConfig)
    kernel: KernelConfig = field(default_factory=KernelConfig)
    rfm: RfmConfig = field(default_factory=RfmConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    benchmark: BenchmarkConfig | None = None
    memory_limit_gb: float | None = None  # refuse kernel matrices above this (default: available memory)
    plots: bool = True


def validate(cfg) -> None:
    from factcli.errors import FactError

    choose(cfg.method, METHODS, "method")
    choose(cfg.protocol, PROTOCOLS, "protocol")
    choose(cfg.kernel.name, ("laplace", "gaussian"), "kernel")
    choose(cfg.rfm.rescale, ("trace", "max", "none"), "rescale rule")
    choose(cfg.rfm.precision, ("auto", "float32", "float64"), "precision")
    choose(cfg.rfm.solver, ("auto", "exact", "nystrom"), "rfm.solver")
    if cfg.rfm.centers is not None and cfg.rfm.centers < 1:
        raise FactError(f"rfm.centers must be at least 1 (or null for the default), got {cfg.rfm.centers}")
    if cfg.rfm.cg_max_iters < 1 or cfg.rfm.exact_max_rows < 0:
        raise FactError("rfm.cg_max_iters must be at least 1 and rfm.exact_max_rows at least 0")
    choose(cfg.data.task, ("auto", "classification", "regression"), "task")
    choose(cfg.data.missing, ("refuse", "median"), "data.missing")
    choose(str(cfg.data.standardize), ("auto", "yes", "no", "True", "False"), "data.standardize")
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
