"""One eigendecomposition for every ridge: equal to the Cholesky solve, and exact leave-one-out."""

import torch

from factcli.core import spectral
from factcli.core.kernels import Kernel
from factcli.core.linalg import solve_kernel_system


def test_every_ridge_from_one_eigendecomposition_equals_the_cholesky_solve():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(120, 5, generator=g, dtype=torch.float64)
    Y = torch.randn(120, 3, generator=g, dtype=torch.float64)
    K = Kernel("laplace", 3.0).gram(X, X, None)
    spectrum = spectral.decompose(K, Y)
    for ridge in (10.0, 1.0, 0.1, 1e-2, 1e-3):
        alpha, report = spectral.solve(spectrum, ridge)
        expected, _ = solve_kernel_system(K.clone(), Y, ridge)
        torch.testing.assert_close(alpha, expected, rtol=0, atol=1e-10)
        assert report.relative_residual < 1e-12


def test_leave_one_out_formula_equals_refitting_without_each_point():
    g = torch.Generator().manual_seed(1)
    n = 15
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    kernel = Kernel("l1", 2.0)
    K = kernel.gram(X, X, None)
    ridge = 0.05
    spectrum = spectral.decompose(K, Y)
    alpha, _ = spectral.solve(spectrum, ridge)
    loo = spectral.leave_one_out_predictions(spectrum, ridge, alpha)
    for i in range(n):  # brute force: refit on the other n − 1 points, predict point i
        rest = torch.arange(n) != i
        a = torch.linalg.solve(K[rest][:, rest] + ridge * torch.eye(n - 1, dtype=K.dtype), Y[rest])
        torch.testing.assert_close(loo[i], K[i, rest] @ a, rtol=0, atol=1e-10)
