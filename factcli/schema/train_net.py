"""Schema of ``fact train-net``: a network trained with weight decay until it is stationary
(docs/SPEC.md §3)."""

from __future__ import annotations

from dataclasses import dataclass, field

from factcli.choices import (
    ACTIVATIONS,
    DTYPES,
    FINISHES,
    FIXED_TASKS,
    IMAGE_SPLITS,
    INITS,
    LOSSES,
    MODEL_KINDS,
    OPTIMIZERS,
    SCHEDULES,
)
from factcli.errors import FactError

from . import _checks as check
from . import choose


@dataclass
class TeacherConfig:
    """dataset=teacher: x ~ N(0, I_dim), labels from a random network reading ``rank`` directions."""

    dim: int = 20
    rank: int = 2
    classes: int = 3
    width: int = 16
    task: str = "classification"  # classification | regression


@dataclass
class CounterexampleConfig:
    """dataset=nfa_counterexample (docs/SPEC.md §9): x ∈ {e1, τ·e2, e1+e2}, y = xᵀ diag(1, δ) x."""

    delta: float = 0.01
    tau: float = 1000.0


@dataclass
class ModularConfig:
    """dataset=modular: the grokking task, every pair (a, b) of Z_p labelled (a ∘ b) mod p."""

    p: int = 23
    operation: str = "add"  # add | sub | mul | div
    train_fraction: float = 0.5


@dataclass
class DataConfig:
    root: str | None = None  # data root holding mnist/, cifar10/, uci/ (default: $FACT_DATA)
    directory: str | None = None  # folder of the MNIST / CIFAR-10 files (default: <root>/<dataset>)
    split: str = "train"  # MNIST / CIFAR-10 files the training rows come from: train | test
    test_split: str | None = None  # files of the test rows; null: hold out test_size rows of `split`
    train_size: int | None = None  # training rows (a seeded subset); null: all that remain
    test_size: float = 0.2  # test rows: a fraction of the rows if < 1, else a number of rows
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    counterexample: CounterexampleConfig = field(default_factory=CounterexampleConfig)
    modular: ModularConfig = field(default_factory=ModularConfig)


@dataclass
class ModelConfig:
    """The default: the paper's depth (5 hidden layers, no biases), width 32 on the 64 digit pixels,
    so train-net / verify-fact with no arguments reach a critical point (every residual <= 1e-3) in
    about a minute on 2 CPU cores. GELU rather than the paper's ReLU: L_lambda of a ReLU net is not
    differentiable where a pre-activation is 0, its minimizers can sit on such kinks where no gradient
    vanishes, and L-BFGS stalls there at residuals of 0.1-1 (measured on digits); GELU is ReLU-like
    but smooth. model.activation=relu is the paper's choice (its presets keep it)."""

    kind: str = "mlp"  # mlp | conv | transformer (dataset=modular)
    hidden: list[int] = field(default_factory=lambda: [32, 32, 32, 32, 32])  # mlp widths
    channels: list[int] = field(default_factory=lambda: [16, 32])  # conv layers
    kernel_size: int = 3
    stride: int = 2
    activation: str = "gelu"  # relu | gelu | softplus | quadratic | tanh
    bias: bool = False
    init: str = "kaiming"  # kaiming (He normal: deep nets fit sooner) | default (PyTorch's)
    # transformer: embedding, `blocks` of attention (`heads`) + MLP (`mlp_width`), unembedding
    d_model: int = 32
    heads: int = 2
    blocks: int = 1
    mlp_width: int = 64
    tied: bool = False  # the unembedding is the embedding's matrix (one weight, two uses)


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | gd (full batch) | adam | adamw (decoupled: FACT approximate) | lbfgs
    lr: float = 0.05
    weight_decay: float = 1e-3  # λ of FACT (coupled L2 for sgd, gd, adam, lbfgs)
    momentum: float = 0.9  # sgd, gd
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam, adamw
    eps: float = 1e-8
    batch_size: int = 128  # ignored (full batch) by gd and lbfgs
    schedule: str = "constant"  # constant | cosine (to min_lr_factor·lr at max_steps) | step
    warmup_steps: int = 0  # linear warm-up before the schedule
    min_lr_factor: float = 0.0
    step_every: int = 1000  # schedule=step: multiply lr by gamma every step_every steps
    gamma: float = 0.5
    history_size: int = 50  # lbfgs


@dataclass
class TrainConfig:
    max_steps: int = 2000  # steps of `optim` (fewer if every residual falls to tol before)
    tol: float = 1e-3  # converged: every layer's residual ||grad_W L + lambda W||/||lambda W|| <= tol
    # then, unless converged: full-batch L-BFGS on L_lambda in float64 until every residual <= tol
    # (its iterations count as steps); none: stop after max_steps
    finish: str = "lbfgs"  # lbfgs | none
    finish_max_iters: int = 20000  # a cap only: a run reaching it says it did not converge
    finish_history: int = 50  # L-BFGS curvature pairs
    finish_check_every: int = 20  # L-BFGS iterations between residual checks
    check_every: int = 100  # steps between full-batch residual checks
    log_every: int = 500  # steps between per-layer FACT / NFA / eNFA metrics
    checkpoint_every: int = 500  # steps between checkpoints (also written at every log and at the end)
    resume: bool = True  # continue from checkpoint.pt when the run directory holds one
    stats_dtype: str = "float64"  # precision of the FACT / AGOP computations
    stats_batch_size: int = 1024  # memory O(this) whatever the dataset size
    nfa_power: float = 0.5  # NFA: WᵀW ∝ AGOP^s
    enfa_power: float = 0.5  # eNFA logged along training: WᵀW ∝ E^s
    estimate_only: bool = False  # time a few steps, print the estimate, stop
    # model=quadratic only: after training, solve the §9 net's stationarity conditions exactly
    # (first-order methods only creep towards them on its ill-conditioned data)
    polish_quadratic: bool = False


@dataclass
class Config:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    # CPU threads for torch; null: every core. 1 by default: the default networks are too small to
    # gain from more, and on a shared machine spinning threads make every step many times slower.
    threads: int | None = 1
    dtype: str = "float32"  # training precision: float32 | float64
    dataset: str = (
        "digits"  # digits | mnist | cifar10 | teacher | nfa_counterexample | modular | a tabular name
    )
    loss: str = "mse"  # mse (on one-hot labels, the paper's) | cross_entropy
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    plots: bool = True


def validate(cfg) -> None:
    choose(cfg.loss, LOSSES, "loss")
    choose(cfg.dtype, DTYPES, "dtype")
    choose(cfg.train.stats_dtype, DTYPES, "train.stats_dtype")
    choose(cfg.model.kind, MODEL_KINDS, "model.kind")
    choose(cfg.model.activation, ACTIVATIONS, "model.activation")
    choose(cfg.model.init, INITS, "model.init")
    choose(cfg.optim.name, OPTIMIZERS, "optimizer")
    choose(cfg.optim.schedule, SCHEDULES, "optim.schedule")
    choose(cfg.data.split, IMAGE_SPLITS, "data.split")
    if cfg.data.test_split is not None:
        choose(cfg.data.test_split, IMAGE_SPLITS, "data.test_split")
    choose(cfg.data.teacher.task, FIXED_TASKS, "data.teacher.task")
    choose(cfg.train.finish, FINISHES, "train.finish")
    if not cfg.optim.weight_decay > 0:
        raise FactError(
            f"optim.weight_decay = {cfg.optim.weight_decay}: FACT is undefined without weight decay "
            "(F = -(1/lambda) W^T grad L); set optim.weight_decay > 0"
        )
    positive = {
        "optim.lr": cfg.optim.lr,
        "optim.batch_size": cfg.optim.batch_size,
        "train.max_steps": cfg.train.max_steps,
        "train.check_every": cfg.train.check_every,
        "train.log_every": cfg.train.log_every,
        "train.checkpoint_every": cfg.train.checkpoint_every,
        "train.stats_batch_size": cfg.train.stats_batch_size,
        "train.tol": cfg.train.tol,
        "train.finish_max_iters": cfg.train.finish_max_iters,
        "train.finish_history": cfg.train.finish_history,
        "train.finish_check_every": cfg.train.finish_check_every,
    }
    for key, value in positive.items():
        if not value > 0:
            raise FactError(f"{key} must be positive, got {value}")
    if not cfg.model.hidden and cfg.model.kind == "mlp":
        raise FactError("model.hidden is empty: an MLP needs at least one hidden layer")
    if cfg.model.kind == "conv":
        check.nonempty(cfg, "model.channels")
    check.each_at_least(cfg, 1, "model.hidden", "model.channels")
    check.at_least(cfg, 1, "model.kernel_size", "model.stride", "optim.step_every", "optim.history_size")
    check.at_least(cfg, 1, "threads", "data.train_size", "data.teacher.dim", "data.teacher.rank")
    check.at_least(cfg, 1, "data.teacher.width", "data.teacher.classes")
    check.at_least(cfg, 1, "model.d_model", "model.heads", "model.blocks", "model.mlp_width")
    if cfg.model.kind == "transformer" and cfg.model.d_model % cfg.model.heads:
        raise FactError(
            f"model.d_model={cfg.model.d_model} must be a multiple of model.heads={cfg.model.heads}"
        )
    if cfg.model.kind == "transformer" and cfg.dataset != "modular":
        raise FactError(f"model.kind=transformer reads token pairs: use dataset=modular, not {cfg.dataset}")
    if cfg.dataset == "modular":
        from factcli.data.modular import canonical_operation, check_modulus  # here: it loads torch

        check_modulus(int(cfg.data.modular.p), canonical_operation(cfg.data.modular.operation))
        check.between(cfg, 0, 1, "data.modular.train_fraction")
    check.at_least(cfg, 0, "optim.momentum", "optim.warmup_steps")
    check.positive(cfg, "optim.eps", "optim.gamma", "data.test_size", "train.nfa_power", "train.enfa_power")
    check.positive(cfg, "data.counterexample.delta", "data.counterexample.tau")
    check.between(cfg, 0, 1, "optim.min_lr_factor")
    if len(cfg.optim.betas) != 2 or not all(0 <= beta < 1 for beta in cfg.optim.betas):
        raise FactError(f"optim.betas must be two numbers in [0, 1), got {list(cfg.optim.betas)}")
    teacher = cfg.data.teacher
    if cfg.dataset == "teacher" and teacher.rank > teacher.dim:
        raise FactError(f"data.teacher.rank={teacher.rank} exceeds data.teacher.dim={teacher.dim}")
    if cfg.dataset == "teacher" and teacher.task == "classification" and teacher.classes < 2:
        raise FactError(f"data.teacher.classes must be at least 2 for classification, got {teacher.classes}")
