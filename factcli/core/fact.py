"""FACT, bFACT, AGOP and eNFA matrices of every weight layer of a network, and agreement metrics.

Notation (docs/SPEC.md §1-2): a layer computes z = W h (W is k×d; for Conv2d W is (out, in·k·k) applied at
every patch position p). Per-sample loss l_i, mean loss L = (1/n) Σ_i l_i, λ the weight decay.

- F  = −(1/λ) Wᵀ ∇_W L                      (identity path: one backward pass of the mean loss)
- F  = −(1/(nλ)) Σ_i Σ_p g_ip h_ipᵀ,  g_ip = Wᵀ ∇_{z_ip} l_i   (per-sample path, hooks)
- bF = −(1/λ) ∇_W L Wᵀ                       (bFACT, compared with W Wᵀ)
- E  = (1/n) Σ_i Σ_p g_ip g_ipᵀ               (eNFA)
- AGOP = (1/n) Σ_i Σ_p J_ipᵀ J_ip,  J_ip = ∂f(x_i)/∂h_ip = (∂f(x_i)/∂z_ip) W   (c×d)

Everything is accumulated over mini-batches, so memory is O(batch) whatever n is. AGOP needs one
backward pass per output per batch (the rows of J for all samples of the batch at once), never one
per sample. Pure torch: no configs, files or printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import nn

from factcli.core import InvalidInput
from factcli.core.linalg import psd_power  # symmetrize, eigendecompose, clip negatives at 0
from factcli.core.nets import weight_layers, weight_matrix

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_weight_decay(lam: float) -> None:
    if not lam > 0 or not math.isfinite(lam):
        raise InvalidInput(
            f"weight decay lambda = {lam}: FACT is undefined unless lambda > 0 "
            "(F = -(1/lambda) W^T grad L); set a positive weight decay"
        )


@dataclass
class LayerStatistics:
    """The matrices of one weight layer (all detached). Optional ones are None when skipped."""

    name: str
    weight: torch.Tensor  # W, k×d
    grad: torch.Tensor  # ∇_W L of the unregularized mean loss, k×d
    lam: float
    fact_per_sample: torch.Tensor | None = None  # F from hooks, d×d
    enfa: torch.Tensor | None = None  # E, d×d
    agop: torch.Tensor | None = None  # d×d
    agop_centered: torch.Tensor | None = None  # d×d

    @property
    def fact(self) -> torch.Tensor:
        """F = −(1/λ) Wᵀ ∇_W L (d×d)."""
        return -(self.weight.T @ self.grad) / self.lam

    @property
    def bfact(self) -> torch.Tensor:
        """−(1/λ) ∇_W L Wᵀ (k×k), which equals W Wᵀ at convergence."""
        return -(self.grad @ self.weight.T) / self.lam

    @property
    def gram(self) -> torch.Tensor:
        """WᵀW (d×d)."""
        return self.weight.T @ self.weight

    @property
    def gram_left(self) -> torch.Tensor:
        """W Wᵀ (k×k)."""
        return self.weight @ self.weight.T

    @property
    def residual(self) -> float:
        return stationarity_residual(self.weight, self.grad, self.lam)


@dataclass
class NetworkStatistics:
    loss: float  # mean unregularized loss L over the data
    layers: list[LayerStatistics]
    n: int = 0  # samples the sums ran over


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _input_rows(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Layer input as (batch, positions, d): the patches for Conv2d."""
    if isinstance(module, nn.Conv2d):
        patches = nnf.unfold(
            h, module.kernel_size, module.dilation, module.padding, module.stride
        )  # (b, in·k·k, P), channel-major like weight.reshape(out, -1)
        return patches.transpose(1, 2)
    return h.reshape(h.shape[0], -1, h.shape[-1])


def _output_rows(module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """A layer output (or its gradient) as (batch, positions, k), positions as in _input_rows."""
    if isinstance(module, nn.Conv2d):
        return z.reshape(z.shape[0], z.shape[1], -1).transpose(1, 2)
    return z.reshape(z.shape[0], -1, z.shape[-1])


def _sum_outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ over batch and positions of a bᵀ, for a, b of shape (batch, positions, ·)."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def loss_gradient(
    model: nn.Module, X: torch.Tensor, Y: torch.Tensor, loss_fn: LossFn, batch_size: int = 1024
) -> tuple[float, list[torch.Tensor]]:
    """Mean loss L and ∇_W L (as k×d matrices) for every weight layer: the fast path."""
    stats = batch_statistics(
        model, _slices(X, Y, batch_size), loss_fn, weight_layers(model), 1.0, per_sample=False,
        enfa=False, agop=False,
    )  # fmt: skip
    return stats.loss, [s.grad for s in stats.layers]


def network_statistics(
    model: nn.Module,
    X: torch.Tensor,
    Y: torch.Tensor,
    loss_fn: LossFn,
    lam: float,
    batch_size: int = 1024,
    per_sample: bool = True,
    enfa: bool = True,
    agop: bool = True,
) -> NetworkStatistics:
    """FACT (both paths), bFACT, eNFA and AGOP (plain and centered) for every weight layer.

    F = −(1/λ) Wᵀ∇_W L (and bFACT) always comes from the full-batch gradient. ``per_sample`` adds F
    from the per-sample definition (hooks), ``enfa`` adds E (hooks), ``agop`` adds AGOP (c extra
    backward passes per batch). With all three off this is ``loss_gradient``: the fast path.
    """
    check_weight_decay(lam)
    return batch_statistics(
        model, _slices(X, Y, batch_size), loss_fn, weight_layers(model), lam, per_sample=per_sample,
        enfa=enfa, agop=agop,
    )  # fmt: skip


def _slices(X: torch.Tensor, Y: torch.Tensor, batch_size: int):
    return ((X[rows], Y[rows]) for rows in _batches(X.shape[0], batch_size))


def batch_statistics(
    model: nn.Module,
    batches,
    loss_fn: LossFn,
    layers: list[tuple[str, nn.Module]],
    lam: float,
    *,
    per_sample: bool,
    enfa: bool,
    agop: bool,
) -> NetworkStatistics:
    """The matrices of ``layers`` (Linear / plain Conv2d modules of ``model``) over ``batches``.

    ``batches`` yields (X, Y); ``loss_fn(model(X), Y)`` gives one loss per sample. A layer applied
    several times in one forward pass (shared weights) sums over every application, as over the
    positions of a Conv2d. Memory is O(one batch) whatever the number of batches.
    """
    mats = [weight_matrix(m).detach() for _, m in layers]
    params = [m.weight for _, m in layers]
    modules = [m for _, m in layers]
    hooks_needed = per_sample or enfa or agop
    grad_sums = [torch.zeros_like(w) for w in mats]
    fact_sums = [w.new_zeros(w.shape[1], w.shape[1]) for w in mats]
    enfa_sums = [w.new_zeros(w.shape[1], w.shape[1]) for w in mats]
    agop_sums = [w.new_zeros(w.shape[1], w.shape[1]) for w in mats]
    jac_sums: list[torch.Tensor | None] = [None] * len(layers)  # Σ over rows of J, c×d
    rows_seen = [0] * len(layers)  # (sample, position) pairs: n·P for a Conv2d
    captured: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in layers]

    def capture(index):
        def hook(module, inputs, output):
            captured[index].append((inputs[0].detach(), output))
            # Later in-place operations (ReLU(inplace=True), +=) act on a copy, so the captured
            # z keeps its value and its gradient is the gradient with respect to z itself.
            return output.clone()

        return hook

    handles = [m.register_forward_hook(capture(i)) for i, m in enumerate(modules)] if hooks_needed else []
    total, n = 0.0, 0
    try:
        with torch.enable_grad():
            for X, Y in batches:
                for calls in captured:
                    calls.clear()
                out = model(X)
                losses = per_sample_values(loss_fn(out, Y), X.shape[0])
                batch_loss = losses.sum()
                total += batch_loss.item()
                n += losses.shape[0]
                if not hooks_needed:
                    for acc, g in zip(grad_sums, torch.autograd.grad(batch_loss, params), strict=True):
                        acc += g.reshape(acc.shape)
                    continue
                calls = [(i, h, z) for i in range(len(layers)) for h, z in captured[i]]
                missing = [layers[i][0] for i in range(len(layers)) if not captured[i]]
                if missing:
                    raise InvalidInput(f"layer {missing[0]} was not applied in the forward pass")
                grads = torch.autograd.grad(
                    batch_loss, params + [z for _, _, z in calls], retain_graph=agop,
                    materialize_grads=True,
                )  # fmt: skip
                for i, w in enumerate(mats):
                    grad_sums[i] += grads[i].reshape(w.shape)
                for (i, h, _), dz in zip(calls, grads[len(layers) :], strict=True):
                    g = _output_rows(modules[i], dz) @ mats[i]  # g_ip = Wᵀ ∇_z l_i, as rows
                    if per_sample:
                        fact_sums[i] -= _sum_outer(g, _input_rows(modules[i], h))
                    if enfa:
                        enfa_sums[i] += _sum_outer(g, g)
                if agop:
                    outputs = out.reshape(out.shape[0], -1)
                    c = outputs.shape[1]
                    for k in range(c):
                        dzs = torch.autograd.grad(
                            outputs[:, k].sum(), [z for _, _, z in calls], retain_graph=k < c - 1,
                            materialize_grads=True,
                        )  # fmt: skip
                        for (i, _, _), dz in zip(calls, dzs, strict=True):
                            jk = (_output_rows(modules[i], dz) @ mats[i]).reshape(-1, mats[i].shape[1])
                            agop_sums[i] += jk.T @ jk  # row k of every J_ip
                            if jac_sums[i] is None:
                                jac_sums[i] = mats[i].new_zeros(c, mats[i].shape[1])
                            jac_sums[i][k] += jk.sum(dim=0)
                            if k == 0:
                                rows_seen[i] += jk.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    if n == 0:
        raise InvalidInput("no data: the batches held no samples")

    stats = []
    for i, (name, _) in enumerate(layers):
        s = LayerStatistics(name, mats[i].clone(), grad_sums[i] / n, lam)
        if per_sample:
            s.fact_per_sample = fact_sums[i] / (n * lam)
        if enfa:
            s.enfa = enfa_sums[i] / n
        if agop:
            s.agop = agop_sums[i] / n
            # (1/n) Σ_r (J_r − J̄)ᵀ(J_r − J̄) over the R (sample, position) rows, J̄ their mean,
            # = AGOP − (R/n) J̄ᵀJ̄
            mean_jac = jac_sums[i] / rows_seen[i]
            s.agop_centered = s.agop - (rows_seen[i] / n) * (mean_jac.T @ mean_jac)
        stats.append(s)
    return NetworkStatistics(total / n, stats, n)


def per_sample_values(losses: torch.Tensor, batch: int) -> torch.Tensor:
    """The loss as one value per sample: a (b, ...) loss is averaged over its other dimensions
    (so its mean is torch's ``reduction='mean'``); a single number is refused."""
    if losses.ndim == 0 or losses.shape[0] != batch:
        raise InvalidInput(
            f"the loss gave shape {tuple(losses.shape)} for a batch of {batch}: it must give one "
            "value per sample (a torch loss with reduction='none')"
        )
    return losses.reshape(batch, -1).mean(dim=1)


# ---------------------------------------------------------------- agreement metrics


def stationarity_residual(weight: torch.Tensor, grad: torch.Tensor, lam: float) -> float:
    """‖∇_W L + λW‖_F / ‖λW‖_F: zero exactly at a critical point of L_λ (in W)."""
    denominator = (lam * weight).norm().item()
    if denominator == 0:
        return math.inf
    return (grad + lam * weight).norm().item() / denominator


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the flattened matrices; nan if either is constant."""
    x = a.flatten().double()
    y = b.flatten().double()
    x = x - x.mean()
    y = y - y.mean()
    denominator = (x.norm() * y.norm()).item()
    if denominator == 0:
        return math.nan
    return (x @ y).item() / denominator


def relative_error(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """‖reference − estimate‖_F / ‖reference‖_F."""
    norm = reference.norm().item()
    if norm == 0:
        return math.nan
    return (reference - estimate).norm().item() / norm


def layer_agreement(
    stats: LayerStatistics, nfa_power: float = 0.5, enfa_powers: tuple[float, ...] = (0.5, 1.0)
) -> dict[str, float]:
    """Pearson correlation of WᵀW with every ansatz, FACT's relative error, bFACT, residual.

    Keys: fact, fact_transpose, fact_sym ((F Fᵀ)^{1/2}), fact_relerr, bfact (corr with W Wᵀ),
    bfact_relerr, residual, and where computed: fact_per_sample, nfa, nfa_centered, enfa_s<s>.
    """
    gram = stats.gram
    f = stats.fact
    row = {
        "residual": stats.residual,
        "fact": pearson(gram, f),
        "fact_transpose": pearson(gram, f.T),
        "fact_sym": pearson(gram, psd_power(f @ f.T, 0.5)),
        "fact_relerr": relative_error(gram, f),
        "bfact": pearson(stats.gram_left, stats.bfact),
        "bfact_relerr": relative_error(stats.gram_left, stats.bfact),
    }
    if stats.fact_per_sample is not None:
        row["fact_per_sample"] = pearson(gram, stats.fact_per_sample)
    if stats.agop is not None:
        row["nfa"] = pearson(gram, psd_power(stats.agop, nfa_power))
        row["nfa_centered"] = pearson(gram, psd_power(stats.agop_centered, nfa_power))
    if stats.enfa is not None:
        for s in enfa_powers:
            row[f"enfa_s{s:g}"] = pearson(gram, psd_power(stats.enfa, s))
    return row


def first_layer_agreement(model, X, targets, loss_fn, lam: float) -> tuple[dict, NetworkStatistics]:
    """W₁'s agreement with FACT and NFA (s = ½) from full-batch passes, and the statistics behind it.

    What the two-layer learners of grokking and parity log; no eNFA, no per-sample check of F.
    """
    stats = network_statistics(model, X, targets, loss_fn, float(lam), per_sample=False, agop=True)
    return layer_agreement(stats.layers[0], nfa_power=0.5, enfa_powers=()), stats
