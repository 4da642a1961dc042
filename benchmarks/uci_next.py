"""Issue 15, item 6: the 96-dataset UCI table with the new defaults, tuned baselines and both protocols.

`python benchmarks/uci_next.py` runs (resumably: one JSON per (dataset, row) under `uci-next/results/`,
smallest datasets first) the rows L2-KRR, L1-KRR, SVC-RBF, fact, nfa and fact-geo, every one selected on
the tuning split by issue 15's grid and tie rule (benchmarks/README.md), evaluated with the strict and the
paper protocol. `--snapshot` (also run at the end) writes `uci-next/table.csv`, `summary.json` and
`summary.md` from whatever is finished. The previous table stays in `uci/` for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "uci-next"
PROTOCOLS = ["strict", "paper"]
ENTRIES = [  # the defaults chosen by the variant study (benchmarks/README.md): L2 kernel, full M
    ("L2-KRR", {"kind": "krr"}),
    ("L1-KRR", {"kind": "krr", "kernel": "l1"}),
    ("SVC-RBF", {"kind": "svc"}),
    ("fact", {"fact_power": 2.0}),
    ("nfa", {"method": "nfa"}),
    ("fact-geo", {"method": "fact-geo"}),
]
BASELINES = ["L2-KRR", "L1-KRR", "SVC-RBF"]


def settings() -> dict:
    from factcli.experiments.rfm.grid import GridSpec

    return {"grid": asdict(GridSpec()), "precision": "auto", "entries": dict(ENTRIES), "protocols": PROTOCOLS}


def run(root: Path, threads: int, max_samples: int) -> None:
    import torch

    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions
    from factcli.data.uci import list_uci, load_uci, uci_rows
    from factcli.experiments.rfm.grid import GridSpec
    from factcli.experiments.rfm.suite import Entry, Suite

    torch.set_num_threads(threads)
    store = OUT / "results"
    store.mkdir(parents=True, exist_ok=True)
    expected = json.loads(json.dumps(settings()))
    options = RFMOptions(kernel=Kernel("laplace", 10.0), precision="auto")
    for n, name in sorted((uci_rows(root, name), name) for name in list_uci(root)):
        if n > max_samples:
            continue
        pending = []
        for label, fields in ENTRIES:
            path = store / f"{name}__{label}.json"
            if path.exists():
                if json.loads(path.read_text())["settings"] != expected:
                    raise SystemExit(f"error: {path} was made with other settings; use another folder")
                continue
            pending.append((label, fields))
        if not pending:
            continue
        suite = Suite(load_uci(root, name), GridSpec(), options)
        for label, fields in pending:
            started = time.perf_counter()
            rows = suite.run(Entry(label, **fields), PROTOCOLS)
            record = {
                "settings": expected,
                "rows": rows,
                "wall_seconds": time.perf_counter() - started,
                "load1": os.getloadavg()[0],
                "threads": threads,
            }
            (store / f"{name}__{label}.json").write_text(json.dumps(record, indent=1))
            scores = ", ".join(f"{r['protocol']} {r['test_accuracy']:.2f}" for r in rows)
            print(
                f"{name} (n={n}) {label}: {scores} t={rows[0]['iteration']} ({record['wall_seconds']:.1f} s, "
                f"load {record['load1']:.1f}) {rows[0]['error']}",
                flush=True,
            )


def snapshot() -> dict:
    import pandas as pd

    from factcli.experiments.rfm.compare import report, with_leak
    from factcli.experiments.rfm.suite import TABLE_COLUMNS

    paths = sorted((OUT / "results").glob("*__*.json"))
    rows = [row for path in paths for row in json.loads(path.read_text())["rows"]]
    frame = with_leak(pd.DataFrame(rows, columns=TABLE_COLUMNS), "label")
    labels = [label for label, _ in ENTRIES]
    done = frame.groupby("dataset").label.nunique()
    frame = frame[frame.dataset.isin(done[done == len(labels)].index)]  # datasets with every row
    summary, markdown = report(frame, labels, BASELINES, "label")
    summary["datasets_complete"] = int(frame.dataset.nunique())
    summary["seconds"] = {
        label: round(float(json_seconds), 1)
        for label, json_seconds in frame[frame.protocol == "strict"]
        .groupby("label")
        .selection_seconds.sum()
        .items()
    }
    frame.to_csv(OUT / "table.csv", index=False)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    (OUT / "summary.md").write_text(f"{summary['datasets_complete']} of 96 datasets complete.\n\n" + markdown)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("FACT_DATA", HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-samples", type=int, default=100_000)
    parser.add_argument("--snapshot", action="store_true", help="only summarize what is finished")
    args = parser.parse_args()
    if not args.snapshot:
        run(args.data / "uci", args.threads, args.max_samples)
    print((OUT / "summary.md").read_text() if snapshot() else "")


if __name__ == "__main__":
    main()
