"""`fact fit-rfm benchmark=uci`: every UCI dataset × every method and baseline × both protocols
(docs/SPEC.md §5).

Rows: the methods (``laplace`` = tuned kernel ridge regression with the configured kernel, i.e. the
t = 0 of every path) and the baselines (``l1-krr``, ``l2-krr``, ``svc-rbf``), all selected on the tuning
split by the same grid and tie rule (grid.py; stage 0 is computed once per dataset and kernel and
shared), then each protocol is evaluated on the 4 folds. Finished (dataset, row) pairs are stored in
one file, ``<results_dir>/results.csv`` (store.py), so a rerun resumes, and shards
(``benchmark.shard`` of ``benchmark.num_shards``) running in other processes can share one results
folder (each adds its results under a file lock). Every run assembles ``table.csv`` from whatever is
finished. Run as the jobs of one sweep (``fact fit-rfm -m benchmark=uci benchmark.num_shards=4
'benchmark.shard=range(4)' hydra/launcher=joblib``), the shards share the sweep directory: one
``results.csv``, one ``table.csv`` beside ``sweep.csv``; rerunning the sweep with the same
``hydra.sweep.dir`` resumes it.

Time is reported beside its floor: the seconds spent inside the Cholesky factorizations the protocol
needs, measured as they happen, so wall / floor says how much the rest of the engine costs.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from omegaconf import OmegaConf

from factcli import plots
from factcli.data.tabular import uci_dir
from factcli.data.uci import list_uci, load_uci, uci_rows
from factcli.errors import FactError
from factcli.messages import say
from factcli.progress import track
from factcli.rundir import write_csv, write_json
from factcli.runtime import resolve_device
from factcli.schema.rfm import SolverFields

from ..common.rfm import check_kernel_memory
from . import trees
from .compare import report, with_leak
from .folds import fit_options, grid_spec, standardized, standardizes
from .store import ResultStore, import_json_results, json_results
from .suite import TABLE_COLUMNS, Entry, Suite

log = logging.getLogger("fact")

# The paper's means over 120 datasets (docs/SPEC.md §5).
PAPER_MEANS = {"fact": 85.22, "fact-geo": 84.99, "nfa": 85.10, "laplace": 83.71}
BASELINE_ENTRIES = {  # benchmark.baselines (choices.BASELINES) -> the table row it adds
    "l1-krr": {"kind": "krr", "kernel": "l1"},
    "l2-krr": {"kind": "krr", "kernel": "laplace"},
    "svc-rbf": {"kind": "svc"},
    "random-forest": {"kind": "forest"},  # trees.py; not among the default baselines
    "lightgbm": {"kind": "lightgbm"},  # needs the optional `bench` extra
}


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
    rows_of = {name: uci_rows(root, name) for name in names}
    skipped = {
        name: f"{rows} rows > benchmark.max_samples={bench.max_samples}"
        for name, rows in rows_of.items()
        if rows > bench.max_samples
    }
    if len(skipped) == len(names):
        raise FactError(
            f"every requested dataset has more than benchmark.max_samples={bench.max_samples} rows "
            f"(the smallest: {min(rows_of.values())}); raise benchmark.max_samples or choose others"
        )
    # Smallest first: most datasets finish early (the summary covers what is done), and dealing the
    # sorted list round-robin gives every shard a similar share of the large ones.
    by_size = sorted(names, key=lambda name: (rows_of[name], name))
    mine = by_size[bench.shard :: bench.num_shards]
    results_dir = results_folder(bench, run)
    store = open_store(results_dir)
    device = resolve_device(cfg.device)
    settings = result_settings(cfg)
    stored = store.pairs()
    for pair in stored.values():
        finished_earlier(pair, [], settings, results_dir)  # refuses results of other settings before any work
    log.info(
        "UCI benchmark: %d datasets (shard %d/%d), methods %s, protocols %s; results in %s",
        len(mine),
        bench.shard,
        bench.num_shards,
        list(bench.methods),
        list(bench.protocols),
        store.path,
    )

    entries = table_entries(cfg)
    if any(entry.kind == "lightgbm" for entry in entries):
        trees.require_lightgbm()  # before any work, not at the first dataset that reaches the row
    for name in track(mine, "UCI benchmark", total=len(mine)):
        if name in skipped:
            log.info("skip %s: %s", name, skipped[name])
            continue
        data = load_uci(root, name)
        suite = None
        for entry in entries:
            pair = stored.get((name, entry.label))
            if pair is not None and finished_earlier(pair, bench.protocols, settings, results_dir):
                continue  # resume
            if suite is None:
                suite = dataset_suite(cfg, data, device)
            rows = suite.run(entry, list(bench.protocols))
            store.add(name, entry.label, rows, settings)
            accuracies = ", ".join(f"{r['protocol']} {r['test_accuracy']:.2f}" for r in rows)
            wall = rows[0]["selection_seconds"] + sum(r["eval_seconds"] for r in rows)  # selection is shared
            chosen_t, error = rows[0]["iteration"], rows[0]["error"]
            failed = f" {error}" if error else ""
            log.info(
                "%s %s: %s, t = %s (%.1f s)%s", name, entry.label, accuracies, say(chosen_t), wall, failed
            )

    labels = [entry.label for entry in entries]
    table = collect_rows(store, names, labels, list(bench.protocols))
    write_csv(run.file("table.csv"), table, TABLE_COLUMNS)
    if results_dir != run.path:
        write_shared_table(results_dir, names, labels, list(bench.protocols), skipped)
    summary = summarize(table, names, labels, list(bench.protocols), skipped)
    markdown = summary.pop("markdown", "")
    if bench.num_shards > 1:
        # A shard's run is done when its own share is: the whole benchmark's state is in `complete`
        # and in the shared table's summary, which the last shard to finish completes.
        per_dataset = len(labels) * len(bench.protocols)
        rows = {name: sum(row["dataset"] == name for row in table) for name in mine}
        shard_done = all(rows[name] == per_dataset for name in mine if name not in skipped)
        summary["status"] = "finished" if shard_done else "incomplete"
    if summary["status"] != "finished":
        log.warning(
            "incomplete: %s", summary.get("incomplete_reason", "this shard's datasets are not all done")
        )
    elif not summary["complete"]:
        log.info(
            "shard %d done; the benchmark is not complete yet: %s", bench.shard, summary["incomplete_reason"]
        )
    write_json(run.file("benchmark_summary.json"), summary)
    run.file("benchmark_summary.md").write_text(markdown)
    if cfg.plots and table:
        plot_benchmark(run, table, list(bench.protocols))
    table_path = results_dir / "table.csv" if results_dir != run.path else None
    print_summary(summary, (bench.shard, bench.num_shards), table_path)
    return {"benchmark": "uci", **summary}


def table_entries(cfg) -> list[Entry]:
    """The table's rows: every method with the configured kernel options, then every baseline."""
    rfm, grid = cfg.rfm, cfg.grid
    common = {"rule": grid.rule, "search": grid.search, "iters": int(rfm.iters), "form": rfm.form}
    powers = {"fact_power": float(rfm.fact_power), "nfa_power": float(rfm.nfa_power)}
    entries = [
        Entry(method, "krr" if method == "laplace" else "rfm", cfg.kernel.name, method, **common, **powers)
        for method in cfg.benchmark.methods
    ]
    entries += [Entry(name, **BASELINE_ENTRIES[name]) for name in cfg.benchmark.baselines]
    return entries


def dataset_suite(cfg, data, device) -> Suite:
    """One dataset's rows share stage 0 and the t = 0 fold fits (suite.py)."""
    options = fit_options(cfg, "laplace")
    largest = max(len(rows) for rows in [data.splits.train, *(train for train, _ in data.splits.folds)])
    check_kernel_memory(largest, options.precision, device, cfg.memory_limit_gb)
    if standardizes(cfg, data):  # data.standardize=yes: z-scores from the tuning split's rows, as fit-rfm
        training_rows = np.concatenate([data.splits.train, data.splits.val])
        data = dataclasses.replace(data, X=standardized(data, cfg, training_rows))
    return Suite(data, grid_spec(cfg), options, device)


def results_folder(bench, run) -> Path:
    """Where finished results are stored: ``benchmark.results_dir``; else, for the shards of one sweep
    (``-m benchmark.shard=range(N)``), the sweep directory they share; else this run's directory."""
    if bench.results_dir:
        return Path(bench.results_dir)
    if bench.num_shards > 1 and getattr(run, "sweep_dir", None) is not None:
        return run.sweep_dir
    return run.path


def write_shared_table(
    results_dir: Path, names, labels: list[str], protocols: list[str], skipped: dict
) -> None:
    """``table.csv`` and ``benchmark_summary.json`` of a results folder that shards share.

    Shards finishing at the same time may each write it. Each one rereads the results until the
    results file it read is still the one there after its write, so the last table written holds
    every result stored before it (the results file is replaced atomically and only ever grows).
    """
    store = ResultStore(results_dir)

    def snapshot() -> tuple | None:
        status = store.path.stat() if store.path.exists() else None
        return None if status is None else (status.st_mtime_ns, status.st_size, status.st_ino)

    while True:
        before = snapshot()
        table = collect_rows(store, names, labels, protocols)
        write_csv(results_dir / "table.csv", table, TABLE_COLUMNS)
        summary = summarize(table, names, labels, protocols, skipped)
        (results_dir / "benchmark_summary.md").write_text(summary.pop("markdown", ""))
        write_json(results_dir / "benchmark_summary.json", summary)
        if snapshot() == before:
            return


def open_store(results_dir: Path) -> ResultStore:
    """The folder's results; a folder from before the results file (one JSON file per result) is
    imported into it first, value for value, its JSON files left as they are."""
    store = ResultStore(results_dir)
    if not store.exists() and json_results(results_dir):
        count = import_json_results(results_dir, exist_ok=True)  # a shard beside this one may be first
        log.info("imported %d finished results from %s into %s", count, results_dir / "results", store.path)
    return store


def result_settings(cfg) -> dict:
    """The configuration that shapes a stored result; a rerun may reuse only results made with it."""
    groups = {group: OmegaConf.to_container(cfg[group], resolve=True) for group in ("kernel", "rfm", "grid")}
    uci = SimpleNamespace(source="uci")
    return {**groups, "data": {"standardize": standardizes(cfg, uci)}}


# Results stored before a setting existed were made as these say: before `data.standardize` the UCI
# data was used as shipped, and before the Nyström path every fit was an exact solve (the
# path's other keys do not act on an exact solve; they read as their defaults).
SETTINGS_BEFORE_RECORDED = {
    "data": {"standardize": False},
    "rfm": {**dataclasses.asdict(SolverFields()), "solver": "exact"},
}


def finished_earlier(pair: dict, protocols, settings: dict, where: Path) -> bool:
    """True when the stored ``pair`` (ResultStore.pairs) holds every protocol made with these
    settings; refuses other settings. Results from before settings were recorded carry none and are
    reused as they are."""
    recorded = pair["settings"] if pair["settings"] is not None else settings
    made_with = {
        group: {**SETTINGS_BEFORE_RECORDED.get(group, {}), **recorded.get(group, {})}
        for group in {*SETTINGS_BEFORE_RECORDED, *recorded}
    }
    if made_with != settings:
        changed = sorted(
            f"{group}.{key}"
            for group in settings
            for key in set(settings[group]) | set(made_with.get(group, {}))
            if settings[group].get(key) != made_with.get(group, {}).get(key)
        )
        raise FactError(
            f"{where} holds results made with other settings ({', '.join(changed)}): "
            "choose another hydra.run.dir or benchmark.results_dir, or rerun with the same settings"
        )
    return set(protocols) <= set(pair["protocols"])


def collect_rows(store: ResultStore, names, labels, protocols) -> list[dict]:
    return store.rows(names, labels, protocols)


def summarize(
    table: list[dict], names, labels: list[str], protocols: list[str], skipped: dict | None = None
) -> dict:
    """Mean accuracy per protocol and row over the datasets every row finished; time against the
    Cholesky floor; and every row against every baseline (compare.py: W/T/L, Wilcoxon p, by size).

    ``status`` is ``finished`` only when every requested (dataset, row, protocol) is in the table;
    otherwise ``incomplete``, with the skipped datasets and why, and the count of missing results.
    """
    import pandas as pd

    skipped = dict(skipped or {})
    frame = pd.DataFrame(table, columns=None if table else TABLE_COLUMNS)
    if "label" not in frame:  # a table from before the per-label rows: one row per method
        frame["label"] = frame["method"]
    complete = frame.groupby("dataset").size() == len(labels) * len(protocols)
    done = set(complete[complete].index)
    missing = len(names) * len(labels) * len(protocols) - len(frame)
    not_run = len([name for name in names if name not in done and name not in skipped])
    reasons = [f"{len(skipped)} dataset(s) skipped ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})"]
    reasons = reasons[: bool(skipped)] + [f"{not_run} dataset(s) not (yet) computed"][: bool(not_run)]
    summary: dict = {
        "status": "finished" if missing == 0 else "incomplete",
        "complete": missing == 0,
        "datasets_requested": len(names),
        "datasets_complete": len(done),
        "results_missing": missing,
        "skipped": skipped,
        "paper_means_120_datasets": PAPER_MEANS,
    }
    if missing:
        summary["incomplete_reason"] = "; ".join(reasons) or f"{missing} result(s) missing"
    if not table:
        return summary
    frame = frame[frame.dataset.isin(done)]
    summary["mean_test_accuracy"] = {
        protocol: {m: round(float(g.test_accuracy.mean()), 3) for m, g in part.groupby("label")}
        for protocol, part in frame.groupby("protocol")
    }
    # Per row: the selection once (it is shared by the protocols) plus each protocol's folds.
    first = frame.drop_duplicates(["dataset", "label"])
    wall = first.groupby("label").selection_seconds.sum() + frame.groupby("label").eval_seconds.sum()
    if "selection_cholesky_seconds" in frame:  # before the shared stage 0 the floor was kept per part
        floor = (
            first.groupby("label").selection_cholesky_seconds.sum()
            + frame.groupby("label").eval_cholesky_seconds.sum()
        )
    else:  # each row's clock covers its selection and every protocol
        floor = first.groupby("label").cholesky_seconds.sum()
    summary["seconds"] = {m: round(float(v), 1) for m, v in wall.items()}
    # Significant digits, not decimals: a floor of 0.0004 s is a floor, and its ratio is shown beside it.
    summary["cholesky_floor_seconds"] = {m: float(f"{v:.4g}") for m, v in floor.items()}
    summary["wall_over_floor"] = {
        m: round(float(wall[m] / floor[m]), 3) if floor[m] > 0 else None for m in wall.index
    }
    baselines = [label for label in ("laplace", *BASELINE_ENTRIES) if label in labels]
    summary["comparison"], summary["markdown"] = report(with_leak(frame), labels, baselines)
    return summary


def print_summary(summary: dict, shard: tuple[int, int] = (0, 1), table_path: Path | None = None) -> None:
    """The console's table. It says what it covers: the datasets every row finished so far (and, for
    a shard, that the other shards may still be adding theirs), the paper's means as the paper's
    (over its own 120 datasets), and a row with no Cholesky factorization (SVC, trees) as such."""
    from rich.console import Console
    from rich.table import Table

    means = summary.get("mean_test_accuracy", {})
    complete, requested = summary.get("datasets_complete", 0), summary.get("datasets_requested", 0)
    title = f"UCI benchmark: mean test accuracy over the {complete} datasets every row finished"
    if not summary.get("complete"):
        title += f" ({complete} of {requested} requested; not final)"
    notes = []
    index, count = shard
    if count > 1 and summary.get("complete"):
        notes.append(f"Shard {index} of {count}: every shard's results are in; this is the whole benchmark.")
    elif count > 1:
        where = f" ({table_path})" if table_path else ""
        notes.append(
            f"Shard {index} of {count}: what the shards have finished so far, not the final table; "
            f"the last shard to finish writes the whole benchmark's table{where}."
        )
    table = Table(title=title)
    table.add_column("method")
    for protocol in means:
        table.add_column(protocol, justify="right")
    shown = {m: PAPER_MEANS[m] for part in means.values() for m in part if m in PAPER_MEANS}
    if shown:
        table.add_column("paper's mean*", justify="right")
        notes.append(
            "* the paper's published mean over its 120 datasets (docs/SPEC.md §5), for reference: "
            f"not the same datasets as the {complete} here."
        )
    table.add_column("wall s", justify="right")
    table.add_column("Cholesky floor s", justify="right")
    table.add_column("wall/floor", justify="right")
    methods = sorted({m for part in means.values() for m in part})
    for method in methods:
        floor = summary["cholesky_floor_seconds"].get(method)
        ratio = summary["wall_over_floor"].get(method)
        table.add_row(
            method,
            *(f"{means[p][method]:.2f}" if method in means[p] else "—" for p in means),
            *([f"{PAPER_MEANS[method]:.2f}" if method in PAPER_MEANS else "—"] if shown else []),
            _seconds(summary["seconds"].get(method)),
            "none" if not floor else _seconds(floor),  # SVC and trees factor nothing
            "—" if ratio is None else f"{ratio:.2f}",
        )
    console = Console(stderr=True)
    console.print(table)
    for note in notes:
        console.print(note)


def _seconds(value) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"  # a small floor is not 0.0


def plot_benchmark(run, table: list[dict], protocols: list[str]) -> None:
    import pandas as pd

    frame = pd.DataFrame(table)
    for protocol in protocols:
        wide = frame[frame.protocol == protocol].pivot_table(
            index="dataset", columns="label", values="test_accuracy"
        )
        for rival in ("laplace", "nfa", "svc-rbf", "l1-krr"):
            if {"fact", rival} <= set(wide.columns):
                pair = wide[["fact", rival]].dropna()
                plots.scatter_against_diagonal(
                    run.plot_file(f"fact_vs_{rival}_{protocol}.png"),
                    pair[rival].tolist(),
                    pair["fact"].tolist(),
                    x_label=f"{rival} test accuracy (%)",
                    y_label="fact test accuracy (%)",
                    title=f"{protocol} protocol: {len(pair)} datasets (above the line: fact wins)",
                    names=pair.index.tolist(),
                )
