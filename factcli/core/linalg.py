"""Linear algebra the RFM engine stands on: PSD matrix powers and an in-place kernel solve.

The kernel solve is the most expensive step of every RFM iteration (one Cholesky factorization of an
n×n matrix), so on the CPU it factors the kernel matrix *in place* with LAPACK: no second n×n matrix
is ever allocated, which keeps an iteration's peak memory at one n×n matrix plus O(n·d).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


class NotPositiveDefinite(ArithmeticError):
    """The kernel system could not be factored: singular or indefinite at this ridge and precision."""


@dataclass(frozen=True)
class SolveReport:
    """How well a linear solve went: ``relative_residual`` = ‖B − (K + ridge·I)·α‖_F / ‖B‖_F."""

    relative_residual: float
    dtype: torch.dtype

    @property
    def precision(self) -> str:
        """The solve's precision as configs and tables spell it: float32 | float64."""
        return dtype_name(self.dtype)

    @property
    def cg_steps(self) -> int | None:
        """Conjugate-gradient steps of an iterative solve; None for a direct one."""
        return None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass
class FactorizationClock:
    """Seconds spent inside Cholesky factorizations: the physical floor of an RFM computation."""

    seconds: float = 0.0
    count: int = 0
    by_size: dict = field(default_factory=dict)  # (n, dtype name) -> [count, seconds]

    def add(self, n: int, dtype: torch.dtype, seconds: float) -> None:
        self.seconds += seconds
        self.count += 1
        entry = self.by_size.setdefault((n, dtype_name(dtype)), [0, 0.0])
        entry[0] += 1
        entry[1] += seconds


_active_clocks: list[FactorizationClock] = []


@contextmanager
def timing_factorizations() -> Iterator[FactorizationClock]:
    """Collect the time of every kernel-matrix factorization made inside the ``with`` block."""
    clock = FactorizationClock()
    _active_clocks.append(clock)
    try:
        yield clock
    finally:
        _active_clocks.remove(clock)


def _record_factorization(n: int, dtype: torch.dtype, started: float) -> None:
    elapsed = time.perf_counter() - started
    for clock in _active_clocks:
        clock.add(n, dtype, elapsed)


def psd_power(A: torch.Tensor, power: float) -> torch.Tensor:
    """A^power for a (nearly) symmetric PSD matrix: symmetrize, eigendecompose, clip at 0.

    Eigenvalues below d·eps·λ_max are rounding noise of zero (e.g. the null directions of one-hot
    inputs) and are set to exactly 0: a fourth root would otherwise lift 1e-16 to 1e-4.
    """
    sym = (A + A.T) / 2
    eigenvalues, eigenvectors = torch.linalg.eigh(sym)
    noise = A.shape[0] * torch.finfo(A.dtype).eps * eigenvalues.abs().max()
    scaled = torch.where(eigenvalues > noise, eigenvalues, 0.0).pow(power)
    return (eigenvectors * scaled) @ eigenvectors.T


def mirror_upper_triangle(A: torch.Tensor, tile: int = 256) -> torch.Tensor:
    """Make A exactly symmetric by copying its upper triangle onto its lower one, in place
    (``mirror_upper_triangle(A.T)``: the lower onto the upper).

    Square tiles (256×256 fit in a core's L2 cache) make the transposed copy ~5× faster than strips:
    0.03 s instead of 0.18 s at n = 8,000 in float32 here.
    """
    n = A.shape[0]
    for start in range(0, n, tile):
        stop = min(n, start + tile)
        for left in range(0, start, tile):
            A[start:stop, left : left + tile].copy_(A[left : left + tile, start:stop].T)
        diagonal_tile = A[start:stop, start:stop]
        diagonal_tile.copy_(diagonal_tile.triu() + diagonal_tile.triu(1).T)
    return A


def solve_kernel_system(
    K: torch.Tensor, B: torch.Tensor, ridge: float, keep: bool = False
) -> tuple[torch.Tensor, SolveReport]:
    """Solve (K + ridge·I) α = B for symmetric positive (semi)definite K. **Destroys K** unless ``keep``.

    Returns α (n×c) and the relative residual, measured against the original K so that an
    inaccurate solve (float32 on an ill-conditioned matrix) is detected rather than returned.
    Raises NotPositiveDefinite when the factorization breaks down. ``keep``: after a successful solve
    K is restored in place as the solve used it (on the CPU: exactly symmetric, from its upper
    triangle), in O(n²) instead of the O(n²d) of making it again: for the next ridge of the same K,
    or for the L1 kernel's statistics (its derivative weights are K itself).
    """
    if K.device.type == "cpu" and K.dtype in (torch.float32, torch.float64):
        return _solve_inplace_lapack(K, B, ridge, keep)
    return _solve_torch(K, B, ridge, keep)


def _solve_torch(
    K: torch.Tensor, B: torch.Tensor, ridge: float, keep: bool
) -> tuple[torch.Tensor, SolveReport]:
    """Out-of-place Cholesky (accelerators, where memory is plentiful and LAPACK-in-place is absent)."""
    diagonal = K.diagonal().clone()
    K.diagonal().add_(ridge)
    _synchronize(K)
    started = time.perf_counter()
    factor, info = torch.linalg.cholesky_ex(K)
    _synchronize(K)
    _record_factorization(K.shape[0], K.dtype, started)
    if int(info) != 0:
        raise NotPositiveDefinite(f"leading minor {int(info)} is not positive")
    alpha = torch.cholesky_solve(B, factor)
    del factor
    residual = torch.linalg.norm(B - K @ alpha) / torch.linalg.norm(B).clamp_min(1e-300)
    if keep:
        K.diagonal().copy_(diagonal)
    return alpha, SolveReport(float(residual), K.dtype)


def _solve_inplace_lapack(
    K: torch.Tensor, B: torch.Tensor, ridge: float, keep: bool
) -> tuple[torch.Tensor, SolveReport]:
    """In-place Cholesky with LAPACK (about twice as fast here as torch.linalg.cholesky, no copy).

    LAPACK is column-major; the transpose of a row-major symmetric matrix is the same matrix, so we
    hand it ``K.T`` without a copy. Factoring its lower triangle overwrites the *upper* triangle of
    the row-major K and leaves the strictly lower triangle untouched, which is all we need to
    compute the residual afterwards: one symmetric product from that triangle, O(n²c).
    """
    from scipy.linalg import blas, lapack

    if not K.is_contiguous():
        raise ValueError("solve_kernel_system needs a contiguous kernel matrix")
    # The factor is built from one triangle and the residual from the other: they must agree
    # bit for bit, which a GEMM-built kernel matrix does not guarantee in float64.
    mirror_upper_triangle(K)
    single = K.dtype == torch.float32
    potrf, potrs, symm = (
        (lapack.spotrf, lapack.spotrs, blas.ssymm) if single else (lapack.dpotrf, lapack.dpotrs, blas.dsymm)
    )
    diagonal = K.diagonal().clone()
    K.diagonal().add_(ridge)
    column_major = K.numpy().T  # a view: LAPACK works on K's own memory
    started = time.perf_counter()
    factor, info = potrf(column_major, lower=1, overwrite_a=1, clean=0)
    _record_factorization(K.shape[0], K.dtype, started)
    if info != 0:
        raise NotPositiveDefinite(f"leading minor {info} is not positive")
    rhs = B.numpy().astype(column_major.dtype, order="F", copy=True)
    alpha_np, info = potrs(factor, rhs, lower=1, overwrite_b=1)
    if info != 0:
        raise NotPositiveDefinite(f"potrs failed with info={info}")
    alpha = torch.from_numpy(alpha_np).contiguous()
    # Residual from the untouched strict triangle (upper triangle of the column-major view) in one
    # symmetric product; symm also reads the diagonal, which now holds the factor's, so swap it for K's.
    symmetric_times_alpha = symm(1.0, factor, alpha_np, side=0, lower=0)
    correction = (diagonal + ridge - torch.from_numpy(factor).diagonal()).unsqueeze(1)
    K_alpha = torch.from_numpy(symmetric_times_alpha) + correction * alpha
    residual = torch.linalg.norm(B - K_alpha) / torch.linalg.norm(B).clamp_min(1e-300)
    if keep:  # the strict lower triangle still holds K: mirror it over the factor, put the diagonal back
        mirror_upper_triangle(K.T)
        K.diagonal().copy_(diagonal)
    return alpha, SolveReport(float(residual), K.dtype)


def _synchronize(tensor: torch.Tensor) -> None:
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)
