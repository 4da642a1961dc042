"""FACT, NFA and eNFA per layer for any ``torch.nn.Module``: the table ``fact verify-fact`` writes
(docs/SPEC.md §1-3).

    from factcli.core.layer_table import layer_table
    table = layer_table(model, (X, y), "cross_entropy", lam=1e-4)      # or a DataLoader of (X, y)
    table.rows      # one dict per weight matrix, in forward order: residual first, then correlations
    table.skipped   # the parameters it does not treat (not matrices, never used), each with the reason

What is checked. Every 2-D weight the forward pass uses, however it uses it (core/uses.py): a
Linear at any number of positions (tokens, patches: F sums over samples and positions), a Conv1d /
Conv2d of any padding or groups (W the (out, in/groups·kernel) matrix at every patch), an embedding
(read as Eᵀ, its input a one-hot row), a weight tied between an embedding and an unembedding (F
sums both uses' terms), the Q, K and V blocks of attention's packed projection (one row each).
A weight used in a way the forward/backward form does not read (a position table added as a raw
parameter, ``x @ W``) keeps the identity form F = −(1/λ)Wᵀ∇_W L, and its row says so (``form``).
Parameters that are not matrices (biases, normalisation scales) are listed in ``skipped``.

What λ means. FACT holds at critical points of L + (λ/2)‖θ‖², L the mean of the per-sample loss.
The condition for one W, ∇_W L + λW = 0, involves only W, so λ is the decay on the weight matrices
(``SGD/Adam(weight_decay=λ)``, coupled, or (λ/2)‖W‖² added to the mean loss). Biases and
normalisation parameters may have had any decay, or none: they are not checked and do not change
the check of W. The residual ‖∇_W L + λW‖/‖λW‖ says per layer whether W is at such a point.

How it is evaluated. On a copy of the model in eval mode (dropout off, batch norm on its running
statistics: the per-sample losses must not depend on which samples share a batch) and in
``dtype`` (float64 by default: F is a difference of nearly equal terms near convergence). The data
are read once; memory is O(one batch). Pure torch: no files, configs or printing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from factcli.core import InvalidInput
from factcli.core.fact import (
    LayerStatistics,
    batch_statistics,
    check_weight_decay,
    layer_agreement,
    preconditioners_by_id,
    relative_error,
)
from factcli.core.losses import per_sample_loss
from factcli.core.uses import discover


@dataclass
class LayerTable:
    rows: list[dict]  # one per weight layer: layer (W1…), module, shape, residual, agreement columns
    skipped: list[dict]  # one per parametrised module not treated: module, type, reason
    loss: float  # mean per-sample loss L over the data (unregularized)
    n: int  # samples
    layers: list[LayerStatistics] = field(repr=False, default_factory=list)  # the matrices

    @property
    def max_residual(self) -> float:
        return max(row["residual"] for row in self.rows)

    def at_critical_point(self, tol: float) -> bool:
        """Every layer's residual ‖∇_W L + λW‖/‖λW‖ at most ``tol``."""
        return self.max_residual <= tol


def layer_table(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor] | Iterable,
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lam: float,
    *,
    batch_size: int = 1024,
    dtype: torch.dtype | None = torch.float64,
    per_sample: bool = True,
    nfa: bool = True,
    enfa: bool = True,
    nfa_power: float = 0.5,
    enfa_powers: tuple[float, ...] = (0.5, 1.0),
    preconditioners: dict[str, torch.Tensor] | None = None,
) -> LayerTable:
    """Per weight layer of ``model`` on ``data``: residual, then WᵀW against F, NFA and eNFA.

    ``data``: a pair (X, Y) of tensors (read in batches of ``batch_size``) or an iterable of (X, Y)
    batches such as a DataLoader (every sample once; shuffling does not matter). ``loss``: "mse"
    (Y one-hot or real targets, torch's MSELoss convention), "cross_entropy" (Y labels), or a
    callable giving one loss per sample (a (b, …) result is averaged over all but the first
    dimension, so its mean is torch's ``reduction='mean'``). ``lam``: the weight decay λ of W.
    ``per_sample`` also computes F from its per-sample definition and reports how far the two
    computations differ (``fact_paths_relerr``). ``dtype=None`` keeps the model's precision.
    ``preconditioners`` (parameter name → P, the parameter's shape, e.g. ``fact.adam_preconditioners``)
    adds the preconditioned FACT −(1/λ)WᵀP⁻¹∇_W L and its residual (docs/SPEC.md §10).
    """
    check_weight_decay(lam)
    loss_fn = per_sample_loss(loss) if isinstance(loss, str) else loss
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model = copy.deepcopy(model).eval()
    if dtype is not None:
        model = model.to(dtype)
    batches = _batches(data, batch_size, device, dtype)
    first = next(batches, None)
    if first is None:
        raise InvalidInput("no data: the data held no batches")
    _check_finite(model, first[0])
    matrices, skipped = discover(model, first[0])
    if not matrices:
        raise InvalidInput(
            "the model uses no weight matrix in its forward pass (no 2-D parameter, nor a convolution's "
            "weight): there is nothing for FACT to check"
        )
    stats = batch_statistics(
        model, _chain(first, batches), loss_fn, matrices, lam, per_sample=per_sample, enfa=enfa, agop=nfa,
        preconditioners=preconditioners_by_id(model, preconditioners),
    )  # fmt: skip
    rows = []
    for index, s in enumerate(stats.layers):
        k, d = s.weight.shape
        row = {"layer": f"W{index + 1}", "module": s.name, "shape": f"{k}x{d}"}
        row.update(layer_agreement(s, nfa_power=nfa_power, enfa_powers=tuple(enfa_powers)))
        if s.fact_per_sample is not None:
            row["fact_paths_relerr"] = relative_error(s.fact, s.fact_per_sample)
        row["lambda"] = lam
        row["uses"] = s.uses
        row["form"] = (
            "identity and per-use" if s.identity_only is None else f"identity only: {s.identity_only}"
        )
        rows.append(row)
    return LayerTable(rows, skipped, stats.loss, stats.n, stats.layers)


def residuals(model: nn.Module, data, loss, lam: float, **options) -> dict[str, float]:
    """Only the residual ‖∇_W L + λW‖/‖λW‖ of every weight layer (one backward pass per batch)."""
    table = layer_table(model, data, loss, lam, per_sample=False, nfa=False, enfa=False, **options)
    return {row["layer"]: row["residual"] for row in table.rows}


def _check_finite(model: nn.Module, X: torch.Tensor) -> None:
    """NaN or infinite weights or inputs make every matrix NaN (an eigensolver then 'fails to
    converge'): say which, first."""
    if X.is_floating_point() and not torch.isfinite(X).all():
        raise InvalidInput("the inputs hold NaN or infinite values: clean or impute them first")
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise InvalidInput(
            f"the model's parameter {broken[0]} holds NaN or infinite values (a diverged training?): "
            "there is nothing to check"
        )


def _batches(data, batch_size: int, device: torch.device, dtype: torch.dtype | None):
    """(X, Y) batches on ``device``, floating tensors cast to ``dtype``."""
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        X, Y = data
        if X.shape[0] != Y.shape[0]:
            raise InvalidInput(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        source = ((X[i : i + batch_size], Y[i : i + batch_size]) for i in range(0, X.shape[0], batch_size))
    else:
        source = iter(data)
    for batch in source:
        if isinstance(batch, dict) or len(batch) != 2:
            raise InvalidInput("data batches must be (X, Y) pairs")
        yield _to(batch[0], device, dtype), _to(batch[1], device, dtype)


def _to(t: torch.Tensor, device, dtype) -> torch.Tensor:
    t = torch.as_tensor(t).to(device)
    return t.to(dtype) if dtype is not None and t.is_floating_point() else t


def _chain(first, rest):
    yield first
    yield from rest
