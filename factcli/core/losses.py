"""Per-sample losses l_i and the scalar convention that makes FACT an exact equality.

FACT is stated for L_λ = (1/n) Σ_i l_i + (λ/2)‖θ‖². We pick l_i so that the mean loss L is exactly
what PyTorch's default losses compute, hence ``SGD(weight_decay=λ)`` (or ``Adam(weight_decay=λ)``)
minimizing torch's loss is gradient descent on L_λ with this same λ, and WᵀW = F holds exactly at
its fixed points. A different convention (e.g. a sum over outputs) rescales F by a constant: it
changes the relative error, not the correlations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from factcli.choices import LOSSES

CONVENTIONS = {
    "mse": (
        "l_i = mean over the c outputs of (f(x_i) - y_i)^2, L = mean_i l_i = torch.nn.MSELoss(); "
        "L_lambda = L + (lambda/2)||theta||^2, i.e. SGD/Adam(weight_decay=lambda)"
    ),
    "cross_entropy": (
        "l_i = -log softmax(f(x_i))[y_i], L = mean_i l_i = torch.nn.CrossEntropyLoss(); "
        "L_lambda = L + (lambda/2)||theta||^2, i.e. SGD/Adam(weight_decay=lambda)"
    ),
}


def mse_per_sample(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """l_i = (1/c) Σ_k (f_k(x_i) − y_ik)²; its mean over i equals ``nn.MSELoss()``."""
    return (outputs - targets).pow(2).reshape(outputs.shape[0], -1).mean(dim=1)


def cross_entropy_per_sample(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """l_i = −log softmax(f(x_i))[y_i] for integer labels y_i."""
    return F.cross_entropy(outputs, targets, reduction="none")


def per_sample_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mse":
        return mse_per_sample
    if name == "cross_entropy":
        return cross_entropy_per_sample
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def make_targets(labels: torch.Tensor, num_classes: int, loss: str, dtype: torch.dtype):
    """Targets in the form each loss expects: one-hot floats for MSE, integer labels for CE."""
    if loss == "mse":
        return F.one_hot(labels.long(), num_classes).to(dtype)
    if loss == "cross_entropy":
        return labels.long()
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
