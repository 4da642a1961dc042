"""The Nyström path's closed forms against autograd and direct solves, in float64 on small cases."""

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import random_psd

from factcli.core.kernels import Kernel
from factcli.core.linalg import solve_kernel_system
from factcli.core.nystrom import nystrom_solve, sample_centers
from factcli.core.rfm import fact_matrix

pytestmark = pytest.mark.usefixtures("float64_by_default")


def reference_predictor(name, bandwidth, C, alpha, M):
    """f(x) = Σ_j α_j k_M(x, c_j), written from the SPEC's definitions (no code shared with kernels.py)."""

    def f(x):
        if name == "l1":
            W = l1_root(M)
            values = torch.exp(-((x[None, :] - C) @ W.T).abs().sum(1) / bandwidth)
        elif name == "quadratic":
            values = (C @ M @ x) ** 2
        else:
            diff = x[None, :] - C
            squared = ((diff @ M) * diff).sum(1)
            values = (
                torch.exp(-torch.sqrt(squared) / bandwidth)
                if name == "laplace"
                else torch.exp(-squared / (2 * bandwidth**2))
            )
        return values @ alpha

    return f


def l1_root(M):
    """W with WᵀW = M: entrywise for a diagonal M, else the symmetric root by scipy's sqrtm."""
    if torch.equal(M, torch.diag(M.diagonal())):
        return torch.diag(M.diagonal().sqrt())
    return torch.from_numpy(np.real(scipy.linalg.sqrtm(M.numpy())))


def reference_jacobians(name, bandwidth, X, C, alpha, M):
    f = reference_predictor(name, bandwidth, C, alpha, M)
    return torch.stack([torch.autograd.functional.jacobian(f, x) for x in X]), torch.stack([f(x) for x in X])


def small_case(classes, seed=3, n=17, m=6, d=4):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    C = torch.randn(m, d, generator=g)  # centres apart from the data: Laplace is differentiable there
    return X, C, torch.randn(m, classes, generator=g), torch.randn(n, classes, generator=g), random_psd(d, g)


@pytest.mark.parametrize("name", ["laplace", "gaussian", "quadratic"])
def test_values_and_weights_match_gram_and_derivative_weights(name):
    g = torch.Generator().manual_seed(0)
    X, M = torch.randn(8, 3, generator=g), random_psd(3, g)
    kernel = Kernel(name, 2.0)
    values, weights = kernel.values_and_weights(X, X, M)
    torch.testing.assert_close(values, kernel.gram(X, X, M), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(weights, kernel.derivative_weights(X, M), rtol=1e-10, atol=1e-12)


# Every kernel, with a full M; the L1 kernel also with a diagonal M that switches a coordinate off
# (its W is then diag(√M_kk), not a rotation).
KERNEL_CASES = [
    ("laplace", "full"),
    ("gaussian", "full"),
    ("quadratic", "full"),
    ("l1", "full"),
    ("l1", "diagonal"),
]


def case_matrix(M, form):
    if form == "full":
        return M
    diagonal = torch.diag(M.diagonal().clone())
    diagonal[1, 1] = 0.0
    return diagonal


@pytest.mark.parametrize(("name", "form"), KERNEL_CASES)
@pytest.mark.parametrize("classes", [1, 3])
def test_center_fact_matches_autograd(name, form, classes):
    X, C, alpha, Y, M = small_case(classes)
    M = case_matrix(M, form)
    J, f = reference_jacobians(name, 2.0, X, C, alpha, M)
    residuals = f - Y
    expected = -torch.einsum("ikd,ik,ie->de", J, residuals, X) / X.shape[0]
    got = Kernel(name, 2.0).center_fact_matrix(X, Y, C, alpha, M, block_elements=20)  # several blocks
    torch.testing.assert_close(got.outputs, f, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.matrix, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("name", "form"), KERNEL_CASES)
@pytest.mark.parametrize("centered", [False, True])
def test_center_agop_matches_autograd(name, form, centered):
    X, C, alpha, _, M = small_case(3)
    M = case_matrix(M, form)
    J, f = reference_jacobians(name, 2.0, X, C, alpha, M)
    if centered:
        J = J - J.mean(0, keepdim=True)
    expected = torch.einsum("ikd,ike->de", J, J) / X.shape[0]
    got = Kernel(name, 2.0).center_agop(X, C, alpha, M, centered=centered, block_elements=20)
    torch.testing.assert_close(got.outputs, f, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.matrix, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["laplace", "gaussian", "quadratic"])
@pytest.mark.parametrize("centered", [False, True])
def test_both_ways_of_summing_the_center_agop_agree(name, centered):
    X, C, alpha, _, M = small_case(3)
    kernel = Kernel(name, 2.0)
    by_class, gram_form = (
        kernel.center_agop(X, C, alpha, M, centered=centered, block_elements=20, by_class=by_class).matrix
        for by_class in (True, False)
    )
    torch.testing.assert_close(by_class, gram_form, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["laplace", "gaussian", "l1"])
def test_all_points_as_centres_give_the_exact_solve_and_its_alpha_form(name):
    """m = n centres at the training points: α is the exact ridge solve's, and the residual form of F
    is λ times today's α-form (r = −λα); CG converges at once since the preconditioner is exact."""
    g = torch.Generator().manual_seed(5)
    n, d, ridge = 40, 5, 0.1
    X, Y, M = torch.randn(n, d, generator=g), torch.randn(n, 2, generator=g), random_psd(d, g)
    kernel = Kernel(name, 3.0)
    exact, _ = solve_kernel_system(kernel.gram(X, X, M), Y, ridge)
    alpha, fitted, report = nystrom_solve(kernel, X, Y, X, M, ridge, tol=1e-12)
    torch.testing.assert_close(alpha, exact, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(fitted, Y - ridge * exact, rtol=1e-7, atol=1e-9)
    assert report.iterations <= 3
    residual_form = kernel.center_fact_matrix(X, Y, X, exact, M).matrix
    alpha_form = fact_matrix(kernel, X, exact, M, kernel.derivative_weights(X, M))
    torch.testing.assert_close(residual_form, ridge * alpha_form, rtol=1e-9, atol=1e-12)


def test_cg_solve_matches_a_direct_solve_of_the_normal_equations():
    g = torch.Generator().manual_seed(7)
    n, m, d, ridge = 300, 40, 6, 1e-3
    X, Y = torch.randn(n, d, generator=g), torch.randn(n, 3, generator=g)
    C, M = X[sample_centers(X, m, seed=0)], random_psd(d, g)
    kernel = Kernel("laplace", 5.0)
    K_nm, K_mm = kernel.gram(X, C, M), kernel.gram(C, C, M)
    direct = torch.linalg.solve(K_nm.T @ K_nm + ridge * K_mm, K_nm.T @ Y)
    # blocks remade at every step, kept, or K_nmᵀK_nm formed in the first pass
    for cache, normal in ((0.0, False), (1e9, False), (0.0, True)):
        alpha, fitted, report = nystrom_solve(
            kernel,
            X,
            Y,
            C,
            M,
            ridge,
            tol=1e-11,
            max_iters=200,
            block_elements=500,
            cache_bytes=cache,
            form_normal_matrix=normal,
        )
        assert report.converged and report.iterations < 60
        torch.testing.assert_close(alpha, direct, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(fitted, K_nm @ direct, rtol=1e-7, atol=1e-8)
    for normal in (False, True):
        warm, fitted, warm_report = nystrom_solve(
            kernel, X, Y, C, M, ridge, tol=1e-11, initial=direct, form_normal_matrix=normal
        )
        assert warm_report.iterations <= 2
        torch.testing.assert_close(warm, direct, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(fitted, K_nm @ direct, rtol=1e-7, atol=1e-8)


def test_sample_centers_is_seeded_and_drops_duplicate_rows():
    X = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]).repeat(5, 1)
    rows = sample_centers(X, 10, seed=1)
    assert torch.equal(rows, sample_centers(X, 10, seed=1))
    assert len(torch.unique(X[rows], dim=0)) == len(rows) <= 3
    with pytest.raises(ValueError, match="1..20"):
        sample_centers(X, 21, seed=0)
    with pytest.raises(ValueError, match="got 0"):
        sample_centers(X, 0, seed=0)


def test_centres_that_coincide_under_a_learned_metric_are_factored_and_solved():
    """A rank-deficient M (what M ← FFᵀ learns) makes centres that differ only in its null space
    coincide, so K_mm has equal rows; the Laplace kernel adds √eps-sized rounding errors on top. The
    factorization must still succeed (with a grown jitter) and the solve must still be the minimiser:
    the same fit as with the duplicates removed, since equal centres span the same functions."""
    from factcli.core.nystrom import factor_centers

    g = torch.Generator().manual_seed(11)
    n, d = 400, 5
    X = torch.randn(n, d, generator=g)
    X[:, 1:] = X[:, 1:].round()  # coarse coordinates, so many rows agree outside the first one
    Y = torch.randn(n, 2, generator=g)
    M = torch.zeros(d, d)
    M[1:, 1:] = torch.eye(d - 1)  # the first coordinate learned away
    C = X[sample_centers(X, 120, seed=0)]
    kernel = Kernel("laplace", 3.0)
    K_mm = kernel.gram(C, C, M)
    assert torch.linalg.eigvalsh(K_mm).min() < 1e-10  # coincident centres: singular (or worse)
    distinct = torch.unique(C @ M, dim=0)  # the distinct centres in M's metric (M is a projection)
    T, kept, jitter = factor_centers(K_mm)
    assert kept is not None and len(kept) == len(distinct) < len(C)
    assert len(torch.unique(C[kept] @ M, dim=0)) == len(kept)  # one of each
    torch.testing.assert_close(T.T @ T, K_mm[kept][:, kept], rtol=0, atol=10 * jitter)

    ridge = 1e-3
    alpha, fitted, report = nystrom_solve(kernel, X, Y, C, M, ridge, tol=1e-10, max_iters=300)
    assert report.converged and torch.isfinite(alpha).all()
    K_nd = kernel.gram(X, distinct, M)
    best = torch.linalg.lstsq(
        K_nd.T @ K_nd + ridge * kernel.gram(distinct, distinct, M), K_nd.T @ Y, driver="gelsd"
    ).solution
    torch.testing.assert_close(fitted, K_nd @ best, rtol=1e-4, atol=1e-4)


def test_a_kernel_matrix_far_from_positive_definite_is_refused_in_one_line():
    from factcli.core import InvalidInput
    from factcli.core.nystrom import factor_centers

    K_mm = torch.ones(4, 4) - 2 * torch.eye(4)  # eigenvalue −2: no small jitter repairs it
    with pytest.raises(InvalidInput, match="fewer rfm.centers"):
        factor_centers(K_mm)


@pytest.mark.parametrize("cache", [0.0, 1e9])
def test_one_system_serves_every_ridge_exactly_as_fresh_solves(cache):
    """A grid's ridges share K_mm's factor, the kernel rows and K_nmᵀY (NystromSystem): each ridge's α,
    fitted values and report are bit for bit those of a fresh nystrom_solve."""
    from factcli.core.nystrom import NystromSystem

    g = torch.Generator().manual_seed(11)
    X, Y = torch.randn(200, 4, generator=g), torch.randn(200, 2, generator=g)
    C, M = X[sample_centers(X, 30, seed=0)], random_psd(4, g)
    kernel = Kernel("l1", 3.0)
    system = NystromSystem(kernel, X, Y, C, M, block_elements=500, cache_bytes=cache)
    for ridge in (1.0, 1e-2, 1e-4):
        shared = system.solve(ridge, tol=1e-10, max_iters=300)
        fresh = nystrom_solve(
            kernel, X, Y, C, M, ridge, tol=1e-10, max_iters=300, block_elements=500, cache_bytes=cache
        )
        assert torch.equal(shared[0], fresh[0]) and torch.equal(shared[1], fresh[1]) and shared[2] == fresh[2]
