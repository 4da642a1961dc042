"""What fit-rfm says about feature learning (experiments/rfm/reading.py), and the demo table it is shown on.

The reading compares the chosen iterate with t = 0 (M = I) and says in one line when t = 0 was kept; the
generated table ``signal_in_noise`` (the default demo) is one where learned features must win.
"""

import json

import numpy as np
import pytest
import torch

from factcli.data import load_tabular
from factcli.experiments.rfm.grid import Candidate, GridSelection
from factcli.experiments.rfm.protocol import FoldResult
from factcli.experiments.rfm.reading import feature_learning


def candidate(iteration, val, kernel="laplace", ridge=1.0):
    return Candidate(kernel, 1.0, False, ridge, iteration, val, 0.01, 1.0)


def selection(chosen, candidates, d=3):
    return GridSelection(chosen, torch.eye(d), candidates, {"float64"}, 0.0)


def test_kept_t0_is_said_plainly_with_the_identity():
    at_zero = [candidate(0, 0.90), candidate(0, 0.80, ridge=0.1)]
    tried = [candidate(1, 0.85), candidate(2, 0.88)]
    result = FoldResult(0.93, torch.eye(3, dtype=torch.float64), [0.93], "float64")
    reading = feature_learning(selection(at_zero[0], at_zero + tried), [result], "accuracy", ["a", "b", "c"])
    assert reading["learned"] is False and reading["iteration"] == 0
    assert reading["reading"].startswith(
        "the validation accuracy did not improve with learned features: t = 0 kept"
    )
    assert "M is the identity" in reading["reading"]
    assert reading["test_accuracy_t0"] == reading["test_accuracy_chosen"] == 0.93
    assert [f["share_of_trace"] for f in reading["top_features"]] == pytest.approx([1 / 3] * 3, abs=1e-12)


def test_learned_features_compare_with_t0_and_name_the_features():
    chosen = candidate(2, 0.97)
    candidates = [candidate(0, 0.88), candidate(0, 0.70, ridge=0.1), candidate(1, 0.93), chosen]
    M = torch.diag(torch.tensor([0.5, 2.0, 0.5], dtype=torch.float64))
    folds = [
        FoldResult(0.95, M, [0.75, 0.90, 0.95], "float64"),
        FoldResult(0.97, M, [0.77, 0.93, 0.97], "float64"),
    ]
    reading = feature_learning(selection(chosen, candidates), folds, "accuracy", ["x", "signal", "y"])
    assert reading["learned"] and reading["iteration"] == 2
    assert reading["val_accuracy_t0"] == 0.88 and reading["val_accuracy_chosen"] == 0.97
    assert reading["test_accuracy_t0"] == pytest.approx(0.76, abs=1e-12)  # mean of the folds' t = 0
    assert reading["test_accuracy_chosen"] == pytest.approx(0.96, abs=1e-12)
    assert reading["top_features"][0] == {
        "feature": "signal",
        "share_of_trace": pytest.approx(2 / 3, abs=1e-12),
    }
    assert "0.8800 at t = 0 (M = I) → 0.9700" in reading["reading"]
    assert "test accuracy 0.7600 with M = I → 0.9600 with the learned M" in reading["reading"]


def test_regression_scores_lower_is_better():
    chosen = candidate(0, 0.5)
    candidates = [candidate(0, 0.7), chosen, candidate(1, 0.6)]
    folds = [FoldResult(0.4, torch.eye(3, dtype=torch.float64), [0.4], "float64")]
    reading = feature_learning(selection(chosen, candidates), folds, "mse", ["a", "b", "c"])
    assert reading["val_mse_t0"] == 0.5 and not reading["learned"]


def test_signal_in_noise_is_fixed_and_only_its_signals_carry_the_label():
    first, second = load_tabular("signal_in_noise"), load_tabular("signal_in_noise")
    assert np.array_equal(first.X, second.X) and np.array_equal(first.y, second.y)
    assert first.X.shape == (800, 16) and first.feature_names[:4] == [
        "signal_1",
        "signal_2",
        "signal_3",
        "noise_1",
    ]
    X, y = first.X, first.y
    assert np.array_equal(y, (X[:, 0] * X[:, 1] + 0.5 * X[:, 2] > 0).astype(np.int64))
    assert 0.4 < y.mean() < 0.6


def test_the_demo_learns_the_signal_features(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm", "dataset=signal_in_noise", "method=fact", "threads=1", f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    reading = summary["feature_learning"]
    assert reading["learned"] and summary["chosen"]["iteration"] >= 1
    # held-out rows: the learned M beats the same kernel with M = I by a wide margin
    assert (
        reading["test_accuracy_chosen"] > 0.9
        and reading["test_accuracy_chosen"] - reading["test_accuracy_t0"] > 0.1
    )
    assert {f["feature"] for f in reading["top_features"][:2]} == {"signal_1", "signal_2"}
    assert reading["top_features"][0]["share_of_trace"] + reading["top_features"][1]["share_of_trace"] > 0.8
    assert "learned features: t = " in result.output
