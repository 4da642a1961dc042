"""Snapshot the UCI benchmark's finished results into benchmarks/uci/ (table.csv, summary.json).

`python benchmarks/uci_snapshot.py runs/uci-benchmark` — works while the benchmark is still running
(finished (dataset, method) results only), so the committed table can be compared against later.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from factcli.choices import METHODS, PROTOCOLS
from factcli.experiments.rfm.benchmark import TABLE_COLUMNS, collect_rows, summarize
from factcli.rundir import write_csv, write_json

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="the benchmark's run (or results_dir) folder")
    parser.add_argument("--out", type=Path, default=HERE / "uci")
    args = parser.parse_args()
    store = args.run_dir / "results"
    if not store.is_dir():
        sys.exit(f"error: {store} not found; give the folder the benchmark wrote results/ into")
    names = sorted({path.name.split("__")[0] for path in store.glob("*__*.json")})
    table = collect_rows(store, names, list(METHODS), list(PROTOCOLS))
    summary = summarize(table, names, list(METHODS), list(PROTOCOLS))
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "table.csv", table, TABLE_COLUMNS)
    write_json(args.out / "summary.json", summary)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
