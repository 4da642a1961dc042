"""Issue 15, item 5: the strict benchmark with the new grid against today's, side by side, one process.

`python benchmarks/bench_grid.py` — on every shipped UCI dataset with 150 ≤ n ≤ 2,000 rows (53), times

- *today*: laplace, nfa, fact, fact-geo with today's selection (L = 10; ridge × normalization × t;
  every method solving its own t = 0), selection plus the strict protocol's 4 folds;
- *new, same methods*: L2-KRR, nfa, fact, fact-geo on the L2 Laplace kernel with issue 15's grid
  (5 bandwidths × 5 ridges × 2 normalizations at t = 0, shared; paths from the best setting);
- *new, L1 rows*: L1-KRR, and fact / nfa / fact-geo with the L1 kernel and a diagonal M;
- *SVC-RBF* (scikit-learn), timed on its own;
- stage 0 (L2 kernel) with one Cholesky per ridge against one eigendecomposition for all ridges.

`python benchmarks/bench_grid.py --final` times *today* against the final default only (what
`fact fit-rfm benchmark=uci` runs now: the kernel selected, `kernel.name=auto`, for KRR and every
method; M ← FFᵀ for fact) → `results/grid_final.json`.

The order of *today* and *new* alternates from dataset to dataset, so drifting machine load falls on
both. Writes `results/grid.json` after every dataset (a rerun resumes), with the load average beside
each dataset's timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "grid.json"
OUT_FINAL = HERE / "results" / "grid_final.json"

TODAY = ["laplace", "nfa", "fact", "fact-geo"]
NEW_SAME = [
    ("L2-KRR", {"kind": "krr"}),
    ("nfa", {"method": "nfa"}),
    ("fact", {"fact_power": 2.0}),  # the default chosen in benchmarks/README.md (issue 15)
    ("fact-geo", {"method": "fact-geo"}),
]
# The final default (benchmarks/README.md, round 2): the kernel is selected on validation for each row.
FINAL = [
    ("KRR-auto", {"kind": "krr", "kernel": "auto"}),
    ("nfa", {"method": "nfa", "kernel": "auto"}),
    ("fact", {"kernel": "auto", "fact_power": 2.0}),
    ("fact-geo", {"method": "fact-geo", "kernel": "auto"}),
]
NEW_L1 = [
    ("L1-KRR", {"kind": "krr", "kernel": "l1"}),
    ("nfa-l1-diag", {"method": "nfa", "kernel": "l1", "form": "diagonal"}),
    ("fact-l1-diag", {"kernel": "l1", "form": "diagonal"}),
    ("fact-geo-l1-diag", {"method": "fact-geo", "kernel": "l1", "form": "diagonal"}),
]


def datasets(root: Path) -> list[str]:
    from factcli.data.uci import list_uci, uci_rows

    return [
        name
        for n, name in sorted((uci_rows(root, name), name) for name in list_uci(root))
        if 150 <= n <= 2000
    ]


def timed_rows(suite, entries, Entry) -> tuple[float, dict]:
    started = time.perf_counter()
    accuracy = {}
    for label, fields in entries:
        row = suite.run(Entry(label, **fields), ["strict"])[0]
        accuracy[label] = row["test_accuracy"]
    return time.perf_counter() - started, accuracy


def one_dataset(root: Path, name: str, index: int, final: bool = False) -> dict:
    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions
    from factcli.core.solvers import CholeskySolver, EigenSolver
    from factcli.data.uci import load_uci
    from factcli.experiments.rfm.grid import GridSpec, kernel_stage
    from factcli.experiments.rfm.suite import Entry, Suite

    data = load_uci(root, name)
    options = RFMOptions(kernel=Kernel("laplace", 10.0), precision="auto")
    record = {"dataset": name, "n": data.n, "d": data.d, "load1_start": os.getloadavg()[0]}

    def today():
        import legacy_selection

        suite = Suite(data, GridSpec(), options)  # the old selection uses only the old grid's ridges
        started, accuracy = time.perf_counter(), {}
        for method in TODAY:
            accuracy[method] = legacy_selection.rows(suite, method, method, ["strict"])[0]["test_accuracy"]
        return time.perf_counter() - started, accuracy

    def new():
        suite = Suite(data, GridSpec(), options)
        return timed_rows(suite, FINAL if final else NEW_SAME, Entry), suite

    if index % 2 == 0:
        record["today_seconds"], record["today_accuracy"] = today()
        (record["new_seconds"], record["new_accuracy"]), suite = new()
    else:
        (record["new_seconds"], record["new_accuracy"]), suite = new()
        record["today_seconds"], record["today_accuracy"] = today()
    if final:
        record["load1_end"] = os.getloadavg()[0]
        return record
    l1_suite = Suite(data, GridSpec(), options)
    record["new_l1_seconds"], record["new_l1_accuracy"] = timed_rows(l1_suite, NEW_L1, Entry)
    record["svc_seconds"], record["svc_accuracy"] = timed_rows(
        l1_suite, [("SVC-RBF", {"kind": "svc"})], Entry
    )
    for name, solver in (("cholesky", CholeskySolver()), ("eigen", EigenSolver())):
        started = time.perf_counter()
        kernel_stage(suite.task, "laplace", GridSpec(), replace(options, solver=solver), suite.tuning)
        record[f"stage0_{name}_seconds"] = time.perf_counter() - started
    record["load1_end"] = os.getloadavg()[0]
    return record


def totals(records: list[dict]) -> dict:
    if "new_l1_seconds" not in records[0]:  # --final: today against the final default only
        today, new = (sum(r[key] for r in records) for key in ("today_seconds", "new_seconds"))
        return {
            "today_seconds": round(today, 1),
            "final_default_seconds": round(new, 1),
            "final_over_today": round(new / today, 3),
            "datasets": len(records),
        }
    keys = [
        "today_seconds",
        "new_seconds",
        "new_l1_seconds",
        "svc_seconds",
        "stage0_cholesky_seconds",
        "stage0_eigen_seconds",
    ]
    sums = {key: sum(r[key] for r in records) for key in keys}
    total = {key: round(value, 1) for key, value in sums.items()}
    total["new_over_today_same_methods"] = round(sums["new_seconds"] / sums["today_seconds"], 3)
    total["new_all_kernel_rows_over_today"] = round(
        (sums["new_seconds"] + sums["new_l1_seconds"]) / sums["today_seconds"], 3
    )
    total["eigen_over_cholesky_stage0"] = round(
        sums["stage0_eigen_seconds"] / sums["stage0_cholesky_seconds"], 3
    )
    return total


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--final", action="store_true", help="today against the final default only")
    parser.add_argument("--datasets", nargs="+", help="only these (a short check; with --out)")
    parser.add_argument("--out", type=Path, help="the results file (default: results/grid[_final].json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.data / "uci"
    out = args.out or (OUT_FINAL if args.final else OUT)
    result = json.loads(out.read_text()) if out.exists() else {"datasets": []}
    done = {r["dataset"] for r in result["datasets"]}
    for index, name in enumerate(datasets(root)):
        if name in done or (args.datasets and name not in args.datasets):
            continue
        record = one_dataset(root, name, index, args.final)
        result["datasets"].append(record)
        result["totals"] = totals(result["datasets"])
        result["machine"] = {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "note": "see each dataset's load1 (2 cores)",
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(out)
        r = record
        if args.final:
            print(
                f"{name} (n={r['n']}): today {r['today_seconds']:.1f} s, "
                f"final default {r['new_seconds']:.1f} s, load {r['load1_end']:.1f}",
                flush=True,
            )
            continue
        print(
            f"{name} (n={r['n']}): today {r['today_seconds']:.1f} s, new {r['new_seconds']:.1f} s, "
            f"L1 rows {r['new_l1_seconds']:.1f} s, svc {r['svc_seconds']:.1f} s, stage 0 Cholesky/eigh "
            f"{r['stage0_cholesky_seconds']:.2f}/{r['stage0_eigen_seconds']:.2f} s, "
            f"load {r['load1_end']:.0f}",
            flush=True,
        )
    print(json.dumps(result.get("totals", {}), indent=1))


if __name__ == "__main__":
    main()
