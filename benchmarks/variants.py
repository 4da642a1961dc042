"""Issue 15, item 1: feature-learning variants against tuned baselines, strict protocol, float64.

`python benchmarks/variants.py` — the shipped UCI datasets with 150 ≤ n ≤ 2,000 rows, every other one
by (size, name) (27 datasets); each (dataset, entry) result is written as soon as it is finished under
`variants/results/`, so a rerun resumes; `--summary` (also run at the end) writes `variants/summary.json`
and `variants/summary.md`: every entry's mean, W/T/L and Wilcoxon p against every baseline, failures.
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


def subset(root: Path) -> list[str]:
    from factcli.data.uci import list_uci, uci_rows

    sized = sorted((uci_rows(root, name), name) for name in list_uci(root))
    return [name for n, name in sized if 150 <= n <= 2000][::2]


def run(root: Path, threads: int) -> None:
    import torch

    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions
    from factcli.data.uci import load_uci
    from factcli.experiments.rfm.grid import GridSpec
    from factcli.experiments.rfm.suite import Entry, Suite

    torch.set_num_threads(threads)
    store = OUT / "results"
    store.mkdir(parents=True, exist_ok=True)
    options = RFMOptions(kernel=Kernel("laplace", 10.0), precision="float64")
    for name in subset(root):
        pending = [(label, f) for label, f in ENTRIES if not (store / f"{name}__{label}.json").exists()]
        if not pending:
            continue
        suite = Suite(load_uci(root, name), GridSpec(), options)
        for label, fields in pending:
            started = time.perf_counter()
            rows = suite.run(Entry(label, **fields), ["strict"])
            load = os.getloadavg()[0]
            record = {"rows": rows, "wall_seconds": time.perf_counter() - started, "load1": load}
            (store / f"{name}__{label}.json").write_text(json.dumps(record, indent=1))
            row = rows[0]
            print(
                f"{name} {label}: {row['test_accuracy']:.2f} t={row['iteration']} "
                f"({record['wall_seconds']:.1f} s, load {load:.1f}) {row['error']}",
                flush=True,
            )


def summary() -> dict:
    import pandas as pd

    from factcli.experiments.rfm.compare import compare_table, markdown_table

    rows = [
        row
        for path in sorted((OUT / "results").glob("*.json"))
        for row in json.loads(path.read_text())["rows"]
    ]
    frame = pd.DataFrame(rows)
    result = compare_table(frame, [label for label, _ in ENTRIES], BASELINES)
    seconds = frame.groupby("label")[["selection_seconds", "eval_seconds"]].sum().sum(axis=1)
    result["seconds"] = {label: round(float(v), 1) for label, v in seconds.items()}
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "note": "shared, contended"}
    (OUT / "summary.json").write_text(json.dumps(result, indent=1))
    (OUT / "summary.md").write_text(markdown_table(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary", action="store_true", help="only summarize what is finished")
    args = parser.parse_args()
    if not args.summary:
        run(args.data / "uci", args.threads)
    from factcli.experiments.rfm.compare import markdown_table

    print(markdown_table(summary()))


if __name__ == "__main__":
    main()
