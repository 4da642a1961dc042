"""The RFM loop on the Nyström path: the same update rules, rescaling and iterates as ``rfm_path``, with
each exact n×n solve replaced by a Nyström solve on m centres (nystrom.py) and the feature statistic
taken from the predictor's actual residuals (FACT) or its Jacobians (AGOP), one pass over row blocks.

The centres are rows of the training data drawn once per path with the seed, so M_t is learned with
the same centres at every iteration. Each solve starts from the previous iterate's α.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from . import InvalidInput
from .nystrom import (
    BLOCK_ELEMENTS,
    NystromPredictor,
    agop,
    default_centers,
    nystrom_solve,
    residual_fact_matrix,
    sample_centers,
)

# Kernels whose blocks Kernel.values_and_weights computes (the L1 kernel's are not L2 distances).
NYSTROM_KERNELS = ("laplace", "gaussian", "quadratic")


@dataclass(frozen=True)
class NystromOptions:
    """How the Nyström path solves. ``centers`` None: default_centers(n)."""

    centers: int | None = None
    seed: int = 0
    cg_tol: float = 1e-4  # relative residual of the preconditioned system, worst output column
    cg_max_iters: int = 100
    cache_bytes: float = 2 * 2**30  # keep the n×m kernel blocks between CG steps when they fit here
    block_elements: int = BLOCK_ELEMENTS
    # (stage, done, total) after each CG step and each pass; for progress bars, never for results.
    progress: Callable[[str, int, int], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.centers is not None and self.centers < 1:
            raise InvalidInput(f"the number of centres must be at least 1, got {self.centers}")
        if not self.cg_tol > 0 or self.cg_max_iters < 1:
            raise InvalidInput("cg_tol must be positive and cg_max_iters at least 1")

    def centers_for(self, n: int) -> int:
        m = default_centers(n) if self.centers is None else self.centers
        if m > n:
            raise InvalidInput(f"{m} centres but only {n} training rows; use rfm.centers <= {n}")
        return m


def nystrom_path(X: torch.Tensor, Y: torch.Tensor, options, M0: torch.Tensor | None = None) -> Iterator:
    """Yield iterates t = 0..options.iters like ``rfm_path`` (``options.scalable`` is a NystromOptions)."""
    from .rfm import Iterate, update_feature_matrix

    scalable: NystromOptions = options.scalable
    kernel = options.kernel
    if kernel.name not in NYSTROM_KERNELS:
        raise InvalidInput(
            f"the Nyström path has no {kernel.name} kernel (its blocks are L2-distance or inner-product"
            f" kernels); use one of {', '.join(NYSTROM_KERNELS)} or the exact solver"
        )
    dtype = torch.float64 if options.precision == "float64" else torch.float32
    last_t = 0 if options.method == "laplace" else options.iters
    d = X.shape[1]
    M = torch.eye(d, dtype=torch.float64, device=X.device) if M0 is None else M0.to(torch.float64)
    center = X.mean(0, keepdim=True) if kernel.translation_invariant else torch.zeros_like(X[:1])
    Xw, Yw = (X - center).to(dtype), Y.to(dtype)
    centers = Xw[sample_centers(Xw, scalable.centers_for(X.shape[0]), scalable.seed)]
    alpha = None
    for t in range(last_t + 1):
        Mw = M.to(dtype)
        alpha, fitted, report = nystrom_solve(
            kernel,
            Xw,
            Yw,
            centers,
            Mw,
            options.ridge,
            tol=scalable.cg_tol,
            max_iters=scalable.cg_max_iters,
            initial=alpha,
            block_elements=scalable.block_elements,
            cache_bytes=scalable.cache_bytes,
            progress=scalable.progress,
        )
        predictor = NystromPredictor(kernel, centers, center.to(dtype), Mw, alpha, fitted)
        yield Iterate(t, M.clone(), predictor, report)
        if t == last_t:
            break
        if options.method == "nfa":
            statistic = agop(
                kernel, Xw, centers, alpha, Mw, options.centered_agop, block_elements=scalable.block_elements
            )
        else:
            statistic = residual_fact_matrix(
                kernel, Xw, Yw, centers, alpha, Mw, block_elements=scalable.block_elements
            )
        if scalable.progress is not None:
            scalable.progress("statistic", 1, 1)
        M = update_feature_matrix(options, statistic.matrix, M)
