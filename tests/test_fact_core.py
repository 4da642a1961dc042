"""FACT, AGOP and eNFA matrices against independent computations (float64 throughout)."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from factcli.core import InvalidInput
from factcli.core.fact import (
    layer_agreement,
    network_statistics,
    pearson,
    psd_power,
    relative_error,
    stationarity_residual,
)
from factcli.core.losses import make_targets, mse_per_sample, per_sample_loss
from factcli.core.nets import MLP, ConvNet


def weight_layers(model):
    """(name, module) of the Linear / Conv2d layers (module order is forward order in these nets)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def weight_matrix(module):
    return module.weight.reshape(module.weight.shape[0], -1)


LAM = 0.03


def _float64_init(model, seed):
    """float64 copy with PyTorch's default uniform(±1/√fan_in) init drawn from its own generator,
    so the numbers do not depend on the global RNG or on the default dtype other tests may set."""
    generator = torch.Generator().manual_seed(seed)
    model = model.double()
    with torch.no_grad():
        for _, layer in weight_layers(model):
            bound = 1 / math.sqrt(weight_matrix(layer).shape[1])
            for p in (layer.weight, layer.bias):
                if p is not None:
                    p.copy_(torch.rand(p.shape, generator=generator, dtype=torch.float64))
                    p.mul_(2 * bound).sub_(bound)
    return model


def _mlp_problem(seed=0, loss="mse"):
    torch.manual_seed(seed)
    model = MLP(5, [7, 6], 3, activation="softplus", bias=True).double()
    X = torch.randn(23, 5, dtype=torch.float64)
    Y = make_targets(torch.randint(0, 3, (23,)), 3, loss, torch.float64)
    return model, X, Y


def _conv_problem(seed=0):
    torch.manual_seed(seed)
    model = ConvNet(2, 7, [3, 4], 3, kernel_size=3, stride=2, activation="tanh").double()
    X = torch.randn(9, 2, 7, 7, dtype=torch.float64)
    Y = make_targets(torch.randint(0, 3, (9,)), 3, "mse", torch.float64)
    return model, X, Y


def _layer_as_function_of_rows(model, index, x):
    """(rows, f) with f(rows) = the network output of x, the layer input written as rows.

    Rows are h (1×d) for Linear and the patches (positions×d) for Conv2d: the brute-force view of
    "the gradient with respect to the layer input through W only".
    """
    seq = list(model.layers)
    h = nn.Sequential(*seq[:index])(x)
    layer, suffix = seq[index], nn.Sequential(*seq[index + 1 :])
    W = weight_matrix(layer).detach()
    b = layer.bias.detach() if layer.bias is not None else 0.0
    if isinstance(layer, nn.Conv2d):
        z = layer(h)
        patches = nn.functional.unfold(h, layer.kernel_size, padding=layer.padding, stride=layer.stride)[
            0
        ].T  # (P, d)

        def f(rows):
            zz = (rows @ W.T + b).T.reshape(z.shape)
            return suffix(zz)[0]

        return patches.detach(), f

    def f(rows):
        return suffix(rows @ W.T + b)[0]

    return h.detach(), f


def _brute_force(model, X, Y, loss_fn, lam):
    """Per-layer F, E, AGOP by a loop over samples with torch.func.jacobian."""
    indices = [i for i, m in enumerate(model.layers) if isinstance(m, (nn.Linear, nn.Conv2d))]
    out = {}
    for index in indices:
        F = E = A = 0.0
        for x, y in zip(X, Y, strict=True):
            rows, f = _layer_as_function_of_rows(model, index, x[None])
            J = jacobian(f, rows)  # (c, P, d)
            g = jacobian(lambda r, f=f, y=y: loss_fn(f(r)[None], y[None])[0], rows)  # (P, d)
            F = F + g.T @ rows
            E = E + g.T @ g
            A = A + torch.einsum("cpd,cpe->de", J, J)
        n = X.shape[0]
        out[index] = (-F / (n * lam), E / n, A / n)
    return [out[i] for i in indices]


def _rel(a, b):
    return ((a - b).norm() / a.norm()).item()


@pytest.mark.parametrize("problem", [_mlp_problem, _conv_problem], ids=["mlp", "conv"])
def test_fact_identity_equals_per_sample_definition(problem):
    model, X, Y = problem()
    stats = network_statistics(model, X, Y, mse_per_sample, LAM, batch_size=4)
    for s in stats.layers:
        assert _rel(s.fact_per_sample, s.fact) < 1e-10, s.name
        assert s.fact.abs().max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("problem", [_mlp_problem, _conv_problem], ids=["mlp", "conv"])
def test_agop_enfa_fact_equal_brute_force_loop(problem):
    model, X, Y = problem()
    stats = network_statistics(model, X, Y, mse_per_sample, LAM, batch_size=5)
    brute = _brute_force(model, X, Y, mse_per_sample, LAM)
    assert len(brute) == len(stats.layers)
    for s, (F, E, A) in zip(stats.layers, brute, strict=True):
        assert _rel(F, s.fact_per_sample) < 1e-10
        assert _rel(E, s.enfa) < 1e-10
        assert _rel(A, s.agop) < 1e-10


def test_cross_entropy_identity_and_brute_force():
    model, X, Y = _mlp_problem(seed=3, loss="cross_entropy")
    loss_fn = per_sample_loss("cross_entropy")
    stats = network_statistics(model, X, Y, loss_fn, LAM, batch_size=7)
    for s, (F, E, _) in zip(stats.layers, _brute_force(model, X, Y, loss_fn, LAM), strict=True):
        assert _rel(F, s.fact) < 1e-10
        assert _rel(E, s.enfa) < 1e-10


def test_centered_agop_subtracts_mean_jacobian():
    model, X, Y = _mlp_problem(seed=1)
    stats = network_statistics(model, X, Y, mse_per_sample, LAM, batch_size=6)
    for index, s in zip([0, 2, 4], stats.layers, strict=True):
        Js = []
        for x in X:
            rows, f = _layer_as_function_of_rows(model, index, x[None])
            Js.append(jacobian(f, rows)[:, 0, :])
        J = torch.stack(Js)  # (n, c, d)
        Jc = J - J.mean(0)
        expected = torch.einsum("ncd,nce->de", Jc, Jc) / len(X)
        # The last layer's Jacobian is W itself for every sample: its centered AGOP is 0.
        assert (expected - s.agop_centered).norm() < 1e-10 * s.agop.norm()


def test_loss_gradient_and_mean_loss_match_torch_mse():
    model, X, Y = _mlp_problem(seed=2)
    gradients = network_statistics(
        model, X, Y, mse_per_sample, 1.0, batch_size=5, per_sample=False, enfa=False, agop=False
    )
    loss, grads = gradients.loss, [s.grad for s in gradients.layers]
    reference = nn.MSELoss()(model(X), Y)
    expected = torch.autograd.grad(reference, [m.weight for _, m in weight_layers(model)])
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    for g, e in zip(grads, expected, strict=True):
        assert _rel(e, g) < 1e-12
    fast = network_statistics(model, X, Y, mse_per_sample, LAM, per_sample=False, enfa=False, agop=False)
    assert fast.layers[0].fact_per_sample is None and fast.layers[0].enfa is None
    assert _rel(grads[1], fast.layers[1].grad) < 1e-14


def _train_to_stationarity(model, X, Y, lam, lr, steps):
    """Full-batch (heavy-ball) gradient descent with coupled weight decay: its fixed points are
    the critical points of L_λ, as for plain GD, and it gets there in a few thousand steps."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=lam, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        nn.MSELoss()(model(X), Y).backward()
        opt.step()


def test_fact_holds_at_convergence_of_gradient_descent():
    # Seed 1 reaches a critical point of full rank in 3000 steps (seed 0 oscillates at this step).
    model = _float64_init(MLP(3, [6, 5], 2, activation="tanh", bias=True), seed=1)
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(16, 3, dtype=torch.float64, generator=generator)
    Y = torch.randn(16, 2, dtype=torch.float64, generator=generator)
    lam = 0.05  # large enough for a well-conditioned minimum, small enough to keep W far from 0
    _train_to_stationarity(model, X, Y, lam, lr=0.3, steps=3000)
    stats = network_statistics(model, X, Y, mse_per_sample, lam)
    for s in stats.layers:
        assert s.residual < 1e-6, (s.name, s.residual)
        assert s.weight.norm() > 1.0  # a non-trivial critical point
        assert relative_error(s.gram, s.fact) < 1e-4
        assert relative_error(s.gram_left, s.bfact) < 1e-4
        assert pearson(s.gram, s.fact) > 1 - 1e-8


def test_stationarity_residual_formula():
    W = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    G = torch.tensor([[0.5, 0.0], [0.0, 0.1]], dtype=torch.float64)
    expected = math.sqrt((0.5 - 0.1) ** 2 + (0.0 - 0.2) ** 2 + 0.0 + (0.1 + 0.1) ** 2) / (0.1 * math.sqrt(6))
    assert stationarity_residual(W, -G, 0.1) == pytest.approx(expected, rel=1e-14)


def test_pearson_matches_numpy_corrcoef():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    b = b + 0.5 * a
    expected = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert pearson(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, abs=1e-14)
    assert math.isnan(pearson(torch.ones(3, 3), torch.from_numpy(a[:3, :3])))


def test_psd_power_closed_form():
    # M = Q diag(4, 9, -1) Qᵀ: the PSD part to the power 1/2 is Q diag(2, 3, 0) Qᵀ.
    generator = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    M = Q @ torch.diag(torch.tensor([4.0, 9.0, -1.0], dtype=torch.float64)) @ Q.T
    expected = Q @ torch.diag(torch.tensor([2.0, 3.0, 0.0], dtype=torch.float64)) @ Q.T
    assert _rel(expected, psd_power(M, 0.5)) < 1e-12
    # Asymmetric input: only its symmetric part counts.
    skew = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert _rel(expected, psd_power(M + skew, 0.5)) < 1e-12
    assert _rel(M @ M, psd_power(M @ M, 1.0)) < 1e-12


def test_agreement_row_has_every_ansatz():
    model, X, Y = _mlp_problem()
    stats = network_statistics(model, X, Y, mse_per_sample, LAM)
    row = layer_agreement(stats.layers[0])
    assert set(row) == {
        "residual",
        "fact",
        "fact_transpose",
        "fact_sym",
        "fact_relerr",
        "bfact",
        "bfact_relerr",
        "fact_per_sample",
        "nfa",
        "nfa_centered",
        "enfa_s0.5",
        "enfa_s1",
    }
    assert row["fact"] == pytest.approx(row["fact_per_sample"], abs=1e-10)


def test_zero_weight_decay_is_refused():
    model, X, Y = _mlp_problem()
    with pytest.raises(InvalidInput, match="lambda"):
        network_statistics(model, X, Y, mse_per_sample, 0.0)
