"""The combined figure of a grokking sweep (`fact grokking -m learner=fact,nfa seed=0,1,2`).

A Hydra callback (listed under ``hydra.callbacks`` in conf/grokking/grokking.yaml) that runs when a
multirun ends: it reads every finished job's metrics.csv and writes into the sweep directory

- ``grokking_sweep.csv``: per (learner, p, operation, train fraction): seeds, and the mean, min and max
  of ``first_iteration_99`` over the seeds that reached 99% (``reached`` says how many did);
- ``grokking_sweep.png``: test accuracy against iteration (or optimizer step), one colour per learner,
  one thin line per seed and the mean over seeds thick.

It can be rerun on a finished sweep: ``python -m factcli.experiments.grokking.sweep SWEEP_DIR``.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections import defaultdict
from pathlib import Path

from hydra.experimental.callback import Callback

from factcli.plots import integer_ticks, legend, save
from factcli.rundir import collect_sweep, write_csv

log = logging.getLogger("fact")


class GrokkingSweepFigure(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        path = write_sweep_figure(Path(config.hydra.sweep.dir))
        if path is not None:
            log.info("test accuracy of every job: %s", path)


def job_curves(sweep_dir: Path) -> list[dict]:
    """Per finished job: its learner, task, seed and (x, test accuracy) of its own learner's rows."""
    curves = []
    for job in collect_sweep(sweep_dir):
        metrics = Path(sweep_dir) / job["job"] / "metrics.csv"
        if job.get("status") != "finished" or not metrics.is_file():
            continue
        with open(metrics, newline="") as handle:
            rows = [
                row for row in csv.DictReader(handle) if row.get("learner", job["learner"]) == job["learner"]
            ]
        unit = "step" if rows and rows[0].get("step") not in (None, "") else "iteration"
        curves.append(
            {
                "learner": job["learner"],
                "task": (job["p"], job["operation"], job["train_fraction"]),
                "seed": job["seed"],
                "unit": unit,
                "xs": [int(float(row[unit])) for row in rows],
                "accuracy": [float(row["test_accuracy"]) for row in rows],
                "first_iteration_99": job.get("first_iteration_99"),
            }
        )
    return curves


def sweep_table(curves: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for curve in curves:
        groups[(curve["learner"], *curve["task"])].append(curve)
    table = []
    for (learner, p, operation, fraction), members in sorted(groups.items(), key=lambda item: str(item[0])):
        reached = [float(c["first_iteration_99"]) for c in members if c["first_iteration_99"] is not None]
        table.append(
            {
                "learner": learner,
                "p": p,
                "operation": operation,
                "train_fraction": fraction,
                "seeds": len(members),
                "reached_99": len(reached),
                "mean_first_iteration_99": sum(reached) / len(reached) if reached else None,
                "min_first_iteration_99": min(reached, default=None),
                "max_first_iteration_99": max(reached, default=None),
            }
        )
    return table


def write_sweep_figure(sweep_dir: Path) -> Path | None:
    """Table and figure of the sweep's finished jobs; None when fewer than 2 jobs finished."""
    curves = job_curves(Path(sweep_dir))
    if len(curves) < 2:
        return None
    write_csv(Path(sweep_dir) / "grokking_sweep.csv", sweep_table(curves))
    return plot_sweep(Path(sweep_dir) / "grokking_sweep.png", curves)


def plot_sweep(path: Path, curves: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    learners = list(dict.fromkeys(c["learner"] for c in curves))
    tasks = list(dict.fromkeys(c["task"] for c in curves))
    styles = ["-", "--", ":", "-."]
    for curve in curves:
        colour = f"C{learners.index(curve['learner'])}"
        ax.plot(curve["xs"], curve["accuracy"], styles[tasks.index(curve["task"]) % 4], color=colour,
                linewidth=0.8, alpha=0.35, label="one seed")  # fmt: skip
    for learner in learners:
        for task in tasks:
            members = [c for c in curves if c["learner"] == learner and c["task"] == task]
            shortest = min((len(c["xs"]) for c in members), default=0)
            if not shortest:
                continue
            mean = np.mean([c["accuracy"][:shortest] for c in members], axis=0)
            name = learner if len(tasks) == 1 else f"{learner}, p={task[0]} {task[1]}, fraction {task[2]}"
            ax.plot(members[0]["xs"][:shortest], mean, styles[tasks.index(task) % 4],
                    color=f"C{learners.index(learner)}", linewidth=2.2,
                    label=f"{name} (mean of {len(members)} seeds)")  # fmt: skip
    unit = curves[0]["unit"]
    ax.set(
        xlabel="RFM iteration t" if unit == "iteration" else "optimizer step",
        ylabel="test accuracy",
        ylim=(-0.03, 1.03),
        title="Grokking sweep: test accuracy of every job (thin: one seed)",
    )
    ax.grid(alpha=0.3)
    integer_ticks(ax, [c["xs"] for c in curves])
    legend(ax)
    return save(fig, path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m factcli.experiments.grokking.sweep SWEEP_DIR")
    print(write_sweep_figure(Path(sys.argv[1])) or "fewer than 2 finished jobs: nothing to plot")
