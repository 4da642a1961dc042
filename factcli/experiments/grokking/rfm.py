"""The RFM learners of ``fact grokking``: fact, fact-geo and nfa on one modular task (docs/SPEC.md §4, §7-8).

Each iterate M_t (t = 0..T) is scored on the training and test pairs; the circulant deviation, tr M
and (at the end, once M_T is known) the alignment of M_t with M_T are logged beside the scores.

The loop is core.rfm.rfm_path; with c = p classes and d = 2p one-hot inputs (n < c·d) its AGOP takes
the Gram form, O(n³ + n²(c + d)) rather than O(n²·c·d), which keeps a 75-iteration NFA run within
minutes on a CPU.
"""

from __future__ import annotations

import logging
import time

import torch

from factcli.core import circulant
from factcli.core.kernels import Kernel
from factcli.core.rfm import InaccurateSolve, rfm_path
from factcli.errors import FactError
from factcli.progress import track

from ..common.rfm import rfm_options
from ..common.trace import LearnerTrace
from .scores import scores

log = logging.getLogger("fact")


def run_rfm(cfg, data, device, learner: str | None = None) -> LearnerTrace:
    learner = learner or cfg.learner
    options = rfm_options(cfg, learner)
    X_train, Y_train = data.inputs(data.train).to(device), data.targets(data.train).to(device)
    X_test, labels_test = data.inputs(data.test).to(device), data.labels[data.test].to(device)
    labels_train = data.labels[data.train].to(device)
    rows, matrices, error = [], [], None
    started = time.perf_counter()
    iterates = rfm_path(X_train, Y_train, options)
    try:
        for iterate in track(iterates, f"{learner} RFM", total=options.iters + 1):
            alpha = iterate.predictor.alpha
            # (K + λI)α = Y, so the training outputs Kα are Y − λα up to the solve's residual
            # (reported beside them): no second n×n kernel matrix is needed to score the fit.
            train_outputs = Y_train.to(alpha) - options.ridge * alpha
            test_outputs = iterate.predictor(X_test)
            row = {"iteration": iterate.t, "learner": learner}
            row |= scores(train_outputs, labels_train, "train")
            row |= scores(test_outputs, labels_test, "test")
            row |= circulant.feature_deviations(iterate.M, data.p, data.operation)
            row |= {
                "trace_M": iterate.M.trace().item(),
                "solve_residual": iterate.solve.relative_residual,
                "seconds": round(time.perf_counter() - started, 3),
            }
            rows.append(row)
            matrices.append(iterate.M.cpu())
            log.info(
                "%s iteration %d: train accuracy %.4f, test accuracy %.4f, circulant deviation %.3g",
                learner,
                iterate.t,
                row["train_accuracy"],
                row["test_accuracy"],
                row["circulant_deviation"],
            )
    except InaccurateSolve as problem:
        error = f"{problem} at iteration {len(rows)}"
        if not rows:
            raise FactError(f"{error}; set rfm.ridge > 0 or rfm.precision=float64") from None
    for row, M in zip(rows, matrices, strict=True):
        row["alignment_with_final"] = circulant.alignment(M, matrices[-1])
    return LearnerTrace(rows, matrices, time.perf_counter() - started, error)


def tau_proportionality(cfg, data, M: torch.Tensor, device) -> dict[str, float]:
    """docs/SPEC.md §8 at feature matrix M: R² of τ = K'K'/n against K' over the training pairs.

    K' is the kernel's derivative-weight matrix (Kernel.derivative_weights): k'(x_iᵀMx_j) for the
    quadratic kernel; for the Gaussian, whose dependence on x_iᵀMx_j is K_ij/L² up to the norm
    factors, −K/L². The sign and scale of K' do not change the R².
    """
    kernel = Kernel(cfg.kernel.name, float(cfg.kernel.bandwidth))
    X = data.inputs(data.train).to(device)
    K_prime = kernel.derivative_weights(X, M.to(X))
    return circulant.proportionality_r2(circulant.tau_matrix(K_prime), K_prime)
