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
    """One line per entry of ``series`` (label → (xs, ys)); ``highlight`` is drawn thick; ``hlines``
    (label → y) are dashed reference lines, named in the legend like the series."""
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
    for index, (label, value) in enumerate((hlines or {}).items()):
        ax.axhline(value, linestyle=("--", ":", "-.")[index % 3], color="gray", linewidth=1, label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=x_label, ylabel=y_label, title=title)
    ax.grid(alpha=0.3)
    integer_ticks(ax, [xs for xs, _ in series.values()])
    legend(ax)
    return save(fig, path)


def integer_ticks(ax, xs: Sequence[Sequence]) -> None:
    """Iterations and steps are whole numbers: no tick at 0.5 between them."""
    from matplotlib.ticker import MaxNLocator

    values = [float(x) for column in xs for x in column]
    if values and all(x == int(x) for x in values):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def legend(ax) -> None:
    """Name every line (reference lines too) once there are two: inside the axes for a few, beside
    them for many (a legend over the lines would hide some)."""
    named = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))  # one entry per label
    if len(ax.get_lines()) + len(ax.collections) < 2:
        return
    if len(named) <= 6:
        ax.legend(named.values(), named.keys(), fontsize=8)
    else:
        ax.legend(named.values(), named.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


# From this many entries a heatmap's colour scale ends at the 99th percentile of |entries|: a few large
# ones (the diagonal of a 784×784 WᵀW, say) would otherwise leave every other entry white.
ROBUST_SCALE_ENTRIES = 40 * 40


def heatmaps(
    path,
    matrices: Mapping[str, object],
    *,
    title: str = "",
    symmetric: bool = True,
    labels: Sequence[str] | None = None,
) -> Path:
    """Matrices side by side, each with its own colour scale (centred at 0 when ``symmetric``).

    ``labels`` names the rows and columns (shown when there are at most 40); otherwise the ticks are
    whole indices. Large matrices are scaled to their 99th percentile (the colour bar's arrows mark
    the clipped entries). The layout is constrained, so no colour bar's ticks reach the next panel.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    count = len(matrices)
    fig, axes = plt.subplots(1, count, figsize=(4.4 * count, 3.9), squeeze=False, layout="constrained")
    for ax, (label, matrix) in zip(axes[0], matrices.items(), strict=True):
        values = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
        magnitudes = np.abs(values[np.isfinite(values)])
        peak = float(magnitudes.max()) if magnitudes.size else 0.0
        limit = peak
        if values.size >= ROBUST_SCALE_ENTRIES and magnitudes.size:
            limit = float(np.quantile(magnitudes, 0.99)) or peak
        limit = limit or 1.0
        clipped = limit < peak
        low, high = (-limit, limit) if symmetric else (None, limit if clipped else None)
        image = ax.imshow(values, cmap="RdBu_r" if symmetric else "viridis", vmin=low, vmax=high)
        ax.set_title(label, fontsize=10)
        if labels is not None and len(labels) == values.shape[0] <= 40:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
        else:
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(MaxNLocator(integer=True))
        bar = fig.colorbar(
            image, ax=ax, shrink=0.85, extend=("both" if symmetric else "max") if clipped else "neither"
        )
        if clipped:
            bar.set_label(f"clipped at the 99th percentile of |entries| (max {peak:.3g})", fontsize=7)
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


def scatter_against_diagonal(
    path,
    x,
    y,
    *,
    x_label: str,
    y_label: str,
    title: str = "",
    names: Sequence[str] | None = None,
    named: int = 8,
) -> Path:
    """Paired values (one point per item) with the y = x line: above it, y wins.

    The axes reach a little beyond the extreme points, so none is cut; with ``names``, the ``named``
    points farthest from the line are labelled (a label that would cover another is left out).
    """
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ax.scatter(x, y, s=14, alpha=0.7, label=f"{len(x)} items")
    low = min(x.min(initial=0.0), y.min(initial=0.0))
    high = max(x.max(initial=1.0), y.max(initial=1.0))
    margin = 0.04 * (high - low or 1.0)
    low, high = low - margin, high + margin
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="y = x")
    ax.set(xlabel=x_label, ylabel=y_label, title=title, xlim=(low, high), ylim=(low, high))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if names is not None:
        _label_farthest(fig, ax, x, y, list(names), named)
    return save(fig, path)


def _label_farthest(fig, ax, x, y, names: list[str], count: int) -> None:
    """Name the ``count`` points farthest from y = x, skipping a label that would overlap one drawn."""
    import numpy as np

    fig.canvas.draw()  # the legend's place is decided when drawn
    renderer = fig.canvas.get_renderer()
    taken = [ax.get_legend().get_window_extent(renderer), ax.title.get_window_extent(renderer)]
    frame = ax.get_window_extent(renderer)
    for index in np.argsort(-np.abs(y - x))[:count]:
        # toward the middle of the axes, so the label stays inside the frame
        right = x[index] > np.mean(ax.get_xlim())
        note = ax.annotate(
            names[index], (x[index], y[index]), xytext=(-4 if right else 4, 4), textcoords="offset points",
            ha="right" if right else "left", fontsize=7,
        )  # fmt: skip
        box = note.get_window_extent(renderer)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        if not inside or any(box.overlaps(other) for other in taken):
            note.remove()
        else:
            taken.append(box)
