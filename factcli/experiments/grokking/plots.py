"""Figures of one grokking run: the grokking curve, M at start / jump / end, circulant deviation, and
(for the network) FACT and NFA correlations along training."""

from __future__ import annotations

import math

import torch

from factcli import plots
from factcli.core import circulant


def plot_run(run, cfg, data, paths: dict, x_key: str, jump: int | None) -> None:
    """``paths``: learner → Path, the configured learner first (its M is the one shown)."""
    path = paths[cfg.learner]
    xs = [row[x_key] for row in path.rows]
    x_label = "RFM iteration t" if x_key == "iteration" else "optimizer step"
    title = f"{', '.join(paths)} on {data.description}, train fraction {cfg.train_fraction:g}"
    curves = {learner: ([row[x_key] for row in each.rows], each.rows) for learner, each in paths.items()}
    grokking_curve(run.plot_file("grokking_curve.png"), curves, x_label, title)
    deviations = {}
    for learner, (steps, rows) in curves.items():
        prefix = f"{learner}: " if len(curves) > 1 else ""
        deviations[f"{prefix}circulant, B[b, a] = c(b − a)"] = (
            steps,
            [r["circulant_deviation"] for r in rows],
        )
        deviations[f"{prefix}anti-circulant, B[b, a] = h(a + b)"] = (
            steps,
            [r["anticirculant_deviation"] for r in rows],
        )
    plots.line_plot(
        run.plot_file("circulant_deviation.png"),
        x_label,
        "deviation of the a–b block (0: exact structure)",
        deviations,
        title=title,
        log_y=True,
    )
    shown = snapshots(xs, jump)
    matrices = {f"{x_key} {xs[i]}": path.matrices[i] for i in shown}
    # The network's counterpart of M (net.feature_matrix): the transformer's is the Gram matrix of
    # the vectors it gives each operand (embedding + position), the MLP's its first layer's W₁ᵀW₁.
    name = "W₁ᵀW₁"
    if x_key == "iteration":
        name = "M"
    elif cfg.learner == "transformer":
        name = "XXᵀ (X: embedding + position)"
    plots.heatmaps(run.plot_file("feature_matrix.png"), matrices, title=f"{name}: start, jump, end")
    # The diagonal dominates the colour scale; the structure is in the off-diagonal blocks.
    off_diagonal = {label: M - torch.diag(torch.diag(M)) for label, M in matrices.items()}
    plots.heatmaps(
        run.plot_file("feature_matrix_offdiagonal.png"), off_diagonal, title=f"{name} − diag({name})"
    )
    if data.operation != "add":
        ordered = {label: circulant.reordered(M, data.p, data.operation) for label, M in matrices.items()}
        plots.heatmaps(
            run.plot_file("feature_matrix_reordered.png"),
            ordered,
            title=f"{name}, operands in the order that makes {data.symbol} an addition",
        )
    measured = [row for row in path.rows if "fact_corr" in row]
    if measured:
        steps = [row[x_key] for row in measured]
        plots.line_plot(
            run.plot_file("fact_nfa_correlation.png"),
            x_label,
            "Pearson correlation with W₁ᵀW₁",
            {
                "FACT: F": (steps, [row["fact_corr"] for row in measured]),
                "FACT: (F Fᵀ)^½": (steps, [row["fact_sym_corr"] for row in measured]),
                "NFA: AGOP^½": (steps, [row["nfa_corr"] for row in measured]),
            },
            title=title,
        )
        plots.line_plot(
            run.plot_file("stationarity_residual.png"),
            x_label,
            "‖∇L + λW‖ / ‖λW‖",
            {
                "W₁": (steps, [row["residual_W1"] for row in measured]),
                "W₂": (steps, [row["residual_W2"] for row in measured]),
            },
            title=title,
            log_y=True,
        )


def snapshots(xs: list[int], jump: int | None) -> list[int]:
    """Row indices of the start (the first update, M_0 = I being uninformative), the jump and the end."""
    start = min(1, len(xs) - 1)
    middle = xs.index(jump) if jump in xs else (len(xs) - 1) // 2
    return sorted({start, middle, len(xs) - 1})


def grokking_curve(path, curves: dict, x_label: str, title: str):
    """Accuracy (left) and loss (right, log scale) against iteration: test solid, train dashed,
    one colour per learner; the dotted line is the test loss of the correct class's output alone."""
    plt = plots._pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (learner, (xs, rows)) in enumerate(curves.items()):
        colour = f"C{index}"
        for split, style in (("train", "--"), ("test", "-")):
            label = f"{learner} {split}"
            left.plot(xs, [row[f"{split}_accuracy"] for row in rows], style, color=colour, label=label)
            # a ridgeless fit has training loss exactly 0: leave it off the log axis rather than at 1e-300
            losses = [row[f"{split}_loss"] if row[f"{split}_loss"] > 0 else math.nan for row in rows]
            if any(loss == loss for loss in losses):
                right.plot(xs, losses, style, color=colour, label=f"{label} loss")
        right.plot(
            xs,
            [row["test_correct_class_loss"] for row in rows],
            ":",
            color=colour,
            label=f"{learner} test: correct class's output",
        )
    left.set(xlabel=x_label, ylabel="accuracy", ylim=(-0.02, 1.02))
    right.set(xlabel=x_label, ylabel="loss", yscale="log")
    if all(row["train_loss"] == 0 for _, rows in curves.values() for row in rows):
        right.set_title("training loss exactly 0 (interpolation), not drawn", fontsize=9)
    for ax in (left, right):
        plots.integer_ticks(ax, [xs for xs, _ in curves.values()])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return plots.save(fig, path)
