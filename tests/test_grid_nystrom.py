"""The grid on the Nyström path: stage 0 and the paths without an n×n matrix, every kernel."""

from dataclasses import replace

import pytest
import torch

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions
from factcli.core.solvers import NystromSolver
from factcli.experiments.rfm.grid import GridSpec, select
from factcli.experiments.rfm.protocol import Split, Task

TASK = Task("classification", 2)


def problem(n=80, n_val=40, d=4):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(n + n_val, d, generator=g, dtype=torch.float64)
    y = (X[:, 0] * X[:, 1] > 0).long()
    return Split(X[:n], y[:n], X[n:], y[n:])


@pytest.mark.parametrize(("kernel", "form"), [("laplace", "full"), ("l1", "diagonal")])
def test_every_row_a_centre_gives_the_exact_grid(kernel, form):
    """m = n: the Nyström stage 0 and paths score every grid point as the exact ones do."""
    split = problem()
    spec = GridSpec(bandwidths=(1.0, 2.0), ridges=(1.0, 0.01), normalizations=(False, True))
    exact = RFMOptions(
        kernel=Kernel(kernel, 1.0), method="fact", ridge=1.0, iters=2, precision="float64", form=form
    )
    nystrom = replace(exact, solver=NystromSolver(centers=len(split.X_train), cg_tol=1e-12, cg_max_iters=500))
    a = select(TASK, kernel, spec, exact, split)
    b = select(TASK, kernel, spec, nystrom, split)
    assert len(a.candidates) == len(b.candidates) == 2 * 2 * 2 + 2 * 2  # stage 0, then t = 1, 2 per ridge
    for p, q in zip(a.candidates, b.candidates, strict=True):
        assert (p.bandwidth, p.normalize, p.ridge, p.iteration) == pytest.approx(
            (q.bandwidth, q.normalize, q.ridge, q.iteration)
        )
        assert (p.val_score, p.train_score) == pytest.approx((q.val_score, q.train_score), abs=1e-12)
    assert a.chosen == b.chosen
    torch.testing.assert_close(b.M, a.M, rtol=1e-6, atol=1e-8)


def test_auto_kernel_on_the_nystrom_path_selects_among_laplace_and_l1():
    split = problem()
    spec = GridSpec(bandwidths=(1.0,), ridges=(0.1,), normalizations=(False,))
    options = RFMOptions(
        kernel=Kernel("laplace", 1.0), method="fact", ridge=0.1, iters=1, precision="float64"
    )
    nystrom = replace(options, solver=NystromSolver(centers=30))
    for selection in (select(TASK, "auto", spec, nystrom, split), select(TASK, "auto", spec, options, split)):
        assert {c.kernel for c in selection.candidates if c.iteration == 0} == {"laplace", "l1"}
        assert all(c.solve_residual <= 1e-3 for c in selection.candidates)
