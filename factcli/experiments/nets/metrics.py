"""Per-layer agreement tables of a network on its training data (train-net logs, verify-fact reports).

The FACT / AGOP computations run on a float64 copy of the model by default: F = −(1/λ) Wᵀ ∇_W L
is a difference of nearly equal terms near convergence, and float32 would blur the last digits.
"""

from __future__ import annotations

import copy

import torch

from factcli.core.fact import LayerStatistics, layer_agreement, network_statistics
from factcli.core.losses import per_sample_loss

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def layer_label(index: int) -> str:
    """W1 … WL, the paper's names, for tables and plots."""
    return f"W{index + 1}"


def evaluation_copy(model: torch.nn.Module, dtype: str) -> torch.nn.Module:
    return copy.deepcopy(model).to(DTYPES[dtype]).eval()


def statistics(
    model, X, Y, loss: str, lam: float, *, dtype: str, batch_size: int, per_sample: bool, agop: bool,
    enfa: bool = True,
):  # fmt: skip
    """``network_statistics`` of a ``dtype`` copy of the model (X, Y cast alike, floats only)."""
    target = DTYPES[dtype]
    Y = Y.to(target) if Y.is_floating_point() else Y
    return network_statistics(
        evaluation_copy(model, dtype),
        X.to(target),
        Y,
        per_sample_loss(loss),
        lam,
        batch_size=batch_size,
        per_sample=per_sample,
        enfa=enfa,
        agop=agop,
    )


def agreement_rows(
    layers: list[LayerStatistics], nfa_power: float, enfa_powers: tuple[float, ...]
) -> list[dict]:
    """One row per layer: label, module name, shape, then every ``layer_agreement`` column."""
    rows = []
    for index, stats in enumerate(layers):
        k, d = stats.weight.shape
        rows.append(
            {
                "layer": layer_label(index),
                "module": stats.name,
                "shape": f"{k}x{d}",
                **layer_agreement(stats, nfa_power=nfa_power, enfa_powers=enfa_powers),
            }
        )
    return rows


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
