"""Process-wide run settings every subcommand shares: device, seeds, threads, memory checks."""

from __future__ import annotations

import importlib
import os
import random
from contextlib import contextmanager

from .choices import DEVICES
from .errors import FactError


def resolve_device(name: str):
    """``auto`` → CUDA when present, else CPU. Asking for CUDA without one is a clear error."""
    import torch

    if name not in DEVICES:
        raise FactError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise FactError("device=cuda but no CUDA device is available; use device=cpu or device=auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): the same seed gives the same numbers here."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which SLURM and taskset restrict)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# Modules that bring a thread pool of their own when imported: scipy its OpenBLAS (numpy ships another),
# scikit-learn its OpenMP runtime. threadpoolctl only reaches libraries already loaded, so set_threads
# loads these first; a pool that appeared only later (scikit-learn imported mid-run) would keep every core.
POOL_MODULES = ("numpy", "scipy.linalg", "sklearn.utils._openmp_helpers")


def set_threads(count: int | None = None) -> int:
    """Every thread pool of the process: ``count``, else $OMP_NUM_THREADS, else every core it may use.

    torch's intra-op (and, while it can still be set, inter-op) threads and every BLAS / OpenMP
    library threadpoolctl finds (numpy's and scipy's OpenBLAS, the OpenMP runtimes of torch and
    scikit-learn). ``thread_pools`` says what each one really uses. On a machine shared with other
    heavy jobs, 1 thread is often faster: idle threads spin while waiting for descheduled siblings.
    """
    import torch

    if count is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        count = int(os.environ["OMP_NUM_THREADS"])
    if count is None:
        count = usable_cores()
    if count < 1:
        raise FactError(f"threads must be at least 1 (or null for every core), got {count}")
    torch.set_num_threads(count)
    if torch.get_num_interop_threads() != count:
        try:
            torch.set_num_interop_threads(count)
        except RuntimeError:  # settable once per process, before inter-op work; thread_pools records it
            pass
    limit_every_pool(count)
    return count


def limit_every_pool(count: int) -> None:
    """Load the libraries of POOL_MODULES, then limit every BLAS and OpenMP pool to ``count`` threads."""
    from threadpoolctl import threadpool_limits

    for module in POOL_MODULES:
        importlib.import_module(module)
    threadpool_limits(limits=count)


def thread_pools() -> list[dict]:
    """Each thread pool of the process and the threads it uses now (for summary.json): torch's
    intra-op and inter-op pools, then every library threadpoolctl finds."""
    import torch
    from threadpoolctl import threadpool_info

    pools = [
        {"pool": "torch intra-op", "threads": torch.get_num_threads()},
        {"pool": "torch inter-op", "threads": torch.get_num_interop_threads()},
    ]
    for library in threadpool_info():
        pools.append(
            {
                "pool": f"{library['user_api']} ({library['internal_api']})",
                "library": os.path.basename(library["filepath"]),
                "threads": int(library["num_threads"]),
            }
        )
    return pools


@contextmanager
def threads_within(count: int | None):
    """Run the block with ``count`` intra-op threads (None: unchanged), then restore the setting."""
    import torch

    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def available_memory_bytes(device) -> int:
    """Memory a new allocation can use: free GPU memory, or the host's available memory."""
    if getattr(device, "type", device) == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def require_memory(
    needed_bytes: float, device, what: str, limit_bytes: float | None = None, remedy: str | None = None
) -> None:
    """Refuse up front, naming the need, when ``what`` cannot fit (rather than swapping or dying);
    ``remedy`` replaces the generic advice where the caller knows the way that works."""
    available = available_memory_bytes(device) if limit_bytes is None else limit_bytes
    if needed_bytes > available:
        remedy = remedy or "use a smaller dataset (a subset), float32, or a larger machine"
        raise FactError(
            f"{what} needs {format_bytes(needed_bytes)} but only {format_bytes(available)} is available "
            f"on {getattr(device, 'type', device)}; {remedy}"
        )
