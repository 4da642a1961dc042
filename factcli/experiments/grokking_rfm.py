"""The RFM learners of ``fact grokking``: fact, fact-geo and nfa on one modular task (SPEC §4, §7-8).

Each iterate M_t (t = 0..T) is scored on the training and test pairs; the circulant deviation, tr M
and (at the end, once M_T is known) the alignment of M_t with M_T are logged beside the scores.

The loop is core.rfm.rfm_path's (same kernel solve, FACT statistic and update rule, all from the
core) with one change: nfa's AGOP is computed in Gram form (``agop_gram_form``), O(n³ + n²(c + d))
instead of O(n²·c·d). With c = p = 61 classes that is 5-10× faster, which is what keeps a 75-iteration
NFA run within minutes on a CPU. The inputs are one-hot, so they need no centring.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from factcli.core import circulant
from factcli.core.kernels import Kernel
from factcli.core.linalg import NotPositiveDefinite, solve_kernel_system
from factcli.core.rfm import (
    InaccurateSolve,
    Iterate,
    KernelPredictor,
    RFMOptions,
    fact_matrix,
    update_feature_matrix,
)
from factcli.errors import FactError
from factcli.progress import track

from .grokking_scores import scores

log = logging.getLogger("fact")


@dataclass
class Path:
    """What a run of the learner produced: one metrics row and one feature matrix per iterate."""

    rows: list[dict]
    matrices: list[torch.Tensor]  # M_t on the CPU, float64
    seconds: float
    error: str | None = None  # why the path stopped early, if it did


def rfm_options(cfg, learner: str) -> RFMOptions:
    return RFMOptions(
        kernel=Kernel(cfg.kernel.name, float(cfg.kernel.bandwidth)),
        method=learner,
        ridge=float(cfg.rfm.ridge),
        iters=int(cfg.rfm.iters),
        nfa_power=float(cfg.rfm.nfa_power),
        centered_agop=bool(cfg.rfm.centered_agop),
        rescale=cfg.rfm.rescale,
        precision=cfg.rfm.precision,
        solve_tol=float(cfg.rfm.solve_tol),
    )


def run_rfm(cfg, data, device, learner: str | None = None) -> Path:
    learner = learner or cfg.learner
    options = rfm_options(cfg, learner)
    X_train, Y_train = data.inputs(data.train).to(device), data.targets(data.train).to(device)
    X_test, labels_test = data.inputs(data.test).to(device), data.labels[data.test].to(device)
    labels_train = data.labels[data.train].to(device)
    rows, matrices, error = [], [], None
    started = time.perf_counter()
    iterates = feature_path(X_train, Y_train, options)
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
    return Path(rows, matrices, time.perf_counter() - started, error)


def tau_proportionality(cfg, data, M: torch.Tensor, device) -> dict[str, float]:
    """SPEC §8 at feature matrix M: R² of τ = K'K'/n against K' over the training pairs.

    K' is the kernel's derivative-weight matrix (Kernel.derivative_weights): k'(x_iᵀMx_j) for the
    quadratic kernel; for the Gaussian, whose dependence on x_iᵀMx_j is K_ij/L² up to the norm
    factors, −K/L². The sign and scale of K' do not change the R².
    """
    kernel = Kernel(cfg.kernel.name, float(cfg.kernel.bandwidth))
    X = data.inputs(data.train).to(device)
    K_prime = kernel.derivative_weights(X, M.to(X))
    return circulant.proportionality_r2(circulant.tau_matrix(K_prime), K_prime)


# ------------------------------------------------------------------------------------ the loop


def feature_path(X: torch.Tensor, Y: torch.Tensor, options: RFMOptions) -> Iterator[Iterate]:
    """Yield iterates t = 0..options.iters of FACT-, FACT-geo- or NFA-RFM from M_0 = I.

    One n×n buffer holds the kernel matrix, its factor, then the derivative weights W.
    """
    dtype = torch.float64 if options.precision == "float64" else torch.float32
    X, Y = X.to(dtype), Y.to(dtype)
    M = torch.eye(X.shape[1], dtype=torch.float64, device=X.device)
    no_centre = torch.zeros_like(X[:1])
    buffer = torch.empty(X.shape[0], X.shape[0], dtype=dtype, device=X.device)
    kernel = options.kernel
    for t in range(options.iters + 1):
        M_work = M.to(dtype)
        alpha, report = solve(options, X, Y, M_work, buffer)
        yield Iterate(t, M.clone(), KernelPredictor(kernel, X, no_centre, M_work, alpha), report)
        if t == options.iters:
            return
        W = kernel.derivative_weights(X, M_work, out=buffer)
        if options.method == "nfa":
            statistic = agop_gram_form(kernel, X, alpha, M_work, W, centered=options.centered_agop)
        else:
            statistic = fact_matrix(kernel, X, alpha, M_work, W)
        M = update_feature_matrix(options, statistic.to(torch.float64), M)


def solve(options: RFMOptions, X, Y, M, buffer):
    """α = (K_M + λI)⁻¹ Y, refusing a singular or inaccurate solve (as core.rfm does)."""
    K = options.kernel.gram(X, X, M, out=buffer)
    try:
        alpha, report = solve_kernel_system(K, Y, options.ridge)
    except NotPositiveDefinite as error:
        raise InaccurateSolve(f"kernel matrix is not positive definite ({error})") from None
    if not report.relative_residual <= options.solve_tol:
        raise InaccurateSolve(
            f"kernel solve has relative residual {report.relative_residual:.1e} > {options.solve_tol:.0e}"
        )
    return alpha, report


def agop_gram_form(kernel: Kernel, X, alpha, M, W, centered: bool = False) -> torch.Tensor:
    """AGOP = (1/n) Σ_i J_iᵀ J_i without forming any J_i: equal to core.rfm.agop_matrix.

    With W the derivative weights and R = Wα, row k of J_i is G_ikᵀ M where
    G_ik = R_ik x_i − Σ_j W_ij α_jk x_j (translation-invariant) or Σ_j W_ij α_jk x_j (inner product).
    Summing G_ik G_ikᵀ over i and k gives Xᵀ Q X with
        Q = (WW) ∘ ααᵀ − W ∘ Rαᵀ − (W ∘ Rαᵀ)ᵀ + Diag(‖R_i‖²)     (the last three: translation-invariant)
    since Σ_ik (Σ_j W_ij α_jk x_j)(Σ_m W_im α_mk x_m)ᵀ = Σ_jm (WᵀW)_jm (α_j·α_m) x_j x_mᵀ (W symmetric).
    Centring subtracts the mean Jacobian: Σ_ik (G_ik − Ḡ_k)(…)ᵀ = Σ_ik G_ik G_ikᵀ − T Tᵀ / n with
    T = Σ_i G_i = Xᵀ(R − w∘α) (or Xᵀ(w∘α)), w = W·1.
    """
    n = X.shape[0]
    Q = W @ W
    Q.mul_(alpha @ alpha.T)
    column_sums = W.sum(1, keepdim=True)
    if kernel.translation_invariant:
        R = W @ alpha
        cross = (R @ alpha.T).mul_(W)
        Q.sub_(cross).sub_(cross.T)
        Q.diagonal().add_(R.square().sum(1))
        del cross
        total = X.T @ (R - column_sums * alpha)
    else:
        total = X.T @ (column_sums * alpha)
    S = X.T @ (Q @ X)
    if centered:
        S -= total @ total.T / n
    S /= n
    return M @ S @ M
