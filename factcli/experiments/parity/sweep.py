"""The sample-size phase transition of a parity sweep (`fact parity -m n=500,1000,...`).

A Hydra callback (listed under ``hydra.callbacks`` in conf/parity/parity.yaml) that runs when a multirun
ends: it groups the finished jobs by (learner, d, k), averages final test accuracy over seeds at each
n, and writes into the sweep directory

- ``phase_transition.csv``: learner, d, k, n, mean / min / max test accuracy, seeds;
- ``phase_transition.json``: per group, the smallest n whose mean test accuracy reaches 95%;
- ``phase_transition.png``: final test accuracy against n (log scale), one line per group.

It can be rerun on a finished sweep, or pool several (seeds run as separate sweeps):
``python -m factcli.experiments.parity.sweep OUT_DIR [SWEEP_DIR ...]`` (no SWEEP_DIR: OUT_DIR itself).
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path

from hydra.experimental.callback import Callback

from factcli.messages import say
from factcli.plots import save
from factcli.rundir import collect_sweep, write_csv, write_json

log = logging.getLogger("fact")
TARGET_ACCURACY = 0.95


class ParityPhaseTransition(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        path = write_phase_transition(Path(config.hydra.sweep.dir))
        if path is not None:
            log.info("phase transition in n: %s", path)


def phase_transition_table(jobs: list[dict]) -> list[dict]:
    """Mean, min and max final test accuracy per (learner, d, k, n) over the finished jobs (seeds)."""
    accuracies = defaultdict(list)
    for job in jobs:
        if job.get("status") == "finished" and job.get("test_accuracy") is not None:
            key = (job["learner"], int(job["d"]), int(job["k"]), int(job["n"]))
            accuracies[key].append(float(job["test_accuracy"]))
    return [
        {
            "learner": learner,
            "d": d,
            "k": k,
            "n": n,
            "mean_test_accuracy": sum(values) / len(values),
            "min_test_accuracy": min(values),
            "max_test_accuracy": max(values),
            "seeds": len(values),
        }
        for (learner, d, k, n), values in sorted(accuracies.items())
    ]


def smallest_n_reaching(table: list[dict], target: float = TARGET_ACCURACY) -> list[dict]:
    """Per (learner, d, k): the smallest n whose mean accuracy reaches ``target`` (None if none does)."""
    groups = defaultdict(list)
    for row in table:
        groups[(row["learner"], row["d"], row["k"])].append(row)
    return [
        {
            "learner": learner,
            "d": d,
            "k": k,
            "target": target,
            "smallest_n": min((r["n"] for r in rows if r["mean_test_accuracy"] >= target), default=None),
            "largest_n_tried": max(r["n"] for r in rows),
        }
        for (learner, d, k), rows in groups.items()
    ]


def write_phase_transition(out_dir: Path, sweep_dirs: list[Path] | None = None) -> Path | None:
    """Table, smallest n and plot of the jobs of ``sweep_dirs`` (default: ``out_dir``), written to
    ``out_dir``; None when the jobs have fewer than 2 values of n."""
    jobs = [job for sweep_dir in sweep_dirs or [out_dir] for job in collect_sweep(Path(sweep_dir))]
    table = phase_transition_table(jobs)
    if len({row["n"] for row in table}) < 2:
        return None
    out_dir = Path(out_dir)
    write_csv(out_dir / "phase_transition.csv", table)
    write_json(out_dir / "phase_transition.json", smallest_n_reaching(table))
    for row in smallest_n_reaching(table):
        log.info(
            "%s, d=%d, k=%d: smallest n reaching 95%%: %s",
            row["learner"],
            row["d"],
            row["k"],
            say(row["smallest_n"], none="not reached"),
        )
    return plot_phase_transition(out_dir / "phase_transition.png", table)


def plot_phase_transition(path: Path, table: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    groups = defaultdict(list)
    for row in table:
        groups[(row["learner"], row["d"], row["k"])].append(row)
    # One colour per learner, one line style per k: the eye compares learners at equal k.
    learners = sorted({learner for learner, _, _ in groups})
    orders = sorted({k for _, _, k in groups})
    styles = ["-", "--", ":", "-."]
    # Sweeps of several d pooled (e.g. d = 50 and d = 100 side by side): one marker per d, named.
    dims = sorted({d for _, d, _ in groups})
    markers = ["o", "s", "^", "D"]
    for (learner, d, k), rows in groups.items():
        ns = [r["n"] for r in rows]
        colour = f"C{learners.index(learner)}"
        style = styles[orders.index(k) % len(styles)]
        mean = [r["mean_test_accuracy"] for r in rows]
        label = f"{learner}, d={d}, k={k}" if len(dims) > 1 else f"{learner}, k={k}"
        marker = markers[dims.index(d) % len(markers)]
        ax.plot(ns, mean, style, color=colour, marker=marker, markersize=4, label=label)
        if any(r["seeds"] > 1 for r in rows):  # the spread over seeds
            low = [r["min_test_accuracy"] for r in rows]
            high = [r["max_test_accuracy"] for r in rows]
            ax.fill_between(ns, low, high, color=colour, alpha=0.12)
    sizes = sorted({row["n"] for row in table})
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.axhline(
        TARGET_ACCURACY, linestyle="--", color="gray", linewidth=1, label=f"{TARGET_ACCURACY:.0%} target"
    )
    ax.axhline(0.5, linestyle=":", color="gray", linewidth=1, label="chance (0.5)")
    dims = sorted({row["d"] for row in table})
    seeds = max(row["seeds"] for row in table)
    ax.set(
        xlabel="training samples n",
        ylabel="final test accuracy" + (f" (mean of {seeds} seeds; band: min-max)" if seeds > 1 else ""),
        title=f"Sparse parity, d={', '.join(map(str, dims))}: phase transition in sample size",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save(fig, path)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m factcli.experiments.parity.sweep OUT_DIR [SWEEP_DIR ...]")
    out, *sweeps = (Path(arg) for arg in sys.argv[1:])
    print(write_phase_transition(out, sweeps or None) or "fewer than 2 values of n: nothing to plot")
