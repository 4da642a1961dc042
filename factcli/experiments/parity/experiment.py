"""`fact parity`: sparse parity learned by FACT-RFM, NFA-RFM, the Laplace baseline or a network
(docs/SPEC.md §6).

One row of metrics.csv per RFM iterate t (or per logged network step): test accuracy and MSE, the
training fit, and what the feature matrix M (W₁ᵀW₁ for the network) says about the support (support
mass, top-k exact, effective rank; see measures.py). The summary holds the figures a sweep
compares as top-level scalars: final test accuracy, the first iteration / step reaching 95% and 99%,
whether the support was recovered. A sweep over n also gets the sample-size phase-transition plot
(sweep.py, a Hydra callback listed in conf/parity/parity.yaml).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from factcli.core.rfm import FeatureCollapse, InaccurateSolve, rfm_path
from factcli.data.parity import make_parity
from factcli.errors import FactError
from factcli.messages import reached
from factcli.progress import track
from factcli.runtime import resolve_device

from ..common.rfm import COLLAPSE_ADVICE, check_kernel_memory, rfm_options
from ..common.trace import LearnerTrace, first_reaching
from .measures import accuracy_and_mse, feature_measures
from .net import train_network
from .plots import plot_run

log = logging.getLogger("fact")

# A constant prediction of 1/2 on both one-hot outputs has MSE 1/4; "the loss dropped" means the
# test MSE fell below half of that. "Near chance" means test accuracy within 5 points of 50%.
CHANCE_MSE = 0.25
CHANCE_BAND = 0.05


# Where the n×n matrix does not fit, the Nyström path does (n×m kernel blocks): one million rows of
# d = 100, k = 4 with these options in benchmarks/README.md.
NYSTROM_REMEDY = (
    "use the Nyström path, e.g. rfm.solver=nystrom rfm.centers=1000 (memory grows with n×centres, "
    "not n²), or a smaller n"
)


def run(cfg, run) -> dict:
    device = resolve_device(cfg.device)
    # The solver and its memory are settled before the data is drawn (10⁶ rows take a while).
    solver = None if cfg.learner == "net" else choose_rfm_solver(cfg, device)
    data = make_parity(
        cfg.n,
        cfg.d,
        cfg.k,
        cfg.test_size,
        seed=cfg.seed,
        support=None if cfg.support is None else list(cfg.support),
        inputs=cfg.inputs,
        label_noise=cfg.label_noise,
    )
    log.info(
        f"parity d={cfg.d} k={cfg.k} support={','.join(map(str, data.support))} n={cfg.n} "
        f"test={cfg.test_size} "
        f"inputs={cfg.inputs} noise={cfg.label_noise:g} ({data.flipped} flipped); "
        f"learner={cfg.learner} on {device}"
    )
    started = time.perf_counter()
    if cfg.learner == "net":
        unit, trace = "step", train_network(cfg, data, device, run)
    else:
        unit, trace = "iteration", fit_rfm(cfg, data, device, run, *solver)
    seconds = time.perf_counter() - started
    summary = summarize(trace.rows, unit, data, cfg, seconds)
    if cfg.plots:
        matrices = {row[unit]: M.numpy() for row, M in zip(trace.rows, trace.matrices, strict=True)}
        plot_run(run, trace.rows, unit, matrices, data.support, summary)
    log.info(
        "test accuracy %.4f; 95%% %s, 99%% %s; support %s (%.1f s)",
        summary["test_accuracy"],
        reached(summary["first_95_at"], unit),
        reached(summary["first_99_at"], unit),
        "recovered" if summary["support_recovered"] else "not recovered",
        seconds,
    )
    return {**summary, **trace.details, "device": str(device)}


# --------------------------------------------------------------------------------------- RFM


def choose_rfm_solver(cfg, device):
    """(options, solver choice) for an RFM learner; refuses an n×n matrix that cannot fit, naming the
    Nyström options that do."""
    from ..common import scalable

    options = rfm_options(cfg, cfg.learner)
    choice = scalable.choose_solver(cfg.rfm, cfg.n, options.precision, device, cfg.memory_limit_gb)
    if choice.solver == "exact":
        needed = check_kernel_memory(cfg.n, options.precision, device, cfg.memory_limit_gb, NYSTROM_REMEDY)
        if options.precision == "auto":
            log.info("precision=auto: float32 first; a float64 redo would need %.1f GiB", 2 * needed / 2**30)
    return options, choice


def fit_rfm(cfg, data, device, run, options, choice) -> LearnerTrace:
    """Every iterate of the RFM path scored on the test set; M_t of every t saved to feature_matrices.npy."""
    from ..common import scalable

    iters = 0 if cfg.learner == "laplace" else options.iters
    estimate = scalable.estimate_seconds(
        options.kernel, choice, cfg.n, cfg.d, 2, iters + 1, iters, options.method, cfg.rfm.cg_max_iters
    )
    scalable.announce(choice, estimate, None)
    if choice.solver == "nystrom":
        progress = scalable.FitProgress(iters + 1, estimate)  # no bar (track draws one): CG steps in the log
        progress.where = f"{cfg.learner}-RFM"
        options = scalable.with_choice(options, choice, cfg.rfm, cfg.seed, progress.step)
    X = torch.as_tensor(data.X_train, device=device)
    labels = torch.as_tensor(data.y_train, device=device)
    Y = torch.nn.functional.one_hot(labels, 2).to(X.dtype)
    X_test = torch.as_tensor(data.X_test, device=device)
    y_test = torch.as_tensor(data.y_test, device=device)

    matrices, dtypes = [], set()
    started = time.perf_counter()
    path = rfm_path(X, Y, options)
    total = 1 if cfg.learner == "laplace" else options.iters + 1
    try:
        for iterate in track(path, f"{cfg.learner}-RFM iterations", total):
            predictor = iterate.predictor
            test_accuracy, test_mse = accuracy_and_mse(predictor(X_test), y_test)
            # Exact kernel ridge regression fits its training data up to its ridge: f(X) = Y − λ_r α,
            # so the training fit costs no second n×n pass (Nyström keeps f(X) from its solve).
            train_outputs = predictor.training_outputs(Y.to(predictor.alpha), options.ridge)
            train_accuracy, train_mse = accuracy_and_mse(train_outputs, labels)
            row = {
                "iteration": iterate.t,
                "test_accuracy": test_accuracy,
                "test_mse": test_mse,
                "train_accuracy": train_accuracy,
                "train_mse": train_mse,
                **feature_measures(iterate.M, data.support),
                "precision": iterate.solve.precision,
                "solve_residual": iterate.solve.relative_residual,
                "cg_steps": iterate.solve.cg_steps,
                "seconds": round(time.perf_counter() - started, 3),
            }
            run.log(**row)
            log.info(
                f"t={iterate.t} test accuracy {test_accuracy:.4f}, support mass {row['support_mass']:.4f}, "
                f"top-{cfg.k} {row['top_k']} ({row['precision']})"
            )
            matrices.append(iterate.M.cpu())
            dtypes.add(row["precision"])
    except InaccurateSolve as error:
        advice = "raise rfm.ridge or use rfm.precision=float64"
        advice = COLLAPSE_ADVICE if isinstance(error, FeatureCollapse) else advice
        raise FactError(f"{error}; {advice}") from None
    np.save(run.file("feature_matrices.npy"), np.stack([M.numpy() for M in matrices]))  # (iterations, d, d)
    details = {
        "kernel": {"name": options.kernel.name, "bandwidth": options.kernel.bandwidth},
        "ridge": options.ridge,
        "iters": options.iters,
        "rescale": options.rescale,
        "precision_used": sorted(dtypes),
        "solver": {"name": choice.solver, "reason": choice.reason, "centers": choice.centers},
    }
    return LearnerTrace(run.metrics, matrices, time.perf_counter() - started, details=details)


# ----------------------------------------------------------------------------------- summary


def summarize(rows: list[dict], unit: str, data, cfg, seconds: float) -> dict:
    """The figures a sweep compares, as top-level scalars (sweep.csv keeps scalars only)."""
    steps = [row[unit] for row in rows]
    accuracy = [row["test_accuracy"] for row in rows]
    first_95 = first_reaching(steps, accuracy, 0.95)
    drop = first_reaching(steps, [-row["test_mse"] for row in rows], -CHANCE_MSE / 2)
    # The stretch of hidden progress: logged points before reaching 95% with accuracy near chance.
    before_jump = [row for row in rows if first_95 is None or row[unit] < first_95]
    at_chance = [row for row in before_jump if abs(row["test_accuracy"] - 0.5) <= CHANCE_BAND]
    last = rows[-1]
    return {
        "learner": cfg.learner,
        "d": cfg.d,
        "k": cfg.k,
        "n": cfg.n,
        "test_size": cfg.test_size,
        "inputs": cfg.inputs,
        "label_noise": cfg.label_noise,
        "support": list(data.support),
        "unit": unit,
        "test_accuracy": last["test_accuracy"],
        "test_mse": last["test_mse"],
        "best_test_accuracy": max(accuracy),
        "first_95_at": first_95,
        "first_99_at": first_reaching(steps, accuracy, 0.99),
        "loss_drop_at": drop,
        "near_chance_before_95": len(at_chance),
        "support_mass_rise_near_chance": (
            at_chance[-1]["support_mass"] - at_chance[0]["support_mass"] if at_chance else None
        ),
        "support_mass": last["support_mass"],
        "support_recovered": bool(last["top_k_exact"]),
        "first_support_recovered_at": first_reaching(steps, [float(r["top_k_exact"]) for r in rows], 1.0),
        "effective_rank": last["effective_rank"],
        "fit_seconds": round(seconds, 3),
    }
