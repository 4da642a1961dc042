"""The commands a user types, timed as they run: `python benchmarks/bench_cli.py` → results/cli.json.

Each command is a subprocess started the way a shell starts it (the `fact` entry point of this
environment), one after the other on the same machine state:

- start-up: `fact --help` and `fact fit-rfm dataset=iris` (a one-ridge job: mostly imports and
  configuration), ``--repeats`` times each;
- the default command on the shipped tables, `fact fit-rfm dataset=…/adult_train.csv
  data.test=…/adult_test.csv data.target=income method=fact` and shuttle's (data.target=class),
  each beside xrfm on the same encoding and split (bench_tables.py's child, in the environment
  `make bench-env` makes).

Recorded per run: wall seconds, the peak resident memory of the whole process tree (sampled every
50 ms), the tool's own printed estimate ("estimated 6.9 min"), test accuracy, exit status, and the
load average before and after; the machine (CPU, cores, card) once. Finished runs are kept: a rerun
resumes with the rest (``--redo NAME`` runs one again). ``--only startup`` runs the start-up part
alone; xrfm on shuttle takes ~21 GB and ~25 min: run the tables on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_tables import TABLES, XRFM_PYTHON  # noqa: E402
from common import FACT, RESULTS, UNIT_SECONDS, machine, tree_rss  # noqa: E402

OUT = RESULTS / "cli.json"
ESTIMATE = re.compile(r"estimated ([0-9.]+) (s|min|h)\b")


def commands(data: Path, threads: int | None) -> dict[str, dict]:
    """Name → how to run it: argv, and for fit-rfm the run directory it writes."""
    fact_threads = [] if threads is None else [f"threads={threads}"]
    child_threads = str(threads or len(os.sched_getaffinity(0)))
    runs = {
        "help": {"part": "startup", "argv": [str(FACT), "--help"]},
        "iris": {
            "part": "startup",
            "argv": [str(FACT), "fit-rfm", "dataset=iris", *fact_threads],
            "run_dir": True,
        },
    }
    for table, target in TABLES.items():
        runs[f"{table}-fact"] = {
            "part": "tables",
            "argv": [
                str(FACT),
                "fit-rfm",
                f"dataset={data / 'tables' / f'{table}_train.csv'}",
                f"data.test={data / 'tables' / f'{table}_test.csv'}",
                f"data.target={target}",
                "method=fact",
                *fact_threads,
            ],
            "run_dir": True,
        }
        runs[f"{table}-xrfm"] = {
            "part": "tables",
            "argv": [
                sys.executable,
                str(HERE / "bench_tables.py"),
                "--child",
                table,
                "xrfm",
                str(data / "tables"),
                child_threads,
            ],
            "needs_xrfm": True,
        }
    return runs


def run_once(argv: list[str], env: dict) -> dict:
    """Wall seconds, peak RSS of the process tree, exit status and output of one command."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, text=True)
        root = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(root))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    return {
        "wall_seconds": round(seconds, 3),
        "peak_tree_rss_gb": round(peak / 2**30, 3),
        "returncode": process.returncode,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "output": text,
    }


def described(name: str, spec: dict, result: dict, run_dir: Path | None) -> dict:
    """The recorded row: timings, the tool's estimate, accuracy; the output's tail only on failure."""
    text = result.pop("output")
    row = {"name": name, "part": spec["part"], "command": " ".join(spec["argv"]), **result}
    estimates = [float(value) * UNIT_SECONDS[unit] for value, unit in ESTIMATE.findall(text)]
    if estimates:
        row["estimates_seconds"] = estimates
        row["estimate_over_actual"] = round(sum(estimates) / result["wall_seconds"], 3)
    if run_dir is not None and (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
        row["test_accuracy"] = summary.get("test_accuracy")
        row["in_process_seconds"] = summary.get("wall_seconds")
    elif spec.get("needs_xrfm") and result["returncode"] == 0:
        child = json.loads(text.strip().splitlines()[-1])
        row["test_accuracy"] = child.get("test_accuracy", 0) / 100
        row["in_process_seconds"] = child.get("seconds")
    if result["returncode"] != 0:
        row["error"] = text.strip().splitlines()[-3:] if text.strip() else ["(no output)"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_root = Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=data_root)
    parser.add_argument("--only", choices=["startup", "tables"], help="one part (default: both)")
    parser.add_argument("--names", nargs="+", help="only these commands (help, iris, adult-fact, ...)")
    parser.add_argument("--redo", nargs="+", default=[], help="run these again even if recorded")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each start-up command")
    parser.add_argument(
        "--threads", type=int, help="threads=N on fact commands, N for xrfm (default: as typed)"
    )
    args = parser.parse_args()
    env = {**os.environ, "FACT_DATA": str(args.data)}
    payload = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
    for name, spec in commands(args.data, args.threads).items():
        if (args.only and spec["part"] != args.only) or (args.names and name not in args.names):
            continue
        previous = payload["runs"].get(name)
        if previous and previous.get("returncode") == 0 and name not in args.redo:
            continue
        if spec.get("needs_xrfm") and not XRFM_PYTHON.exists():
            print(f"{name}: skipped, {XRFM_PYTHON} not found (run `make bench-env`)", flush=True)
            continue
        rows = []
        for _ in range(args.repeats if spec["part"] == "startup" else 1):
            run_dir = Path(tempfile.mkdtemp(prefix="fact-bench-cli-")) if spec.get("run_dir") else None
            argv = spec["argv"] + ([f"hydra.run.dir={run_dir}"] if run_dir else [])
            rows.append(described(name, {**spec, "argv": argv}, run_once(argv, env), run_dir))
            if run_dir is not None:
                shutil.rmtree(run_dir, ignore_errors=True)
        row = dict(rows[-1], repeats=len(rows))
        row["wall_seconds"] = statistics.median(r["wall_seconds"] for r in rows)
        row["wall_seconds_each"] = [r["wall_seconds"] for r in rows]
        row["returncode"] = max((r["returncode"] for r in rows), key=abs)
        payload["runs"][name] = row
        payload["machine"] = {**machine(), "card": card()}
        OUT.parent.mkdir(exist_ok=True)
        tmp = OUT.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(OUT)
        accuracy = (
            f", test accuracy {row['test_accuracy']:.4f}" if row.get("test_accuracy") is not None else ""
        )
        print(
            f"{name}: {row['wall_seconds']:.1f} s wall (median of {len(rows)}), peak tree RSS "
            f"{row['peak_tree_rss_gb']:.2f} GB{accuracy}, exit {row['returncode']}, "
            f"load {row['load_after'][0]}",
            flush=True,
        )


def card() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"


if __name__ == "__main__":
    main()
