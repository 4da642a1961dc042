"""The L1 kernel's passes against one Cholesky and the L2 kernel's, before and after, in one process.

`python benchmarks/bench_l1.py` → results/l1.json. For n in {1000, 2000, 4000} and d in {16, 64, 256},
on a continuous table (Gaussian) and a discrete one (binary, as semeion), in float32 (what
``precision=auto`` runs first) and float64, the median seconds of

- the L1 kernel's three passes per iteration: ``gram`` (K for the solve), ``fact_matrix``,
  ``agop_matrix``, with the functions of factcli/core/l1kernel.py now and as they were at
  ``--before`` (read with `git show` into a temporary module);
- one Cholesky factorization of the n×n matrix (torch.linalg.cholesky_ex);
- the L2 Laplace kernel's passes: its Gram matrix, and derivative weights plus FACT / AGOP.

The load average is recorded beside each row: on a shared machine read the ratios (same process,
interleaved), not the seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import machine, median_seconds, write_result

from factcli.core import l1kernel
from factcli.core.kernels import Kernel
from factcli.core.rfm import agop_matrix, fact_matrix

# The last commit whose L1 passes were element-wise only (cdist, materialized signs).
BEFORE = "97a7ebc"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def module_at(revision: str):
    """factcli/core/l1kernel.py as it was at ``revision``, imported as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{revision}:factcli/core/l1kernel.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.replace("from .linalg import", "from factcli.core.linalg import")
    path = Path(tempfile.mkdtemp()) / "l1kernel_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("l1kernel_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(kind: str, n: int, d: int, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(n + d)
    if kind == "binary":
        return torch.randint(0, 2, (n, d), generator=generator).to(dtype)
    return torch.randn(n, d, generator=generator, dtype=dtype)


def one_row(kind: str, n: int, d: int, precision: str, before, repeats: int) -> dict:
    dtype = DTYPES[precision]
    X = table(kind, n, d, dtype)
    alpha = torch.randn(n, 2, dtype=dtype, generator=torch.Generator().manual_seed(1)) / n
    M = torch.diag(torch.rand(d, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5)
    L = float(d)  # a bandwidth of the order of the distances, so K is neither diagonal nor flat
    K = l1kernel.gram(X, X, M, L)
    spd = K.clone()
    spd.diagonal().add_(1e-3)
    work = torch.empty_like(K)
    row = {"table": kind, "n": n, "d": d, "precision": precision, "load1_start": os.getloadavg()[0]}

    def time_of(function):
        return round(median_seconds(function, repeats), 5)

    for name, module in (("before", before), ("after", l1kernel)):
        row[f"l1_gram_{name}"] = time_of(lambda m=module: m.gram(X, X, M, L, out=work))
        row[f"l1_fact_{name}"] = time_of(lambda m=module: m.fact_matrix(X, alpha, M, work.copy_(K), L))
        row[f"l1_agop_{name}"] = time_of(lambda m=module: m.agop_matrix(X, alpha, M, K, L))
    row["cholesky"] = time_of(lambda: torch.linalg.cholesky_ex(work.copy_(spd)))
    laplace = Kernel("laplace", L)
    row["l2_gram"] = time_of(lambda: laplace.gram(X, X, None, out=work))
    row["l2_weights_fact"] = time_of(
        lambda: fact_matrix(laplace, X, alpha, None, laplace.derivative_weights(X, None, out=work))
    )
    row["l2_weights_agop"] = time_of(
        lambda: agop_matrix(laplace, X, alpha, None, laplace.derivative_weights(X, None, out=work))
    )
    for name in ("before", "after"):
        passes = sum(row[f"l1_{p}_{name}"] for p in ("gram", "fact"))
        row[f"l1_gram_plus_fact_over_cholesky_{name}"] = round(passes / row["cholesky"], 2)
        row[f"l1_gram_plus_fact_over_l2_{name}"] = round(
            passes / (row["l2_gram"] + row["l2_weights_fact"]), 2
        )
    row["speedup_gram"] = round(row["l1_gram_before"] / row["l1_gram_after"], 2)
    row["speedup_fact"] = round(row["l1_fact_before"] / row["l1_fact_after"], 2)
    row["speedup_agop"] = round(row["l1_agop_before"] / row["l1_agop_after"], 2)
    row["load1_end"] = os.getloadavg()[0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="the git revision of the 'before' functions")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--d", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument(
        "--tables", nargs="+", default=["continuous", "binary"], choices=["continuous", "binary"]
    )
    parser.add_argument("--precisions", nargs="+", default=["float32", "float64"], choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    before = module_at(args.before)
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    after = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "factcli"], capture_output=True, text=True).stdout
    after += " (with uncommitted changes)" if dirty.strip() else ""
    rows = []
    for precision in args.precisions:
        for kind in args.tables:
            for n in args.n:
                for d in args.d:
                    row = one_row(kind, n, d, precision, before, args.repeats)
                    rows.append(row)
                    print(
                        f"{precision} {kind} n={n} d={d}: gram {row['speedup_gram']}×, fact "
                        f"{row['speedup_fact']}×, agop {row['speedup_agop']}× faster; gram+fact "
                        f"{row['l1_gram_plus_fact_over_cholesky_after']}× a Cholesky (before "
                        f"{row['l1_gram_plus_fact_over_cholesky_before']}×), "
                        f"{row['l1_gram_plus_fact_over_l2_after']}× the L2 passes (before "
                        f"{row['l1_gram_plus_fact_over_l2_before']}×); load {row['load1_end']:.1f}",
                        flush=True,
                    )
                    write_result(
                        "l1",
                        {"machine": machine(), "before": args.before, "argv": sys.argv[1:], "rows": rows},
                    )


if __name__ == "__main__":
    main()
