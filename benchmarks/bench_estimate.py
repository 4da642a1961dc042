"""fit-rfm's announced estimate against the time and memory it takes → results/estimate.json.

For each table shape (n rows, d columns, classes) and solver, a seeded table is written (Gaussian
columns; the label is a quantile bin of sin(2·x0) + x1·x2, so the features decide it) and
`fact fit-rfm dataset=<csv> data.target=label rfm.solver=<solver> ...` runs as a subprocess, as a user
types it. Recorded per cell: the estimate and the memory the tool announces in its log ("estimated
2.5 min, about 1.8 GiB of memory") or the line it refuses with; the actual time from that announcement
to the end of the process, the process's own wall time, its peak resident memory (polled every 50 ms,
as bench_cli.py does), exit status, test accuracy; the load before and after; the machine and threads
once. A cell whose announced estimate is above ``--cap`` seconds is stopped there and recorded as
such (its estimate stands; its actual time is not measured). Finished cells are kept: a rerun resumes
(``--redo KEY`` runs one again).

The grid is n ∈ {2,000, 10,000, 50,000} × d ∈ {10, 200, 2,000, 10,000} × classes ∈ {2, 26} ×
{exact, Nyström}; tables with more than ``--max-values`` entries are not generated (their CSV alone
is gigabytes), and fits above ``--memory-gb`` are refused by the tool itself (memory_limit_gb).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import FACT, RESULTS, UNIT_SECONDS, machine, tree_rss  # noqa: E402

OUT = RESULTS / "estimate.json"
ANNOUNCED = re.compile(r"estimated ([0-9.]+) (s|min|h), about ([0-9.]+) (B|KiB|MiB|GiB|TiB) of memory")
UNIT_BYTES = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
ROWS = (2_000, 10_000, 50_000)
COLUMNS = (10, 200, 2_000, 10_000)
CLASSES = (2, 26)
SOLVERS = ("exact", "nystrom")
# A smaller grid than the default (2 bandwidths × 2 ridges × 2 normalizations, T = 3; both kernels of
# kernel.name=auto) so that more shapes finish in a session; the estimate counts whatever grid is set.
GRID = ["grid.bandwidths=[1.0,4.0]", "grid.ridges=[0.1,0.001]", "rfm.iters=3", "plots=false"]


def key(n: int, d: int, classes: int, solver: str) -> str:
    return f"n{n}_d{d}_c{classes}_{solver}"


def write_table(path: Path, n: int, d: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    score = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    edges = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    labels = np.searchsorted(edges, score)
    with path.open("w") as out:
        out.write(",".join([*(f"x{j}" for j in range(d)), "label"]) + "\n")
        for start in range(0, n, 1000):  # a block of rows at a time: the text of 10,000 columns is large
            block = X[start : start + 1000]
            lines = [
                ",".join(f"{v:.4g}" for v in row) + f",c{label}"
                for row, label in zip(block, labels[start : start + 1000], strict=True)
            ]
            out.write("\n".join(lines) + "\n")


def run_cell(argv: list[str], cap: float) -> dict:
    """Runs one fit-rfm, reading its log as it goes: the announcement's time, peak RSS, exit status."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    announced_at, announced, stopped = None, None, False
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(root))
            if announced is None:
                match = ANNOUNCED.search(Path(out.name).read_text())
                if match:
                    announced_at, announced = time.perf_counter(), match
                    if float(match[1]) * UNIT_SECONDS[match[2]] > cap:
                        process.terminate()
                        stopped = True
            time.sleep(0.05)
        ended = time.perf_counter()
        text = Path(out.name).read_text()
    if announced is None:
        announced = ANNOUNCED.search(text)
        announced_at = announced_at or ended
    row = {
        "returncode": process.returncode,
        "process_seconds": round(ended - started, 2),
        "peak_rss_gb": round(peak / 2**30, 3),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    if announced:
        row["estimate_seconds"] = float(announced[1]) * UNIT_SECONDS[announced[2]]
        row["announced_memory_gb"] = round(float(announced[3]) * UNIT_BYTES[announced[4]] / 2**30, 3)
    if stopped:
        row["stopped"] = f"announced estimate above --cap {cap:.0f} s"
    elif announced and process.returncode == 0:
        row["actual_seconds"] = round(ended - announced_at, 2)
        row["estimate_over_actual"] = round(row["estimate_seconds"] / row["actual_seconds"], 3)
        row["memory_within_announced"] = row["peak_rss_gb"] <= row["announced_memory_gb"]
    if process.returncode != 0 and not stopped:
        row["error"] = text.strip().splitlines()[-1:] if text.strip() else ["(no output)"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads=N on every run (default 1)")
    parser.add_argument("--cap", type=float, default=1200.0, help="stop a cell announced above this (s)")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="memory_limit_gb of every run")
    parser.add_argument("--max-values", type=float, default=2.5e7, help="largest n·d table generated")
    parser.add_argument("--only", nargs="+", help="only these cells (keys as in the results)")
    parser.add_argument("--redo", nargs="+", default=[], help="run these cells again")
    parser.add_argument("--first", nargs="+", default=[], help="run these cells before the others")
    parser.add_argument("--table", action="store_true", help="print the results as a Markdown table")
    args = parser.parse_args()
    payload = json.loads(OUT.read_text()) if OUT.exists() else {"cells": {}}
    if args.table:
        print(markdown(payload))
        return
    payload["settings"] = {
        "grid": GRID,
        "threads": args.threads,
        "cap_seconds": args.cap,
        "memory_limit_gb": args.memory_gb,
        "max_values": args.max_values,
    }
    cells = sorted(
        ((n, d, c, s) for n in ROWS for d in COLUMNS for c in CLASSES for s in SOLVERS),
        # --first, then the smaller tables first (n·d), so that an interrupted run has the cheap cells.
        key=lambda cell: (key(*cell) not in args.first, cell[0] * cell[1], cell[0], cell[2], cell[3]),
    )
    with tempfile.TemporaryDirectory(prefix="fact-bench-estimate-") as scratch:
        for n, d, classes, solver in cells:
            name = key(n, d, classes, solver)
            if args.only and name not in args.only:
                continue
            if name in payload["cells"] and name not in args.redo:
                continue
            if n * d > args.max_values:
                payload["cells"][name] = {
                    "skipped": f"n·d = {n * d:.1e} values > --max-values {args.max_values:.1e}"
                }
                save(payload)
                continue
            table = Path(scratch) / f"n{n}_d{d}_c{classes}.csv"
            if not table.exists():
                for old in Path(scratch).glob("*.csv"):  # one table on disk at a time
                    old.unlink()
                write_table(table, n, d, classes)
            argv = [
                str(FACT),
                "fit-rfm",
                f"dataset={table}",
                "data.target=label",
                f"rfm.solver={solver}",
                f"memory_limit_gb={args.memory_gb}",
                f"threads={args.threads}",
                *GRID,
                f"hydra.run.dir={Path(scratch) / ('run-' + name)}",
            ]
            row = {"n": n, "d": d, "classes": classes, "solver": solver, "commit": commit()}
            row.update(run_cell(argv, args.cap))
            shutil.rmtree(Path(scratch) / ("run-" + name), ignore_errors=True)
            payload["cells"][name] = row
            payload["machine"] = machine()
            save(payload)
            print(
                name, json.dumps({k: v for k, v in row.items() if k not in ("n", "d", "classes", "solver")})
            )
            sys.stdout.flush()


def markdown(payload: dict) -> str:
    """estimate / actual time and announced / peak memory per cell, in the order of the grid."""
    lines = [
        "| n | d | classes | solver | estimate | actual | est./actual | announced | peak RSS | load | code |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def order(item):
        n, d, c, solver = item[0].split("_")
        return int(n[1:]), int(d[1:]), int(c[1:]), solver

    for name, row in sorted(payload["cells"].items(), key=order):
        n, d, c, solver = order((name, row))
        shape = f"| {n} | {d} | {c} | {solver} |"
        if "skipped" in row:
            lines.append(f"{shape} not run: {row['skipped']} |||||||")
            continue
        tail = f"{row['load_before'][0]:.1f} | {row.get('commit', '?')} |"
        if "actual_seconds" in row:
            above = "" if row["memory_within_announced"] else " (above)"
            lines.append(
                f"{shape} {row['estimate_seconds']:.0f} s | {row['actual_seconds']:.1f} s | "
                f"{row['estimate_over_actual']:.2f} | {row['announced_memory_gb']:.2f} GiB | "
                f"{row['peak_rss_gb']:.2f} GiB{above} | {tail}"
            )
        elif "stopped" in row:
            lines.append(f"{shape} {row['estimate_seconds']:.0f} s | stopped: {row['stopped']} |||| {tail}")
        else:
            error = " ".join(row.get("error", ["?"]))
            need = re.search(r"needs (.+?) but only (.+?) is available", error)
            what = f"needs {need[1]}, {need[2]} allowed" if need else error
            lines.append(f"{shape} refused up front ({what}) |||| {tail}")
    return "\n".join(lines)


def commit() -> str:
    """The code that ran: this checkout's commit, marked when it has uncommitted changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "../factcli"], capture_output=True, text=True, cwd=HERE
    )
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def save(payload: dict) -> None:
    OUT.parent.mkdir(exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(OUT)


if __name__ == "__main__":
    main()
