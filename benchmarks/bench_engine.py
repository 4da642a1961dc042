"""The RFM engine against its physical floor: `python benchmarks/bench_engine.py` → results/engine.json.

1. One RFM iteration (feature statistic + update + kernel matrix + solve) at n = 10,000, d = 20,
   2 classes, float32 and float64, beside one in-place Cholesky factorization of the same size.
2. Peak memory of one iteration (fresh subprocess, ru_maxrss) beside one n×n matrix.
3. The feature statistics (FACT and AGOP) as the number of classes grows: time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch
from common import PeakRSS, machine, median_seconds, synthetic_classification, write_result
from scipy.linalg import lapack

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, agop_matrix, fact_matrix, rfm_path

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def cholesky_seconds(n: int, dtype: torch.dtype, repeats: int = 2) -> float:
    """In-place LAPACK Cholesky of an n×n Laplace kernel matrix (the solver's own routine)."""
    X = torch.randn(n, 20, dtype=dtype)
    K = Kernel().gram(X, X, None)
    K.diagonal().add_(1e-3)
    potrf = lapack.spotrf if dtype == torch.float32 else lapack.dpotrf
    work = torch.empty_like(K)

    def factor():
        work.copy_(K)
        potrf(work.numpy().T, lower=1, overwrite_a=1, clean=0)

    factor()  # warm up
    return median_seconds(factor, repeats)


def iteration_seconds(n: int, d: int, classes: int, precision: str, method: str) -> dict:
    X, y = synthetic_classification(n, d, classes)
    Y = np.eye(classes)[y]
    options = RFMOptions(method=method, ridge=1e-3, iters=2, precision=precision)
    path = rfm_path(torch.tensor(X), torch.tensor(Y), options)
    marks = [time.perf_counter()]
    for _ in path:
        marks.append(time.perf_counter())
    steps = np.diff(marks)  # [first solve, iteration 1, iteration 2]
    return {"first_solve": float(steps[0]), "iteration": float(np.median(steps[1:]))}


def peak_memory_child(n: int, d: int, precision: str, method: str) -> dict:
    """Run in a fresh process: peak RSS growth during one full iteration."""
    X, y = synthetic_classification(n, d, 2)
    Xt, Yt = torch.tensor(X), torch.tensor(np.eye(2)[y])
    options = RFMOptions(method=method, ridge=1e-3, iters=1, precision=precision)
    # Warm the allocator and libraries on a tiny problem so their one-off memory is in the baseline.
    list(rfm_path(Xt[:200], Yt[:200], options))
    with PeakRSS() as peak:
        list(rfm_path(Xt, Yt, options))
    matrix = n * n * DTYPES[precision].itemsize
    return {"peak_growth_bytes": peak.growth, "nxn_bytes": matrix, "ratio_to_nxn": peak.growth / matrix}


def statistic_scaling(n: int, d: int, classes: int) -> dict:
    X, y = synthetic_classification(n, d, classes)
    X = torch.tensor(X, dtype=torch.float32)
    alpha = torch.randn(n, classes, dtype=torch.float32)
    kernel = Kernel()
    W = torch.empty(n, n, dtype=torch.float32)
    out = {}
    for name, statistic in (("fact", fact_matrix), ("agop", agop_matrix)):

        def run(statistic=statistic):
            kernel.derivative_weights(X, None, out=W)
            statistic(kernel, X, alpha, None, W)

        out[f"{name}_seconds"] = median_seconds(run, 2)
    return out


def statistic_memory_child(n: int, d: int, classes: int) -> dict:
    X, _ = synthetic_classification(n, d, classes)
    X = torch.tensor(X, dtype=torch.float32)
    alpha = torch.randn(n, classes, dtype=torch.float32)
    kernel = Kernel()
    W = kernel.derivative_weights(X, None)
    fact_matrix(kernel, X[:100], alpha[:100], None, kernel.derivative_weights(X[:100], None))
    agop_matrix(kernel, X[:100], alpha[:100], None, kernel.derivative_weights(X[:100], None))
    out = {}
    for name, statistic in (("fact", fact_matrix), ("agop", agop_matrix)):
        kernel.derivative_weights(X, None, out=W)
        with PeakRSS() as peak:
            statistic(kernel, X, alpha, None, W)
        out[f"{name}_extra_peak_bytes"] = peak.growth
    return out


def in_child(function: str, *args) -> dict:
    """Peak memory must be measured in a fresh process: ru_maxrss never goes down."""
    code = f"import json, bench_engine as b; print(json.dumps(b.{function}(*{args!r})))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=__file__.rsplit("/", 1)[0],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="n = 3000 (a smoke run)")
    args = parser.parse_args()
    n = 3000 if args.quick else args.n
    report = {"machine": machine(), "n": n, "d": args.d, "iteration": {}, "memory": {}, "classes": {}}
    for precision, dtype in DTYPES.items():
        floor = cholesky_seconds(n, dtype)
        row = {"cholesky_seconds": floor}
        for method in ("fact", "nfa"):
            timing = iteration_seconds(n, args.d, 2, precision, method)
            row[method] = {**timing, "iteration_over_cholesky": timing["iteration"] / floor}
        report["iteration"][precision] = row
        print(precision, json.dumps(row))
        report["memory"][precision] = in_child("peak_memory_child", n, args.d, precision, "fact")
        print(precision, "memory", json.dumps(report["memory"][precision]))
    scaling_n = n // 2
    for classes in (2, 10, 26):
        row = statistic_scaling(scaling_n, args.d, classes)
        row.update(in_child("statistic_memory_child", scaling_n, args.d, classes))
        row["n"] = scaling_n
        report["classes"][str(classes)] = row
        print("classes", classes, json.dumps(row))
    write_result("engine" if not args.quick else "engine_quick", report)


if __name__ == "__main__":
    main()
