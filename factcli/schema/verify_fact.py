"""Schema of ``fact verify-fact``: FACT checked layer by layer on a trained network (docs/SPEC.md §1-3, §9).

It extends train-net's schema (with no ``source`` it trains that network first, so every train-net
preset works here too) by ``source`` and the ``verify`` options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from factcli.choices import DTYPES, FACT_METHODS
from factcli.errors import FactError

from . import _checks as check
from . import choose
from .train_net import Config as TrainNetConfig
from .train_net import validate as validate_train_net


@dataclass
class VerifyConfig:
    fact_method: str = "auto"  # both: F from hooks too, compared; identity: −(1/λ)Wᵀ∇L only; auto
    per_sample_max_rows: int = 20_000  # auto: "both" up to this many training rows, else "identity"
    nfa: bool = True  # AGOP: one backward pass per output per batch
    enfa: bool = True  # E = (1/n) Σ g_i g_iᵀ (hooks)
    nfa_power: float = 0.5
    enfa_powers: list[float] = field(default_factory=lambda: [0.5, 1.0])
    heatmap_layers: list[int] = field(default_factory=lambda: [1])  # 1-based layers (W1 = first)
    heatmap_max_dim: int = 1024  # skip heatmaps of larger matrices
    batch_size: int = 1024  # memory O(this) whatever the dataset size
    dtype: str = "float64"


@dataclass
class Config(TrainNetConfig):
    source: str | None = None  # a train-net run directory or checkpoint; null: train one first
    # Any network of yours instead (model=FILE.py:FUNCTION is accepted for network= too):
    network: str | None = None  # path/to/file.py:function or package.module:function → nn.Module
    weights: str | None = None  # its state dict (.pt); null: the weights the function returns
    inputs: str | None = None  # its training data: .pt ({"X", "y"} or (X, y)) or .npz; null: dataset=
    lam: float | None = None  # the weight decay λ of its weight matrices (required with network=)
    verify: VerifyConfig = field(default_factory=VerifyConfig)


def validate(cfg) -> None:
    validate_train_net(cfg)
    if cfg.network is not None:
        if cfg.source is not None:
            raise FactError("give either source= (a train-net run) or network= (your model), not both")
        if cfg.lam is None or not cfg.lam > 0 or cfg.lam == float("inf"):
            raise FactError(
                f"network= needs lam > 0, the weight decay its weight matrices were trained with "
                f"(got lam={cfg.lam}); FACT is F = -(1/lambda) W^T grad L"
            )
    elif cfg.weights is not None or cfg.inputs is not None or cfg.lam is not None:
        raise FactError("weights=, inputs= and lam= go with network=FILE.py:FUNCTION (your model)")
    choose(cfg.verify.fact_method, FACT_METHODS, "verify.fact_method")
    choose(cfg.verify.dtype, DTYPES, "verify.dtype")
    if cfg.verify.batch_size <= 0:
        raise FactError(f"verify.batch_size must be positive, got {cfg.verify.batch_size}")
    check.nonempty(cfg, "verify.enfa_powers")
    check.each_positive(cfg, "verify.enfa_powers")
    check.positive(cfg, "verify.nfa_power")
    check.at_least(cfg, 0, "verify.per_sample_max_rows")
    check.at_least(cfg, 1, "verify.heatmap_max_dim")
    if any(layer < 1 for layer in cfg.verify.heatmap_layers):
        raise FactError("verify.heatmap_layers are 1-based layer numbers (1 = the first layer)")
