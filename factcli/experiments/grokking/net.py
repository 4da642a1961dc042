"""The network learners of ``fact grokking``, trained on the same split (docs/SPEC.md §7):
``net``, f(x) = W₂ σ(W₁ x), and ``transformer``, train-net's one-block transformer on the tokens a, b.

Every ``log_every`` steps: accuracy and loss on the full training and test sets, the circulant
deviation and trace of the feature matrix M (W₁ᵀW₁; for the transformer the Gram matrix of the
2p input vectors embedding + position, the counterpart of W₁ᵀW₁ over the one-hot a ⊕ b). Every
``measure_every`` steps also the Pearson correlations of the first weight matrix's WᵀW (the
transformer's: its embedding, read as Eᵀ) with FACT's F (and (F Fᵀ)^½) and with AGOP^½ (NFA), and
the residuals. With AdamW the decay is decoupled, so training stops near P⁻¹∇L + λW = 0, not at a
critical point of L_λ: FACT is then only approximate, and the preconditioned FACT −(1/λ)WᵀP⁻¹∇_W L
of AdamW's fixed points is measured beside it (docs/SPEC.md §10).
"""

from __future__ import annotations

import logging
import time

import torch

from factcli.core import circulant
from factcli.core.fact import adam_preconditioners, first_layer_agreement
from factcli.core.losses import make_targets, per_sample_loss
from factcli.core.nets import MLP, Transformer
from factcli.progress import track
from factcli.runtime import threads_within

from ..common.batches import Batches
from ..common.optim import make_optimizer, optimizer_step
from ..common.trace import LearnerTrace
from .scores import scores

log = logging.getLogger("fact")

ADAMW_NOTE = (
    "AdamW decouples weight decay: it stops near P^-1 grad L + lambda W = 0, not at a critical point of "
    "L_lambda, so FACT (W^T W = F) holds only approximately; the preconditioned FACT of its fixed points "
    "(preconditioned_fact_corr, preconditioned_residual_W1) is measured beside it; use net.optimizer=sgd "
    "or adam for coupled decay"
)


def build_network(cfg, p: int, device, dtype) -> torch.nn.Module:
    """No biases (docs/SPEC.md §7); PyTorch's default init, scaled by ``init_scale`` (the MLP)."""
    net = cfg.net
    if cfg.learner == "transformer":
        model = Transformer(p, 2, p, net.d_model, net.heads, net.blocks, net.mlp_width, "gelu", net.tied)
        return model.to(device=device, dtype=dtype)
    model = MLP(2 * p, [int(net.width)], p, activation=net.activation, bias=False)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(float(cfg.net.init_scale))
    return model.to(device=device, dtype=dtype)


def build_optimizer(cfg, model) -> torch.optim.Optimizer:
    net = cfg.net
    return make_optimizer(
        model.parameters(), net.optimizer, lr=net.lr, weight_decay=net.weight_decay,
        momentum=net.momentum, betas=net.betas,
    )  # fmt: skip


def feature_matrix(model) -> torch.Tensor:
    """The network's counterpart of the RFM's M (2p × 2p): W₁ᵀW₁ for the MLP; for the transformer
    the Gram matrix of the vectors it gives a at position 1 and b at position 2 (embedding + position)."""
    if isinstance(model, Transformer):
        E, positions = model.embed.weight.detach(), model.positions.detach()
        X = torch.cat([E + positions[0], E + positions[1]])
        return (X @ X.T).double().cpu()
    W1 = model.layers[0].weight.detach()
    return (W1.T @ W1).double().cpu()


def run_net(cfg, data, device) -> LearnerTrace:
    net = cfg.net
    dtype = torch.float64 if net.dtype == "float64" else torch.float32
    model = build_network(cfg, data.p, device, dtype)
    optimizer = build_optimizer(cfg, model)
    loss_fn = per_sample_loss(net.loss)
    X_train, X_test = data.inputs(data.train, dtype).to(device), data.inputs(data.test, dtype).to(device)
    labels_train, labels_test = data.labels[data.train].to(device), data.labels[data.test].to(device)
    targets = make_targets(labels_train, data.p, net.loss, dtype)
    n = X_train.shape[0]

    rows, matrices = [], []
    started = time.perf_counter()

    def record(step: int) -> dict:
        with torch.no_grad():
            row = {"step": step, "learner": "net"}
            row |= scores(model(X_train), labels_train, "train", net.loss)
            row |= scores(model(X_test), labels_test, "test", net.loss)
        M = feature_matrix(model)
        row |= circulant.feature_deviations(M, data.p, data.operation)
        row["trace_M"] = M.trace().item()
        if net.measure_every and (step % net.measure_every == 0 or step == net.steps):
            row |= agreement(model, X_train, targets, loss_fn, net.weight_decay, optimizer)
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
        matrices.append(M)
        return row

    record(0)
    batches = Batches(n, net.batch_size, int(cfg.seed))
    with threads_within(net.threads if device.type == "cpu" else None):
        for step in track(range(1, net.steps + 1), "network", total=net.steps):
            optimizer_step(model, optimizer, loss_fn, *batches.take(X_train, targets), net.weight_decay)
            if step % net.log_every == 0 or step == net.steps:
                row = record(step)
                if step % (10 * net.log_every) == 0:
                    log.info("step %d: train accuracy %.4f, test accuracy %.4f", step, *accuracies(row))
                if net.stop_after_test is not None and row["test_accuracy"] >= net.stop_after_test:
                    break
    for row, M in zip(rows, matrices, strict=True):
        row["alignment_with_final"] = circulant.alignment(M, matrices[-1])
    details = {"architecture": getattr(model, "architecture", None)}
    return LearnerTrace(rows, matrices, time.perf_counter() - started, details=details)


def accuracies(row: dict) -> tuple[float, float]:
    return row["train_accuracy"], row["test_accuracy"]


def agreement(model, X, targets, loss_fn, weight_decay: float, optimizer=None) -> dict[str, float]:
    """FACT and NFA correlations of W₁ over the full training set, and the first two matrices'
    residuals; under AdamW also W₁'s preconditioned FACT and its residual."""
    adamw = isinstance(optimizer, torch.optim.AdamW)
    preconditioners = adam_preconditioners(model, optimizer) if adamw else None
    first, stats = first_layer_agreement(model, X, targets, loss_fn, weight_decay, preconditioners)
    row = {
        "fact_corr": first["fact"],
        "fact_sym_corr": first["fact_sym"],
        "nfa_corr": first["nfa"],
        "nfa_centered_corr": first["nfa_centered"],
        "residual_W1": first["residual"],
        "residual_W2": stats.layers[1].residual,
    }
    if "preconditioned_fact" in first:  # from the first step on (P is the optimizer's state)
        row["preconditioned_fact_corr"] = first["preconditioned_fact"]
        row["preconditioned_residual_W1"] = first["preconditioned_residual"]
    return row
