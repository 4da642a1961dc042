"""What a fit-rfm run says about feature learning: did the learned M beat M = I, and on which features.

``feature_learning`` compares the chosen iterate t with t = 0 (the same kernel with M = I: the kernel
baseline) on validation and, under the strict protocol, on test; it says in one sentence whether the
selection kept t = 0, and why. ``plot_feature_matrix`` draws M with the feature names beside that
comparison, so the figure never shows an identity matrix as if it were learned.
"""

from __future__ import annotations

import logging

import numpy as np

from factcli import plots

log = logging.getLogger("fact")

TOP_FEATURES = 5  # features named in the reading (largest diagonal of M)


def feature_learning(selection, results, metric: str, feature_names) -> dict:
    """The comparison with t = 0, the features M weighs most, and a sentence saying what happened.

    ``selection`` is grid.GridSelection, ``results`` the folds' protocol.FoldResult; under the strict
    protocol each fold's ``path_scores[0]`` is the test score of the chosen hyperparameters at t = 0.
    """
    chosen = selection.chosen
    at_zero = [c for c in selection.candidates if c.iteration == 0]
    better = (lambda a, b: a > b) if metric == "accuracy" else (lambda a, b: a < b)
    best_zero = None
    for candidate in at_zero:
        if best_zero is None or better(candidate.val_score, best_zero.val_score):
            best_zero = candidate
    test_chosen = float(np.mean([r.score for r in results]))
    paths = [r.path_scores for r in results if len(r.path_scores) > chosen.iteration]
    test_zero = float(np.mean([p[0] for p in paths])) if paths else None
    if chosen.iteration == 0:  # the chosen model is the one with M = I
        test_zero = test_chosen
    M = np.asarray(results[0].M.detach().cpu() if hasattr(results[0].M, "detach") else results[0].M)
    diagonal = np.diag(M)
    share = diagonal / diagonal.sum() if diagonal.sum() > 0 else diagonal
    order = np.argsort(-share)[:TOP_FEATURES]
    top = [{"feature": str(feature_names[j]), "share_of_trace": float(share[j])} for j in order]
    if not any(c.iteration > 0 for c in selection.candidates):
        sentence = "no feature learning was tried (method=laplace, or rfm.iters=0): M is the identity"
    elif chosen.iteration == 0:
        sentence = (
            f"the validation {metric} did not improve with learned features: t = 0 kept; M is the "
            f"identity (this fit is {chosen.kernel} kernel ridge regression, validation {metric} "
            f"{chosen.val_score:.4f})"
        )
    else:
        sentence = (
            f"learned features: t = {chosen.iteration} chosen, validation {metric} "
            f"{best_zero.val_score:.4f} at t = 0 (M = I) → {chosen.val_score:.4f}"
        )
        if test_zero is not None:
            sentence += f"; test {metric} {test_zero:.4f} with M = I → {test_chosen:.4f} with the learned M"
        sentence += "; M weighs most " + ", ".join(
            f"{t['feature']} ({t['share_of_trace']:.0%})" for t in top[:3]
        )
    return {
        "learned": chosen.iteration > 0,
        "iteration": chosen.iteration,
        f"val_{metric}_t0": None if best_zero is None else best_zero.val_score,
        f"val_{metric}_chosen": chosen.val_score,
        f"test_{metric}_t0": test_zero,
        f"test_{metric}_chosen": test_chosen,
        "top_features": top,
        "reading": sentence,
    }


def report_feature_learning(run, selection, results, metric: str, feature_names, draw: bool) -> dict:
    """Log the reading, draw feature_matrix.png (when ``draw``), return the reading for summary.json."""
    reading = feature_learning(selection, results, metric, feature_names)
    log.info("%s", reading["reading"])
    if draw:
        plot_feature_matrix(run.plot_file("feature_matrix.png"), results[0].M, feature_names, reading, metric)
    return reading


def plot_feature_matrix(path, M, feature_names, reading: dict, metric: str):
    """M (feature names on its rows and columns, up to 40) and, beside it, M = I against the learned M."""
    from matplotlib.ticker import MaxNLocator

    plt = plots._pyplot()
    values = np.asarray(M.detach().cpu() if hasattr(M, "detach") else M, dtype=float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.6), width_ratios=(1.6, 1), layout="constrained")
    limit = float(np.abs(values).max()) or 1.0
    image = left.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    names = list(feature_names)
    if len(names) == values.shape[0] <= 40:
        left.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        left.set_yticks(range(len(names)), names, fontsize=6)
    else:
        for axis in (left.xaxis, left.yaxis):
            axis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(image, ax=left, shrink=0.85)
    t = reading["iteration"]
    left.set_title(
        f"learned M (t = {t})" if reading["learned"] else "M = I: t = 0 kept (no feature learning)"
    )
    split = "test" if reading[f"test_{metric}_t0"] is not None else "val"
    before = reading[f"{split}_{metric}_t0"]
    after = reading[f"{split}_{metric}_chosen"]
    if reading["learned"] and before is not None:
        labels, scores = ["M = I (t = 0)", f"learned M (t = {t})"], [before, after]
    else:
        labels, scores = [f"M = I (t = {t})"], [after]
    bars = right.bar(labels, scores, color=["gray", "C3"][: len(scores)], width=0.6)
    right.bar_label(bars, fmt="%.3f", fontsize=9)
    top = max(scores) if metric == "accuracy" else max(scores) * 1.15
    right.set(
        ylabel=f"{'test' if split == 'test' else 'validation'} {metric}",
        ylim=(0, 1.08 if metric == "accuracy" else top),
    )
    if not reading["learned"]:
        comparison = "t = 0 kept: the kernel alone"
    elif split == "test":
        comparison = "same kernel and ridge: identity vs learned M"
    else:
        comparison = "validation: best with M = I vs the chosen learned M"
    right.set_title(comparison, fontsize=9)
    right.grid(alpha=0.3, axis="y")
    fig.suptitle("Feature matrix M and what it changes")
    return plots.save(fig, path)
