"""Issue 15, item 1: feature-learning variants against tuned baselines, strict protocol, float64.

`python benchmarks/variants.py` — the shipped UCI datasets with 150 ≤ n ≤ 2,000 rows, every other one
by (size, name) (27 datasets); each (dataset, entry) result is added to `variants/results.csv` as soon
as it is finished, so a rerun resumes; `--summary` (also run at the end) writes `variants/summary.json`
and `variants/summary.md`: every entry's mean, W/T/L and Wilcoxon p against every baseline, failures.
`--round 2`: the kernel selected on validation, on all 53 datasets of 150-2,000 rows → `variants/round2/`.
`--round 3` (issue 23): selection on 4 inner folds, bagged refits, both, against the frozen default
`fact`, on every shipped dataset with n ≤ 1,000 rows, halves A and B by name, then the 9 with
1,000 < n ≤ 2,000 as a supplement with no vote → `variants/round3/`; each entry runs in a Suite of its
own (no stage shared), so its seconds are its whole cost.
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

# Round 3 (issue 23, rule in benchmarks/README.md): the frozen default (kernel selected, M ← FFᵀ) and
# its selection variants, k = 4: (a) inner folds, (b) bagged refits, (c) both.
FROZEN = {"kernel": "auto", "fact_power": 2.0}
ENTRIES_3 = [
    ("fact", FROZEN),
    ("fact-bag4", {**FROZEN, "bags": 4}),
    ("fact-cv4", {**FROZEN, "folds": 4}),
    ("fact-cv4-bag4", {**FROZEN, "folds": 4, "bags": 4}),
]
BASELINES_3 = ["fact"]
MAX_ROWS_3 = 1000
SUPPLEMENT_ROWS_3 = 2000  # 1,000 < n ≤ 2,000: run after the 64 as time allows, reported apart, no vote


def halves(root: Path) -> tuple[list[str], list[str]]:
    """Round 3's datasets (n ≤ 1,000) sorted by name: half A the 1st, 3rd, ...; half B the 2nd, 4th, ..."""
    from factcli.data.uci import list_uci, uci_rows

    names = sorted(name for name in list_uci(root) if uci_rows(root, name) <= MAX_ROWS_3)
    return names[::2], names[1::2]


def supplement(root: Path) -> list[str]:
    from factcli.data.uci import list_uci, uci_rows

    return sorted(name for name in list_uci(root) if MAX_ROWS_3 < uci_rows(root, name) <= SUPPLEMENT_ROWS_3)


def by_size(root: Path, names: list[str]) -> list[str]:
    """Smallest first: a run stopped early has the most datasets of both halves finished."""
    from factcli.data.uci import uci_rows

    return sorted(names, key=lambda name: (uci_rows(root, name), name))


def subset(root: Path, every: int = 2) -> list[str]:
    from factcli.data.uci import list_uci, uci_rows

    sized = sorted((uci_rows(root, name), name) for name in list_uci(root))
    return [name for n, name in sized if 150 <= n <= 2000][::every]


def run(root: Path, threads: int, entries, names, out: Path, isolated: bool = False) -> None:
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
        data = load_uci(root, name)
        suite = Suite(data, GridSpec(), options)
        for label, fields in pending:
            if isolated:  # a Suite per entry: nothing shared, each entry pays its whole cost
                suite = Suite(data, GridSpec(), options)
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


def summary_3(root: Path, out: Path = OUT / "round3") -> dict:
    """Every variant against `fact` on half A, on half B and on both, with its cost beside it, and the
    verdict of the rule in benchmarks/README.md (withheld while a dataset of either half is missing)."""
    import pandas as pd

    from factcli.experiments.rfm.compare import compare_table, markdown_table
    from factcli.experiments.rfm.store import ResultStore

    frame = pd.DataFrame(ResultStore(out).lines())
    labels = [label for label, _ in ENTRIES_3]
    half_a, half_b = halves(root)
    frame["seconds"] = frame.selection_seconds + frame.eval_seconds
    result: dict = {"halves": {"A": half_a, "B": half_b}}
    text = []
    parts = [("A", half_a), ("B", half_b), ("A+B", half_a + half_b), ("supplement", supplement(root))]
    for part, names in parts:
        rows = frame[frame.dataset.isin(names)]
        if not len(rows):
            continue
        block = compare_table(rows, labels, BASELINES_3)
        finished = rows.pivot_table(index="dataset", columns="label", values="test_accuracy").dropna()
        done = rows[rows.dataset.isin(finished.index)]
        seconds = done.groupby("label").seconds.sum()
        block["seconds"] = {label: round(float(seconds.get(label, float("nan"))), 2) for label in labels}
        block["cost_ratio"] = {
            label: round(float(seconds.get(label, float("nan")) / seconds.get("fact", float("nan"))), 2)
            for label in labels
        }
        block["complete"] = len(finished) == len(names)
        result[part] = block
        ratios = ", ".join(f"{label} {block['cost_ratio'][label]:.2f}×" for label in labels)
        title = {"A+B": "Halves A and B", "supplement": "Supplement (1,000 < n ≤ 2,000; no vote)"}
        heading = f"## {title.get(part, f'Half {part}')} ({len(finished)} of {len(names)} datasets finished)"
        text += [heading, "", markdown_table(block)]
        text += [f"Seconds (selection + evaluation), ratio to `fact`: {ratios}", ""]
    result["verdict"] = verdict_3(result)
    text += [f"**Verdict:** {result['verdict']}", ""]
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    (out / "summary.md").write_text("\n".join(text))
    return result


def verdict_3(result: dict) -> str:
    """The rule fixed in benchmarks/README.md before round 3 ran."""
    if not (result["A"]["complete"] and result["B"]["complete"]):
        return "withheld: not every dataset of both halves is finished"
    passing = []
    for label, _ in ENTRIES_3[1:]:
        a, b = result["A"]["versus"][label]["fact"], result["B"]["versus"][label]["fact"]
        on_a = a["mean_diff"] > 0 and a["wins"] > a["losses"] and a["wilcoxon_p"] < 0.05
        on_b = b["mean_diff"] > 0 and b["wins"] >= b["losses"]
        if on_a and on_b:
            passing.append(label)
    if not passing:
        return "keep the default: no variant passes on half A and holds on half B"
    means = result["A+B"]["mean"]
    top = max(means[label] for label in passing)
    tied = [label for label in passing if means[label] >= top - 0.05]
    chosen = min(tied, key=lambda label: result["A+B"]["cost_ratio"][label])
    return f"adopt {chosen} (passing: {', '.join(passing)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary", action="store_true", help="only summarize what is finished")
    parser.add_argument("--round", type=int, choices=(1, 2, 3), default=1)
    args = parser.parse_args()
    root = args.data / "uci"
    if args.round == 3:
        out = OUT / "round3"
        if not args.summary:
            names = by_size(root, sum(halves(root), [])) + by_size(root, supplement(root))
            run(root, args.threads, ENTRIES_3, names, out, isolated=True)
        summary_3(root, out)
        print((out / "summary.md").read_text())
        return
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
