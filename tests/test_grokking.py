"""The grokking learners' mathematics: the training-output identity, τ, scores and summary figures,
the network. (The Gram-form AGOP that nfa uses here is tested against autograd in test_core_rfm.)"""

import pytest
import torch
from omegaconf import OmegaConf

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, rfm_path
from factcli.data.modular import load_modular
from factcli.experiments.common.trace import first_reaching
from factcli.experiments.grokking.rfm import tau_proportionality
from factcli.experiments.grokking.scores import first_staying, jump_step, scores
from factcli.schema.grokking import Config

KERNELS = ["gaussian", "laplace", "quadratic"]


def small_task(p=7, fraction=0.6, seed=0):
    data = load_modular(p, "add", fraction, seed)
    return data, data.inputs(data.train), data.targets(data.train)


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_training_outputs_from_the_solve_identity(ridge):
    """f(X_train) = Kα = Y − λα, which run_rfm uses instead of a second kernel matrix."""
    _, X, Y = small_task()
    options = RFMOptions(
        kernel=Kernel("gaussian", 2.5), method="fact", ridge=ridge, iters=2, precision="float64"
    )
    for iterate in rfm_path(X, Y, options):
        alpha = iterate.predictor.alpha
        torch.testing.assert_close(iterate.predictor(X), Y - ridge * alpha, rtol=0, atol=1e-8)


def test_tau_proportionality_by_loops():
    """τ_ij = (1/n) Σ_l k'_il k'_lj with k'_ij = κ'(x_iᵀMx_j) = 2 x_iᵀMx_j (quadratic kernel)."""
    data, X, _ = small_task(p=5, fraction=0.5)
    cfg = OmegaConf.structured(Config)
    cfg.kernel.name = "quadratic"
    g = torch.Generator().manual_seed(0)
    A = torch.randn(10, 10, generator=g, dtype=torch.float64)
    M = A @ A.T
    n = X.shape[0]
    k_prime = [[2 * (X[i] @ M @ X[j]).item() for j in range(n)] for i in range(n)]
    tau = [[sum(k_prime[i][l] * k_prime[l][j] for l in range(n)) / n for j in range(n)] for i in range(n)]
    t = torch.tensor(tau, dtype=torch.float64).flatten()
    x = torch.tensor(k_prime, dtype=torch.float64).flatten()
    slope = (t @ x) / (x @ x)
    r2 = 1 - ((t - slope * x) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    result = tau_proportionality(cfg, data, M, torch.device("cpu"))
    assert result["slope"] == pytest.approx(slope.item(), rel=1e-10)
    assert result["r2"] == pytest.approx(r2.item(), rel=1e-10)


def test_scores_by_hand():
    outputs = torch.tensor([[0.9, 0.2, 0.0], [0.5, 0.1, 0.7]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    result = scores(outputs, labels, "test")
    assert result["test_accuracy"] == 0.5
    squared = [0.01, 0.04, 0.0, 0.25, 0.81, 0.49]
    assert result["test_loss"] == pytest.approx(sum(squared) / 6)
    assert result["test_correct_class_loss"] == pytest.approx((0.01 + 0.81) / 2)
    ce = scores(outputs, labels, "train", loss="cross_entropy")["train_loss"]
    expected = -(torch.log_softmax(outputs, 1)[[0, 1], [0, 1]]).mean().item()
    assert ce == pytest.approx(expected)


def test_summary_figures_of_a_curve():
    steps = [0, 1, 2, 3, 4, 5]
    accuracy = [0.0, 0.02, 0.4, 0.995, 0.98, 1.0]
    assert first_reaching(steps, accuracy, 0.99) == 3
    assert first_staying(steps, accuracy, 0.99) == 5
    assert jump_step(steps, accuracy) == 3  # +0.595 is the largest rise
    assert first_reaching(steps, accuracy, 1.01) is None
    assert jump_step([0, 1], [0.5, 0.5]) is None


def grokking_config(**values):
    cfg = OmegaConf.structured(Config)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.mark.slow
def test_discrete_log_order_shows_the_circulant_structure_of_a_converged_multiplication_run():
    """FACT-RFM on (a × b) mod 23 (80% of pairs) reaches 100% test accuracy; there its a–b block is
    circulant in discrete-log order and far from it in the plain order."""
    from factcli.core import circulant
    from factcli.experiments.grokking.rfm import run_rfm

    cfg = grokking_config(p=23, operation="mul", train_fraction=0.8, **{"rfm.iters": 20})
    data = load_modular(23, "mul", 0.8, 0)
    path = run_rfm(cfg, data, torch.device("cpu"))
    best = max(range(len(path.rows)), key=lambda t: path.rows[t]["test_accuracy"])
    assert path.rows[best]["test_accuracy"] >= 0.99
    assert path.rows[best]["circulant_deviation"] < 0.05
    assert circulant.circulant_deviation(path.matrices[best][23:, :23]) > 0.5  # plain order


@pytest.mark.slow
def test_fact_rfm_groks_modular_addition_mod_61():
    """The grokking criterion for `fact` (seed 0): below 10% test accuracy for iterations 0-5, at least
    99% within 75 iterations, 100% training accuracy throughout, circulant deviation falling tenfold."""
    from factcli.experiments.grokking.rfm import run_rfm

    cfg = grokking_config()
    data = load_modular(61, "add", 0.5, 0)
    rows = run_rfm(cfg, data, torch.device("cpu")).rows
    assert max(row["test_accuracy"] for row in rows[:6]) < 0.1
    assert first_reaching([r["iteration"] for r in rows], [r["test_accuracy"] for r in rows], 0.99) <= 75
    assert min(row["train_accuracy"] for row in rows) == 1.0
    assert rows[-1]["circulant_deviation"] < rows[1]["circulant_deviation"] / 10
