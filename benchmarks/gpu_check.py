"""Every subcommand on one device against a reference device: `python benchmarks/gpu_check.py --device cuda`.

Each subcommand runs briefly through the real CLI on ``--device`` and on ``--reference`` (default
cpu), in float64 wherever the subcommand offers it, and the numbers are compared:

- fit-rfm (fact and nfa on wine): the chosen hyperparameters and accuracies are the same;
  the learned feature matrix M (FACT or AGOP) agrees to 1e-6 relative (Frobenius);
- train-net (full-batch GD, float64, a teacher task): the same accuracies; the training loss agrees;
- verify-fact on the reference device's trained network: the FACT, AGOP and eNFA matrices of every
  layer agree to 1e-6 relative, and so does the per-layer table (correlations, residuals); the same
  for the SPEC §9 network, trained and polished to its critical point on each device;
- grokking (FACT-RFM on (a + b) mod 11) and parity (d = 10, k = 2): the accuracy of every iterate is
  the same, its loss and every M_t agree to 1e-6 relative.

Then the engine is timed on ``--device``: one FACT-RFM iteration at n rows beside one Cholesky
factorization of the n×n kernel matrix, its floor. The result goes to
``benchmarks/results/gpu_check.json`` (or ``--out``); the exit status is 1 when any check fails.
``--quick`` shrinks the engine timing so the test suite can run this on the CPU against itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
RTOL = 1e-6

FIT_RFM = ["dataset=wine", "rfm.iters=2", "rfm.precision=float64", "grid.ridges=[1.0,0.01]"]
TRAIN_NET = [
    "dataset=teacher",
    "dtype=float64",
    "optim=gd",
    "optim.lr=0.05",
    "model.hidden=[16,16]",
    "train.max_steps=40",
    "train.check_every=20",
    "train.log_every=20",
    "train.checkpoint_every=20",
]
COUNTEREXAMPLE = ["experiment=nets/nfa_counterexample", "train.max_steps=500", "train.check_every=250"]
GROKKING = ["p=11", "learner=fact", "rfm.iters=2", "measures.tau=false"]
PARITY = ["d=10", "k=2", "n=200", "test_size=300", "learner=fact", "rfm.iters=3", "rfm.precision=float64"]


def cli(*args) -> None:
    """Run one `fact` command in this process; a failure stops the check with its message."""
    from typer.testing import CliRunner

    from factcli.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(f"fact {' '.join(map(str, args))} failed: {result.stderr or result.exception}")


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(b), 1e-300)
    return float(np.linalg.norm(a - b) / scale)


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


class Checks:
    def __init__(self):
        self.rows: list[dict] = []

    def same(self, name: str, value, reference) -> None:
        self.rows.append({"check": name, "value": value, "reference": reference, "ok": value == reference})

    def close(self, name: str, value, reference, rtol: float = RTOL) -> None:
        error = relative(value, reference)
        self.rows.append({"check": name, "relative_error": error, "rtol": rtol, "ok": error <= rtol})

    @property
    def ok(self) -> bool:
        return all(row["ok"] for row in self.rows)


def run_everywhere(out: Path, name: str, command: str, overrides: list[str], devices: list[str]) -> dict:
    runs = {}
    for device in dict.fromkeys(devices):
        runs[device] = out / f"{name}_{device}"
        cli(command, *overrides, f"device={device}", "plots=false", f"hydra.run.dir={runs[device]}")
    return runs


def check_fit_rfm(out: Path, device: str, reference: str, checks: Checks) -> None:
    for method in ("fact", "nfa"):
        runs = run_everywhere(
            out, f"fit_rfm_{method}", "fit-rfm", [*FIT_RFM, f"method={method}"], [device, reference]
        )
        got, ref = summary(runs[device]), summary(runs[reference])
        checks.same(f"fit-rfm {method}: chosen", got["chosen"], ref["chosen"])
        checks.same(f"fit-rfm {method}: test accuracy", got["test_accuracy"], ref["test_accuracy"])
        checks.same(f"fit-rfm {method}: validation accuracy", got["val_accuracy"], ref["val_accuracy"])
        checks.close(
            f"fit-rfm {method}: M",
            np.load(runs[device] / "feature_matrix.npy"),
            np.load(runs[reference] / "feature_matrix.npy"),
        )


def check_train_and_verify(out: Path, device: str, reference: str, checks: Checks) -> None:
    runs = run_everywhere(out, "train_net", "train-net", TRAIN_NET, [device, reference])
    got, ref = summary(runs[device]), summary(runs[reference])
    for key in ("train_acc", "test_acc", "steps", "stop_reason"):
        checks.same(f"train-net: {key}", got[key], ref[key])
    checks.close("train-net: train loss", got["train_loss"], ref["train_loss"])
    compare_tables(checks, "train-net: FACT / NFA per layer", layer_numbers(got), layer_numbers(ref))

    source = runs[reference]
    verified = run_everywhere(
        out, "verify_fact", "verify-fact", [f"source={source}", "verify.dtype=float64"], [device, reference]
    )
    got, ref = summary(verified[device]), summary(verified[reference])
    compare_tables(checks, "verify-fact: per-layer table", layer_numbers(got), layer_numbers(ref))
    for key, (a, b) in layer_matrices(source, device, reference).items():
        checks.close(f"verify-fact: {key}", a, b)

    # SPEC §9: Adam, then the exact polish of the quadratic net (experiments/nets/polish.py) on the device.
    runs = run_everywhere(out, "counterexample", "verify-fact", COUNTEREXAMPLE, [device, reference])
    got, ref = summary(runs[device]), summary(runs[reference])
    compare_tables(checks, "verify-fact §9: per-layer table", layer_numbers(got), layer_numbers(ref))


def layer_numbers(summary: dict) -> dict[str, float]:
    """Every number of the per-layer table, keyed by layer and column."""
    return {
        f"{i}:{key}": value
        for i, row in enumerate(summary["layers"])
        for key, value in row.items()
        if isinstance(value, float)
    }


def compare_tables(checks: Checks, name: str, got: dict, ref: dict) -> None:
    checks.same(f"{name} columns", sorted(got), sorted(ref))
    keys = sorted(set(got) & set(ref))
    checks.close(name, [got[k] for k in keys], [ref[k] for k in keys])


def layer_matrices(source: Path, device: str, reference: str) -> dict:
    """F, AGOP and E of every layer of the trained network, computed on both devices in float64."""
    import torch
    from omegaconf import OmegaConf

    from factcli.core.layer_table import layer_table
    from factcli.experiments.nets.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
    from factcli.experiments.nets.data import load_net_data
    from factcli.experiments.nets.train import training_targets

    path = find_checkpoint(str(source))
    payload = load_checkpoint(path)
    cfg = OmegaConf.create(payload["config"])
    data = load_net_data(cfg.dataset, cfg.data, int(cfg.seed))
    Y, _ = training_targets(data, cfg.loss, torch.float64)
    matrices: dict[str, list] = {}
    for where in (device, reference):
        model = model_from_checkpoint(payload, path).to(where)
        stats = layer_table(
            model,
            (data.X_train.to(where), Y.to(where)),
            cfg.loss,
            float(cfg.optim.weight_decay),
            dtype=torch.float64,
            batch_size=256,
            per_sample=True,
        )
        for number, layer in enumerate(stats.layers, start=1):
            for name in ("fact", "fact_per_sample", "agop", "enfa"):
                value = getattr(layer, name)
                if value is not None:
                    matrices.setdefault(f"W{number} {name}", []).append(value.detach().cpu().numpy())
    return {key: tuple(pair) for key, pair in matrices.items()}


def check_grokking_and_parity(out: Path, device: str, reference: str, checks: Checks) -> None:
    runs = run_everywhere(out, "grokking", "grokking", GROKKING, [device, reference])
    a, b = (np.load(runs[d] / "feature_matrices.npz") for d in (device, reference))
    checks.close("grokking: every M_t", a["matrices"], b["matrices"])
    for name in ("train_accuracy", "test_accuracy"):
        checks.same(f"grokking: {name} path", column(runs[device], name), column(runs[reference], name))
    losses = [[float(v) for v in column(runs[d], "test_loss")] for d in (device, reference)]
    checks.close("grokking: test loss path", *losses)

    runs = run_everywhere(out, "parity", "parity", PARITY, [device, reference])
    checks.close(
        "parity: every M_t",
        np.load(runs[device] / "feature_matrices.npy"),
        np.load(runs[reference] / "feature_matrices.npy"),
    )
    checks.same(
        "parity: test accuracy",
        summary(runs[device])["test_accuracy"],
        summary(runs[reference])["test_accuracy"],
    )


def column(run: Path, name: str) -> list:
    import csv

    with open(run / "metrics.csv", newline="") as handle:
        return [row[name] for row in csv.DictReader(handle) if row.get(name) not in (None, "")]


def engine_against_cholesky(device: str, n: int, d: int = 20) -> dict:
    """One FACT-RFM iteration at n rows on ``device`` beside one Cholesky factorization of its kernel."""
    import torch

    from factcli.core.kernels import Kernel
    from factcli.core.rfm import RFMOptions, rfm_path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import synthetic_classification

    where = torch.device(device)
    X, y = synthetic_classification(n, d, 2)
    Xt = torch.tensor(X, device=where)
    Yt = torch.nn.functional.one_hot(torch.tensor(y, device=where), 2).double()
    result = {"device": device, "n": n, "d": d}
    for precision, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        K = Kernel().gram(Xt.to(dtype), Xt.to(dtype), None)
        K.diagonal().add_(1e-3)
        torch.linalg.cholesky(K)  # warm up (CUDA context, kernels)
        synchronize(where)
        started = time.perf_counter()
        torch.linalg.cholesky(K)
        synchronize(where)
        cholesky = time.perf_counter() - started
        del K
        options = RFMOptions(method="fact", ridge=1e-3, iters=2, precision=precision)
        marks = [time.perf_counter()]
        for _ in rfm_path(Xt, Yt, options):
            synchronize(where)
            marks.append(time.perf_counter())
        iteration = float(np.median(np.diff(marks)[1:]))
        result[precision] = {
            "iteration_seconds": round(iteration, 4),
            "cholesky_seconds": round(cholesky, 4),
            "iteration_over_cholesky": round(iteration / cholesky, 2),
        }
    return result


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device checked (cuda, cpu)")
    parser.add_argument("--reference", default="cpu", help="the device it is compared with")
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_check.json")
    parser.add_argument("--engine-n", type=int, default=None, help="rows of the engine timing")
    parser.add_argument("--quick", action="store_true", help="a small engine timing (the test suite)")
    args = parser.parse_args(argv)

    import torch

    from factcli.runtime import resolve_device

    for name in (args.device, args.reference):
        resolve_device(name)  # device=cuda without a GPU: one clear line
    checks, seconds = Checks(), {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        out = Path(scratch)
        for group in (check_fit_rfm, check_train_and_verify, check_grokking_and_parity):
            started = time.perf_counter()
            group(out, args.device, args.reference, checks)
            seconds[group.__name__] = round(time.perf_counter() - started, 1)
    n = args.engine_n or (500 if args.quick else 20_000 if args.device == "cuda" else 4_000)
    result = {
        "device": args.device,
        "reference": args.reference,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "torch": torch.__version__,
        "ok": checks.ok,
        "checks": checks.rows,
        "seconds": seconds,
        "engine": engine_against_cholesky(args.device, n),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in checks.rows:
        detail = f"rel {row['relative_error']:.1e}" if "relative_error" in row else f"{row['value']}"
        print(f"{'ok  ' if row['ok'] else 'FAIL'} {row['check']}: {detail}")
    print(json.dumps(result["engine"]))
    print(f"{'all checks passed' if checks.ok else 'SOME CHECKS FAILED'}; written to {args.out}")
    return 0 if checks.ok else 1


if __name__ == "__main__":
    sys.exit(main())
