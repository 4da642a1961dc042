"""`layer_table` on networks defined here, not by the project: a foreign model trained to a critical
point in the test (float64, full-batch L-BFGS), shared weights, in-place activations, DataLoaders."""

import pytest
import torch
from torch import nn

from factcli.core.fact import pearson, stationarity_residual
from factcli.core.layer_table import layer_table
from factcli.core.uses import discover

LAM = 1e-2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one thread is fastest, and on a busy machine spinning threads cost 20x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Foreign(nn.Module):
    """A LayerNorm on the image, a biased Conv2d, a biased hidden Linear, a biased output layer."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm([1, 8, 8])
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.hidden = nn.Linear(4 * 4 * 4, 12)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        h = torch.tanh(self.conv(self.norm(x)))
        return self.head(nn.functional.gelu(self.hidden(h.flatten(1))))


def _digits(n=150):
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.data[:n] / 16.0).reshape(-1, 1, 8, 8)
    return X, torch.tensor(digits.target[:n])


def _train_to_critical_point(model, X, y, lam, iterations=400):
    """Full-batch L-BFGS on mean cross-entropy + (λ/2)‖θ‖², every parameter decayed alike."""
    params = list(model.parameters())
    optimizer = torch.optim.LBFGS(
        params, history_size=50, max_iter=iterations, line_search_fn="strong_wolfe",
        tolerance_grad=1e-13, tolerance_change=0.0,
    )  # fmt: skip

    def objective():
        optimizer.zero_grad()
        value = nn.functional.cross_entropy(model(X), y) + 0.5 * lam * sum(p.pow(2).sum() for p in params)
        value.backward()
        return value

    optimizer.step(objective)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = Foreign().double()
    X, y = _digits()
    _train_to_critical_point(model, X, y, LAM)
    return model, X, y


def test_foreign_model_at_convergence_fact_holds_in_every_weight_layer(trained):
    model, X, y = trained
    table = layer_table(model, (X, y), "cross_entropy", LAM, batch_size=64)
    assert [r["module"] for r in table.rows] == ["conv", "hidden", "head"]
    assert [r["shape"] for r in table.rows] == ["4x9", "12x64", "10x12"]
    assert table.skipped == [
        {"module": "norm", "type": "LayerNorm",
         "reason": "normalisation layer: its scale and shift are not a weight matrix W of z = W h",
         "parameter": "norm.weight, norm.bias"},
    ]  # fmt: skip
    assert table.at_critical_point(1e-3)
    for row in table.rows:
        assert row["residual"] < 1e-3 and row["fact"] >= 0.999, row
        assert row["fact_paths_relerr"] < 1e-10  # hooks vs −(1/λ)Wᵀ∇L, through bias and LayerNorm
        assert {"nfa", "enfa_s0.5", "enfa_s1", "fact_sym"} <= set(row)


def test_residuals_match_autograd_on_the_mean_loss(trained):
    model, X, y = trained
    with torch.no_grad():  # move away from the critical point, so the residuals are not tiny
        model.hidden.weight.mul_(1.3)
    try:
        table = layer_table(model, (X, y), "cross_entropy", LAM, nfa=False, enfa=False)
        weights = [model.conv.weight, model.hidden.weight, model.head.weight]
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(X), y), weights)
        for row, w, g in zip(table.rows, weights, grads, strict=True):
            W, G = w.detach().reshape(w.shape[0], -1), g.reshape(w.shape[0], -1)
            assert row["residual"] == pytest.approx(stationarity_residual(W, G, LAM), rel=1e-10)
            assert row["fact"] == pytest.approx(pearson(W.T @ W, -(W.T @ G) / LAM), rel=1e-10)
        assert table.max_residual > 0.1 and not table.at_critical_point(1e-3)
    finally:
        with torch.no_grad():
            model.hidden.weight.div_(1.3)


def test_a_dataloader_gives_the_same_table_as_tensors(trained):
    model, X, y = trained
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X.float(), y), batch_size=32, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    from_tensors = layer_table(model, (X, y), "cross_entropy", LAM)
    from_loader = layer_table(model, loader, nn.CrossEntropyLoss(reduction="none"), LAM)
    assert from_loader.n == from_tensors.n == len(y)
    for a, b in zip(from_tensors.rows, from_loader.rows, strict=True):
        for key in ("residual", "fact", "nfa", "enfa_s1"):
            assert a[key] == pytest.approx(b[key], rel=1e-6)  # the loader's X went through float32


class Shared(nn.Module):
    """The same Linear applied twice (shared weights), in-place ReLU after it, and a grouped
    Conv2d the forward pass never applies (skipped, with that reason)."""

    def __init__(self):
        super().__init__()
        self.grouped = nn.Conv2d(2, 2, 1, groups=2)
        self.square = nn.Linear(5, 5)
        self.relu = nn.ReLU(inplace=True)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = self.relu(self.square(x))
        return self.out(self.relu(self.square(h)))


def test_shared_weights_and_in_place_activations_keep_the_identity():
    torch.manual_seed(1)
    model = Shared().double()
    X = torch.randn(20, 5, dtype=torch.float64)
    Y = torch.randn(20, 3, dtype=torch.float64)
    table = layer_table(model, (X, Y), "mse", 0.1, batch_size=7)
    assert [r["module"] for r in table.rows] == ["square", "out"]
    for row in table.rows:  # F from hooks (summed over both applications) equals −(1/λ)Wᵀ∇_W L
        assert row["fact_paths_relerr"] < 1e-10
    assert table.skipped[0]["module"] == "grouped"
    assert table.skipped[0]["reason"] == "never used in the forward pass"
    # A brute-force E for the shared layer: g = Wᵀ ∇_z l at each application, summed as outer products.
    W = model.square.weight
    E = torch.zeros(5, 5, dtype=torch.float64)
    for x, t in zip(X, Y, strict=True):
        z1 = x @ W.T + model.square.bias
        h = torch.relu(z1)
        z2 = h @ W.T + model.square.bias
        loss = (model.out(torch.relu(z2)) - t).pow(2).mean()
        g1, g2 = torch.autograd.grad(loss, [z1, z2])
        E += torch.outer(g1 @ W, g1 @ W) + torch.outer(g2 @ W, g2 @ W)
    expected = layer_table(model, (X, Y), "mse", 0.1, nfa=False).layers[0].enfa
    assert ((E / 20 - expected).norm() / expected.norm()).item() < 1e-10


def test_forward_order_and_bad_inputs():
    model = nn.Sequential()
    model.add_module("b", nn.Linear(3, 4))
    model.add_module("a", nn.Linear(4, 2))
    treated, skipped = discover(model, torch.zeros(2, 3))
    assert [m.name for m in treated] == ["b", "a"] and skipped == []
    X, Y = torch.randn(6, 3), torch.randn(6, 2)
    with pytest.raises(ValueError, match="lambda > 0"):
        layer_table(model, (X, Y), "mse", 0.0)
    with pytest.raises(ValueError, match="one value per sample"):
        layer_table(model, (X, Y), nn.MSELoss(), 0.1)
    with pytest.raises(ValueError, match="X has 6 rows but Y has 5"):
        layer_table(model, (X, Y[:5]), "mse", 0.1)
