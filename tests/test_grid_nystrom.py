"""issue 15's grid on the Nyström path (issue 14): stage 0 and the paths without an n×n matrix."""

from dataclasses import replace

import pytest
import torch

from factcli.core import InvalidInput
from factcli.core.kernels import Kernel
from factcli.core.nystrom_rfm import NystromOptions
from factcli.core.rfm import RFMOptions, rfm_path
from factcli.experiments.rfm.grid import GridSpec, select
from factcli.experiments.rfm.protocol import Task

TASK = Task("classification", 2)


def problem(n=80, n_val=40, d=4):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(n + n_val, d, generator=g, dtype=torch.float64)
    y = (X[:, 0] * X[:, 1] > 0).long()
    return X[:n], y[:n], X[n:], y[n:]


def test_every_row_a_centre_gives_the_exact_grid():
    """m = n: the Nyström stage 0 and paths score every grid point as the exact ones do."""
    X, y, X_val, y_val = problem()
    spec = GridSpec(bandwidths=(1.0, 2.0), ridges=(1.0, 0.01), normalizations=(False, True))
    exact = RFMOptions(kernel=Kernel("laplace", 1.0), method="fact", ridge=1.0, iters=2, precision="float64")
    nystrom = replace(exact, scalable=NystromOptions(centers=len(X), cg_tol=1e-12, cg_max_iters=500))
    a = select(TASK, "laplace", spec, exact, X, y, X_val, y_val)
    b = select(TASK, "laplace", spec, nystrom, X, y, X_val, y_val)
    assert len(a.candidates) == len(b.candidates) == 2 * 2 * 2 + 2 * 2  # stage 0, then t = 1, 2 per ridge
    for p, q in zip(a.candidates, b.candidates, strict=True):
        assert (p.bandwidth, p.normalize, p.ridge, p.iteration) == pytest.approx(
            (q.bandwidth, q.normalize, q.ridge, q.iteration)
        )
        assert (p.val_score, p.train_score) == pytest.approx((q.val_score, q.train_score), abs=1e-12)
    assert a.chosen == b.chosen
    torch.testing.assert_close(b.M, a.M, rtol=1e-6, atol=1e-8)


def test_auto_kernel_on_the_nystrom_path_is_laplace_and_l1_is_refused():
    X, y, X_val, y_val = problem()
    spec = GridSpec(bandwidths=(1.0,), ridges=(0.1,), normalizations=(False,))
    options = RFMOptions(
        kernel=Kernel("laplace", 1.0), method="fact", ridge=0.1, iters=1, precision="float64"
    )
    nystrom = replace(options, scalable=NystromOptions(centers=30))
    selection = select(TASK, "auto", spec, nystrom, X, y, X_val, y_val)
    assert {c.kernel for c in selection.candidates} == {"laplace"}
    assert {c.kernel for c in select(TASK, "auto", spec, options, X, y, X_val, y_val).candidates} == {
        "laplace",
        "l1",
    }
    with pytest.raises(InvalidInput, match="no l1 kernel"):
        next(rfm_path(X, torch.nn.functional.one_hot(y).double(), replace(nystrom, kernel=Kernel("l1", 1.0))))
