"""The kernels of the RFM engine: ``Kernel(name, bandwidth)`` gives the class registered under ``name``.

Each kernel class owns its mathematics (kernel_base.py says what that is): Laplace, Gaussian and the
quadratic inner-product kernel in kernel_l2.py, the L1 product-Laplace kernel in kernel_l1.py. A new
kernel is one more file with its subclass, imported here so that its name is registered.
"""

from __future__ import annotations

from . import kernel_l1, kernel_l2
from .kernel_base import (
    BLOCK_ELEMENTS,
    CENTER_BLOCK_ELEMENTS,
    PREDICT_BLOCK_ELEMENTS,
    Kernel,
    Statistic,
    row_blocks,
)

KERNEL_CLASSES = (
    kernel_l2.LaplaceKernel,
    kernel_l2.GaussianKernel,
    kernel_l2.QuadraticKernel,
    kernel_l1.L1Kernel,
)

__all__ = [
    "BLOCK_ELEMENTS",
    "CENTER_BLOCK_ELEMENTS",
    "KERNEL_CLASSES",
    "PREDICT_BLOCK_ELEMENTS",
    "Kernel",
    "Statistic",
    "predict",
    "row_blocks",
]


def predict(kernel: Kernel, X_query, X_train, M, alpha, block_elements: int = PREDICT_BLOCK_ELEMENTS):
    """f(x) = Σ_j α_j k_M(x, x_j) for every query row, in blocks so memory stays O(block·n)."""
    return kernel.predict(X_query, X_train, M, alpha, block_elements)
