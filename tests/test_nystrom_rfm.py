"""The Nyström RFM loop against the exact one, and the automatic choice between them."""

from types import SimpleNamespace

import pytest
import torch

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, rfm_path
from factcli.core.solvers import NystromSolver
from factcli.errors import FactError
from factcli.experiments.common.scalable import choose_solver


@pytest.mark.parametrize("method", ["fact", "nfa"])
def test_every_row_a_centre_gives_the_exact_path(method):
    """m = n: the same α, so the same predictions and (after rescaling) the same M_t at every t."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(60, 4, generator=g, dtype=torch.float64)
    Y = torch.nn.functional.one_hot((X[:, 0] * X[:, 1] > 0).long(), 2).double()
    X_test = torch.randn(20, 4, generator=g, dtype=torch.float64)
    exact = RFMOptions(kernel=Kernel("laplace", 2.0), method=method, ridge=0.1, iters=2, precision="float64")
    nystrom = RFMOptions(**{**exact.__dict__, "solver": NystromSolver(centers=60, cg_tol=1e-12)})
    for a, b in zip(rfm_path(X, Y, exact), rfm_path(X, Y, nystrom), strict=True):
        torch.testing.assert_close(b.M, a.M, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(b.predictor(X_test), a.predictor(X_test), rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(b.predictor.training_outputs(Y, 0.1), a.predictor.training_outputs(Y, 0.1))


def rfm_cfg(**overrides):
    return SimpleNamespace(
        **{"solver": "auto", "centers": None, "cg_max_iters": 100, "exact_max_rows": 20_000, **overrides}
    )


def test_auto_switches_to_nystrom_above_the_exact_size_or_memory():
    cpu = torch.device("cpu")
    assert choose_solver(rfm_cfg(), 20_000, "auto", cpu, None).solver == "exact"
    above = choose_solver(rfm_cfg(), 20_001, "auto", cpu, None)
    assert (above.solver, above.centers) == ("nystrom", 2000) and "rfm.exact_max_rows=20000" in above.reason
    tight = choose_solver(rfm_cfg(), 5_000, "auto", cpu, memory_limit_gb=0.05)
    assert tight.solver == "nystrom" and "5000×5000 kernel matrix needs" in tight.reason
    assert choose_solver(rfm_cfg(solver="exact"), 10**6, "auto", cpu, None).solver == "exact"
    with pytest.raises(FactError, match="3000 centres but only 2000 training rows"):
        choose_solver(rfm_cfg(solver="nystrom", centers=3000), 2000, "auto", cpu, None)
