"""Scores of a predictor on modular arithmetic, and the figures a grokking curve is summarized by."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as nnf


def scores(outputs: torch.Tensor, labels: torch.Tensor, prefix: str, loss: str = "mse") -> dict[str, float]:
    """Accuracy (argmax), loss and the loss of the correct class's output.

    ``loss='mse'``: mean over all n·p entries of (f(x) − e_y)² (as the predecessor code and
    ``nn.MSELoss``); ``cross_entropy``: mean −log softmax(f(x))_y. The correct-class loss is the mean
    of (f_y(x) − 1)², the part of the MSE that decides whether the right class can win.
    """
    outputs = outputs.double()
    labels = labels.to(outputs.device)
    correct = outputs.gather(1, labels.unsqueeze(1)).squeeze(1)
    if loss == "mse":
        value = (outputs - nnf.one_hot(labels, outputs.shape[1]).to(outputs)).square().mean()
    else:
        value = nnf.cross_entropy(outputs, labels)
    return {
        f"{prefix}_accuracy": (outputs.argmax(1) == labels).double().mean().item(),
        f"{prefix}_loss": value.item(),
        f"{prefix}_correct_class_loss": (correct - 1).square().mean().item(),
    }


def first_staying(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first step from which every later value is at least ``threshold`` (None if the last is below)."""
    found = None
    for s, v in zip(steps, values, strict=True):
        if v < threshold:
            found = None
        elif found is None:
            found = s
    return found


def jump_step(steps: Sequence[int], values: Sequence[float]) -> int | None:
    """The step of the largest rise of ``values`` from the previous logged step (None if it never rises)."""
    rises = [(values[i] - values[i - 1], steps[i]) for i in range(1, len(values))]
    best = max(rises, key=lambda rise: rise[0], default=(0.0, None))
    return best[1] if best[0] > 0 else None


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
