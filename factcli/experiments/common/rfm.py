"""What the RFM commands (fit-rfm, grokking, parity) share: their config's RFM settings as core
options, and the memory check before an n×n kernel matrix is made."""

from __future__ import annotations

from factcli.core import defaults
from factcli.core.kernels import PREDICT_BLOCK_ELEMENTS, Kernel
from factcli.core.rfm import RFMOptions
from factcli.runtime import require_memory


def rfm_options(
    cfg, method: str, ridge: float | None = None, bandwidth: float | None = None, kernel: str | None = None
) -> RFMOptions:
    """The config's ``kernel`` and ``rfm`` groups as core options; ``ridge``, ``bandwidth`` and ``kernel``
    replace ``rfm.ridge``, ``kernel.bandwidth`` and ``kernel.name`` (fit-rfm selects them on its grid)."""
    rfm = cfg.rfm
    name = cfg.kernel.name if kernel is None else kernel
    return RFMOptions(
        kernel=Kernel(name, float(cfg.kernel.bandwidth if bandwidth is None else bandwidth)),
        method=method,
        ridge=float(rfm.ridge if ridge is None else ridge),
        iters=int(rfm.iters),
        nfa_power=float(rfm.nfa_power),
        fact_power=float(rfm.get("fact_power", defaults.FACT_POWER)),
        form=rfm.get("form", defaults.FORM),
        centered_agop=bool(rfm.centered_agop),
        rescale=rfm.rescale,
        precision=rfm.precision,
        solve_tol=float(rfm.solve_tol),
    )


# A zero feature matrix (core.rfm.FeatureCollapse) is not a precision problem: ridge or float64
# advice would not help, so the commands give this instead.
COLLAPSE_ADVICE = (
    "the kernel's gradients vanish on these inputs (features without variation, or a kernel.bandwidth "
    "so large the kernel is flat); check the features and kernel.bandwidth, or use method=laplace"
)


def check_kernel_memory(
    n: int, precision: str, device, limit_gb: float | None, remedy: str | None = None
) -> float:
    """Refuse up front when the n×n kernel matrix cannot fit (a path holds one, reused every
    iteration); returns the bytes it needs. ``remedy``: the advice the refusal gives (require_memory)."""
    itemsize = 8 if precision == "float64" else 4
    limit = None if limit_gb is None else limit_gb * 2**30
    # One n×n matrix (factored in place), ~10% for O(n·d) and blockwise temporaries, and one block
    # of kernel entries between test and training points (predictions).
    needed = (1.1 * n * n + PREDICT_BLOCK_ELEMENTS) * itemsize
    require_memory(needed, device, f"the {n}×{n} kernel matrix ({precision})", limit, remedy)
    return needed
