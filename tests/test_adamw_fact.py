"""AdamW read exactly (docs/SPEC.md §10): its fixed points satisfy λW = −P⁻¹∇_W L, P = √v̂ + ε its
diagonal preconditioner, so WᵀW = −(1/λ)WᵀP⁻¹∇_W L (the preconditioned FACT) holds there and FACT
itself does not."""

import pytest
import torch
from torch import nn

from factcli.core.fact import adam_preconditioners
from factcli.core.layer_table import layer_table

LAM = 0.1


def _adamw_fixed_point(steps=5000):
    """A tiny tanh network, full-batch AdamW. ε = 0.1 makes its fixed point attractive (with the
    usual 1e-8 the effective step lr/ε is so large that it circles the fixed point for ever)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6, bias=False), nn.Tanh(), nn.Linear(6, 2, bias=False)).double()
    X, Y = torch.randn(40, 3, dtype=torch.float64), torch.randn(40, 2, dtype=torch.float64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=LAM, eps=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(X), Y).backward()
        optimizer.step()
    return model, X, Y, optimizer


def test_adamw_fixed_point_satisfies_the_preconditioned_fact_not_fact():
    torch.set_num_threads(1)
    model, X, Y, optimizer = _adamw_fixed_point()
    P = adam_preconditioners(model, optimizer)
    table = layer_table(model, (X, Y), "mse", LAM, preconditioners=P)
    loss = nn.functional.mse_loss(model(X), Y)
    for row, stats, layer in zip(table.rows, table.layers, (model[0], model[2]), strict=True):
        state = optimizer.state[layer.weight]  # P by hand: √(v / (1 − β₂ᵗ)) + ε
        by_hand = (state["exp_avg_sq"] / (1 - 0.999 ** state["step"].item())).sqrt() + 0.1
        (grad,) = torch.autograd.grad(loss, layer.weight, retain_graph=True)
        expected = -(layer.weight.T @ (grad / by_hand)) / LAM
        assert ((expected - stats.preconditioned_fact).norm() / expected.norm()).item() < 1e-10
        assert row["preconditioned_residual"] < 1e-4 and row["preconditioned_fact_relerr"] < 1e-4
        assert row["residual"] > 0.5 and row["fact_relerr"] > 0.5  # FACT with λ is far off


def test_preconditioners_must_name_parameters():
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="not a parameter of the model"):
        layer_table(model, (torch.randn(3, 2), torch.randn(3, 1)), "mse", 0.1, preconditioners={"w": None})
