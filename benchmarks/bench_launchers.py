"""One 8-job sweep, two launchers: `python benchmarks/bench_launchers.py` → results/launchers.json.

`fact parity -m seed=0,...,7` (FACT-RFM, d = 50, k = 4, n = 4000, 10 iterations: about 20 s a job
on one core here) runs once with Hydra's basic launcher (one job after another, each job with every
core) and once with `hydra/launcher=joblib hydra.launcher.n_jobs=2` (two jobs side by side, each
with cores / 2 threads). Both are timed from the command's start to its end, as a user would see
them, and the per-job results must be identical: the same test accuracy, the same accuracy path,
the same feature matrices M_t. The machine's load average is recorded beside the times, because on
a shared machine the comparison says as much about the neighbours as about the launchers.
"""

from __future__ import annotations

import argparse
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
LAUNCHERS = {
    "basic": [],
    "joblib_2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def run_sweep(name: str, extra: list[str], out: Path) -> dict:
    sweep_dir = out / name
    load_before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run(
        [*FACT, *SWEEP, *extra, f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT,
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
        "wall_seconds": round(wall, 1),
        "job_seconds": [s["wall_seconds"] for s in summaries],
        "threads_per_job": sorted({s["threads"] for s in summaries}),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "jobs": jobs,
        "summaries": summaries,
    }


def compare(first: dict, second: dict) -> dict:
    """Per job: test accuracy, accuracy path and every M_t, first launcher against the second."""
    same_accuracy, same_path, largest = True, True, 0.0
    for a_job, b_job, a, b in zip(
        first["jobs"], second["jobs"], first["summaries"], second["summaries"], strict=True
    ):
        same_accuracy &= a["seed"] == b["seed"] and a["test_accuracy"] == b["test_accuracy"]
        same_path &= (a_job / "metrics.csv").read_text() == (b_job / "metrics.csv").read_text()
        Ma, Mb = np.load(a_job / "feature_matrices.npy"), np.load(b_job / "feature_matrices.npy")
        largest = max(largest, float(np.abs(Ma - Mb).max() / max(np.abs(Mb).max(), 1e-300)))
    return {
        "identical_test_accuracy": bool(same_accuracy),
        "identical_metrics_csv": bool(same_path),
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
    runs = [run_sweep(name, extra, out) for name, extra in LAUNCHERS.items()]
    identity = compare(runs[0], runs[1])
    result = {
        "what": "fact " + " ".join(SWEEP) + ", basic launcher vs joblib with 2 workers",
        "machine": machine(),
        "cores": len(os.sched_getaffinity(0)),
        "runs": [{k: v for k, v in r.items() if k not in ("jobs", "summaries")} for r in runs],
        "speedup_joblib_2_over_basic": round(runs[0]["wall_seconds"] / runs[1]["wall_seconds"], 2),
        "per_job_results": identity,
        "note": "wall times of the whole command; the load averages say how busy the machine was",
    }
    write_result("launchers", result)
    print(json.dumps(result, indent=2))
    if not (identity["identical_test_accuracy"] and identity["identical_metrics_csv"]):
        print("per-job results differ between the launchers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
