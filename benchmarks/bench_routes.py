"""Two routes past one n×n solve, measured before choosing: `python benchmarks/bench_routes.py` →
results/scalable_routes.json.

One Laplace kernel ridge solve (L = 10, ridge 1e-3, M = I) on the tuning split of nursery, magic and
letter, scored on the validation split: the exact solve; Nyström centres with the preconditioned CG
solve (factcli.core.nystrom) at m = 1,000 / 2,000 / 4,000; and an xRFM-style partition, a binary tree
splitting at the median of the top principal direction until leaves hold at most L rows, with one
exact solve per leaf and each query routed to its leaf (a prototype written here, not product code).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result  # noqa: E402

from factcli.core import nystrom  # noqa: E402
from factcli.core.kernels import Kernel  # noqa: E402
from factcli.core.linalg import solve_kernel_system  # noqa: E402
from factcli.data import load_tabular  # noqa: E402

KERNEL = Kernel("laplace", 10.0)
RIDGE = 1e-3


def exact_fit(X, Y):
    alpha, _ = solve_kernel_system(KERNEL.gram(X, X, None), Y, RIDGE)
    return lambda Q: KERNEL.gram(Q, X, None) @ alpha


def nystrom_fit(X, Y, m):
    C = X[nystrom.sample_centers(X, m, seed=0)]
    alpha, _, _ = nystrom.nystrom_solve(KERNEL, X, Y, C, None, RIDGE, cache_bytes=2 * 2**30)
    return lambda Q: KERNEL.gram(Q, C, None) @ alpha.to(Q)


def partition_fit(X, Y, leaf_rows):
    """Leaves of at most ``leaf_rows`` rows by median splits on the top principal direction."""
    tree = []  # ("split", direction, threshold, left, right) or ("leaf", predictor)

    def grow(rows):
        if len(rows) <= leaf_rows:
            tree.append(("leaf", exact_fit(X[rows], Y[rows])))
            return len(tree) - 1
        part = X[rows]
        direction = torch.linalg.svd(part - part.mean(0), full_matrices=False).Vh[0]
        projection = part @ direction
        threshold = projection.median()
        node = len(tree)
        tree.append(None)
        left, right = grow(rows[projection <= threshold]), grow(rows[projection > threshold])
        tree[node] = ("split", direction, threshold, left, right)
        return node

    grow(torch.arange(X.shape[0]))

    def predict(Q):
        out = torch.empty(Q.shape[0], Y.shape[1], dtype=Q.dtype)

        def route(node, rows):
            entry = tree[node]
            if entry[0] == "leaf":
                if len(rows):
                    out[rows] = entry[1](Q[rows]).to(Q)
                return
            _, direction, threshold, left, right = entry
            below = Q[rows] @ direction <= threshold
            route(left, rows[below])
            route(right, rows[~below])

        route(0, torch.arange(Q.shape[0]))
        return out

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["nursery", "magic", "letter"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets:
        data = load_tabular(f"uci:{name}", data_root=os.environ.get("FACT_DATA"))
        train, val = data.splits.train, data.splits.val
        X, X_val = torch.tensor(data.X[train]).float(), torch.tensor(data.X[val]).float()
        y_val = torch.tensor(data.y[val])
        Y = torch.nn.functional.one_hot(torch.tensor(data.y[train]), data.n_outputs).float()
        routes = [("exact", X.shape[0], exact_fit, ())]
        for size in [s for s in args.sizes if s < X.shape[0]]:
            routes += [("nystrom", size, nystrom_fit, (size,)), ("partition", size, partition_fit, (size,))]
        for route, size, fit, extra in routes:
            started = time.perf_counter()
            predictor = fit(X, Y, *extra)
            accuracy = float((predictor(X_val).argmax(1) == y_val).double().mean())
            row = {
                "dataset": name,
                "n": X.shape[0],
                "route": route,
                "size": size,
                "val_accuracy": 100 * accuracy,
                "seconds": time.perf_counter() - started,
                "load_average_1min": os.getloadavg()[0],
            }
            print(row, flush=True)
            rows.append(row)
    write_result("scalable_routes", {"machine": machine(), "rows": rows, "note": __doc__})


if __name__ == "__main__":
    main()
