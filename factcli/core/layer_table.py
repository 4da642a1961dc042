"""FACT, NFA and eNFA per layer for any ``torch.nn.Module``: the table ``fact verify-fact`` writes
(docs/SPEC.md §1-3).

    from factcli.core.layer_table import layer_table
    table = layer_table(model, (X, y), "cross_entropy", lam=1e-4)      # or a DataLoader of (X, y)
    table.rows      # one dict per weight layer, in forward order: residual first, then correlations
    table.skipped   # the parametrised layers it cannot treat, each with the reason

What is checked. Every ``nn.Linear`` and plain ``nn.Conv2d`` (groups = 1, zero padding; its weight
read as the (out, in·k·k) matrix applied at every patch) the forward pass applies: W enters the
network only through z = W h with h independent of W, which is what FACT needs. A layer applied
several times (shared weights) sums over its applications. Other parametrised modules (norms,
embeddings, attention's packed projections, other convolutions) are listed in ``skipped``.

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
    relative_error,
)
from factcli.core.losses import per_sample_loss

TREATED = (nn.Linear, nn.Conv2d)


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
) -> LayerTable:
    """Per weight layer of ``model`` on ``data``: residual, then WᵀW against F, NFA and eNFA.

    ``data``: a pair (X, Y) of tensors (read in batches of ``batch_size``) or an iterable of (X, Y)
    batches such as a DataLoader (every sample once; shuffling does not matter). ``loss``: "mse"
    (Y one-hot or real targets, torch's MSELoss convention), "cross_entropy" (Y labels), or a
    callable giving one loss per sample (a (b, …) result is averaged over all but the first
    dimension, so its mean is torch's ``reduction='mean'``). ``lam``: the weight decay λ of W.
    ``per_sample`` also computes F from its per-sample definition and reports how far the two
    computations differ (``fact_paths_relerr``). ``dtype=None`` keeps the model's precision.
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
    layers, skipped = find_weight_layers(model, first[0])
    if not layers:
        raise InvalidInput("the model applies no Linear or Conv2d layer: there is no weight matrix to check")
    stats = batch_statistics(
        model, _chain(first, batches), loss_fn, layers, lam, per_sample=per_sample, enfa=enfa, agop=nfa,
    )  # fmt: skip
    rows = []
    for index, ((name, _), s) in enumerate(zip(layers, stats.layers, strict=True)):
        k, d = s.weight.shape
        row = {"layer": f"W{index + 1}", "module": name, "shape": f"{k}x{d}"}
        row.update(layer_agreement(s, nfa_power=nfa_power, enfa_powers=tuple(enfa_powers)))
        if s.fact_per_sample is not None:
            row["fact_paths_relerr"] = relative_error(s.fact, s.fact_per_sample)
        row["lambda"] = lam
        rows.append(row)
    return LayerTable(rows, skipped, stats.loss, stats.n, stats.layers)


def residuals(model: nn.Module, data, loss, lam: float, **options) -> dict[str, float]:
    """Only the residual ‖∇_W L + λW‖/‖λW‖ of every weight layer (one backward pass per batch)."""
    table = layer_table(model, data, loss, lam, per_sample=False, nfa=False, enfa=False, **options)
    return {row["layer"]: row["residual"] for row in table.rows}


def find_weight_layers(
    model: nn.Module, example: torch.Tensor
) -> tuple[list[tuple[str, nn.Module]], list[dict]]:
    """(name, module) of the Linear / Conv2d layers the forward pass of ``example`` applies, in the
    order it first applies them, and the parametrised modules left out, each with its reason."""
    order: list[str] = []
    names = {id(module): name for name, module in model.named_modules()}

    def record(module, inputs, output):
        name = names[id(module)]
        if name not in order:
            order.append(name)

    handles = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    treated, skipped = [], []
    for name in order:
        module = modules[name]
        reason = _reason_to_skip(module)
        if reason is None:
            treated.append((name, module))
    called = set(order)
    for name, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        reason = _reason_to_skip(module)
        if reason is None and name not in called:
            reason = "never applied in the forward pass"
        if reason is not None:
            skipped.append({"module": name or "(model)", "type": type(module).__name__, "reason": reason})
    return treated, skipped


def _reason_to_skip(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            return "grouped Conv2d: its weight is not one matrix applied to every patch"
        if module.padding_mode != "zeros":
            return f"Conv2d with padding_mode={module.padding_mode!r}: only zero padding is unfolded"
        return None
    if isinstance(module, nn.Linear):
        return None
    if isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm):
        return "normalisation layer: its scale and shift are not a weight matrix W of z = W h"
    if isinstance(module, nn.Embedding):
        return "embedding: a lookup, not z = W h on a layer input (not treated)"
    if isinstance(module, nn.MultiheadAttention):
        return "attention: its projections are applied inside a functional call, not as Linear modules"
    if isinstance(module, nn.modules.conv._ConvNd):
        return f"{type(module).__name__}: only Conv2d is unfolded into patches"
    return "parameters used in a way FACT's z = W h form does not cover (not a Linear or Conv2d)"


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
