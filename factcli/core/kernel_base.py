"""What every kernel of the RFM engine is: a named, bandwidth-scaled k_M(x, z) that owns its mathematics.

A kernel class gives, for a feature matrix M (None: the identity),

- ``gram(X, Z, M)``: K_ij = k_M(x_i, z_j), written into a caller's buffer (the exact solve's n×n matrix);
- ``derivative_weights(X, M)``: the n×n matrix W its training-row statistics are built from;
- ``fact_matrix`` / ``agop_matrix``: F = (1/n) Σ_i J_iᵀ α_i x_iᵀ and AGOP = (1/n) Σ_i J_iᵀ J_i of the
  predictor f(x) = Σ_j α_j k_M(x, x_j) over the training rows (J_i = ∂f(x_i)/∂x, centres fixed);
- ``center_fact_matrix`` / ``center_agop``: the same statistics of f(x) = Σ_j α_j k_M(x, c_j) over m
  Nyström centres, from the actual residuals, in one pass over row blocks (never n×n);

and says what the engine may assume of it (``translation_invariant``: the data may be centred first;
``weights_are_gram``: W = K, so the solve's matrix serves the statistic). Nothing outside the kernel
classes looks at a kernel's name: adding a kernel is one file (a subclass, registered by its ``name``)
plus its tests. ``Kernel(name, bandwidth)`` builds the registered class of that name.

The diagonal form of M needs no separate statistic: M diagonal is an M like any other, and the update
rule reads the statistic's diagonal (rfm.update_feature_matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from factcli.choices import KERNELS
from factcli.core import InvalidInput, defaults

# Element-wise passes over n×n matrices go in row blocks of about this many entries: their temporaries
# stay a few MB (a few percent of the matrix at n = 10,000) while each block is still large enough
# for torch's threads to share.
BLOCK_ELEMENTS = 1 << 20

# Predictions go in blocks of this many kernel entries (query rows × training points).
PREDICT_BLOCK_ELEMENTS = 4 * BLOCK_ELEMENTS

# Rows per block × centres of a pass against Nyström centres: a 4M-entry block (16 MB in float32)
# keeps every temporary of a pass around 100 MB while each GEMM is still large enough for every core.
CENTER_BLOCK_ELEMENTS = 1 << 22

_REGISTRY: dict[str, type[Kernel]] = {}


@dataclass
class Statistic:
    """A feature statistic against centres, and the predictor's outputs it was computed with."""

    matrix: torch.Tensor  # d×d: F (residual form) or AGOP, float64
    outputs: torch.Tensor  # n×c: f(x_i) at the training points, float64


@dataclass(frozen=True)
class Kernel:
    """``name`` (one of choices.KERNELS) and ``bandwidth`` L; ``Kernel(name, L)`` is that name's class."""

    name: str = defaults.KERNEL
    bandwidth: float = defaults.BANDWIDTH

    # -- what the engine may assume (overridden by the kernel classes) -------------------------
    translation_invariant: ClassVar[bool] = True  # k(x, z) depends on x − z only
    weights_are_gram: ClassVar[bool] = False  # derivative_weights(X, M) equals gram(X, X, M)
    distance_p: ClassVar[float] = 2.0  # the p of the distance the median-bandwidth rule measures
    selected_form: ClassVar[str | None] = (
        None  # the form of M when selection picks this kernel (None: as set)
    )
    simplicity: ClassVar[int] = 0  # tie rule between kernels: smaller is simpler

    def __new__(cls, *args, **kwargs):
        if cls is not Kernel:  # a subclass made directly, by replace() or by unpickling
            return super().__new__(cls)
        name = args[0] if args else kwargs.get("name", defaults.KERNEL)
        if name not in _REGISTRY:
            raise InvalidInput(f"unknown kernel {name!r}; choose one of {', '.join(KERNELS)}")
        return super().__new__(_REGISTRY[name])

    def __init_subclass__(cls, kernel_name: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if kernel_name is not None:
            _REGISTRY[kernel_name] = cls
            cls.kernel_name = kernel_name

    def __post_init__(self) -> None:
        if _REGISTRY.get(self.name) is not type(self):
            raise InvalidInput(f"unknown kernel {self.name!r}; choose one of {', '.join(KERNELS)}")
        if not self.bandwidth > 0:
            raise InvalidInput(f"kernel bandwidth must be positive, got {self.bandwidth}")

    # -- the mathematics every kernel class gives ----------------------------------------------
    def gram(self, X, Z, M, out: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def gram_by_differences(self, X, Z, M) -> torch.Tensor:
        """K as ``gram``, positive definite to rounding (Nyström's K_mm is factored without a ridge)."""
        return self.gram(X, Z, M)

    def derivative_weights(self, X, M, out: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def fact_matrix(self, X, alpha, M, W) -> torch.Tensor:
        """F over the training rows from the derivative weights W (overwritten)."""
        raise NotImplementedError

    def agop_matrix(self, X, alpha, M, W, centered: bool = False) -> torch.Tensor:
        """AGOP over the training rows from the derivative weights W."""
        raise NotImplementedError

    def center_fact_matrix(self, X, Y, C, alpha, M, block_elements=CENTER_BLOCK_ELEMENTS) -> Statistic:
        """F = −(1/n) Σ_i J_iᵀ r_i x_iᵀ of f(x) = Σ_j α_j k_M(x, c_j), r_i = f(x_i) − y_i."""
        raise NotImplementedError

    def center_agop(
        self, X, C, alpha, M, centered: bool = False, block_elements=CENTER_BLOCK_ELEMENTS
    ) -> Statistic:
        """AGOP = (1/n) Σ_i J_iᵀ J_i of f(x) = Σ_j α_j k_M(x, c_j)."""
        raise NotImplementedError

    # -- shared by every kernel ------------------------------------------------------------------
    def predict(self, X_query, X_train, M, alpha, block_elements: int = PREDICT_BLOCK_ELEMENTS):
        """f(x) = Σ_j α_j k_M(x, x_j) for every query row, in blocks so memory stays O(block·n)."""
        rows_per_block = max(1, block_elements // max(1, X_train.shape[0]))
        outputs = [self.gram(block, X_train, M) @ alpha for block in X_query.split(rows_per_block)]
        if not outputs:
            return alpha.new_zeros(0, alpha.shape[1])
        return torch.cat(outputs)


def row_blocks(matrix: torch.Tensor, max_elements: int | None = None):
    """(first row, view) of consecutive row blocks holding about ``max_elements`` (default
    BLOCK_ELEMENTS) entries each."""
    rows_per_block = max(1, (max_elements or BLOCK_ELEMENTS) // max(1, matrix.shape[1]))
    for start in range(0, matrix.shape[0], rows_per_block):
        yield start, matrix[start : start + rows_per_block]


def row_slices(n: int, rows_per_block: int):
    """Consecutive slices of ``rows_per_block`` rows covering 0..n."""
    step = max(1, rows_per_block)
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]
