"""What the RFM commands (fit-rfm, grokking, parity) share: their config's RFM settings as core
options, and the memory check before an n×n kernel matrix is made."""

from __future__ import annotations

from factcli.core.kernels import PREDICT_BLOCK_ELEMENTS, Kernel
from factcli.core.rfm import RFMOptions
from factcli.runtime import require_memory


def rfm_options(cfg, method: str, ridge: float | None = None) -> RFMOptions:
    """The config's ``kernel`` and ``rfm`` groups as core options; ``ridge`` replaces ``rfm.ridge``
    (fit-rfm's rfm group has none: it selects the ridge from ``grid.ridges``)."""
    rfm = cfg.rfm
    return RFMOptions(
        kernel=Kernel(cfg.kernel.name, float(cfg.kernel.bandwidth)),
        method=method,
        ridge=float(rfm.ridge if ridge is None else ridge),
        iters=int(rfm.iters),
        nfa_power=float(rfm.nfa_power),
        centered_agop=bool(rfm.centered_agop),
        rescale=rfm.rescale,
        precision=rfm.precision,
        solve_tol=float(rfm.solve_tol),
    )


def check_kernel_memory(n: int, precision: str, device, limit_gb: float | None) -> float:
    """Refuse up front when the n×n kernel matrix cannot fit (a path holds one, reused every
    iteration); returns the bytes it needs."""
    itemsize = 8 if precision == "float64" else 4
    limit = None if limit_gb is None else limit_gb * 2**30
    # One n×n matrix (factored in place), ~10% for O(n·d) and blockwise temporaries, and one block
    # of kernel entries between test and training points (predictions).
    needed = (1.1 * n * n + PREDICT_BLOCK_ELEMENTS) * itemsize
    require_memory(needed, device, f"the {n}×{n} kernel matrix ({precision})", limit)
    return needed
