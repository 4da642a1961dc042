"""Precisions by name and accuracy: what train-net and verify-fact share beside the FACT table
(core/layer_table.py, which both use).

The FACT / AGOP computations run on a float64 copy of the model by default: F = −(1/λ) Wᵀ ∇_W L
is a difference of nearly equal terms near convergence, and float32 would blur the last digits.
"""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@torch.no_grad()
def accuracy(model, X: torch.Tensor, labels: torch.Tensor, batch_size: int = 4096) -> float | None:
    """Share of argmax predictions equal to the labels; None for regression targets."""
    if labels.is_floating_point() or len(labels) == 0:
        return None
    correct = 0
    for start in range(0, len(labels), batch_size):
        outputs = model(X[start : start + batch_size])
        correct += (outputs.argmax(dim=1) == labels[start : start + batch_size]).sum().item()
    return correct / len(labels)
