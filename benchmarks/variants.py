"""Issue 15, item 1: feature-learning variants against tuned baselines, strict protocol, float64.

`python benchmarks/variants.py` — the shipped UCI datasets with 150 ≤ n ≤ 2,000 rows, every other one
by (size, name) (27 datasets); each (dataset, entry) result is added to `variants/results.csv` as soon
as it is finished, so a rerun resumes; `--summary` (also run at the end) writes `variants/summary.json`
and `variants/summary.md`: every entry's mean, W/T/L and Wilcoxon p against every baseline, failures.
`--round 2`: the kernel selected on validation, on all 53 datasets of 150-2,000 rows → `variants/round2/`.
The variant list and the rule that picks the default from them are in benchmarks/README.md (fixed
before this ran).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "variants"

ENTRIES = [  # (label, Entry fields): the list committed in benchmarks/README.md
    ("L2-KRR", {"kind": "krr"}),
    ("L1-KRR", {"kind": "krr", "kernel": "l1"}),
    ("SVC-RBF", {"kind": "svc"}),
    ("fact-today", {"kind": "legacy"}),
    ("fact-l2", {}),
    ("fact-l2-s2", {"fact_power": 2.0}),
    ("fact-l2-T10", {"iters": 10}),
    ("fact-l2-noise", {"rule": "noise"}),
    ("fact-l2-all", {"search": "all"}),
    ("fact-l1-diag", {"kernel": "l1", "form": "diagonal"}),
    ("fact-l1-diag-s2", {"kernel": "l1", "form": "diagonal", "fact_power": 2.0}),
    ("fact-l1-diag-noise", {"kernel": "l1", "form": "diagonal", "rule": "noise"}),
    ("fact-l1-full", {"kernel": "l1"}),
    ("fact-l2-diag", {"form": "diagonal"}),
    ("nfa-l2", {"method": "nfa"}),
    ("nfa-l1-diag", {"method": "nfa", "kernel": "l1", "form": "diagonal"}),
    ("fact-geo-l2", {"method": "fact-geo"}),
    ("fact-geo-l1-diag", {"method": "fact-geo", "kernel": "l1", "form": "diagonal"}),
]
BASELINES = ["L2-KRR", "L1-KRR", "SVC-RBF", "fact-today"]

# Round 2 (benchmarks/README.md): the kernel selected on validation, on all 53 datasets of 150-2,000 rows.
ENTRIES_2 = [
    ("L2-KRR", {"kind": "krr"}),
    ("L1-KRR", {"kind": "krr", "kernel": "l1"}),
    ("KRR-auto", {"kind": "krr", "kernel": "auto"}),
    ("fact", {"fact_power": 2.0}),
    ("fact-auto", {"kernel": "auto", "fact_power": 2.0}),
    ("nfa-auto", {"method": "nfa", "kernel": "auto"}),
    ("fact-geo-auto", {"method": "fact-geo", "kernel": "auto"}),
]
BASELINES_2 = ["L2-KRR", "L1-KRR", "KRR-auto", "fact"]


def subset(root: Path, every: int = 2) -> list[str]:
    from factcli.data.uci import list_uci, uci_rows

    sized = sorted((uci_rows(root, name), name) for name in list_uci(root))
    return [name for n, name in sized if 150 <= n <= 2000][::every]


def run(root: Path, threads: int, entries, names, out: Path) -> None:
    import torch

    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions
    from factcli.data.uci import load_uci
    from factcli.experiments.rfm.grid import GridSpec
    from factcli.experiments.rfm.store import ResultStore
    from factcli.experiments.rfm.suite import Entry, Suite

    torch.set_num_threads(threads)
    store = ResultStore(out)
    done = set(store.pairs())
    options = RFMOptions(kernel=Kernel("laplace", 10.0), precision="float64")
    for name in names:
        pending = [(label, f) for label, f in entries if (name, label) not in done]
        if not pending:
            continue
        suite = Suite(load_uci(root, name), GridSpec(), options)
        for label, fields in pending:
            started = time.perf_counter()
            if fields.get("kind") == "legacy":  # the selection before the current grid
                import legacy_selection

                rows = legacy_selection.rows(suite, label, fields.get("method", "fact"), ["strict"])
            else:
                rows = suite.run(Entry(label, **fields), ["strict"])
            load, wall = os.getloadavg()[0], time.perf_counter() - started
            store.add(name, label, rows, wall_seconds=wall, load1=load)
            row = rows[0]
            print(
                f"{name} {label}: {row['test_accuracy']:.2f} t={row['iteration']} "
                f"({wall:.1f} s, load {load:.1f}) {row['error']}",
                flush=True,
            )


def summary(entries=ENTRIES, baselines=BASELINES, out: Path = OUT, split: list[str] | None = None) -> dict:
    """Every entry against every baseline; with ``split`` (round 2) also on those datasets and the rest."""
    import pandas as pd

    from factcli.experiments.rfm.compare import compare_table
    from factcli.experiments.rfm.store import ResultStore

    frame = pd.DataFrame(ResultStore(out).lines())
    labels = [label for label, _ in entries]
    result = compare_table(frame, labels, baselines)
    if split is not None:
        for part, keep in (("round 1's datasets", True), ("datasets round 1 did not use", False)):
            block = compare_table(frame[frame.dataset.isin(split) == keep], labels, baselines)
            result[part] = {k: block[k] for k in ("datasets_all_finished", "mean", "versus")}
    seconds = frame.groupby("label")[["selection_seconds", "eval_seconds"]].sum().sum(axis=1)
    result["seconds"] = {label: round(float(v), 1) for label, v in seconds.items()}
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "note": "shared, contended"}
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    from factcli.experiments.rfm.compare import markdown_table

    text = markdown_table(result)
    for part in ("round 1's datasets", "datasets round 1 did not use"):
        if part in result:
            means = ", ".join(f"{label} {mean:.2f}" for label, mean in result[part]["mean"].items())
            text += f"\n{part} ({result[part]['datasets_all_finished']}): {means}\n"
    (out / "summary.md").write_text(text)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary", action="store_true", help="only summarize what is finished")
    parser.add_argument("--round", type=int, choices=(1, 2), default=1)
    args = parser.parse_args()
    root = args.data / "uci"
    if args.round == 1:
        entries, baselines, names, out, split = ENTRIES, BASELINES, subset(root), OUT, None
    else:
        entries, baselines, names, out, split = (
            ENTRIES_2,
            BASELINES_2,
            subset(root, 1),
            OUT / "round2",
            subset(root),
        )
    if not args.summary:
        run(root, args.threads, entries, names, out)
    summary(entries, baselines, out, split)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
