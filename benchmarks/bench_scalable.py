"""The Nyström path beside the exact path, in one script → results/scalable_uci.json, results/scalable_n.json.

1. ``uci``: the four largest shipped UCI datasets (chess-krvk, letter, magic, nursery), strict protocol
   (grid on the tuning split, M relearned on each of the 4 folds), ``fact`` and ``nfa``, with the exact
   solver and with the Nyström solver at its default number of centres. Test accuracy, seconds and
   peak memory of every (dataset, method, solver). Issue 14's target: Nyström within 0.5 points of
   exact, at least 5× faster.
2. ``scaling``: a FACT-RFM path with one update (two solves, one FACT statistic) on a synthetic task
   against n up to 10⁶: seconds and peak memory of the Nyström path at its default centres (and of the
   exact one up to 20,000 rows), plotted.

Every job runs in a child process (peak memory is the child's own) and its row is written as soon as
it ends, so a rerun resumes where the last one stopped. Each row records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS, machine  # noqa: E402

UCI_DATASETS = ["nursery", "letter", "magic", "chess-krvk"]
METHODS = ["fact", "nfa"]
SOLVERS = ["exact", "nystrom"]
SCALING_SIZES = [10_000, 20_000, 100_000, 300_000, 1_000_000]
SCALING_ITERS = 1  # one FACT update: two solves and one statistic per size (10⁶ rows stay within minutes)


def uci_job(dataset: str, method: str, solver: str, centers: int | None) -> dict:
    """Run fit-rfm's strict protocol in-process, as `fact fit-rfm dataset=uci:<name>` does."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    from factcli.data import load_tabular
    from factcli.experiments.common.scalable import choose_solver, with_choice
    from factcli.experiments.rfm import folds as rfm_folds
    from factcli.experiments.rfm.protocol import Task
    from factcli.schema.fit_rfm import Config

    cfg = OmegaConf.structured(Config(dataset=f"uci:{dataset}", method=method, protocol="strict"))
    cfg.rfm.solver = solver
    cfg.rfm.centers = centers
    data = load_tabular(cfg.dataset, data_root=os.environ.get("FACT_DATA"))
    tuning, folds = rfm_folds.splits_of(data, cfg)
    X = torch.tensor(rfm_folds.standardized(data, cfg, np.concatenate(tuning)))
    y = torch.tensor(data.y)
    task = Task(data.task, data.n_outputs)
    options = rfm_folds.fit_options(cfg, cfg.method)
    largest = max(len(rows) for rows, _ in [tuning, *folds])
    choice = choose_solver(cfg.rfm, largest, options.precision, torch.device("cpu"), None)
    options = with_choice(options, choice, cfg.rfm, cfg.seed)
    started = time.perf_counter()
    selection = rfm_folds.select_on_tuning_split(task, options, cfg, X, y, tuning)
    results = rfm_folds.evaluate_folds(task, options, selection, "strict", X, y, folds)
    seconds = time.perf_counter() - started
    return {
        "dataset": dataset,
        "method": method,
        "solver": solver,
        "centers": choice.centers,
        "n": data.n,
        "test_accuracy": 100 * float(np.mean([r.score for r in results])),
        "val_accuracy": 100 * selection.chosen.val_score,
        "chosen": selection.chosen.row("accuracy"),
        "seconds": seconds,
    }


def scaling_job(n: int, solver: str, centers: int | None, d: int = 20) -> dict:
    """A FACT-RFM path on n points of a 10-class synthetic task; validation accuracy on 10,000."""
    import torch
    from common import synthetic_classification

    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions, rfm_path
    from factcli.core.solvers import CholeskySolver, NystromSolver

    X, y = synthetic_classification(n + 10_000, d, 10, seed=0)
    X_train, X_val = torch.tensor(X[:n], dtype=torch.float32), torch.tensor(X[n:], dtype=torch.float32)
    Y = torch.nn.functional.one_hot(torch.tensor(y[:n]), 10).float()
    scalable = NystromSolver(centers=centers) if solver == "nystrom" else None
    options = RFMOptions(
        kernel=Kernel("laplace", 10.0),
        method="fact",
        ridge=1e-3,
        iters=SCALING_ITERS,
        solver=scalable or CholeskySolver(),
    )
    started = time.perf_counter()
    accuracies, cg_steps = [], []
    for iterate in rfm_path(X_train, Y, options):
        accuracies.append(float((iterate.predictor(X_val).argmax(1).numpy() == y[n:]).mean()))
        cg_steps.append(iterate.solve.cg_steps)
    return {
        "n": n,
        "d": d,
        "solver": solver,
        "centers": None if scalable is None else scalable.centers_for(n),
        "seconds": time.perf_counter() - started,
        "val_accuracy_per_iterate": accuracies,
        "cg_steps": cg_steps,
    }


def run_child(args: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    kind, *rest = argv
    if kind == "uci":
        dataset, method, solver, centers = rest
        row = uci_job(dataset, method, solver, None if centers == "default" else int(centers))
    else:
        n, solver, centers = rest
        row = scaling_job(int(n), solver, None if centers == "default" else int(centers))
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    row["load_average_1min"] = os.getloadavg()[0]
    row["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(row))


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"rows": []}


def save(path: Path, payload: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


def run_uci(args) -> None:
    path = RESULTS / f"scalable_uci{args.tag}.json"
    payload = load(path)
    done = {(r["dataset"], r["method"], r["solver"]) for r in payload["rows"] if "error" not in r}
    payload["rows"] = [r for r in payload["rows"] if "error" not in r]
    # each (dataset, method) pair side by side before the next, so a stopped run leaves comparisons
    jobs = [(d, m, s) for d in args.datasets for m in args.methods for s in args.solvers]
    for dataset, method, solver in jobs:
        if (dataset, method, solver) in done:
            continue
        centers = "default" if args.centers is None else str(args.centers)
        row = run_child(["uci", dataset, method, solver, centers], args.threads)
        row.update(dataset=dataset, method=method, solver=solver)
        print(json.dumps(row), flush=True)
        payload["rows"].append(row)
        payload["machine"] = machine()
        payload["comparison"] = compare(payload["rows"])
        save(path, payload)


def compare(rows: list[dict]) -> list[dict]:
    """Nyström against exact per (dataset, method): accuracy difference (points) and speed-up."""
    by_key = {(r["dataset"], r["method"], r["solver"]): r for r in rows if "error" not in r}
    table = []
    for (dataset, method, solver), fast in by_key.items():
        exact = by_key.get((dataset, method, "exact"))
        if solver != "nystrom" or exact is None:
            continue
        difference = fast["test_accuracy"] - exact["test_accuracy"]
        speedup = exact["seconds"] / fast["seconds"]
        table.append(
            {
                "dataset": dataset,
                "method": method,
                "exact_accuracy": exact["test_accuracy"],
                "nystrom_accuracy": fast["test_accuracy"],
                "difference_points": difference,
                "speedup": speedup,
                "within_half_point": difference >= -0.5,
                "at_least_5x": speedup >= 5,
            }
        )
    return table


def run_scaling(args) -> None:
    path = RESULTS / "scalable_n.json"
    payload = load(path)
    done = {(r["n"], r["solver"]) for r in payload["rows"] if "error" not in r}
    payload["rows"] = [r for r in payload["rows"] if "error" not in r]
    for n in args.sizes:
        for solver in args.solvers:
            if (n, solver) in done or (solver == "exact" and n > args.exact_max_n):
                continue
            centers = "default" if args.centers is None else str(args.centers)
            row = run_child(["scaling", str(n), solver, centers], args.threads)
            row.update(n=n, solver=solver)
            print(json.dumps(row), flush=True)
            payload["rows"].append(row)
            payload["machine"] = machine()
            save(path, payload)
    plot_scaling(payload["rows"])


def plot_scaling(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for solver in SOLVERS:
        points = sorted((r["n"], r["seconds"], r["peak_rss_gb"]) for r in rows if r.get("solver") == solver)
        points = [p for p in points if p[1] is not None]
        if not points:
            continue
        ns, seconds, memory = zip(*points, strict=True)
        axes[0].loglog(ns, seconds, "o-", label=solver)
        axes[1].loglog(ns, memory, "o-", label=solver)
    axes[0].set(xlabel="n (training rows)", ylabel="seconds (2 solves, 1 FACT statistic)")
    axes[1].set(xlabel="n (training rows)", ylabel="peak memory (GB)")
    for axis in axes:
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
    fig.suptitle("FACT-RFM, one update, d = 20, 10 classes: exact vs Nyström (default centres)")
    fig.tight_layout()
    fig.savefig(RESULTS / "scalable_n.png", dpi=120)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["uci", "scaling", "all"], nargs="?", default="all")
    parser.add_argument("--datasets", nargs="+", default=UCI_DATASETS)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--solvers", nargs="+", default=SOLVERS)
    parser.add_argument("--sizes", type=int, nargs="+", default=SCALING_SIZES)
    parser.add_argument("--exact-max-n", type=int, default=20_000)
    parser.add_argument("--centers", type=int, default=None)
    parser.add_argument("--tag", default="", help="uci: results/scalable_uci<TAG>.json (resumed from it)")
    parser.add_argument("--threads", type=int, default=1)  # 1: on a shared machine 2 threads ran 8× slower
    args = parser.parse_args()
    if args.part in ("uci", "all"):
        run_uci(args)
    if args.part in ("scaling", "all"):
        run_scaling(args)
    return None


if __name__ == "__main__":
    sys.exit(main())
