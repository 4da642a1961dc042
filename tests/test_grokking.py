"""The grokking learners' mathematics: the Gram-form AGOP against core and autograd, the RFM loop
against core.rfm.rfm_path, the training-output identity, scores and summary figures, the network."""

import pytest
import torch
from omegaconf import OmegaConf

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, agop_matrix, rfm_path
from factcli.data.modular import load_modular
from factcli.experiments.grokking_rfm import agop_gram_form, feature_path, tau_proportionality
from factcli.experiments.grokking_scores import first_reaching, first_staying, jump_step, scores
from factcli.schema.grokking import Config

KERNELS = ["gaussian", "laplace", "quadratic"]


def random_problem(seed, n=9, d=5, c=3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    alpha = torch.randn(n, c, generator=g, dtype=torch.float64)
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    return X, alpha, A @ A.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def autograd_agop(kernel, X, alpha, M, centered):
    """(1/n) Σ_i J_iᵀ J_i with J_i = ∂f(x_i)/∂x by autograd, f(x) = Σ_j α_j k_M(x, x_j) (centres fixed).

    Laplace drops j = i, where ‖x − x_i‖_M is not differentiable (as RFM's AGOP does).
    """
    n = X.shape[0]
    jacobians = []
    for i in range(n):

        def f(x, i=i):
            terms = []
            for j in range(n):
                if kernel.name == "laplace" and j == i:
                    continue
                if kernel.name == "quadratic":
                    value = (x @ M @ X[j]) ** 2
                else:
                    u = x - X[j]
                    squared = u @ M @ u
                    value = (
                        torch.exp(-torch.sqrt(squared) / kernel.bandwidth)
                        if kernel.name == "laplace"
                        else torch.exp(-squared / (2 * kernel.bandwidth**2))
                    )
                terms.append(alpha[j] * value)
            return torch.stack(terms).sum(0)

        jacobians.append(torch.autograd.functional.jacobian(f, X[i]))
    J = torch.stack(jacobians)  # n × c × d
    if centered:
        J = J - J.mean(0, keepdim=True)
    return torch.einsum("nkd,nke->de", J, J) / n


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("centered", [False, True])
def test_gram_form_agop_equals_core_and_autograd(name, centered):
    X, alpha, M = random_problem(3)
    kernel = Kernel(name, 1.7)
    W = kernel.derivative_weights(X, M)
    fast = agop_gram_form(kernel, X, alpha, M, W.clone(), centered=centered)
    core = agop_matrix(kernel, X, alpha, M, W.clone(), centered=centered)
    torch.testing.assert_close(fast, core, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast, autograd_agop(kernel, X, alpha, M, centered), rtol=1e-10, atol=1e-12)


def small_task(p=7, fraction=0.6, seed=0):
    data = load_modular(p, "add", fraction, seed)
    return data, data.inputs(data.train), data.targets(data.train)


@pytest.mark.parametrize("method", ["fact", "fact-geo", "nfa"])
@pytest.mark.parametrize("name", KERNELS)
def test_feature_path_follows_core_rfm_path(method, name):
    """Same M_t and predictions as the core loop (which centres X; one-hot data need not).

    One-hot pairs have null directions (Σ e_a − Σ e_b = 0), where F Fᵀ and the AGOP have eigenvalues
    at rounding level (~1e-16); their square roots (~1e-8) differ between any two exact computations,
    so M_t agree to ~1e-8, not to 1e-15; fact-geo's fourth root lifts them to ~1e-4. Distances never
    see the null directions, so the predictions agree closely. The statistics agree to 1e-12 (AGOP test).
    """
    data, X, Y = small_task()
    ridge = 1e-3 if name == "quadratic" else 0.0  # the quadratic kernel of 14 one-hot inputs is singular
    options = RFMOptions(
        kernel=Kernel(name, 2.5), method=method, ridge=ridge, iters=4, precision="float64", centered_agop=True
    )
    X_test = data.inputs(data.test)
    M_tol, output_tol = (1e-3, 1e-5) if method == "fact-geo" else (1e-7, 1e-6)
    for ours, core in zip(feature_path(X, Y, options), rfm_path(X, Y, options), strict=True):
        assert ours.t == core.t
        torch.testing.assert_close(ours.M, core.M, rtol=0, atol=M_tol)
        torch.testing.assert_close(ours.predictor(X_test), core.predictor(X_test), rtol=0, atol=output_tol)


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_training_outputs_from_the_solve_identity(ridge):
    """f(X_train) = Kα = Y − λα, which run_rfm uses instead of a second kernel matrix."""
    _, X, Y = small_task()
    options = RFMOptions(
        kernel=Kernel("gaussian", 2.5), method="fact", ridge=ridge, iters=2, precision="float64"
    )
    for iterate in feature_path(X, Y, options):
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
    from factcli.experiments.grokking_rfm import run_rfm

    cfg = grokking_config(p=23, operation="mul", train_fraction=0.8, **{"rfm.iters": 20})
    data = load_modular(23, "mul", 0.8, 0)
    path = run_rfm(cfg, data, torch.device("cpu"))
    best = max(range(len(path.rows)), key=lambda t: path.rows[t]["test_accuracy"])
    assert path.rows[best]["test_accuracy"] >= 0.99
    assert path.rows[best]["circulant_deviation"] < 0.05
    assert circulant.circulant_deviation(path.matrices[best][23:, :23]) > 0.5  # plain order


@pytest.mark.slow
def test_fact_rfm_groks_modular_addition_mod_61():
    """Issue 4, criterion 1 for `fact` (seed 0): below 10% test accuracy for iterations 0-5, at least
    99% within 75 iterations, 100% training accuracy throughout, circulant deviation falling tenfold."""
    from factcli.experiments.grokking_rfm import run_rfm

    cfg = grokking_config()
    data = load_modular(61, "add", 0.5, 0)
    rows = run_rfm(cfg, data, torch.device("cpu")).rows
    assert max(row["test_accuracy"] for row in rows[:6]) < 0.1
    assert first_reaching([r["iteration"] for r in rows], [r["test_accuracy"] for r in rows], 0.99) <= 75
    assert min(row["train_accuracy"] for row in rows) == 1.0
    assert rows[-1]["circulant_deviation"] < rows[1]["circulant_deviation"] / 10
