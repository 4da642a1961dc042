"""The final default's strict benchmark with the L1 kernel's functions as they are and as they were,
in one process: `python benchmarks/bench_l1_grid.py semeion plant-margin` → results/l1_grid.json.

bench_grid.py --final compares the final default with today's grid; its wall-clock ratio needs a
quiet machine. This swaps only factcli.core.l1kernel's gram / fact_matrix / agop_matrix for the
versions at ``--before`` (bench_l1.module_at) and times the final default's four rows (KRR-auto,
nfa, fact, fact-geo) both ways, alternating, in CPU seconds of this one-thread process (which a
shared machine inflates less than wall time), with the test accuracies of both.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from bench_grid import FINAL
from bench_l1 import BEFORE, module_at
from common import write_result

from factcli.core import l1kernel

HERE = Path(__file__).resolve().parent
SWAPPED = ("gram", "fact_matrix", "agop_matrix")


def final_rows(root: Path, name: str) -> tuple[float, float, dict]:
    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions
    from factcli.data.uci import load_uci
    from factcli.experiments.rfm.grid import GridSpec
    from factcli.experiments.rfm.suite import Entry, Suite

    data = load_uci(root, name)
    suite = Suite(data, GridSpec(), RFMOptions(kernel=Kernel("laplace", 10.0), precision="auto"))
    cpu, wall = time.process_time(), time.perf_counter()
    accuracy = {
        label: suite.run(Entry(label, **fields), ["strict"])[0]["test_accuracy"] for label, fields in FINAL
    }
    return time.process_time() - cpu, time.perf_counter() - wall, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--before", default=BEFORE)
    data_root = Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=data_root)
    args = parser.parse_args()
    torch.set_num_threads(1)
    versions = {"after": {f: getattr(l1kernel, f) for f in SWAPPED}}
    old = module_at(args.before)
    versions["before"] = {f: getattr(old, f) for f in SWAPPED}
    rows = []
    for index, name in enumerate(args.datasets):
        row = {"dataset": name, "load1_start": os.getloadavg()[0]}
        for version in ("before", "after") if index % 2 == 0 else ("after", "before"):
            for function, value in versions[version].items():
                setattr(l1kernel, function, value)
            cpu, wall, accuracy = final_rows(args.data / "uci", name)
            row.update({f"{version}_cpu_seconds": round(cpu, 2), f"{version}_wall_seconds": round(wall, 2)})
            row[f"{version}_accuracy"] = accuracy
        row["load1_end"] = os.getloadavg()[0]
        row["cpu_after_over_before"] = round(row["after_cpu_seconds"] / row["before_cpu_seconds"], 3)
        row["same_accuracies"] = row["after_accuracy"] == row["before_accuracy"]
        rows.append(row)
        print(row, flush=True)
        write_result("l1_grid", {"before": args.before, "argv": sys.argv[1:], "rows": rows})


if __name__ == "__main__":
    main()
