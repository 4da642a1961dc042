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
from torch import nn

from factcli.core import InvalidInput
from factcli.core.linalg import psd_power  # symmetrize, eigendecompose, clip negatives at 0
from factcli.core.uses import Capture, WeightMatrix, call_rows, discover

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
    uses: str = ""  # how the forward pass applies W (uses.WeightMatrix.uses)
    identity_only: str | None = None  # why only the identity form of F applies (None: both do)
    preconditioned_grad: torch.Tensor | None = None  # P⁻¹∇_W L for an adaptive optimizer's P
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

    @property
    def preconditioned_fact(self) -> torch.Tensor | None:
        """−(1/λ) Wᵀ P⁻¹∇_W L (d×d): WᵀW at the fixed points of AdamW with preconditioner P."""
        if self.preconditioned_grad is None:
            return None
        return -(self.weight.T @ self.preconditioned_grad) / self.lam

    @property
    def preconditioned_residual(self) -> float | None:
        """‖P⁻¹∇_W L + λW‖/‖λW‖: zero exactly at a fixed point of AdamW (P frozen)."""
        if self.preconditioned_grad is None:
            return None
        return stationarity_residual(self.weight, self.preconditioned_grad, self.lam)


@dataclass
class NetworkStatistics:
    loss: float  # mean unregularized loss L over the data
    layers: list[LayerStatistics]
    n: int = 0  # samples the sums ran over


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _sum_outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_r a_r b_rᵀ over rows r (sample and position) of a, b."""
    return a.T @ b


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
    preconditioners: dict[str, torch.Tensor] | None = None,
) -> NetworkStatistics:
    """FACT (both paths), bFACT, eNFA and AGOP (plain and centered) for every weight matrix the
    forward pass uses (``uses.discover``), in the order it first uses them.

    F = −(1/λ) Wᵀ∇_W L (and bFACT) always comes from the full-batch gradient. ``per_sample`` adds F
    from the per-sample definition (the uses' inputs and output gradients), ``enfa`` adds E, ``agop``
    adds AGOP (c extra backward passes per batch). With all three off only gradients are computed.
    """
    check_weight_decay(lam)
    matrices, _ = discover(model, X[:1])
    return batch_statistics(
        model, _slices(X, Y, batch_size), loss_fn, matrices, lam, per_sample=per_sample, enfa=enfa,
        agop=agop, preconditioners=preconditioners_by_id(model, preconditioners),
    )  # fmt: skip


def _slices(X: torch.Tensor, Y: torch.Tensor, batch_size: int):
    return ((X[rows], Y[rows]) for rows in _batches(X.shape[0], batch_size))


def batch_statistics(
    model: nn.Module,
    batches,
    loss_fn: LossFn,
    matrices: list[WeightMatrix],
    lam: float,
    *,
    per_sample: bool,
    enfa: bool,
    agop: bool,
    preconditioners: dict[int, torch.Tensor] | None = None,
) -> NetworkStatistics:
    """The statistics of ``matrices`` (from ``uses.discover``) over ``batches``.

    ``batches`` yields (X, Y); ``loss_fn(model(X), Y)`` gives one loss per sample. Every use of a
    weight (positions, shared applications, groups, a tied lookup) adds its terms to the sums, and
    the gradient rebuilt from those terms is compared with autograd's: a weight whose uses do not
    account for all of ∇_W L keeps only the identity form (``identity_only`` says why).
    ``preconditioners`` (parameter id → P, its shape) adds P⁻¹∇_W L (an adaptive optimizer's fixed
    points, docs/SPEC.md §10). Memory is O(one batch) whatever the number of batches.
    """
    params = list({id(m.parameter): m.parameter for m in matrices}.values())
    slot = {id(p): i for i, p in enumerate(params)}
    owners: dict[int, list[int]] = {}
    for j, m in enumerate(matrices):
        owners.setdefault(slot[id(m.parameter)], []).append(j)
    mats = [m.of(m.parameter.detach()) for m in matrices]
    hooks_needed = per_sample or enfa or agop
    grad_sums = [torch.zeros_like(p, memory_format=torch.contiguous_format).detach() for p in params]
    sums = [_Sums(w) for w in mats]
    total, n = 0.0, 0
    with torch.enable_grad():
        for X, Y in batches:
            capture = Capture(params)
            if hooks_needed:
                with capture:
                    out = model(X)
            else:
                out = model(X)
            losses = per_sample_values(loss_fn(out, Y), X.shape[0])
            batch_loss = losses.sum()
            total += batch_loss.item()
            n += losses.shape[0]
            calls = capture.calls
            grads = torch.autograd.grad(
                batch_loss, params + [c.z for c in calls], retain_graph=agop and hooks_needed,
                materialize_grads=True, allow_unused=True,
            )  # fmt: skip
            for acc, g in zip(grad_sums, grads[: len(params)], strict=True):
                acc += g
            if not hooks_needed:
                continue
            for call, dz in zip(calls, grads[len(params) :], strict=True):
                if _shared_by_the_batch(call.z, X.shape[0]):
                    for j in owners[call.parameter]:
                        sums[j].shared = True
                for H, D, rows in call_rows(call, dz):
                    for j in owners[call.parameter]:
                        sums[j].add(matrices[j], call.kind, H, D, rows, per_sample, enfa)
            if agop:
                outputs = out.reshape(out.shape[0], -1)
                c = outputs.shape[1]
                for k in range(c):
                    dzs = torch.autograd.grad(
                        outputs[:, k].sum(), [call.z for call in calls], retain_graph=k < c - 1,
                        materialize_grads=True, allow_unused=True,
                    )  # fmt: skip
                    for call, dz in zip(calls, dzs, strict=True):
                        for _, D, rows in call_rows(call, dz):
                            for j in owners[call.parameter]:
                                sums[j].add_jacobian(matrices[j], call.kind, D, rows, k, c)
    if n == 0:
        raise InvalidInput("no data: the batches held no samples")

    stats = []
    for j, m in enumerate(matrices):
        grad = m.of(grad_sums[slot[id(m.parameter)]]) / n
        s = LayerStatistics(m.name, mats[j].clone(), grad, lam, uses=m.uses, identity_only=m.identity_only)
        if preconditioners is not None and id(m.parameter) in preconditioners:
            P = preconditioners[id(m.parameter)].to(grad_sums[0].dtype)
            s.preconditioned_grad = m.of(grad_sums[slot[id(m.parameter)]] / P) / n
        if hooks_needed and s.identity_only is None:
            s.identity_only = sums[j].check(grad * n)
        if sums[j].shared:
            s.uses += f" ({SHARED_USE})"
        if hooks_needed and s.identity_only is None:
            if per_sample:
                s.fact_per_sample = sums[j].fact / (n * lam)
            if enfa and sums[j].straight and not sums[j].shared:
                s.enfa = sums[j].enfa / n
            if agop and sums[j].straight and not sums[j].shared:
                s.agop = sums[j].agop / n
                # (1/n) Σ_r (J_r − J̄)ᵀ(J_r − J̄) over the R (sample, position) rows, J̄ their mean,
                # = AGOP − (R/n) J̄ᵀJ̄
                mean_jac = sums[j].jac / sums[j].rows_seen
                s.agop_centered = s.agop - (sums[j].rows_seen / n) * (mean_jac.T @ mean_jac)
        stats.append(s)
    return NetworkStatistics(total / n, stats, n)


SHARED_USE = "one use shared by every sample of a batch: no NFA or eNFA, which need per-sample gradients"


def _shared_by_the_batch(z: torch.Tensor, batch: int) -> bool:
    """A use whose output has no sample dimension (``pos(torch.arange(T))`` broadcast over the batch):
    its rows' gradients arrive summed over the samples. F, linear in them, stays exact; E and AGOP,
    quadratic, would be wrong, so they are not computed. (A batch size equal to one of the output's
    other sizes hides this; one sample is exact.)"""
    return batch > 1 and batch not in z.shape


class _Sums:
    """The running sums of one weight matrix W (k×d) over the rows of its uses.

    A use z = W_B h (B a block of W's rows: a group, a Q/K/V block, all rows) adds, per row,
    g = W_Bᵀ ∇_z l to F's sum −Σ g hᵀ, E's Σ g gᵀ, and ∇_z l hᵀ to the rebuilt gradient's rows B.
    An embedding lookup of a W read as stored (tied to z = W h) is z = Wᵀ e_t: it adds −Σ W[t] ∇_z lᵀ
    to F (Wᵀ of its gradient e_t ∇_z lᵀ) and nothing to E or AGOP, whose inputs live elsewhere.
    """

    def __init__(self, w: torch.Tensor):
        k, d = w.shape
        self.w = w
        self.fact = w.new_zeros(d, d)
        self.enfa = w.new_zeros(d, d)
        self.agop = w.new_zeros(d, d)
        self.jac = None  # Σ over rows of J, c×d
        self.rows_seen = 0
        self.grad = torch.zeros_like(w)  # ∇_W L (summed over samples) rebuilt from the uses
        self.straight = False  # some use is z = W h (so E and AGOP are defined)
        self.shared = False  # some use is shared by the samples of a batch (E and AGOP undefined)

    def _block(self, m: WeightMatrix, rows, D):
        """(D restricted to the rows of W it reaches, W's block, where that block sits in W)."""
        K = m.parameter.shape[0]
        a, b = rows if rows is not None else (0, K)
        lo, hi = m.rows if m.rows is not None else (0, K)
        start, stop = max(a, lo), min(b, hi)
        if start >= stop:
            return None
        return D[:, start - a : stop - a], self.w[start - lo : stop - lo], (start - lo, stop - lo)

    def add(self, m: WeightMatrix, kind: str, H, D, rows, per_sample: bool, enfa: bool) -> None:
        if kind == "embedding" and not m.transposed:  # a lookup of a weight read as stored
            self.grad.index_add_(0, H, D)
            if per_sample:
                self.fact -= _sum_outer(self.w[H], D)
            return
        self.straight = True
        if kind == "embedding":  # W = Eᵀ, h the one-hot row of token t: g = W ∇_z... by index
            g = D @ self.w
            self.grad.index_add_(1, H, D.T)
            if per_sample:
                self.fact.index_add_(1, H, -g.T)
            if enfa:
                self.enfa += _sum_outer(g, g)
            return
        block = self._block(m, rows, D)
        if block is None:
            return
        D, W, (start, stop) = block
        g = D @ W  # g_r = W_Bᵀ ∇_z l, as rows
        self.grad[start:stop] += _sum_outer(D, H)
        if per_sample:
            self.fact -= _sum_outer(g, H)
        if enfa:
            self.enfa += _sum_outer(g, g)

    def add_jacobian(self, m: WeightMatrix, kind: str, D, rows, k: int, c: int) -> None:
        """Row k of every J_r = (∂f_k/∂z_r) W_B over the rows r of a use (z = W h uses only)."""
        if kind == "embedding" and not m.transposed:
            return
        if kind == "embedding":
            J = D @ self.w
        else:
            block = self._block(m, rows, D)
            if block is None:
                return
            J = block[0] @ block[1]
        self.agop += _sum_outer(J, J)
        if self.jac is None:
            self.jac = self.w.new_zeros(c, self.w.shape[1])
        self.jac[k] += J.sum(dim=0)
        if k == 0:
            self.rows_seen += J.shape[0]

    def check(self, grad: torch.Tensor) -> str | None:
        """None if the uses rebuild ∇_W L (summed over samples) to rounding; else why not."""
        scale = grad.norm().item()
        tol = 10 * math.sqrt(torch.finfo(grad.dtype).eps)
        if scale == 0 or (self.grad - grad).norm().item() <= tol * scale:
            return None
        return (
            "its uses read (linear, convolution, embedding, attention) do not rebuild grad_W L: W "
            "also enters the loss elsewhere"
        )


def adam_preconditioners(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """P = √v̂ + ε per parameter from an Adam / AdamW state (v̂ = v/(1 − β₂ᵗ)): the diagonal
    preconditioner of its update m̂/P, whose fixed points satisfy λW = −P⁻¹∇_W L (AdamW)."""
    names = {id(p): name for name, p in model.named_parameters()}
    found = {}
    for group in optimizer.param_groups:
        beta2, eps = group["betas"][1], group["eps"]
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "exp_avg_sq" not in state or id(p) not in names:
                continue
            step = float(state["step"])
            v_hat = state["exp_avg_sq"].detach() / (1 - beta2**step)
            found[names[id(p)]] = v_hat.sqrt() + eps
    return found


def preconditioners_by_id(model: nn.Module, preconditioners: dict[str, torch.Tensor] | None):
    """Name-keyed preconditioners as ``batch_statistics`` takes them (keyed by the parameter's id)."""
    if preconditioners is None:
        return None
    parameters = dict(model.named_parameters())
    unknown = sorted(set(preconditioners) - set(parameters))
    if unknown:
        raise InvalidInput(f"preconditioners name {unknown[0]!r}, which is not a parameter of the model")
    return {id(parameters[name]): P.to(parameters[name].device) for name, P in preconditioners.items()}


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
    if stats.preconditioned_grad is not None:
        row["preconditioned_residual"] = stats.preconditioned_residual
        row["preconditioned_fact"] = pearson(gram, stats.preconditioned_fact)
        row["preconditioned_fact_relerr"] = relative_error(gram, stats.preconditioned_fact)
    if stats.fact_per_sample is not None:
        row["fact_per_sample"] = pearson(gram, stats.fact_per_sample)
    if stats.agop is not None:
        row["nfa"] = pearson(gram, psd_power(stats.agop, nfa_power))
        row["nfa_centered"] = pearson(gram, psd_power(stats.agop_centered, nfa_power))
    if stats.enfa is not None:
        for s in enfa_powers:
            row[f"enfa_s{s:g}"] = pearson(gram, psd_power(stats.enfa, s))
    return row


def first_layer_agreement(
    model, X, targets, loss_fn, lam: float, preconditioners: dict[str, torch.Tensor] | None = None
) -> tuple[dict, NetworkStatistics]:
    """W₁'s agreement with FACT and NFA (s = ½) from full-batch passes, and the statistics behind it.

    What the learners of grokking and parity log; no eNFA, no per-sample check of F. With
    ``preconditioners`` (``adam_preconditioners``) also the preconditioned FACT of AdamW.
    """
    stats = network_statistics(
        model, X, targets, loss_fn, float(lam), per_sample=False, agop=True, preconditioners=preconditioners
    )
    return layer_agreement(stats.layers[0], nfa_power=0.5, enfa_powers=()), stats
