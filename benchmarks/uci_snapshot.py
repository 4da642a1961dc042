"""Snapshot the UCI benchmark's finished results into benchmarks/uci/ (table.csv, summary.json/.md).

`python benchmarks/uci_snapshot.py runs/uci-benchmark` — works while the benchmark is still running
(finished (dataset, row) results only: the folder's results.csv), so the committed table can be
compared against later.
`python benchmarks/uci_snapshot.py benchmarks/uci` re-summarizes a snapshot's own table.csv (also
one made before issue 15, one row per method). The summary leads with the strict protocol: every row
against every baseline (mean Δ, wins/ties/losses, Wilcoxon p, by size), then the paper protocol with
its leak per dataset (table column paper_minus_strict).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from factcli.choices import BASELINES, METHODS, PROTOCOLS
from factcli.experiments.rfm.benchmark import open_store, summarize
from factcli.experiments.rfm.compare import with_leak
from factcli.rundir import write_json

HERE = Path(__file__).resolve().parent


def ordered(labels) -> list[str]:
    """Methods first, then baselines, then anything else (e.g. a variant), each in its usual order."""
    known = [*METHODS, *BASELINES]
    return sorted(
        set(labels), key=lambda label: (known.index(label) if label in known else len(known), label)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_dir", type=Path, help="the benchmark's run (or results_dir) folder, or a snapshot"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: benchmarks/uci, or run_dir for a snapshot"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=[],
        help="other results folders (shards run elsewhere): results run_dir lacks are added to it",
    )
    args = parser.parse_args()
    store = open_store(args.run_dir)
    for other in args.merge:
        print(f"{store.merge(open_store(other))} results added from {other}", file=sys.stderr)
    if store.exists():
        pairs = store.pairs()
        names = sorted({name for name, _ in pairs})
        labels = ordered(label for _, label in pairs)
        table = store.rows(names, labels, list(PROTOCOLS))
        out = args.out or HERE / "uci"
    elif (args.run_dir / "table.csv").is_file():
        table = pd.read_csv(args.run_dir / "table.csv", keep_default_na=False, na_values=[""]).to_dict(
            "records"
        )
        names = sorted({row["dataset"] for row in table})
        labels = ordered(row.get("label") or row["method"] for row in table)
        out = args.out or args.run_dir
    else:
        sys.exit(
            f"error: neither {store.path} nor {args.run_dir / 'table.csv'} found; give the benchmark's folder"
        )
    summary = summarize(table, names, labels, list(PROTOCOLS))
    markdown = summary.pop("markdown", "")
    frame = pd.DataFrame(table)
    if "label" not in frame:
        frame["label"] = frame["method"]
    out.mkdir(parents=True, exist_ok=True)
    with_leak(frame).to_csv(out / "table.csv", index=False)
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(markdown)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
