"""Where one RFM iteration's time goes, phase by phase (best of 3).

`python profile_iteration.py 10000 float32`
"""

import sys
import time

import numpy as np
import torch
from common import synthetic_classification
from scipy.linalg import lapack

from factcli.core.kernels import Kernel
from factcli.core.linalg import mirror_upper_triangle, solve_kernel_system
from factcli.core.rfm import agop_matrix, fact_matrix


def best(function, repeats=3):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main(n: int, dtype_name: str, classes: int = 2, d: int = 20) -> None:
    dtype = getattr(torch, dtype_name)
    X, y = synthetic_classification(n, d, classes)
    X = torch.tensor(X - X.mean(0), dtype=dtype)
    Y = torch.tensor(np.eye(classes)[y], dtype=dtype)
    kernel, M = Kernel(), torch.eye(d, dtype=dtype)
    buffer = torch.empty(n, n, dtype=dtype)
    potrf = lapack.spotrf if dtype == torch.float32 else lapack.dpotrf
    kernel.gram(X, X, M, out=buffer)
    alpha, _ = solve_kernel_system(buffer.clone(), Y, 1e-3)

    def factor_only():
        kernel.gram(X, X, M, out=buffer)
        buffer.diagonal().add_(1e-3)
        potrf(buffer.numpy().T, lower=1, overwrite_a=1, clean=0)

    phases = {
        "gram": lambda: kernel.gram(X, X, M, out=buffer),
        "mirror": lambda: mirror_upper_triangle(buffer),
        "gram+solve": lambda: solve_kernel_system(kernel.gram(X, X, M, out=buffer), Y, 1e-3),
        "gram+potrf": factor_only,
        "weights": lambda: kernel.derivative_weights(X, M, out=buffer),
        "weights+fact": lambda: fact_matrix(kernel, X, alpha, M, kernel.derivative_weights(X, M, out=buffer)),
        "weights+agop": lambda: agop_matrix(kernel, X, alpha, M, kernel.derivative_weights(X, M, out=buffer)),
        "predict n/2": lambda: kernel.gram(X[: n // 2], X, M) @ alpha,
    }
    for name, function in phases.items():
        print(f"{name:14s} {best(function):7.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], *(int(a) for a in sys.argv[3:]))
