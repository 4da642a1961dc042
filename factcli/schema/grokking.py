"""Schema of ``fact grokking``: modular arithmetic with FACT-RFM, NFA-RFM or a network (docs/SPEC.md §7-8)."""

from __future__ import annotations

from dataclasses import dataclass, field

from factcli.choices import (
    DEVICES,
    DTYPES,
    GROKKING_ACTIVATIONS,
    GROKKING_LEARNERS,
    GROKKING_NETWORKS,
    GROKKING_OPTIMIZERS,
    GROKKING_RFM_LEARNERS,
    KERNELS,
    LOSSES,
    RESCALE_RULES,
)
from factcli.errors import FactError

from . import _checks as check
from . import choose
from .rfm import KernelConfig, RidgeRfmConfig


@dataclass
class NetConfig:
    """f(x) = W₂ σ(W₁ x), no biases; trained on the same split (docs/SPEC.md §7, neural side)."""

    width: int = 512
    activation: str = "quadratic"  # quadratic | relu
    init_scale: float = 1.0  # multiplies PyTorch's default uniform(±1/√fan_in) initialization
    loss: str = "mse"  # mse (on one-hot targets) | cross_entropy
    optimizer: str = "adamw"  # adamw (decoupled decay) | adam | sgd (coupled L2 decay, FACT exact)
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    momentum: float = 0.0  # sgd only
    weight_decay: float = 1.0
    batch_size: int = 32
    steps: int = 10_000  # optimizer steps
    log_every: int = 100  # steps between accuracy / loss rows in metrics.csv
    measure_every: int = 1_000  # steps between FACT / NFA correlations of W₁ (0: never)
    stop_after_test: float | None = None  # stop once test accuracy reaches this (None: run all steps)
    dtype: str = "float32"  # float32 | float64
    threads: int = 1  # CPU threads while training: batch-32 products gain nothing from more
    # learner=transformer: train-net's transformer (model=transformer) on the tokens a, b; width,
    # activation and init_scale above are the MLP's
    d_model: int = 32
    heads: int = 2
    blocks: int = 1
    mlp_width: int = 64
    tied: bool = False  # the unembedding is the embedding's matrix


@dataclass
class MeasuresConfig:
    early_iterations: int = 5  # "early accuracy": the best test accuracy over iterations 0..this
    tau: bool = True  # docs/SPEC.md §8: R² of τ = K'K'/n against K' at the first, jump and last iterates


@dataclass
class Config:
    seed: int = 0  # the train/test split and the network's initialization
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads (None: $OMP_NUM_THREADS, else every core); 1 on a busy machine
    p: int = 61
    operation: str = "add"  # add (+) | sub (-) | mul (*) | div (/)
    train_fraction: float = 0.5
    learner: str = "fact"  # fact | fact-geo | nfa | net | transformer
    compare: list[str] = field(default_factory=list)  # more RFM learners on the same split and figures
    # The predecessor code's defaults (docs/SPEC.md §7): Gaussian L = 2.5, 75 ridgeless iterations in float64,
    # NFA with the centred AGOP.
    kernel: KernelConfig = field(default_factory=lambda: KernelConfig(name="gaussian", bandwidth=2.5))
    rfm: RidgeRfmConfig = field(
        default_factory=lambda: RidgeRfmConfig(iters=75, ridge=0.0, precision="float64", centered_agop=True)
    )
    net: NetConfig = field(default_factory=NetConfig)
    measures: MeasuresConfig = field(default_factory=MeasuresConfig)
    plots: bool = True


def validate(cfg) -> None:
    from factcli.data.modular import canonical_operation, check_modulus  # here: it loads torch

    choose(cfg.learner, GROKKING_LEARNERS, "learner")
    for other in cfg.compare:
        choose(other, GROKKING_RFM_LEARNERS, "learner to compare")
    if cfg.compare and (cfg.learner in GROKKING_NETWORKS or cfg.learner in cfg.compare):
        raise FactError(
            "compare lists other RFM learners than `learner` (iterations and steps do not share an axis)"
        )
    choose(cfg.device, DEVICES, "device")
    check_modulus(int(cfg.p), canonical_operation(cfg.operation))
    if not 0 < cfg.train_fraction < 1:
        raise FactError(f"train_fraction = {cfg.train_fraction} must lie strictly between 0 and 1")
    choose(cfg.kernel.name, KERNELS, "kernel")
    if not cfg.kernel.bandwidth > 0:
        raise FactError(f"kernel.bandwidth must be positive, got {cfg.kernel.bandwidth}")
    choose(cfg.rfm.precision, DTYPES, "rfm.precision")
    choose(cfg.rfm.rescale, RESCALE_RULES, "rfm.rescale rule")
    if cfg.rfm.iters < 0 or cfg.rfm.ridge < 0:
        raise FactError("rfm.iters and rfm.ridge must be non-negative")
    if cfg.rfm.ridge == 0 and cfg.rfm.precision != "float64":
        raise FactError("a ridgeless solve (rfm.ridge=0) needs rfm.precision=float64; or set a ridge")
    net = cfg.net
    choose(net.activation, GROKKING_ACTIVATIONS, "net.activation")
    choose(net.loss, LOSSES, "net.loss")
    choose(net.optimizer, GROKKING_OPTIMIZERS, "net.optimizer")
    choose(net.dtype, DTYPES, "net.dtype")
    if len(net.betas) != 2 or not all(0 <= beta < 1 for beta in net.betas):
        raise FactError(f"net.betas must be two numbers in [0, 1), got {list(net.betas)}")
    if cfg.threads is not None and cfg.threads < 1:
        raise FactError(f"threads must be at least 1 (or null for every core), got {cfg.threads}")
    for name in ("width", "batch_size", "steps", "log_every", "threads"):
        if getattr(net, name) < 1:
            raise FactError(f"net.{name} must be at least 1, got {getattr(net, name)}")
    if net.lr <= 0 or net.weight_decay < 0 or net.measure_every < 0:
        raise FactError("net.lr must be positive; net.weight_decay and net.measure_every non-negative")
    check.at_least(cfg, 1, "net.d_model", "net.heads", "net.blocks", "net.mlp_width")
    if cfg.learner == "transformer" and net.d_model % net.heads:
        raise FactError(f"net.d_model={net.d_model} must be a multiple of net.heads={net.heads}")
    if net.measure_every > 0 and net.weight_decay == 0 and cfg.learner in GROKKING_NETWORKS:
        raise FactError("FACT needs weight decay > 0: set net.weight_decay > 0 or net.measure_every=0")
    if cfg.measures.early_iterations < 0:
        raise FactError("measures.early_iterations must be >= 0")
    check.distinct(cfg, "compare")
    check.positive(cfg, "rfm.nfa_power", "rfm.solve_tol", "net.init_scale")
    check.at_least(cfg, 0, "net.momentum")
    check.between(cfg, 0, 1, "net.stop_after_test")
