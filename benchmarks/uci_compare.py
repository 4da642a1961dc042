"""Rows of a UCI benchmark run against the committed table: same choices, same accuracies?

`python benchmarks/uci_compare.py /work/uci-check` compares every (dataset, label, protocol) row of the
run's results.csv with `uci/results.csv`: the chosen kernel, bandwidth, ridge, row normalization and
iteration exactly, the fold and mean test accuracies to 1e-9. Prints each difference and a count;
exits 1 when any row differs or has no committed counterpart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
KEY = ["dataset", "label", "protocol"]
CHOICES = ["kernel", "bandwidth", "ridge", "normalize_rows", "iteration"]
SCORES = [*(f"fold{i}_accuracy" for i in range(1, 5)), "test_accuracy"]


def differences(new: pd.DataFrame, old: pd.DataFrame) -> list[str]:
    rows = new.merge(old, on=KEY, how="left", suffixes=("", "_committed"), indicator=True)
    found = [
        f"{r.dataset} {r.label} {r.protocol}: not in the committed table"
        for r in rows[rows._merge == "left_only"].itertuples()
    ]
    rows = rows[rows._merge == "both"]
    for column in CHOICES + SCORES:
        a, b = rows[column], rows[f"{column}_committed"]
        if column in SCORES or a.dtype.kind == "f":
            same = (pd.to_numeric(a) - pd.to_numeric(b)).abs() <= 1e-9 * (1 + pd.to_numeric(b).abs())
            same |= a.isna() & b.isna()
        else:
            same = a.astype(str) == b.astype(str)
        for _, r in rows[~same].iterrows():
            where = f"{r['dataset']} {r['label']} {r['protocol']}"
            found.append(f"{where}: {column} {r[column]} (committed {r[column + '_committed']})")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a benchmark run's folder (its results.csv)")
    parser.add_argument("--committed", type=Path, default=HERE / "uci" / "results.csv")
    args = parser.parse_args()
    new = pd.read_csv(args.run_dir / "results.csv")
    found = differences(new, pd.read_csv(args.committed))
    print("\n".join(found))
    datasets = new["dataset"].nunique()
    print(f"{len(new)} rows of {datasets} datasets compared: {len(found)} differences")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
