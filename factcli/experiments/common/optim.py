"""Optimizers and learning-rate schedules of the networks (train-net, grokking, parity), and what
each means for FACT.

FACT needs a critical point of L_λ = L + (λ/2)‖θ‖². SGD, full-batch GD, Adam and L-BFGS below all
add λθ to the gradient (coupled decay), so their fixed points are exactly those critical points.
AdamW decays weights outside the preconditioner and stops where P⁻¹∇L + λθ ≈ 0 instead.
"""

from __future__ import annotations

import math

import torch

FACT_VALIDITY = {
    "sgd": "exact: SGD with coupled weight decay stops at critical points of L + (lambda/2)||theta||^2",
    "gd": "exact: full-batch GD with coupled weight decay stops at critical points of L_lambda",
    "adam": "exact: Adam with coupled L2 (weight_decay added to the gradient) stops at critical "
    "points of L_lambda",
    "adamw": "approximate only: AdamW's decoupled decay stops where P^-1 grad L + lambda W = 0 "
    "(P the adaptive preconditioner), not at a critical point of L_lambda; the preconditioned FACT "
    "(docs/SPEC.md section 10) is exact there",
    "lbfgs": "exact: L-BFGS minimizes L_lambda itself (the decay is part of its objective)",
}


def make_optimizer(
    parameters, name: str, *, lr: float, weight_decay: float, momentum: float = 0.0,
    betas=(0.9, 0.999), eps: float = 1e-8, history_size: int = 50,
) -> torch.optim.Optimizer:  # fmt: skip
    """The optimizer ``name`` (choices.OPTIMIZERS) with weight decay λ = ``weight_decay``; the defaults
    are torch's, so a command whose config lacks a setting gets torch's behaviour."""
    params = list(parameters)
    if name in ("sgd", "gd"):
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name in ("adam", "adamw"):
        kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return kind(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
    if name == "lbfgs":
        # The decay goes into the closure's objective (torch's LBFGS has no weight_decay).
        return torch.optim.LBFGS(
            params,
            lr=lr,
            history_size=history_size,
            max_iter=1,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
    raise ValueError(f"unknown optimizer {name!r}")


def optimizer_step(model, optimizer, loss_fn, X, Y, lam: float) -> float:
    """One update on the batch (X, Y); returns the batch's mean loss (no update if it is not finite,
    so the weights stay those of the last good step)."""
    if isinstance(optimizer, torch.optim.LBFGS):
        params = list(model.parameters())

        def objective():  # L + (λ/2)‖θ‖²: the decay is part of what L-BFGS minimizes
            optimizer.zero_grad()
            value = loss_fn(model(X), Y).mean()
            (value + 0.5 * lam * sum(p.pow(2).sum() for p in params)).backward()
            objective.loss = value.item()
            return value

        optimizer.step(objective)
        return objective.loss
    optimizer.zero_grad(set_to_none=True)
    value = loss_fn(model(X), Y).mean()
    loss = value.item()
    if math.isfinite(loss):
        value.backward()
        optimizer.step()
    return loss


def lr_factor(step: int, optim, max_steps: int) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): warm-up, then the schedule."""
    if optim.warmup_steps > 0 and step < optim.warmup_steps:
        return (step + 1) / optim.warmup_steps
    if optim.schedule == "constant":
        return 1.0
    if optim.schedule == "step":
        return optim.gamma ** (step // optim.step_every)
    if optim.schedule == "cosine":
        span = max(1, max_steps - optim.warmup_steps)
        progress = min(1.0, (step - optim.warmup_steps) / span)
        floor = optim.min_lr_factor
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {optim.schedule!r}")


def make_scheduler(optimizer, optim, max_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, optim, max_steps))
