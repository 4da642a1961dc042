"""learner=net: a two-layer ReLU network trained by mini-batch SGD (or Adam) on the parity data.

f(x) = W₂ relu(W₁x + b₁) + b₂ with two outputs, mean-squared error on one-hot labels (the RFM's
targets, so test MSEs compare across learners), weight decay λ coupled into the gradient: its fixed
points are critical points of L + (λ/2)‖θ‖², where FACT holds (docs/SPEC.md §1). Every ``log_every`` steps:
test / training accuracy and MSE and the support measures of W₁ᵀW₁; every ``fact_every`` steps also
the Pearson correlations of W₁ᵀW₁ with FACT's F, (FFᵀ)^½ and NFA's AGOP^½, beside the stationarity
residual that says how far from convergence the layer is.
"""

from __future__ import annotations

import logging
import time

import torch

from factcli.core.fact import first_layer_agreement
from factcli.core.losses import mse_per_sample
from factcli.core.nets import MLP
from factcli.progress import track
from factcli.runtime import threads_within

from ..common.batches import Batches
from ..common.optim import make_optimizer, optimizer_step
from ..common.trace import LearnerTrace
from .measures import accuracy_and_mse, feature_measures

log = logging.getLogger("fact")


def train_network(cfg, data, device, run) -> LearnerTrace:
    """Train, logging rows into ``run``; the trace holds W₁ᵀW₁ at every logged step and the summary's
    details."""
    with threads_within(net_threads(cfg, device)):
        return _train(cfg, data, device, run)


def net_threads(cfg, device) -> int | None:
    """``net.threads`` on the CPU (None elsewhere). A step on a 32×50 batch has nothing worth splitting
    across threads, and on shared cores their synchronization dominates: 1000 steps took 0.8-2 s on one
    thread and 2.7-78 s on two (2-core machine under load); full-data evaluations lose < 2x."""
    return int(cfg.net.threads) if device.type == "cpu" else None


def _train(cfg, data, device, run) -> LearnerTrace:
    net_cfg = cfg.net
    torch.manual_seed(cfg.seed)  # the initialization
    model = MLP(cfg.d, [net_cfg.width], 2, activation="relu", bias=net_cfg.bias).to(device)
    optimizer = make_optimizer(
        model.parameters(), net_cfg.optimizer, lr=net_cfg.lr, weight_decay=net_cfg.weight_decay,
        momentum=net_cfg.momentum,
    )  # fmt: skip
    X = torch.as_tensor(data.X_train, device=device)
    labels = torch.as_tensor(data.y_train, device=device)
    Y = torch.nn.functional.one_hot(labels, 2).to(X.dtype)
    X_test = torch.as_tensor(data.X_test, device=device)
    y_test = torch.as_tensor(data.y_test, device=device)
    lam = float(net_cfg.weight_decay)

    batches = Batches(X.shape[0], net_cfg.batch_size, cfg.seed)
    matrices: list[torch.Tensor] = []
    started = time.perf_counter()
    for step in track(range(net_cfg.steps + 1), "network steps", net_cfg.steps + 1):
        last = step == net_cfg.steps
        if step % net_cfg.log_every == 0 or last:
            row = evaluate(model, X, labels, X_test, y_test, data.support)
            stop = net_cfg.stop_accuracy is not None and row["test_accuracy"] >= net_cfg.stop_accuracy
            if step % net_cfg.fact_every == 0 or last or stop:  # the final row always has them
                row.update(fact_correlations(model, X, Y, lam))
            row = {"step": step, **row, "seconds": round(time.perf_counter() - started, 3)}
            run.log(**row)
            matrices.append(first_layer_gram(model).cpu())
            if step % net_cfg.fact_every == 0 or last or stop:
                log.info(
                    f"step {step}: test accuracy {row['test_accuracy']:.4f}, "
                    f"test MSE {row['test_mse']:.4f}, support mass {row['support_mass']:.4f}"
                )
            if stop:
                break
        if last:
            break
        optimizer_step(model, optimizer, mse_per_sample, *batches.take(X, Y), lam)
    final = run.metrics[-1]
    details = {
        "width": net_cfg.width,
        "optimizer": net_cfg.optimizer,
        "lr": net_cfg.lr,
        "weight_decay": lam,
        "batch_size": net_cfg.batch_size,
        "steps": final["step"],
        "fact_corr": final["fact_corr"],
        "nfa_corr": final["nfa_corr"],
        "stationarity_residual": final["residual"],
    }
    return LearnerTrace(run.metrics, matrices, time.perf_counter() - started, details=details)


def first_layer_gram(model) -> torch.Tensor:
    W1 = model.layers[0].weight.detach()
    return W1.T @ W1


@torch.no_grad()
def evaluate(model, X, labels, X_test, y_test, support) -> dict:
    test_accuracy, test_mse = accuracy_and_mse(model(X_test), y_test)
    train_accuracy, train_mse = accuracy_and_mse(model(X), labels)
    return {
        "test_accuracy": test_accuracy,
        "test_mse": test_mse,
        "train_accuracy": train_accuracy,
        "train_mse": train_mse,
        **feature_measures(first_layer_gram(model), support),
    }


def fact_correlations(model, X, Y, lam: float) -> dict:
    """Agreement of W₁ᵀW₁ with FACT and NFA (full-batch passes over the training data)."""
    agreement, _ = first_layer_agreement(model, X, Y, mse_per_sample, lam)
    return {
        "fact_corr": agreement["fact"],
        "fact_sym_corr": agreement["fact_sym"],
        "fact_relerr": agreement["fact_relerr"],
        "nfa_corr": agreement["nfa"],
        "residual": agreement["residual"],
    }
