"""The L1 (product-)Laplace kernel and its FACT / AGOP statistics against autograd (float64)."""

import numpy as np
import pytest
import scipy.linalg
import torch

from factcli.core import l1kernel
from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, agop_matrix, fact_matrix, rfm_path

pytestmark = pytest.mark.usefixtures("float64_by_default")


def feature_matrices(d, generator):
    """A full PSD M and a diagonal one (with a zero weight: a coordinate switched off)."""
    A = torch.randn(d, d, generator=generator)
    full = A @ A.T / d + 0.1 * torch.eye(d)
    diagonal = torch.diag(torch.rand(d, generator=generator) + 0.2)
    diagonal[1, 1] = 0.0
    return {"full": full, "diagonal": diagonal}


def reference_root(M):
    """W = M^½ by scipy's sqrtm, or entrywise for a diagonal M (no shared code with l1kernel.feature_root)."""
    if torch.equal(M, torch.diag(M.diagonal())):
        return torch.diag(M.diagonal().sqrt())
    return torch.from_numpy(np.real(scipy.linalg.sqrtm(M.numpy())))


def reference_kernel(x, z, W, L):
    return torch.exp(-(W @ (x - z)).abs().sum() / L)


def reference_jacobians(X, alpha, W, L):
    """J_i = ∂f(x_i)/∂x with the centres fixed (|·|' = sign, 0 at 0: the j = i term drops out)."""
    n = X.shape[0]

    def f(x):
        return torch.stack([alpha[j] * reference_kernel(x, X[j], W, L) for j in range(n)]).sum(0)

    return torch.stack([torch.autograd.functional.jacobian(f, X[i]) for i in range(n)])  # n × c × d


@pytest.mark.parametrize("form", ["full", "diagonal"])
def test_gram_matches_pairwise_definition(form):
    g = torch.Generator().manual_seed(0)
    X, Z = torch.randn(7, 4, generator=g), torch.randn(5, 4, generator=g)
    M = feature_matrices(4, g)[form]
    W = reference_root(M)
    expected = torch.stack([torch.stack([reference_kernel(x, z, W, 2.0) for z in Z]) for x in X])
    got = Kernel("l1", 2.0).gram(X, Z, M)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    blocked = l1kernel.gram(X, Z, M, 2.0, rows_per_block=2)
    torch.testing.assert_close(blocked, expected, rtol=1e-12, atol=1e-12)
    assert (Kernel("l1", 2.0).gram(X, X, M).diagonal() == 1).all()


@pytest.mark.parametrize("form", ["full", "diagonal"])
@pytest.mark.parametrize("classes", [1, 3])
@pytest.mark.parametrize("block_elements", [l1kernel.L1_BLOCK_ELEMENTS, 20])
def test_fact_and_agop_match_autograd(form, classes, block_elements):
    g = torch.Generator().manual_seed(1)
    n, d, L = 9, 4, 1.5
    X, alpha = torch.randn(n, d, generator=g), torch.randn(n, classes, generator=g)
    X[5] = X[2]  # a duplicate: every sign of the pair is 0
    X[7, 0] = X[3, 0]  # a tie in one coordinate only
    M = feature_matrices(d, g)[form]
    J = reference_jacobians(X, alpha, reference_root(M), L)

    expected_F = torch.einsum("ikd,ik,ie->de", J, alpha, X) / n
    expected_agop = torch.einsum("ikd,ike->de", J, J) / n
    centered = J - J.mean(0, keepdim=True)
    expected_centered = torch.einsum("ikd,ike->de", centered, centered) / n

    kernel = Kernel("l1", L)
    K = lambda: kernel.derivative_weights(X, M)  # noqa: E731 (fresh: fact_matrix overwrites it)
    F = l1kernel.fact_matrix(X, alpha, M, K(), L, block_elements=block_elements)
    torch.testing.assert_close(F, expected_F, rtol=0, atol=1e-8)
    for is_centered, expected in ((False, expected_agop), (True, expected_centered)):
        agop = l1kernel.agop_matrix(X, alpha, M, K(), L, centered=is_centered, block_elements=block_elements)
        torch.testing.assert_close(agop, expected, rtol=0, atol=1e-8)
    # The engine's entry points dispatch to these.
    torch.testing.assert_close(fact_matrix(kernel, X, alpha, M, K()), expected_F, rtol=0, atol=1e-8)
    torch.testing.assert_close(agop_matrix(kernel, X, alpha, M, K()), expected_agop, rtol=0, atol=1e-8)


def test_diagonal_fact_entry_is_a_weighted_sum_of_coordinate_distances():
    """F_kk = −(w_k / (2nL)) Σ_ij K_ij (α_i·α_j) |x_ik − x_jk| (SPEC §4), by a brute-force double loop."""
    g = torch.Generator().manual_seed(2)
    n, d, L = 8, 3, 2.0
    X, alpha = torch.randn(n, d, generator=g), torch.randn(n, 2, generator=g)
    M = feature_matrices(d, g)["diagonal"]
    w = M.diagonal().sqrt()
    K = Kernel("l1", L).gram(X, X, M)
    expected = torch.zeros(d)
    for i in range(n):
        for j in range(n):
            expected += K[i, j] * (alpha[i] @ alpha[j]) * (X[i] - X[j]).abs()
    expected *= -w / (2 * n * L)
    F = l1kernel.fact_matrix(X, alpha, M, K.clone(), L)
    torch.testing.assert_close(F.diagonal(), expected, rtol=1e-12, atol=1e-14)
    assert F[1].abs().max() == 0  # a switched-off coordinate stays off


def test_l1_path_interpolates_training_data_and_is_translation_invariant():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(50, 3, generator=g)
    Y = torch.nn.functional.one_hot((X[:, 0] + X[:, 1] > 0).long(), 2).double()
    options = RFMOptions(kernel=Kernel("l1", 3.0), method="fact", ridge=1e-8, iters=2, precision="float64")
    iterates = list(rfm_path(X, Y, options))
    shifted = list(rfm_path(X + 4.0, Y, options))
    for it, moved in zip(iterates, shifted, strict=True):
        torch.testing.assert_close(it.predictor(X), Y, rtol=0, atol=1e-5)
        torch.testing.assert_close(it.M, moved.M, rtol=1e-9, atol=1e-9)


def test_diagonal_and_power_updates():
    """Diagonal form: the rule on the statistic's diagonal; fact_power s gives M ← |F|^s, |F| = (FFᵀ)^½."""
    from factcli.core.linalg import psd_power
    from factcli.core.rfm import update_feature_matrix

    g = torch.Generator().manual_seed(4)
    F = torch.randn(4, 4, generator=g)
    M = torch.diag(torch.tensor([1.0, 2.0, 0.5, 0.5]))
    trace4 = lambda A: A * 4 / A.trace()  # noqa: E731

    diag = lambda o: update_feature_matrix(RFMOptions(form="diagonal", **o), F, M)  # noqa: E731
    torch.testing.assert_close(diag({"method": "fact"}), trace4(torch.diag(F.diagonal().abs())))
    torch.testing.assert_close(
        diag({"method": "fact", "fact_power": 2.0}), trace4(torch.diag(F.diagonal() ** 2))
    )
    torch.testing.assert_close(
        diag({"method": "fact-geo"}), trace4(torch.diag((F.diagonal().abs() * M.diagonal()).sqrt()))
    )
    agop = F @ F.T
    torch.testing.assert_close(
        update_feature_matrix(RFMOptions(method="nfa", form="diagonal"), agop, M),
        trace4(torch.diag(agop.diagonal().sqrt())),
    )
    squared = update_feature_matrix(RFMOptions(method="fact", fact_power=2.0), F, M)
    torch.testing.assert_close(squared, trace4(F @ F.T), rtol=1e-10, atol=1e-10)
    paper = update_feature_matrix(RFMOptions(method="fact"), F, M)
    torch.testing.assert_close(paper, trace4(psd_power(F @ F.T, 0.5)), rtol=1e-10, atol=1e-10)
    # A diagonal path keeps M exactly diagonal, so the L1 kernel never rotates coordinates.
    X = torch.randn(40, 3, generator=g)
    Y = torch.nn.functional.one_hot((X[:, 0] > 0).long(), 2).double()
    options = RFMOptions(kernel=Kernel("l1", 3.0), form="diagonal", ridge=1e-3, iters=2, precision="float64")
    for it in rfm_path(X, Y, options):
        assert l1kernel.is_diagonal(it.M)


def mixed_table(n, generator):
    """Binary, three-level, continuous and constant columns, with a duplicate row and a tie."""
    X = torch.stack(
        [
            torch.randint(0, 2, (n,), generator=generator).double() * 1.5 - 0.5,
            torch.randint(0, 3, (n,), generator=generator).double() * 0.7,
            torch.randn(n, generator=generator),
            torch.full((n,), 2.0),
            torch.randint(0, 2, (n,), generator=generator).double(),
        ],
        1,
    )
    X[4] = X[1]
    X[6, 2] = X[0, 2]
    return X


@pytest.mark.parametrize("form", ["full", "diagonal"])
@pytest.mark.parametrize("max_levels", [0, 3, 1000])
def test_discrete_coordinates_by_products_match_the_definitions(form, max_levels, monkeypatch):
    """Every coordinate as continuous (0), the binary and three-level ones as discrete (3), every one as
    discrete (1000): the Gram matrix against a brute-force double loop, FACT and AGOP against autograd."""
    monkeypatch.setattr(l1kernel, "L1_GEMM_MAX_LEVELS", max_levels)
    g = torch.Generator().manual_seed(5)
    n, L = 10, 1.5
    X, alpha = mixed_table(n, g), torch.randn(n, 3, generator=g)
    Z = torch.cat([mixed_table(7, g)[:4], X[:2] + torch.tensor([0.0, 0.35, 0.0, 0.0, 0.0])])  # a new level
    M = feature_matrices(5, g)[form]
    W = reference_root(M)
    expected_K = torch.stack([torch.stack([reference_kernel(x, z, W, L) for z in Z]) for x in X])
    torch.testing.assert_close(
        l1kernel.gram(X, Z, M, L, rows_per_block=3), expected_K, rtol=1e-12, atol=1e-14
    )
    K = l1kernel.gram(X, X, M, L)
    assert (K.diagonal() == 1).all()
    if form == "diagonal":  # duplicates exactly at 0 (a full W's product may round duplicate rows apart)
        assert K[1, 4] == 1 and K[4, 1] == 1

    J = reference_jacobians(X, alpha, W, L)
    expected_F = torch.einsum("ikd,ik,ie->de", J, alpha, X) / n
    centered = J - J.mean(0, keepdim=True)
    for block_elements in (l1kernel.L1_BLOCK_ELEMENTS, 25):
        F = l1kernel.fact_matrix(X, alpha, M, K.clone(), L, block_elements=block_elements)
        torch.testing.assert_close(F, expected_F, rtol=0, atol=1e-10)
        agop = l1kernel.agop_matrix(X, alpha, M, K, L, block_elements=block_elements)
        torch.testing.assert_close(agop, torch.einsum("ikd,ike->de", J, J) / n, rtol=0, atol=1e-10)
        centred = l1kernel.agop_matrix(X, alpha, M, K, L, centered=True, block_elements=block_elements)
        torch.testing.assert_close(
            centred, torch.einsum("ikd,ike->de", centered, centered) / n, rtol=0, atol=1e-10
        )


def test_sign_sums_match_a_brute_force_loop():
    """G_ik = Σ_j A_ij sign(u_ik − u_jk) for a non-symmetric A, ties and a constant coordinate included."""
    g = torch.Generator().manual_seed(6)
    U = mixed_table(7, g)
    A = torch.randn(7, 7, generator=g)
    expected = torch.zeros(7, 5)
    for i in range(7):
        for j in range(7):
            for k in range(5):
                a, b = float(U[i, k]), float(U[j, k])
                expected[i, k] += A[i, j] * ((a > b) - (a < b))
    for block_elements in (l1kernel.L1_BLOCK_ELEMENTS, 8):
        torch.testing.assert_close(l1kernel._sign_sums(U, A, block_elements), expected, rtol=0, atol=1e-12)
