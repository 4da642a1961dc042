"""Shared pieces of the benchmark scripts: synthetic tasks, timers, machine description, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
FACT = Path(sys.executable).parent / "fact"  # this environment's entry point, as a shell starts it
UNIT_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}  # the units fit-rfm prints its estimate in


def tree_rss(root) -> int:
    """Resident bytes of a psutil process and its children now (0 when one ended while being read)."""
    import psutil

    try:
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def synthetic_classification(n: int, d: int, classes: int, seed: int = 0):
    """Gaussian inputs; the label depends non-linearly on the first three coordinates (so features matter)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    return X, np.searchsorted(edges, score)


def median_seconds(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> dict:
    import torch

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "?",
    )
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],
    }


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")
    return path


class PeakRSS:
    """Largest growth of this process's resident memory inside a ``with`` block (sampled every ms)."""

    def __enter__(self):
        import psutil

        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self._peak = self.baseline
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.growth = self._peak - self.baseline
