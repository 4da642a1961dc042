"""Snapshot the UCI benchmark's finished results into benchmarks/uci/ (table.csv, summary.json/.md).

`python benchmarks/uci_snapshot.py runs/uci-benchmark` — works while the benchmark is still running
(finished (dataset, method) results only), so the committed table can be compared against later.
`python benchmarks/uci_snapshot.py benchmarks/uci` re-summarizes a snapshot's own table.csv.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from factcli.choices import METHODS, PROTOCOLS
from factcli.experiments.rfm.benchmark import TABLE_COLUMNS, collect_rows, summarize
from factcli.experiments.rfm.compare import report, with_leak
from factcli.rundir import write_json

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the benchmark's run (or results_dir) folder")
    parser.add_argument("--out", type=Path, default=HERE / "uci")
    args = parser.parse_args()
    store = args.run_dir / "results"
    if store.is_dir():
        names = sorted({path.name.split("__")[0] for path in store.glob("*__*.json")})
        table = collect_rows(store, names, list(METHODS), list(PROTOCOLS))
    elif (args.run_dir / "table.csv").is_file():  # re-summarize a snapshot (e.g. the committed uci/)
        table = pd.read_csv(args.run_dir / "table.csv")[TABLE_COLUMNS].to_dict("records")
        names = sorted({row["dataset"] for row in table})
    else:
        sys.exit(
            f"error: neither {store} nor {args.run_dir / 'table.csv'} found; give the benchmark's folder"
        )
    summary = summarize(table, names, list(METHODS), list(PROTOCOLS))
    # Issue 15: every method against the baseline (W/T/L, Wilcoxon p, by size), strict first, and the
    # paper protocol's leak per dataset (column paper_minus_strict).
    frame = with_leak(pd.DataFrame(table), "method")
    summary["comparison"], markdown = report(frame, list(METHODS), ["laplace"], "method")
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "table.csv", index=False, columns=[*TABLE_COLUMNS, "paper_minus_strict"])
    write_json(args.out / "summary.json", summary)
    (args.out / "summary.md").write_text(markdown)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
