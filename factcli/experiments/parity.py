"""`fact parity`: sparse parity learned by FACT-RFM, NFA-RFM, the Laplace baseline or a network (SPEC §6).

One row of metrics.csv per RFM iterate t (or per logged network step): test accuracy and MSE, the
training fit, and what the feature matrix M (W₁ᵀW₁ for the network) says about the support (support
mass, top-k exact, effective rank; see parity_measures.py). The summary holds the figures a sweep
compares as top-level scalars: final test accuracy, the first iteration / step reaching 95% and 99%,
whether the support was recovered. A sweep over n also gets the sample-size phase-transition plot
(parity_sweep.py, a Hydra callback listed in conf/parity.yaml).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from factcli.data.parity import make_parity
from factcli.errors import FactError
from factcli.progress import track
from factcli.runtime import require_memory, resolve_device

from .parity_measures import accuracy_and_mse, feature_measures, first_reaching

log = logging.getLogger("fact")

# A constant prediction of 1/2 on both one-hot outputs has MSE 1/4; "the loss dropped" means the
# test MSE fell below half of that. "Near chance" means test accuracy within 5 points of 50%.
CHANCE_MSE = 0.25
CHANCE_BAND = 0.05


def run(cfg, run) -> dict:
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
    device = resolve_device(cfg.device)
    log.info(
        f"parity d={cfg.d} k={cfg.k} support={list(data.support)} n={cfg.n} test={cfg.test_size} "
        f"inputs={cfg.inputs} noise={cfg.label_noise:g} ({data.flipped} flipped); "
        f"learner={cfg.learner} on {device}"
    )
    started = time.perf_counter()
    if cfg.learner == "net":
        from .parity_net import train_network

        unit, details, matrices = "step", *train_network(cfg, data, device, run)
    else:
        unit, details, matrices = "iteration", *fit_rfm(cfg, data, device, run)
    seconds = time.perf_counter() - started
    summary = summarize(run.metrics, unit, data, cfg, seconds)
    if cfg.plots:
        from .parity_plots import plot_run

        plot_run(run, run.metrics, unit, matrices, data.support, summary)
    log.info(
        "test accuracy %.4f; 95%% at %s %s, 99%% at %s; support recovered: %s (%.1f s)",
        summary["test_accuracy"],
        unit,
        summary["first_95_at"],
        summary["first_99_at"],
        summary["support_recovered"],
        seconds,
    )
    return {**summary, **details, "device": str(device)}


# --------------------------------------------------------------------------------------- RFM


def fit_rfm(cfg, data, device, run) -> tuple[dict, dict]:
    """Every iterate of the RFM path scored on the test set; M_t of every t saved to feature_matrices.npy."""
    from factcli.core.rfm import InaccurateSolve, RFMOptions, rfm_path

    from . import rfm_scalable as scalable

    options = RFMOptions.from_config(cfg, cfg.learner)
    choice = scalable.choose_solver(cfg.rfm, cfg.n, options.precision, device, cfg.memory_limit_gb)
    if choice.solver == "exact":
        check_kernel_memory(cfg.n, options.precision, device, cfg.memory_limit_gb)
    iters = 0 if cfg.learner == "laplace" else options.iters
    estimate = scalable.estimate_seconds(
        options.kernel, choice, cfg.n, cfg.d, 2, iters + 1, iters, options.method
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
                "cg_steps": getattr(iterate.solve, "iterations", None),
                "seconds": round(time.perf_counter() - started, 3),
            }
            run.log(**row)
            log.info(
                f"t={iterate.t} test accuracy {test_accuracy:.4f}, support mass {row['support_mass']:.4f}, "
                f"top-{cfg.k} {row['top_k']} ({row['precision']})"
            )
            matrices.append(iterate.M.cpu().numpy())
            dtypes.add(row["precision"])
    except InaccurateSolve as error:
        raise FactError(f"{error}; raise rfm.ridge or use rfm.precision=float64") from None
    np.save(run.file("feature_matrices.npy"), np.stack(matrices))  # (iterations, d, d)
    details = {
        "kernel": {"name": options.kernel.name, "bandwidth": options.kernel.bandwidth},
        "ridge": options.ridge,
        "iters": options.iters,
        "rescale": options.rescale,
        "precision_used": sorted(dtypes),
        "solver": {"name": choice.solver, "reason": choice.reason, "centers": choice.centers},
    }
    return details, dict(enumerate(matrices))


def check_kernel_memory(n: int, precision: str, device, limit_gb: float | None) -> None:
    """Refuse up front when the n×n kernel matrix cannot fit (the path holds one, reused every t)."""
    itemsize = 8 if precision == "float64" else 4
    limit = None if limit_gb is None else limit_gb * 2**30
    # One n×n matrix, ~10% for O(n·d) and blockwise temporaries, 2^24-entry blocks of test predictions.
    needed = 1.1 * n * n * itemsize + (1 << 24) * itemsize
    require_memory(needed, device, f"the {n}×{n} kernel matrix ({precision})", limit)
    if precision == "auto":
        log.info("precision=auto: float32 first; a float64 redo would need %.1f GiB", 2 * needed / 2**30)


# ----------------------------------------------------------------------------------- summary


def summarize(rows: list[dict], unit: str, data, cfg, seconds: float) -> dict:
    """The figures a sweep compares, as top-level scalars (sweep.csv keeps scalars only)."""
    steps = [row[unit] for row in rows]
    accuracy = [row["test_accuracy"] for row in rows]
    first_95 = first_reaching(accuracy, 0.95, steps)
    drop = first_reaching([-row["test_mse"] for row in rows], -CHANCE_MSE / 2, steps)
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
        "first_99_at": first_reaching(accuracy, 0.99, steps),
        "loss_drop_at": drop,
        "near_chance_before_95": len(at_chance),
        "support_mass_rise_near_chance": (
            at_chance[-1]["support_mass"] - at_chance[0]["support_mass"] if at_chance else None
        ),
        "support_mass": last["support_mass"],
        "support_recovered": bool(last["top_k_exact"]),
        "first_support_recovered_at": first_reaching([float(r["top_k_exact"]) for r in rows], 1.0, steps),
        "effective_rank": last["effective_rank"],
        "fit_seconds": round(seconds, 3),
    }
