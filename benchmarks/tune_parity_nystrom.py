"""Sparse parity on the Nyström path: validation accuracy per iterate for a few settings, never the test.

`python benchmarks/tune_parity_nystrom.py --n 100000 --settings '{}' '{"form": "diagonal"}'`
→ one JSON line per setting in results/parity_nystrom_tuning.jsonl (appended, so runs accumulate).

The training set is `fact parity`'s (make_parity, seed 0, d = 100, k = 4 by default); the validation
set is 10,000 fresh points of the same parity (another seed, the same support). Each setting is a
JSON object over the parity defaults: L (kernel.bandwidth), ridge, iters, centers, cg (rfm.cg_max_iters),
form, power (rfm.fact_power). Per iterate: validation accuracy, support mass of M, CG steps used.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from common import RESULTS

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, rfm_path
from factcli.core.solvers import NystromSolver
from factcli.data.parity import make_parity

DEFAULTS = {"L": 10.0, "ridge": 1e-3, "iters": 10, "centers": 1000, "cg": 15, "form": "full", "power": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--settings", nargs="+", default=["{}"], help="JSON objects over " + json.dumps(DEFAULTS)
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = make_parity(args.n, args.d, args.k, 1000, seed=0)
    validation = make_parity(2, args.d, args.k, 10_000, seed=123, support=list(data.support))
    X = torch.as_tensor(data.X_train)
    Y = torch.nn.functional.one_hot(torch.as_tensor(data.y_train), 2).to(X.dtype)
    X_val, y_val = torch.as_tensor(validation.X_test), torch.as_tensor(validation.y_test)
    support = list(data.support)
    for text in args.settings:
        setting = {**DEFAULTS, **json.loads(text)}
        options = RFMOptions(
            kernel=Kernel("laplace", setting["L"]),
            method="fact",
            ridge=setting["ridge"],
            iters=setting["iters"],
            form=setting["form"],
            fact_power=setting["power"],
            solver=NystromSolver(centers=setting["centers"], cg_max_iters=setting["cg"]),
        )
        started, iterates = time.perf_counter(), []
        for iterate in rfm_path(X, Y, options):
            accuracy = float((iterate.predictor(X_val).argmax(1) == y_val).double().mean())
            diagonal = iterate.M.diagonal()
            mass = float(diagonal[support].sum() / diagonal.sum())
            steps = iterate.solve.cg_steps
            iterates.append(
                {"t": iterate.t, "val_accuracy": accuracy, "support_mass": mass, "cg_steps": steps}
            )
            print(
                json.dumps({**setting, **iterates[-1], "seconds": round(time.perf_counter() - started)}),
                flush=True,
            )
        record = {
            "n": args.n,
            "d": args.d,
            "k": args.k,
            **setting,
            "iterates": iterates,
            "seconds": round(time.perf_counter() - started, 1),
            "load1": os.getloadavg()[0],
        }
        RESULTS.mkdir(exist_ok=True)
        with open(RESULTS / "parity_nystrom_tuning.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
