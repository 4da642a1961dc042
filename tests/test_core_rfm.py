"""Every closed form of the RFM engine against an independent computation (autograd, direct solves)."""

import pytest
import torch
from conftest import random_psd

from factcli.core.kernels import Kernel, predict
from factcli.core.linalg import NotPositiveDefinite, mirror_upper_triangle, psd_power, solve_kernel_system
from factcli.core.rfm import (
    RFMOptions,
    agop_matrix,
    fact_matrix,
    rescale_feature_matrix,
    rfm_path,
    update_feature_matrix,
)

pytestmark = pytest.mark.usefixtures("float64_by_default")


def reference_kernel(name, bandwidth, x, z, M):
    """k_M(x, z) for one pair, written from the SPEC's definitions (no shared code with kernels.py)."""
    if name == "quadratic":
        return (x @ M @ z) ** 2
    diff = x - z
    squared = diff @ M @ diff
    if name == "laplace":
        return torch.exp(-torch.sqrt(squared) / bandwidth)
    return torch.exp(-squared / (2 * bandwidth**2))


def reference_jacobians(name, bandwidth, X, alpha, M):
    """J_i = ∂f(x_i)/∂x by autograd, centres fixed; Laplace drops j = i where ∂‖u‖ is undefined."""
    n = X.shape[0]
    jacobians = []
    for i in range(n):

        def f(x, i=i):
            terms = [
                alpha[j] * reference_kernel(name, bandwidth, x, X[j], M)
                for j in range(n)
                if not (j == i and name == "laplace")
            ]
            return torch.stack(terms).sum(0)

        jacobians.append(torch.autograd.functional.jacobian(f, X[i]))  # c × d
    return torch.stack(jacobians)


@pytest.mark.parametrize("name", ["laplace", "gaussian", "quadratic"])
@pytest.mark.parametrize("way", ["gram", "gram_by_differences"])
def test_gram_matches_pairwise_definition(name, way):
    g = torch.Generator().manual_seed(0)
    X, Z, M = torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g), random_psd(4, g)
    kernel = Kernel(name, 2.0)
    expected = torch.stack([torch.stack([reference_kernel(name, 2.0, x, z, M) for z in Z]) for x in X])
    torch.testing.assert_close(getattr(kernel, way)(X, Z, M), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_gram_by_differences_stays_positive_definite_where_one_gemm_cancels(name):
    """Far from the origin, half the points a hair from the other half, a low-rank M (as learned):
    the one-GEMM D² cancels there; the differences do not, and the matrix stays positive definite."""
    g = torch.Generator().manual_seed(0)
    kernel = Kernel(name, 2.0)
    C = 1e3 * torch.randn(200, 30, generator=g)
    C[100:] = C[:100] + 1e-7 * torch.randn(100, 30, generator=g)
    Q = torch.randn(30, 3, generator=g)
    M = Q @ Q.T
    K = kernel.gram_by_differences(C, C, M)
    pairs = torch.stack(
        [torch.stack([reference_kernel(name, 2.0, C[i], C[j], M) for j in (0, 100)]) for i in (0, 100)]
    )
    torch.testing.assert_close(K[[0, 100]][:, [0, 100]], pairs, rtol=1e-12, atol=1e-12)
    assert torch.linalg.eigvalsh(K).min() > -1e-12


@pytest.mark.parametrize("name", ["laplace", "gaussian", "quadratic"])
@pytest.mark.parametrize("classes", [1, 3])
def test_fact_and_agop_closed_forms_match_autograd(name, classes):
    g = torch.Generator().manual_seed(1)
    n, d = 9, 4
    X, alpha, M = (
        torch.randn(n, d, generator=g),
        torch.randn(n, classes, generator=g),
        random_psd(d, g),
    )
    kernel = Kernel(name, 1.5)
    J = reference_jacobians(name, 1.5, X, alpha, M)  # n × c × d

    expected_F = torch.einsum("ikd,ik,ie->de", J, alpha, X) / n
    expected_agop = torch.einsum("ikd,ike->de", J, J) / n
    centered = J - J.mean(0, keepdim=True)
    expected_centered_agop = torch.einsum("ikd,ike->de", centered, centered) / n

    W = lambda: kernel.derivative_weights(X, M)  # noqa: E731 (fresh buffer: the statistics overwrite it)
    torch.testing.assert_close(fact_matrix(kernel, X, alpha, M, W()), expected_F, rtol=0, atol=1e-8)
    torch.testing.assert_close(agop_matrix(kernel, X, alpha, M, W()), expected_agop, rtol=0, atol=1e-8)
    for agop in (kernel._agop_by_class, kernel._agop_gram_form):  # agop_matrix picks one by cost
        for centered, expected in ((False, expected_agop), (True, expected_centered_agop)):
            S = agop(X, alpha, W(), centered) / n
            torch.testing.assert_close(M @ S @ M, expected, rtol=0, atol=1e-8)
    for group_columns in (1, 2 * d):  # one class per pass, and groups of two (3 classes: 2 + 1)
        S = kernel._agop_by_class(X, alpha, W(), True, group_columns=group_columns) / n
        torch.testing.assert_close(M @ S @ M, expected_centered_agop, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", ["laplace", "gaussian", "quadratic"])
def test_row_blocks_do_not_change_gram_weights_or_statistics(name, monkeypatch):
    """The n×n passes run in row blocks; blocks of 2-3 rows (diagonal across boundaries, duplicates
    in different blocks) must give what the pairwise definition and one big block give."""
    import factcli.core.kernel_base as kernels

    g = torch.Generator().manual_seed(5)
    X = torch.randn(11, 3, generator=g)
    X[7] = X[1]  # a duplicate in another block
    alpha, M = torch.randn(11, 2, generator=g), random_psd(3, g)
    kernel = Kernel(name, 1.5)
    one_block = (kernel.gram(X, X, M), kernel.derivative_weights(X, M))
    F_one = fact_matrix(kernel, X, alpha, M, kernel.derivative_weights(X, M))
    monkeypatch.setattr(kernels, "BLOCK_ELEMENTS", 25)  # 2 rows of 11 per block
    K, W = kernel.gram(X, X, M), kernel.derivative_weights(X, M)
    expected_K = torch.stack([torch.stack([reference_kernel(name, 1.5, x, z, M) for z in X]) for x in X])
    torch.testing.assert_close(K, expected_K, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(K, one_block[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(W, one_block[1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fact_matrix(kernel, X, alpha, M, W), F_one, rtol=1e-12, atol=1e-14)
    if kernel.translation_invariant:
        assert (K[1, 7] == 1) and (K.diagonal() == 1).all()


def test_fact_is_invariant_to_translating_the_data():
    """The engine centres X for accuracy; that is only allowed because F does not change."""
    g = torch.Generator().manual_seed(2)
    X, alpha, M = torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g), random_psd(3, g)
    kernel = Kernel("laplace", 3.0)
    shifted = X + torch.tensor([5.0, -2.0, 7.0])
    F = fact_matrix(kernel, X, alpha, M, kernel.derivative_weights(X, M))
    F_shifted = fact_matrix(kernel, shifted, alpha, M, kernel.derivative_weights(shifted, M))
    torch.testing.assert_close(F, F_shifted, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_duplicate_points_are_exactly_coincident(dtype):
    """Rounding in ‖x‖² + ‖z‖² − 2xᵀz must not make duplicates look distinct (Laplace's 1/D blows up)."""
    g = torch.Generator().manual_seed(11)
    prototypes = torch.randn(5, 7, generator=g, dtype=dtype) * 3
    X = prototypes[torch.arange(40) % 5]
    M = random_psd(7, g).to(dtype)
    kernel = Kernel("laplace", 2.0)
    duplicate = (torch.arange(40)[:, None] % 5) == (torch.arange(40)[None, :] % 5)
    W = kernel.derivative_weights(X, M)
    assert (W[duplicate] == 0).all()
    assert (W[~duplicate] < 0).all()
    assert (kernel.gram(X, X, M)[duplicate] == 1).all()
    expected = -torch.exp(-torch.tensor(2.0**0.5)) / 2**0.5
    pair = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    # D² is shifted down by its rounding-noise bound 2(d+2)·eps·(‖x‖² + ‖z‖²) (kernels._gemm_factors):
    # ~5e-6 relative in float32, so W moves by a few 1e-6 there and by ~1e-14 in float64.
    tolerance = 1e-5 if dtype == torch.float32 else 1e-13
    assert Kernel("laplace", 1.0).derivative_weights(pair, None)[0, 1].item() == pytest.approx(
        expected.item(), rel=tolerance
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inplace_solve_matches_direct_solve_and_reports_true_residual(dtype):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(200, 5, generator=g, dtype=dtype)
    Y = torch.randn(200, 3, generator=g, dtype=dtype)
    K = Kernel("laplace", 2.0).gram(X, X, None)
    expected = torch.linalg.solve(K.double() + 0.1 * torch.eye(200), Y.double())
    alpha, report = solve_kernel_system(K.clone(), Y, 0.1)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(alpha.double(), expected, rtol=tol, atol=tol)
    true_residual = torch.linalg.norm(Y.double() - (K.double() + 0.1 * torch.eye(200)) @ alpha.double())
    assert report.relative_residual == pytest.approx(
        float(true_residual / torch.linalg.norm(Y.double())), rel=0.05, abs=1e-6
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("route", ["lapack", "torch"])
def test_a_kept_kernel_matrix_is_restored_exactly_and_serves_the_next_ridge(dtype, route):
    from factcli.core import linalg

    g = torch.Generator().manual_seed(5)
    X = torch.randn(120, 4, generator=g, dtype=dtype)
    Y = torch.randn(120, 2, generator=g, dtype=dtype)
    K = Kernel("l1", 2.0).gram(X, X, None)
    solve = linalg._solve_inplace_lapack if route == "lapack" else linalg._solve_torch
    # the LAPACK route works on K made exactly symmetric from its upper triangle; the torch one on K
    expected = mirror_upper_triangle(K.clone()) if route == "lapack" else K.clone()
    for ridge in (1.0, 0.1, 0.01):  # the same K, kept from one ridge to the next
        fresh, fresh_report = solve(K.clone(), Y, ridge, False)
        alpha, report = solve(K, Y, ridge, True)
        assert torch.equal(K, expected)  # bit for bit
        assert torch.equal(alpha, fresh) and report == fresh_report  # the same solve as on a fresh K


def test_l1_path_reusing_the_solves_kernel_matrix_equals_the_recomputed_weights():
    """The L1 path's statistic takes W = K from the solve's restored buffer; the path written out with
    W made again from the data (as before that reuse) gives the same iterates."""
    g = torch.Generator().manual_seed(8)
    X = torch.randn(90, 5, generator=g)
    Y = torch.nn.functional.one_hot((X[:, 0] - X[:, 2] > 0).long(), 2).double()
    Xc = X - X.mean(0, keepdim=True)
    kernel = Kernel("l1", 3.0)
    for method, form in (("fact", "diagonal"), ("nfa", "diagonal"), ("fact", "full")):
        options = RFMOptions(
            kernel=kernel, method=method, form=form, ridge=1e-3, iters=3, precision="float64"
        )
        M = torch.eye(5)
        for iterate in rfm_path(X, Y, options):
            torch.testing.assert_close(iterate.M, M, rtol=1e-10, atol=1e-12)
            K = kernel.gram(Xc, Xc, M)
            alpha = torch.linalg.solve(K + 1e-3 * torch.eye(90), Y)
            W = kernel.derivative_weights(Xc, M)
            statistic = (agop_matrix if method == "nfa" else fact_matrix)(kernel, Xc, alpha, M, W)
            M = update_feature_matrix(options, statistic, M)


def test_solve_raises_on_indefinite_matrix():
    K = torch.tensor([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(NotPositiveDefinite):
        solve_kernel_system(K, torch.ones(2, 1), 0.0)


@pytest.mark.parametrize("n, tile", [(1, 4), (23, 4), (24, 8), (300, 256)])
def test_mirror_upper_triangle_copies_the_upper_triangle_exactly(n, tile):
    A = torch.randn(n, n, generator=torch.Generator().manual_seed(n))
    expected = A.triu() + A.triu(1).T
    assert torch.equal(mirror_upper_triangle(A.clone(), tile=tile), expected)


def test_psd_power_against_closed_form():
    g = torch.Generator().manual_seed(4)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    eigenvalues = torch.tensor([4.0, 1.0, 0.25, 0.01, -1e-3])  # a slightly negative one is clipped
    A = Q @ torch.diag(eigenvalues) @ Q.T
    expected = Q @ torch.diag(torch.tensor([2.0, 1.0, 0.5, 0.1, 0.0])) @ Q.T
    torch.testing.assert_close(psd_power(A, 0.5), expected, rtol=0, atol=1e-12)


def test_psd_power_sends_rounding_level_eigenvalues_to_exact_zero():
    g = torch.Generator().manual_seed(9)
    V = torch.randn(6, 3, generator=g)
    A = V @ V.T  # rank 3: three eigenvalues are zero up to rounding
    root = psd_power(A, 0.25)
    null = torch.linalg.svd(V.T).Vh[3:]  # directions orthogonal to V's columns
    assert (null @ root @ null.T).abs().max() < 1e-12
    torch.testing.assert_close(psd_power(root, 4.0), A, rtol=1e-9, atol=1e-9)


def test_update_rules_have_the_fact_equation_as_fixed_point():
    g = torch.Generator().manual_seed(5)
    M = random_psd(4, g)
    M = M * 4 / M.trace()
    for method in ("fact", "fact-geo"):
        options = RFMOptions(method=method, rescale="trace")
        torch.testing.assert_close(update_feature_matrix(options, M.clone(), M), M, rtol=1e-10, atol=1e-10)


def test_fact_geo_equals_square_root_of_FM_for_inner_product_kernels():
    g = torch.Generator().manual_seed(6)
    X, alpha, M = torch.randn(10, 3, generator=g), torch.randn(10, 2, generator=g), random_psd(3, g)
    kernel = Kernel("quadratic")
    F = fact_matrix(kernel, X, alpha, M, kernel.derivative_weights(X, M))
    options = RFMOptions(kernel=kernel, method="fact-geo", rescale="none")
    torch.testing.assert_close(
        update_feature_matrix(options, F, M), psd_power(F @ M, 0.5), rtol=1e-9, atol=1e-9
    )


def test_rescale_rules():
    M = torch.diag(torch.tensor([1.0, 3.0]))
    assert rescale_feature_matrix(M, "trace").trace() == pytest.approx(2.0)
    assert rescale_feature_matrix(M, "max").abs().max() == pytest.approx(1.0)
    assert rescale_feature_matrix(M, "none") is M


def test_path_iterates_interpolate_the_training_data_and_predict_blockwise():
    g = torch.Generator().manual_seed(7)
    X = torch.randn(60, 4, generator=g)
    Y = torch.nn.functional.one_hot((X[:, 0] > 0).long(), 2).double()
    options = RFMOptions(
        kernel=Kernel("laplace", 5.0), method="fact", ridge=1e-6, iters=3, precision="float64"
    )
    iterates = list(rfm_path(X, Y, options))
    assert [it.t for it in iterates] == [0, 1, 2, 3]
    for it in iterates:
        torch.testing.assert_close(it.predictor(X), Y, rtol=0, atol=1e-5)
        assert it.M.trace() == pytest.approx(4.0)
    last = iterates[-1].predictor
    blockwise = predict(last.kernel, X - last.center, last.points, last.M, last.alpha, block_elements=70)
    torch.testing.assert_close(blockwise, last(X), rtol=0, atol=1e-9)


def test_auto_precision_redoes_an_inaccurate_float32_solve_in_float64():
    """Duplicate-heavy data (like titanic) makes K singular; float32 with a tiny ridge goes wrong."""
    g = torch.Generator().manual_seed(8)
    prototypes = torch.randn(6, 3, generator=g)
    X = prototypes[torch.randint(0, 6, (400,), generator=g)]
    Y = torch.nn.functional.one_hot(torch.randint(0, 2, (400,), generator=g), 2).double()
    options = RFMOptions(kernel=Kernel("laplace", 10.0), method="laplace", ridge=1e-6, precision="auto")
    (iterate,) = rfm_path(X, Y, options)
    assert iterate.solve.dtype == torch.float64
    assert iterate.solve.relative_residual <= options.solve_tol
