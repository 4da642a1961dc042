"""Small matplotlib helpers every experiment uses: lines, heatmaps, bars, scatter against a diagonal.

Figures are written as PNG (atomically) with the non-interactive Agg backend, so they work on
machines without a display.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from .rundir import write_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    write_atomic(Path(path), buffer.getvalue())
    return Path(path)


def line_plot(
    path,
    x_label: str,
    y_label: str,
    series: Mapping[str, tuple[Sequence, Sequence]],
    *,
    title: str = "",
    log_y: bool = False,
    highlight: str | None = None,
    hlines: Mapping[str, float] | None = None,
) -> Path:
    """One line per entry of ``series`` (label → (xs, ys)); ``highlight`` is drawn thick."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (xs, ys) in series.items():
        thick = label == highlight
        ax.plot(
            xs,
            ys,
            marker="o" if len(xs) < 40 else None,
            markersize=3,
            label=label,
            linewidth=2.5 if thick else 1.2,
            alpha=1.0 if thick or highlight is None else 0.5,
        )
    for label, value in (hlines or {}).items():
        ax.axhline(value, linestyle="--", color="gray", linewidth=1)
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=8, va="bottom")
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=x_label, ylabel=y_label, title=title)
    ax.grid(alpha=0.3)
    if 1 < len(series) <= 12:
        ax.legend(fontsize=8)
    return save(fig, path)


def heatmaps(
    path,
    matrices: Mapping[str, object],
    *,
    title: str = "",
    symmetric: bool = True,
    labels: Sequence[str] | None = None,
) -> Path:
    """Matrices side by side, each with its own colour scale (centred at 0 when ``symmetric``).

    ``labels`` names the rows and columns (shown when there are at most 40).
    """
    import numpy as np

    plt = _pyplot()
    count = len(matrices)
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 3.8), squeeze=False)
    for ax, (label, matrix) in zip(axes[0], matrices.items(), strict=True):
        values = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
        limit = float(np.abs(values).max()) or 1.0
        image = ax.imshow(
            values,
            cmap="RdBu_r" if symmetric else "viridis",
            vmin=-limit if symmetric else None,
            vmax=limit if symmetric else None,
        )
        ax.set_title(label, fontsize=10)
        if labels is not None and len(labels) == values.shape[0] <= 40:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def bar_plot(
    path,
    categories: Sequence[str],
    groups: Mapping[str, Sequence[float]],
    *,
    y_label: str,
    title: str = "",
    marked: Sequence[int] = (),
) -> Path:
    """Grouped bars: one group of bars per category, one colour per entry of ``groups``."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.4, 0.25 * len(categories) * len(groups)), 4.2))
    width = 0.8 / max(1, len(groups))
    positions = np.arange(len(categories))
    for i, (label, values) in enumerate(groups.items()):
        ax.bar(positions + i * width - 0.4 + width / 2, values, width, label=label)
    for index in marked:
        ax.axvspan(index - 0.45, index + 0.45, color="orange", alpha=0.2)
    ax.set_xticks(positions, categories, rotation=90 if len(categories) > 12 else 0, fontsize=8)
    ax.set(ylabel=y_label, title=title)
    ax.grid(alpha=0.3, axis="y")
    if len(groups) > 1:  # beside the axes: bars reach from 0 to the top, a legend inside hides some
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, path)


def scatter_against_diagonal(path, x, y, *, x_label: str, y_label: str, title: str = "") -> Path:
    """Paired values (one point per item) with the y = x line: above it, y wins."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    ax.scatter(x, y, s=14, alpha=0.7)
    low = min(min(x, default=0), min(y, default=0))
    high = max(max(x, default=1), max(y, default=1))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1)
    ax.set(xlabel=x_label, ylabel=y_label, title=title, xlim=(low, high), ylim=(low, high))
    ax.grid(alpha=0.3)
    return save(fig, path)
