"""One 8-job sweep, three ways: `python benchmarks/bench_launchers.py` → results/launchers.json.

`fact parity -m seed=range(8)` (FACT-RFM, d = 50, k = 4, n = 4000, 10 iterations: about 20 s a job
on a quiet core here) runs

- with Hydra's basic launcher as it comes: one job after another, each with every core;
- with the basic launcher and `threads=1`: one job after another, one core each;
- with `hydra/launcher=joblib hydra.launcher.n_jobs=2`: two jobs side by side, each with its share of
  the cores (1 thread on a 2-core machine).

Each is timed from the command's start to its end, as a user would see it. The joblib jobs must give
the single-threaded sequential jobs' results bit for bit (every iterate's accuracies and errors, i.e.
metrics.csv without its timing column, and every feature matrix M_t), and the default basic run's
final accuracies; its float32 iterates differ in the last digits, because two threads sum in another
order than one, and the largest difference is reported. The load average is recorded beside the
times: on a shared machine the comparison says as much about the neighbours as about the launchers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import machine, write_result

ROOT = Path(__file__).resolve().parent.parent
FACT = [sys.executable, "-m", "factcli.cli"]
SWEEP = ["parity", "-m", "seed=range(8)", "d=50", "k=4", "n=4000", "learner=fact", "plots=false"]
LAUNCHERS = {  # name: (overrides, environment)
    "basic": ([], {}),
    "basic_1_thread": (["threads=1"], {}),
    "joblib_2": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], {}),
}


def run_sweep(name: str, extra: list[str], env: dict, out: Path) -> dict:
    sweep_dir = out / name
    load_before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run(
        [*FACT, *SWEEP, *extra, f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=(out / f"{name}.log").open("w"),
    )
    wall = time.perf_counter() - started
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    return {
        "launcher": name,
        "overrides": extra,
        "environment": env,
        "wall_seconds": round(wall, 1),
        "job_seconds": [s["wall_seconds"] for s in summaries],
        "threads_per_job": sorted({s["threads"] for s in summaries}),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "jobs": jobs,
        "summaries": summaries,
    }


def metrics_without_timing(job: Path) -> list[list[str]]:
    with open(job / "metrics.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name != "seconds"]
    return [[row[i] for i in keep] for row in rows]


def compare(first: dict, second: dict) -> dict:
    """Per job: final test accuracy, every iterate's metrics and every M_t, one sweep against another."""
    same_accuracy, same_metrics, largest = True, True, 0.0
    pairs = zip(first["jobs"], second["jobs"], first["summaries"], second["summaries"], strict=True)
    for a_job, b_job, a, b in pairs:
        same_accuracy &= a["seed"] == b["seed"] and a["test_accuracy"] == b["test_accuracy"]
        same_metrics &= metrics_without_timing(a_job) == metrics_without_timing(b_job)
        Ma, Mb = np.load(a_job / "feature_matrices.npy"), np.load(b_job / "feature_matrices.npy")
        largest = max(largest, float(np.abs(Ma - Mb).max() / max(np.abs(Mb).max(), 1e-300)))
    return {
        "identical_final_test_accuracy": bool(same_accuracy),
        "identical_metrics_without_timing": bool(same_metrics),
        "largest_relative_difference_of_M": largest,
        "identical_M": largest == 0.0,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_launchers")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out / stamp
    out.mkdir()
    runs = {name: run_sweep(name, extra, env, out) for name, (extra, env) in LAUNCHERS.items()}
    same_threads = compare(runs["basic_1_thread"], runs["joblib_2"])
    default_threads = compare(runs["basic"], runs["joblib_2"])
    wall = {name: run["wall_seconds"] for name, run in runs.items()}
    result = {
        "what": "fact " + " ".join(SWEEP) + ": Hydra's basic launcher (every core a job; 1 thread a job) "
        "against joblib with 2 workers",
        "machine": machine(),
        "runs": [{k: v for k, v in r.items() if k not in ("jobs", "summaries")} for r in runs.values()],
        "wall_seconds": wall,
        "speedup_joblib_2_over_basic": round(wall["basic"] / wall["joblib_2"], 2),
        "speedup_joblib_2_over_basic_1_thread": round(wall["basic_1_thread"] / wall["joblib_2"], 2),
        "joblib_2_vs_basic_1_thread": same_threads,
        "joblib_2_vs_basic": default_threads,
        "note": "wall times of the whole command; the load averages say how busy the machine was",
    }
    write_result("launchers", result)
    print(json.dumps(result, indent=2))
    identical = same_threads["identical_metrics_without_timing"] and same_threads["identical_M"]
    if not (identical and default_threads["identical_final_test_accuracy"]):
        print("per-job results differ between the launchers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
