"""Every PNG the tool writes, checked for layout: each command's quick run is made with every figure it
saves passed through one checker (``layout_problems``), which asserts what a reader relies on:

- no two text boxes overlap (tick labels, colour-bar ticks of the next panel, titles, legends, notes);
- every data point lies inside its axes, markers whole (a point cut at the frame is half hidden);
- an axis whose data are all integers (iterations, steps, matrix indices) has only integer ticks;
- in an axes with more than one line, every line is named in a legend (reference lines included);
- a large heatmap's colour scale is not set by a few outliers (which leaves the rest white).

The checks run on the figure right after it is saved (Figure.savefig is wrapped for the test), so they
see exactly what was written.
"""

import csv
import json
import math
from itertools import combinations

import matplotlib
import numpy as np
import pytest
from test_grokking_cli import TINY_NET, TINY_RFM
from test_train_net import TINY
from typer.testing import CliRunner

matplotlib.use("Agg")
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from factcli import plots  # noqa: E402
from factcli.cli import app  # noqa: E402

TOLERANCE_PX = 1.0
LARGE_IMAGE = 40 * 40  # entries from which a heatmap's colour scale must not hang on outliers


# --- the checker -----------------------------------------------------------------------------


def layout_problems(fig) -> list[str]:
    """What a reader would trip on in ``fig`` (empty: none), one line each."""
    fig.canvas.draw()  # at the figure's own dpi: saving with a tight box leaves stale positions behind
    renderer = fig.canvas.get_renderer()
    problems = _overlapping_texts(fig, renderer)
    for ax in fig.axes:
        name = _axes_name(ax)
        problems += [f"{name}: {p}" for p in _points_outside(ax, fig)]
        problems += [f"{name}: {p}" for p in _fractional_ticks(ax)]
        problems += [f"{name}: {p}" for p in _unnamed_lines(ax, fig)]
        problems += [f"{name}: {p}" for p in _washed_out_images(ax)]
    return problems


def _axes_name(ax) -> str:
    return repr(ax.get_title() or ax.get_xlabel() or ax.get_ylabel() or ax.get_label() or "axes")


def _drawn_ticks(axis):
    """The ticks the axis draws now (the others are kept for reuse, outside the view)."""
    low, high = sorted(axis.get_view_interval())
    span = high - low
    return [
        tick
        for tick in axis.get_major_ticks() + axis.get_minor_ticks()
        if tick.get_visible() and low - 1e-9 * span <= tick.get_loc() <= high + 1e-9 * span
    ]


def _texts(fig):
    """(description, Text) of every visible, non-empty text of the figure."""
    found = []
    if fig._suptitle is not None:
        found.append(("suptitle", fig._suptitle))
    found += [("figure text", t) for t in fig.texts]
    for legend in fig.legends:
        found += [("figure legend", t) for t in legend.get_texts()]
    for ax in fig.axes:
        name = _axes_name(ax)
        found += [(f"{name} title", t) for t in (ax.title, ax._left_title, ax._right_title)]
        for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            found.append((f"{name} {which} label", axis.label))
            found.append((f"{name} {which} offset", axis.get_offset_text()))
            for tick in _drawn_ticks(axis):
                for label in (tick.label1, tick.label2):
                    found.append((f"{name} {which} tick {label.get_text()!r}", label))
        found += [(f"{name} note", t) for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found += [(f"{name} legend", t) for t in legend.get_texts()]
    unique = {id(t): (d, t) for d, t in found}  # the suptitle is also one of the figure's texts
    return [(d, t) for d, t in unique.values() if t.get_visible() and t.get_text().strip()]


def _overlapping_texts(fig, renderer) -> list[str]:
    boxes = [(description, text.get_window_extent(renderer)) for description, text in _texts(fig)]
    problems = []
    for (first, a), (second, b) in combinations(boxes, 2):
        width = min(a.x1, b.x1) - max(a.x0, b.x0)
        height = min(a.y1, b.y1) - max(a.y0, b.y0)
        if width > TOLERANCE_PX and height > TOLERANCE_PX:
            problems.append(f"text overlaps: {first} and {second}")
    return problems


def _marker_radius_px(size_points: float, fig) -> float:
    return size_points * fig.dpi / 72 / 2


def _points_outside(ax, fig) -> list[str]:
    frame = ax.get_window_extent()
    problems = []

    def check(what, points, radius):
        points = points[np.isfinite(points).all(axis=1)]
        outside = (
            (points[:, 0] - radius < frame.x0 - TOLERANCE_PX)
            | (points[:, 0] + radius > frame.x1 + TOLERANCE_PX)
            | (points[:, 1] - radius < frame.y0 - TOLERANCE_PX)
            | (points[:, 1] + radius > frame.y1 + TOLERANCE_PX)
        )
        if outside.any():
            problems.append(f"{outside.sum()} of {len(points)} points of {what} not wholly inside the axes")

    for line in ax.get_lines():
        if line.get_visible() and len(line.get_xydata()):
            marker = line.get_marker() not in (None, "None", "", " ")
            radius = _marker_radius_px(line.get_markersize(), fig) if marker else 0.0
            with np.errstate(all="ignore"):
                points = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
            check(f"line {line.get_label()!r}", points, radius)
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and len(collection.get_offsets()):
            sizes = collection.get_sizes()
            radius = _marker_radius_px(math.sqrt(float(max(sizes))) if len(sizes) else 0.0, fig)
            points = collection.get_offset_transform().transform(np.asarray(collection.get_offsets()))
            check(f"scatter {collection.get_label()!r}", points, radius)
    return problems


def _integer_axis(ax, which: int) -> bool:
    """Whether x (0) or y (1) counts whole things: an image's rows and columns, or lines and scatters
    whose data there are all integers with at least 3 distinct values (accuracies of 0 and 1 are not)."""
    if ax.images:
        return True
    values = _data_values(ax, which)
    return values is not None and len(np.unique(values)) >= 3 and bool(np.all(values == np.round(values)))


def _data_values(ax, which: int):
    """The data coordinates along x (0) or y (1) of the axes' lines and scatters (None: none)."""
    values = []
    for line in ax.get_lines():
        if line.get_transform() == ax.transData:
            values.append(np.asarray(line.get_xydata(), dtype=float)[:, which])
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and collection.get_offset_transform() == ax.transData:
            values.append(np.asarray(collection.get_offsets(), dtype=float)[:, which])
    if not values:
        return None
    values = np.concatenate(values)
    return values[np.isfinite(values)]


def _fractional_ticks(ax) -> list[str]:
    problems = []
    for which, axis in enumerate((ax.xaxis, ax.yaxis)):
        if axis.get_scale() != "linear":
            continue
        if _integer_axis(ax, which):
            fractional = [float(t.get_loc()) for t in _drawn_ticks(axis) if t.get_loc() != round(t.get_loc())]
            if fractional and any(t.label1.get_visible() for t in _drawn_ticks(axis)):
                problems.append(f"{'xy'[which]} holds integers but has ticks at {fractional}")
    return problems


def _legend_labels(ax, fig) -> set[str]:
    labels = set()
    for legend in [ax.get_legend(), *fig.legends]:
        if legend is not None:
            labels |= {t.get_text() for t in legend.get_texts()}
    return labels


def _unnamed_lines(ax, fig) -> list[str]:
    drawn = [line for line in ax.get_lines() if line.get_visible()]
    drawn += [c for c in ax.collections if isinstance(c, PathCollection)]
    if len(drawn) < 2:
        return []
    named = _legend_labels(ax, fig)
    unnamed = [artist for artist in drawn if artist.get_label() not in named]
    if not unnamed:
        return []
    return [f"{len(unnamed)} of {len(drawn)} lines in no legend ({[a.get_label() for a in unnamed]})"]


def _washed_out_images(ax) -> list[str]:
    problems = []
    for image in ax.images:
        values = np.abs(np.asarray(image.get_array(), dtype=float))
        values = values[np.isfinite(values)]
        if values.size < LARGE_IMAGE or not isinstance(image, AxesImage):
            continue
        low, high = image.get_clim()
        limit = max(abs(low), abs(high))
        typical = float(np.quantile(values, 0.99))
        white_now = float(np.mean(values < 0.05 * limit))
        white_at_typical = float(np.mean(values < 0.05 * typical))
        if white_now > white_at_typical + 0.1:
            problems.append(
                f"colour scale up to {limit:.3g} hides {white_now:.0%} of the entries (at the 99th "
                f"percentile, {typical:.3g}: {white_at_typical:.0%})"
            )
    return problems


# --- applying it to what each command writes ------------------------------------------------


@pytest.fixture
def checked_figures(monkeypatch):
    """Every figure saved while the test runs: file name → its layout problems."""
    found: dict[str, list[str]] = {}
    pending: list[list[str]] = []
    original_savefig, original_write = Figure.savefig, plots.write_atomic

    def savefig(fig, target, *args, **kwargs):
        result = original_savefig(fig, target, *args, **kwargs)
        pending.append(layout_problems(fig))
        return result

    def write_atomic(path, content):  # plots.save renders into a buffer, then writes the file
        if pending:
            found[path.name] = pending.pop()
        return original_write(path, content)

    monkeypatch.setattr(Figure, "savefig", savefig)
    monkeypatch.setattr(plots, "write_atomic", write_atomic)
    return found


def problems_of(found: dict) -> dict:
    return {name: problems for name, problems in found.items() if problems}


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_heatmaps_small_and_large(checked_figures, tmp_path):
    rng = np.random.default_rng(0)
    small = {f"panel {i}": rng.standard_normal((2, 2)) for i in range(3)}  # three panels, 2×2 each
    plots.heatmaps(tmp_path / "small.png", small, title="three 2×2 matrices")
    # A WᵀW of an MNIST network: a few large diagonal entries, the structure in small off-diagonal ones.
    A = rng.standard_normal((784, 60)) * 0.05
    gram = A @ A.T
    gram[np.arange(0, 784, 50), np.arange(0, 784, 50)] += 40.0
    plots.heatmaps(tmp_path / "large.png", {"WᵀW": gram, "F": gram, "AGOP": gram}, title="784×784")
    assert set(checked_figures) == {"small.png", "large.png"}
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)


def test_the_checker_finds_what_it_is_for(tmp_path):
    """Each rule fires on a figure built to break it (so a clean result above means something)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(4, 3))
    left.scatter([0.0, 1.0], [0.0, 1.0])  # points at the corners of default-tight limits
    left.set(xlim=(0, 1), ylim=(0, 1))
    left.plot([0, 1], [0.5, 0.5])  # a second line, no legend
    right.plot([0, 1, 2], [1.0, 2.0, 3.0])
    right.set_xticks([0, 0.5, 1, 1.5, 2])  # fractional ticks on an integer axis
    left.set_ylabel("a long label " * 4)
    right.set_title("a long title that reaches over the left panel", loc="right")
    left.set_title("another long title that reaches over the right", loc="left")
    fig.savefig(tmp_path / "bad.png")
    found = "\n".join(layout_problems(fig))
    plt.close(fig)
    assert "not wholly inside the axes" in found
    assert "in no legend" in found
    assert "holds integers but has ticks at [0.5, 1.5]" in found
    assert "text overlaps" in found
    fig, ax = plt.subplots()
    values = np.eye(100) * 100 + np.random.default_rng(0).standard_normal((100, 100))
    ax.imshow(values, vmin=-100, vmax=100)
    fig.savefig(tmp_path / "white.png")
    assert "hides" in "\n".join(layout_problems(fig))
    plt.close(fig)


def test_fit_rfm_figures(checked_figures, tmp_path):
    invoke("fit-rfm", "dataset=iris", "rfm.iters=2", "grid.ridges=[1.0,0.1]", "threads=1",
           f"hydra.run.dir={tmp_path}/run")  # fmt: skip
    assert {"accuracy_vs_iteration.png", "feature_matrix.png"} <= set(checked_figures)
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)


def test_train_net_and_verify_fact_figures(checked_figures, tmp_path):
    invoke("train-net", *TINY, "train.max_steps=400", f"hydra.run.dir={tmp_path}/train")
    invoke("verify-fact", f"source={tmp_path}/train", "verify.heatmap_layers=[1,2,3]", "threads=1",
           f"hydra.run.dir={tmp_path}/verify")  # fmt: skip
    assert {"correlations_per_layer.png", "heatmaps_W1.png", "heatmaps_W3.png"} <= set(checked_figures)
    assert "fact_vs_nfa_along_training.png" in checked_figures
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)


def test_grokking_figures(checked_figures, tmp_path):
    invoke("grokking", *TINY_RFM, "operation=*", "threads=1", f"hydra.run.dir={tmp_path}/rfm")
    invoke("grokking", *TINY_NET, "threads=1", f"hydra.run.dir={tmp_path}/net")
    assert {"grokking_curve.png", "feature_matrix_reordered.png", "fact_nfa_correlation.png"} <= set(
        checked_figures
    )
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)


def test_grokking_sweep_gives_one_figure_of_every_job(checked_figures, tmp_path):
    invoke("grokking", "-m", "learner=fact,nfa", "seed=0,1", "p=5", "rfm.iters=2", "plots=false",
           "threads=1", f"hydra.sweep.dir={tmp_path}/sweep")  # fmt: skip
    assert set(checked_figures) == {"grokking_sweep.png"}
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)
    rows = list(csv.DictReader(open(tmp_path / "sweep" / "grokking_sweep.csv")))
    assert [(row["learner"], row["seeds"]) for row in rows] == [("fact", "2"), ("nfa", "2")]
    jobs = list(csv.DictReader(open(tmp_path / "sweep" / "sweep.csv")))
    for row in rows:  # the table's mean is the mean over the learner's jobs in sweep.csv
        reached = [
            float(j["first_iteration_99"])
            for j in jobs
            if j["learner"] == row["learner"] and j["first_iteration_99"]
        ]
        assert int(row["reached_99"]) == len(reached)
        if reached:
            assert float(row["mean_first_iteration_99"]) == pytest.approx(
                sum(reached) / len(reached), abs=1e-12
            )


@pytest.mark.slow  # three parity runs, one a sweep of four jobs
def test_parity_figures(checked_figures, tmp_path):
    small = ["d=12", "k=3", "n=300", "test_size=400", "rfm.iters=3", "threads=1"]
    invoke("parity", *small, f"hydra.run.dir={tmp_path}/rfm")
    invoke("parity", "learner=net", "d=8", "k=2", "n=200", "test_size=200", "net.width=16", "net.steps=100",
           "net.log_every=25", "net.fact_every=50", "threads=1", f"hydra.run.dir={tmp_path}/net")  # fmt: skip
    invoke("parity", "-m", "n=100,200", "learner=laplace,fact", "d=12", "k=3", "test_size=200", "rfm.iters=1",
           "plots=false", "threads=1", f"hydra.sweep.dir={tmp_path}/sweep")  # fmt: skip
    assert {"diag_feature_matrix.png", "correlations_vs_step.png", "phase_transition.png"} <= set(
        checked_figures
    )
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)


@pytest.mark.slow  # a three-dataset benchmark with every baseline
def test_benchmark_scatter_figures(checked_figures, tmp_path, shared_data):
    invoke("fit-rfm", "benchmark=uci", f"data.root={shared_data}",
           "benchmark.datasets=[balloons,lenses,fertility]", "benchmark.methods=[laplace,fact]",
           "rfm.iters=2", "grid.ridges=[1.0,0.01]", "grid.bandwidths=[1.0,4.0]", "threads=1",
           f"hydra.run.dir={tmp_path}/bench")  # fmt: skip
    assert any(name.startswith("fact_vs_laplace") for name in checked_figures)
    assert problems_of(checked_figures) == {}, json.dumps(problems_of(checked_figures), indent=1)
