"""The paper's figure: per layer, correlation of WᵀW with FACT, NFA and eNFA along training."""

from __future__ import annotations

import math
from pathlib import Path

from factcli.plots import save

ANSATZ_COLUMNS = {"fact": "FACT (F)", "fact_sym": "FACT (FFᵀ)^½", "nfa": "NFA (AGOP^½)"}


def plot_training(rows: list[dict], path: Path) -> Path | None:
    """One panel per layer: correlations (left axis) and the stationarity residual (log, right)."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(dict.fromkeys(str(r["layer"]) for r in rows))
    enfa = next((k for k in rows[0] if str(k).startswith("enfa_s")), None)
    columns = {**ANSATZ_COLUMNS, **({enfa: f"eNFA (E^{enfa[6:]})"} if enfa else {})}
    cols = min(3, len(layers))
    fig, axes = plt.subplots(
        math.ceil(len(layers) / cols), cols, figsize=(4.3 * cols, 3.2 * math.ceil(len(layers) / cols)),
        squeeze=False,
    )  # fmt: skip
    for ax, layer in zip(axes.flat, layers, strict=False):
        mine = [r for r in rows if str(r["layer"]) == layer]
        steps = [float(r["step"]) for r in mine]
        for key, label in columns.items():
            ax.plot(steps, [_float(r.get(key)) for r in mine], marker=".", label=label)
        ax.set(title=layer, xlabel="step", ylim=(-0.1, 1.05))
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(steps, [_float(r["residual"]) for r in mine], color="gray", linestyle=":")
        twin.set_yscale("log")
        twin.set_ylabel("residual ‖∇L+λW‖/‖λW‖", fontsize=7, color="gray")
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("Pearson corr with WᵀW")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("FACT agrees only near convergence; NFA throughout (dotted: residual)")
    fig.tight_layout()
    return save(fig, path)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
