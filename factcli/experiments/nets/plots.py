"""The paper's figure: per layer, correlation of WᵀW with FACT, NFA and eNFA along training."""

from __future__ import annotations

import math
from pathlib import Path

from factcli.plots import save

ANSATZ_COLUMNS = {"fact": "FACT (F)", "fact_sym": "FACT (FFᵀ)^½", "nfa": "NFA (AGOP^½)"}


def plot_training(
    rows: list[dict], path: Path, tol: float | None = None, finish_start: int | None = None
) -> Path | None:
    """One panel per layer: correlations (left axis) and the stationarity residual (log, right).

    ``tol`` draws the tolerance on the residual axis and a vertical line where the layer's residual
    first falls to it (FACT is only expected to hold from there on); ``finish_start`` marks where
    the full-batch L-BFGS phase began.
    """
    if not rows:
        return None
    return save(training_figure(rows, tol, finish_start), path)


def training_figure(rows: list[dict], tol: float | None = None, finish_start: int | None = None):
    """The figure of ``plot_training``, unsaved. The correlation axis spans every value drawn, so
    negative correlations (FACT and NFA away from convergence, the §9 counterexample) are seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    layers = list(dict.fromkeys(str(r["layer"]) for r in rows))
    enfa = next((k for k in rows[0] if str(k).startswith("enfa_s")), None)
    columns = {**ANSATZ_COLUMNS, **({enfa: f"eNFA (E^{enfa[6:]})"} if enfa else {})}
    cols = min(3, len(layers))
    fig, axes = plt.subplots(
        math.ceil(len(layers) / cols), cols, figsize=(4.3 * cols, 3.2 * math.ceil(len(layers) / cols)),
        squeeze=False, layout="constrained",
    )  # fmt: skip
    crossings = tolerance_crossings(rows, tol) if tol is not None else {}
    twins = []
    for ax, layer in zip(axes.flat, layers, strict=False):
        mine = [r for r in rows if str(r["layer"]) == layer]
        steps = [float(r["step"]) for r in mine]
        drawn = []
        for key, label in columns.items():
            values = [_float(r.get(key)) for r in mine]
            drawn += [v for v in values if math.isfinite(v)]
            ax.plot(steps, values, marker=".", label=label)
        title = f"{layer} {short_name(str(mine[0].get('module', '')))}".strip()
        ax.set(title=title, xlabel="step", ylim=(min([-0.1, *drawn]) - 0.05, 1.05))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # few: labels must not touch
        ax.grid(alpha=0.3)
        residuals = [_float(r["residual"]) for r in mine]
        twin = ax.twinx()
        twins.append(twin)
        twin.plot(steps, residuals, color="gray", linestyle=":", label="residual ‖∇L+λW‖/‖λW‖")
        twin.set_yscale("log")
        twin.set_ylabel("residual ‖∇L+λW‖/‖λW‖", fontsize=7, color="gray")
        if finish_start is not None:
            ax.axvline(finish_start, color="tab:purple", linestyle="--", linewidth=0.8,
                       label="L-BFGS phase begins")  # fmt: skip
        if tol is not None:
            twin.axhline(tol, color="gray", linewidth=0.6, label=f"tolerance {tol:g}")
            crossing = crossings[layer]
            if crossing is not None:
                ax.axvline(crossing, color="black", linewidth=1.0, label="first residual ≤ tolerance")
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("Pearson corr with WᵀW")
    handles, labels = [], []
    for ax in [*axes.flat, *twins]:  # one legend for every panel, below them
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    # "outside": the constrained layout makes room for the legend below the panels' x labels.
    fig.legend(
        handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False
    )
    fig.suptitle("Correlation of WᵀW with FACT, NFA and eNFA along training, and the residual (log, right)")
    return fig


def short_name(module: str) -> str:
    """The last part of a module path, attention's blocks as W_q, W_k, W_v (bar labels)."""
    last = module.rsplit(".", 1)[-1]
    if last.isdigit():  # a layer of a Sequential: its W-number says it all
        return ""
    if last.startswith("in_proj_weight[") or last[-3:] in ("[q]", "[k]", "[v]"):
        return f"W_{last[-2]}"
    return last


def tolerance_crossings(rows: list[dict], tol: float) -> dict[str, float | None]:
    """Per layer, the first logged step whose residual is at most ``tol`` (None: never)."""
    crossings: dict[str, float | None] = {}
    for row in rows:
        layer = str(row["layer"])
        crossings.setdefault(layer, None)
        if crossings[layer] is None and _float(row["residual"]) <= tol:
            crossings[layer] = float(row["step"])
    return crossings


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
