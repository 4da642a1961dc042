"""Schema of ``fact parity``: sparse parity with FACT-RFM, NFA-RFM, the Laplace baseline or a network
(docs/SPEC.md §4, §6)."""

from __future__ import annotations

from dataclasses import dataclass, field

from factcli.choices import (
    PARITY_INPUTS,
    PARITY_LEARNERS,
    PARITY_OPTIMIZERS,
    PRECISIONS,
    RESCALE_RULES,
    TRANSLATION_INVARIANT_KERNELS,
)
from factcli.errors import FactError

from . import _checks as check
from . import choose
from .rfm import KernelConfig, ScalableRidgeRfmConfig, validate_solver


@dataclass
class NetConfig:
    """learner=net: f(x) = W₂ relu(W₁x + b₁) + b₂, two outputs, MSE on one-hot labels (docs/SPEC.md §6)."""

    width: int = 512
    bias: bool = True
    optimizer: str = "sgd"  # sgd | adam, weight decay coupled (L2 in the gradient)
    lr: float = 0.1
    momentum: float = 0.0  # sgd
    weight_decay: float = 3e-3  # λ of FACT; must be > 0 (1e-4 leaves W₁ near its init off the support)
    batch_size: int = 32
    steps: int = 20000
    log_every: int = 100  # steps between test evaluations and W₁ᵀW₁ measures
    fact_every: int = 1000  # steps between FACT / NFA correlations of W₁ (full-batch passes)
    stop_accuracy: float | None = None  # stop early once test accuracy reaches this (null: never)
    threads: int = 1  # CPU threads while training: batch-32 products gain nothing from more


@dataclass
class Config:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads (null: $OMP_NUM_THREADS, else every core); 1 on a busy machine
    d: int = 50  # input dimension
    k: int = 4  # parity order: y = XOR of k coordinates
    n: int = 4000  # training samples
    test_size: int = 10000
    support: list[int] | None = None  # 0-based coordinates; null: k drawn with the seed
    inputs: str = "bits"  # bits ({0,1}) | signs (±1)
    label_noise: float = 0.0  # probability of flipping each training label (test labels stay clean)
    learner: str = "fact"  # fact | fact-geo | nfa | laplace (no feature learning) | net
    kernel: KernelConfig = field(default_factory=KernelConfig)  # Laplace, L = 10, as fit-rfm
    # Exact by default: m Nyström centres limit which parities are learned (measured: d=50, k=4,
    # n=8,000 is learned exactly but not with 2,000 centres); rfm.solver=nystrom for n beyond memory.
    rfm: ScalableRidgeRfmConfig = field(
        default_factory=lambda: ScalableRidgeRfmConfig(iters=10, solver="exact")
    )
    net: NetConfig = field(default_factory=NetConfig)
    memory_limit_gb: float | None = None  # refuse kernel matrices above this (default: available memory)
    plots: bool = True


def validate(cfg) -> None:
    choose(cfg.learner, PARITY_LEARNERS, "learner")
    choose(cfg.inputs, PARITY_INPUTS, "inputs")
    choose(cfg.kernel.name, TRANSLATION_INVARIANT_KERNELS, "kernel")
    choose(cfg.rfm.rescale, RESCALE_RULES, "rescale rule")
    choose(cfg.rfm.precision, PRECISIONS, "precision")
    validate_solver(cfg.rfm)
    choose(cfg.net.optimizer, PARITY_OPTIMIZERS, "optimizer")
    d, k = cfg.d, cfg.k
    if d < 1:
        raise FactError(f"d must be at least 1, got d={d}")
    if not 1 <= k <= d:
        raise FactError(
            f"k must lie between 1 and d={d} (the parity reads k of the d coordinates), got k={k}"
        )
    if cfg.n < 2:
        raise FactError(f"n must be at least 2 training samples, got n={cfg.n}")
    if cfg.test_size < 1:
        raise FactError(f"test_size must be at least 1, got {cfg.test_size}")
    if cfg.support is not None:
        support = list(cfg.support)
        if len(support) != k:
            raise FactError(f"support {support} has {len(support)} coordinates but k={k}; give k of them")
        if len(set(support)) != len(support):
            raise FactError(f"support {support} repeats a coordinate; give k distinct ones")
        if not all(0 <= j < d for j in support):
            raise FactError(f"support {support} has a coordinate outside 0..{d - 1} (0-based, d={d})")
    if not 0 <= cfg.label_noise < 0.5:
        raise FactError(f"label_noise must lie in [0, 0.5) (0.5 makes labels random), got {cfg.label_noise}")
    if cfg.kernel.bandwidth <= 0:
        raise FactError(f"kernel.bandwidth must be positive, got {cfg.kernel.bandwidth}")
    if cfg.rfm.ridge < 0 or cfg.rfm.iters < 0:
        raise FactError("rfm.ridge and rfm.iters must be >= 0")
    if cfg.threads is not None and cfg.threads < 1:
        raise FactError(f"threads must be at least 1 (or null for every core), got {cfg.threads}")
    net = cfg.net
    for name in ("width", "batch_size", "steps", "log_every", "fact_every", "threads"):
        if getattr(net, name) < 1:
            raise FactError(f"net.{name} must be at least 1, got {getattr(net, name)}")
    if net.lr <= 0:
        raise FactError(f"net.lr must be positive, got {net.lr}")
    check.positive(cfg, "rfm.nfa_power", "rfm.solve_tol", "memory_limit_gb")
    check.at_least(cfg, 0, "net.momentum", "net.weight_decay")
    check.between(cfg, 0, 1, "net.stop_accuracy")
    if cfg.learner == "net" and net.weight_decay <= 0:
        raise FactError(
            f"net.weight_decay = {net.weight_decay}: FACT needs weight decay λ > 0; set a positive one"
        )
