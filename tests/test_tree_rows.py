"""The tree-ensemble rows (random forest, LightGBM): tuned on the tuning split only, refit on each fold,
one table row per protocol like every other row."""

import dataclasses
import sys

import numpy as np
import pytest
import torch

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions
from factcli.data.records import UciSplits
from factcli.data.uci import load_uci
from factcli.experiments.rfm import trees
from factcli.experiments.rfm.grid import GridSpec
from factcli.experiments.rfm.suite import TABLE_COLUMNS, Entry, Suite

pytest.importorskip("lightgbm")
ENTRIES = [Entry("random-forest", kind="forest"), Entry("lightgbm", kind="lightgbm")]


@pytest.fixture(scope="module")
def iris(shared_data):
    return load_uci(shared_data / "uci", "iris")


def suite(data):
    return Suite(data, GridSpec(), RFMOptions(kernel=Kernel("laplace", 10.0), precision="float64"))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.label)
def test_a_tree_row_is_one_row_per_protocol_scored_on_the_folds(iris, entry):
    rows = suite(iris).run(entry, ["paper", "strict"])
    assert [row["protocol"] for row in rows] == ["paper", "strict"]
    for row in rows:
        assert set(row) <= set(TABLE_COLUMNS) and row["error"] == "" and row["iteration"] == 0
        folds = [row[f"fold{i}_accuracy"] for i in range(1, 5)]
        assert row["test_accuracy"] == pytest.approx(np.mean(folds), abs=1e-10)
        assert row["test_accuracy"] > 85  # iris: held folds
        assert row["params"] and row["kind"] == entry.kind
    assert rows[0]["test_accuracy"] == rows[1]["test_accuracy"]  # no M: both protocols refit the same model


def test_the_grid_and_its_tie_rule():
    assert len(trees.grid_points("forest")) == 6 and len(trees.grid_points("lightgbm")) == 8
    forest = [trees.TreeChoice(p, 0.9) for p in trees.grid_points("forest")]
    selection = min(forest, key=lambda c: trees._simplicity("forest", c.params, 16))
    assert selection.params == {"max_features": "sqrt", "min_samples_leaf": 5}  # √16 / 16 = 0.25 < 0.5
    boosted = [{**p, "trees": t} for p in trees.grid_points("lightgbm") for t in (40, 7)]
    simplest = min(boosted, key=lambda p: trees._simplicity("lightgbm", p, 16))
    assert simplest == {"num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 20, "trees": 7}


@pytest.mark.parametrize("kind", [pytest.param("forest", marks=pytest.mark.slow), "lightgbm"])
def test_selection_never_sees_a_test_label(iris, kind):
    """Iris with its tuning split on 90 rows and 4 folds whose test parts hold the other 60: changing
    every one of those 60 labels leaves the selection as it was, and changes the folds' scores."""
    order = np.random.default_rng(0).permutation(iris.n)
    tuning, held = order[:90], order[90:]
    folds = [(np.setdiff1d(order, part), part) for part in np.array_split(held, 4)]
    data = dataclasses.replace(iris, splits=UciSplits(tuning[:60], tuning[60:], folds))
    y = data.y.copy()
    y[held] = (y[held] + 1) % iris.n_classes
    other = dataclasses.replace(data, y=y)
    entry = Entry(kind, kind=kind)
    first, second = suite(data), suite(other)
    a, b = first.select(entry), second.select(entry)
    assert a.chosen == b.chosen and a.candidates == b.candidates
    assert first.evaluate(entry, a, "strict") != second.evaluate(entry, b, "strict")


def test_lightgbm_stops_on_validation_and_refits_that_many_trees(iris):
    X, y = torch.tensor(iris.X), torch.tensor(iris.y)
    train, val = torch.as_tensor(iris.splits.train), torch.as_tensor(iris.splits.val)
    selection = trees.select_tree("lightgbm", 3, X[train], y[train], X[val], y[val])
    counts = {c.params["trees"] for c in selection.candidates}
    assert all(1 <= t < trees.LIGHTGBM_MAX_TREES for t in counts)  # iris stops early
    params = selection.chosen.params
    A, ya = trees._numpy(X[train], y[train])
    booster, grown = trees._fit_lightgbm(params, 3, A, ya)
    assert grown == params["trees"] and booster.current_iteration() == params["trees"]


def test_a_one_class_training_part_predicts_that_class():
    X = torch.randn(12, 3, dtype=torch.float64)
    y = torch.zeros(12, dtype=torch.int64)
    for kind in trees.TREE_KINDS:
        selection = trees.select_tree(kind, 2, X[:8], y[:8], X[8:], y[8:])
        assert selection.chosen.val_accuracy == 1.0
        assert trees.evaluate_tree(selection, X[:8], y[:8], X[8:], torch.tensor([0, 1, 0, 0])) == 0.75


def test_without_lightgbm_the_row_is_refused_in_one_line(fact_cli, shared_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import fails as if not installed
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm",
        "benchmark=uci",
        f"data.root={shared_data}",
        "benchmark.datasets=[balloons]",
        "benchmark.methods=[laplace]",
        "benchmark.baselines=[lightgbm]",
        f"hydra.run.dir={out}",
    )
    assert result.exit_code == 1
    assert "pip install -e '.[bench]'" in result.stderr.strip().splitlines()[-1]
    assert not (out / "results.csv").exists()


@pytest.mark.slow
def test_the_benchmark_adds_the_tree_rows_as_baselines(fact_cli, shared_data, tmp_path):
    import json

    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm",
        "benchmark=uci",
        f"data.root={shared_data}",
        "benchmark.datasets=[balloons,lenses]",
        "benchmark.methods=[fact]",
        "benchmark.baselines=[random-forest,lightgbm]",
        "rfm.iters=1",
        "grid.ridges=[1.0]",
        "grid.bandwidths=[1.0]",
        "plots=false",
        f"hydra.run.dir={out}",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "benchmark_summary.json").read_text())
    assert set(summary["comparison"]["strict"]["versus"]["fact"]) == {"random-forest", "lightgbm"}


def test_lightgbm_takes_one_thread_per_10000_rows(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    threads = [trees._lightgbm_params({}, 2, rows)["num_threads"] for rows in (150, 19_999, 20_000, 10**6)]
    assert threads == [1, 1, 2, 4]
