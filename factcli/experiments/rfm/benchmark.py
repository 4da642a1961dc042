"""`fact fit-rfm benchmark=uci`: every UCI dataset × every method × both protocols (docs/SPEC.md §5).

For each (dataset, method) the hyperparameters are selected once on the tuning split (the selection
is the same for both protocols), then each protocol is evaluated on the 4 folds. Finished
(dataset, method) pairs are stored as one JSON file each under ``<results_dir>/results/``, so a
rerun resumes, and shards (``benchmark.shard`` of ``benchmark.num_shards``) running in other processes
or on other machines can share one results folder. Every run assembles ``table.csv`` from whatever
is finished.

Time is reported beside its floor: the seconds spent inside the Cholesky factorizations the protocol
needs, measured as they happen, so wall / floor says how much the rest of the engine costs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from factcli import plots
from factcli.core.linalg import timing_factorizations
from factcli.data.tabular import uci_dir
from factcli.data.uci import list_uci, load_uci, uci_rows
from factcli.errors import FactError
from factcli.progress import track
from factcli.rundir import write_csv, write_json
from factcli.runtime import resolve_device

from ..common.rfm import check_kernel_memory
from .folds import evaluate_folds, fit_options, select_on_tuning_split
from .protocol import Task

log = logging.getLogger("fact")

# The paper's means over 120 datasets (docs/SPEC.md §5).
PAPER_MEANS = {"fact": 85.22, "fact-geo": 84.99, "nfa": 85.10, "laplace": 83.71}
TABLE_COLUMNS = [
    "dataset",
    "n",
    "d",
    "classes",
    "method",
    "protocol",
    "ridge",
    "normalize_rows",
    "iteration",
    "val_accuracy",
    "fold1_accuracy",
    "fold2_accuracy",
    "fold3_accuracy",
    "fold4_accuracy",
    "test_accuracy",
    "seconds",
    "cholesky_seconds",
    "selection_seconds",
    "selection_cholesky_seconds",
    "eval_seconds",
    "eval_cholesky_seconds",
    "precision",
]


def run_benchmark(cfg, run) -> dict:
    bench = cfg.benchmark
    root = uci_dir(cfg.data.root)
    if root is None:
        raise FactError("benchmark=uci needs the UCI collection: set FACT_DATA or data.root to the data root")
    available = list_uci(root)
    names = list(bench.datasets) or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise FactError(
            f"unknown UCI dataset(s) {', '.join(unknown)} under {root}; known: {', '.join(available)}"
        )
    # Smallest first: most datasets finish early (the summary covers what is done), and dealing the
    # sorted list round-robin gives every shard a similar share of the large ones.
    by_size = sorted(names, key=lambda name: (uci_rows(root, name), name))
    mine = by_size[bench.shard :: bench.num_shards]
    results_dir = Path(bench.results_dir) if bench.results_dir else run.path
    store = results_dir / "results"
    device = resolve_device(cfg.device)
    settings = result_settings(cfg)
    log.info(
        "UCI benchmark: %d datasets (shard %d/%d), methods %s, protocols %s; results in %s",
        len(mine),
        bench.shard,
        bench.num_shards,
        list(bench.methods),
        list(bench.protocols),
        store,
    )

    for name in track(mine, "UCI benchmark", total=len(mine)):
        data = load_uci(root, name)
        if data.n > bench.max_samples:
            log.info("skip %s: %d samples > benchmark.max_samples=%d", name, data.n, bench.max_samples)
            continue
        for method in bench.methods:
            path = store / f"{name}__{method}.json"
            if path.exists() and finished_earlier(path, bench.protocols, settings):
                continue  # resume
            rows = benchmark_one(cfg, data, method, list(bench.protocols), device)
            write_json(path, {"protocols": list(bench.protocols), "settings": settings, "rows": rows})
            accuracies = ", ".join(f"{r['protocol']} {r['test_accuracy']:.2f}" for r in rows)
            wall = rows[0]["selection_seconds"] + sum(r["eval_seconds"] for r in rows)  # selection is shared
            log.info("%s %s: %s (%.1f s)", name, method, accuracies, wall)

    table = collect_rows(store, names, list(bench.methods), list(bench.protocols))
    write_csv(run.file("table.csv"), table, TABLE_COLUMNS)
    if results_dir != run.path:
        write_csv(results_dir / "table.csv", table, TABLE_COLUMNS)
    summary = summarize(table, names, list(bench.methods), list(bench.protocols))
    write_json(run.file("benchmark_summary.json"), summary)
    if cfg.plots and table:
        plot_benchmark(run, table, list(bench.protocols))
    print_summary(summary)
    return {"benchmark": "uci", **summary}


def result_settings(cfg) -> dict:
    """The configuration that shapes a stored result; a rerun may reuse only results made with it."""
    return {group: OmegaConf.to_container(cfg[group], resolve=True) for group in ("kernel", "rfm", "grid")}


def finished_earlier(path: Path, protocols, settings: dict) -> bool:
    """True when ``path`` holds every protocol made with these settings; refuses other settings.

    Results from before settings were recorded carry none and are reused as they are.
    """
    stored = json.loads(path.read_text())
    made_with = stored.get("settings", settings)
    if made_with != settings:
        changed = sorted(
            f"{group}.{key}"
            for group in settings
            for key in set(settings[group]) | set(made_with.get(group, {}))
            if settings[group].get(key) != made_with.get(group, {}).get(key)
        )
        raise FactError(
            f"{path.parent} holds results made with other settings ({', '.join(changed)}): "
            "choose another hydra.run.dir or benchmark.results_dir, or rerun with the same settings"
        )
    return set(protocols) <= set(stored["protocols"])


def benchmark_one(cfg, data, method: str, protocols: list[str], device) -> list[dict]:
    """Select once on the tuning split, then evaluate every protocol on the 4 folds: one row each."""
    options = fit_options(cfg, method)
    task = Task("classification", data.n_outputs)
    largest = max(len(rows) for rows in [data.splits.train, *(train for train, _ in data.splits.folds)])
    check_kernel_memory(largest, options.precision, device, cfg.memory_limit_gb)
    X = torch.tensor(data.X, device=device)
    y = torch.tensor(data.y, device=device)

    with timing_factorizations() as selection_clock:
        selection = select_on_tuning_split(task, options, cfg, X, y, (data.splits.train, data.splits.val))
    rows, computed = [], {}
    for protocol in protocols:
        with timing_factorizations() as clock:
            started = time.perf_counter()
            if selection.iteration == 0 and computed:
                # With t = 0 both protocols solve the same systems with M = I: nothing left to do.
                results = next(iter(computed.values()))
            else:
                results = evaluate_folds(task, options, selection, protocol, X, y, data.splits.folds)
            computed[protocol] = results
            seconds = time.perf_counter() - started
        scores = [100 * r.score for r in results]
        rows.append(
            {
                "dataset": data.name,
                "n": data.n,
                "d": data.d,
                "classes": data.n_classes,
                "method": method,
                "protocol": protocol,
                "ridge": selection.ridge,
                "normalize_rows": selection.normalize,
                "iteration": selection.iteration,
                "val_accuracy": 100 * selection.val_score,
                **{f"fold{i + 1}_accuracy": s for i, s in enumerate(scores)},
                "test_accuracy": float(np.mean(scores)),
                # A protocol's own cost includes the (shared) selection; the parts are kept apart too.
                "seconds": selection.seconds + seconds,
                "cholesky_seconds": selection_clock.seconds + clock.seconds,
                "selection_seconds": selection.seconds,
                "selection_cholesky_seconds": selection_clock.seconds,
                "eval_seconds": seconds,
                "eval_cholesky_seconds": clock.seconds,
                "precision": "+".join(sorted(selection.precisions | {r.precision for r in results})),
            }
        )
    return rows


def collect_rows(store: Path, names, methods, protocols) -> list[dict]:
    rows = []
    for name in names:
        for method in methods:
            path = store / f"{name}__{method}.json"
            if path.exists():
                rows += [row for row in json.loads(path.read_text())["rows"] if row["protocol"] in protocols]
    return rows


def summarize(table: list[dict], names, methods: list[str], protocols: list[str]) -> dict:
    """Mean accuracy per protocol and method over the datasets every method finished; time vs floor."""
    import pandas as pd

    summary: dict = {"datasets_requested": len(names), "paper_means_120_datasets": PAPER_MEANS}
    if not table:
        return {**summary, "datasets_complete": 0, "complete": False}
    frame = pd.DataFrame(table)
    complete = frame.groupby("dataset").size() == len(methods) * len(protocols)
    done = set(complete[complete].index)
    frame = frame[frame.dataset.isin(done)]
    summary["datasets_complete"] = len(done)
    summary["complete"] = len(done) == len(names)
    summary["mean_test_accuracy"] = {
        protocol: {m: round(float(g.test_accuracy.mean()), 3) for m, g in part.groupby("method")}
        for protocol, part in frame.groupby("protocol")
    }
    # Per method: the selection once (it is shared by the protocols) plus each protocol's folds.
    first = frame.drop_duplicates(["dataset", "method"])
    wall = first.groupby("method").selection_seconds.sum() + frame.groupby("method").eval_seconds.sum()
    floor = (
        first.groupby("method").selection_cholesky_seconds.sum()
        + frame.groupby("method").eval_cholesky_seconds.sum()
    )
    summary["seconds"] = {m: round(float(v), 1) for m, v in wall.items()}
    summary["cholesky_floor_seconds"] = {m: round(float(v), 1) for m, v in floor.items()}
    summary["wall_over_floor"] = {
        m: round(float(wall[m] / floor[m]), 3) if floor[m] > 0 else None for m in wall.index
    }
    return summary


def print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    means = summary.get("mean_test_accuracy", {})
    table = Table(
        title=f"UCI benchmark: mean test accuracy over {summary.get('datasets_complete', 0)} datasets"
    )
    table.add_column("method")
    for protocol in means:
        table.add_column(protocol, justify="right")
    table.add_column("paper (120)", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("Cholesky floor s", justify="right")
    table.add_column("wall/floor", justify="right")
    methods = sorted({m for part in means.values() for m in part})
    for method in methods:
        table.add_row(
            method,
            *(f"{means[p].get(method, float('nan')):.2f}" for p in means),
            f"{PAPER_MEANS.get(method, '')}",
            str(summary["seconds"].get(method)),
            str(summary["cholesky_floor_seconds"].get(method)),
            str(summary["wall_over_floor"].get(method)),
        )
    Console(stderr=True).print(table)


def plot_benchmark(run, table: list[dict], protocols: list[str]) -> None:
    import pandas as pd

    frame = pd.DataFrame(table)
    for protocol in protocols:
        wide = frame[frame.protocol == protocol].pivot_table(
            index="dataset", columns="method", values="test_accuracy"
        )
        for rival in ("laplace", "nfa"):
            if {"fact", rival} <= set(wide.columns):
                pair = wide[["fact", rival]].dropna()
                plots.scatter_against_diagonal(
                    run.plot_file(f"fact_vs_{rival}_{protocol}.png"),
                    pair[rival].tolist(),
                    pair["fact"].tolist(),
                    x_label=f"{rival} test accuracy (%)",
                    y_label="fact test accuracy (%)",
                    title=f"{protocol} protocol: {len(pair)} datasets (above the line: fact wins)",
                )
