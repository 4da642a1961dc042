"""`fact train-net` end to end: convergence, the run directory, resume, reproducibility, bad inputs."""

import json
import pickle
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TEACHER_NET

# A 2-hidden-layer tanh net on a 24-point teacher regression, float64, full-batch GD: stationary
# to 1e-6 in a few hundred steps, so "converged" is reached for real.
TINY = [*TEACHER_NET, "threads=1"]
# Mini-batch SGD on digits: a few dozen steps and no L-BFGS finish (a network far from a critical
# point), for the contract, resume, reproducibility and the honest reading of unconverged nets.
DIGITS = [
    "data.train_size=300", "data.test_size=100", "model.hidden=[16,16]", "optim.batch_size=32",
    "train.max_steps=40", "train.log_every=20", "train.check_every=10", "train.checkpoint_every=10",
    "train.finish=none", "threads=1",
]  # fmt: skip
METRIC_COLUMNS = [
    "step", "phase", "lr", "train_loss", "train_acc", "test_acc", "layer", "module", "shape", "residual",
    "fact", "fact_transpose", "fact_sym", "fact_relerr", "bfact", "bfact_relerr",
    "fact_per_sample", "nfa", "nfa_centered", "enfa_s0.5", "fact_paths_relerr", "lambda", "uses", "form",
]  # fmt: skip


def summary_of(path):
    return json.loads((path / "summary.json").read_text())


def error_line(result) -> str:
    """The one ``error:`` line a failed run ends with (progress lines may come before it)."""
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    assert sum(line.startswith("error") for line in lines) == 1
    return lines[-1]


def test_tiny_network_trains_to_stationarity_and_fact_holds(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("train-net", *TINY, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["stop_reason"] == "converged"
    assert summary["max_residual"] < 1e-6
    for layer in summary["layers"]:
        assert layer["fact_relerr"] < 1e-4 and layer["fact"] > 1 - 1e-8
    assert summary["fact_corr_early_min"] < 0.5  # at initialization FACT does not hold
    assert summary["fact_validity"].startswith("exact")
    assert "MSELoss" in summary["loss_convention"] and summary["lambda"] == 0.05


def test_run_directory_contract_and_metrics_columns(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("train-net", *DIGITS, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == [
        "checkpoint.pt", "config.yaml", "metrics.csv", "plots", "summary.json", "train_net.log",
    ]  # fmt: skip
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "correlations_per_layer.png", "fact_vs_nfa_along_training.png",
    ]  # fmt: skip
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == METRIC_COLUMNS
    assert metrics.step.tolist() == [0] * 3 + [20] * 3 + [40] * 3  # one row per layer and log
    assert metrics.layer.tolist()[:3] == ["W1", "W2", "W3"]
    assert metrics["shape"].tolist()[:3] == ["16x64", "16x16", "10x16"]
    # The two ways of computing F agree at every logged (unconverged) step.
    assert np.allclose(metrics.fact, metrics.fact_per_sample, atol=1e-9)
    summary = summary_of(out)
    assert summary["stop_reason"] == "step_budget" and summary["steps"] == 40
    assert "train.max_steps=40 reached" in summary["stop_detail"]
    assert summary["estimate"]["seconds_per_step"] > 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 40 and checkpoint["config"]["seed"] == 0
    assert {"model", "optimizer", "scheduler", "batches", "architecture"} <= set(checkpoint)


def test_same_seed_same_numbers_other_seed_other_numbers(fact_cli, tmp_path):
    frames = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / name
        result = fact_cli("train-net", *DIGITS, "plots=false", f"seed={seed}", f"hydra.run.dir={out}")
        assert result.exit_code == 0, result.stderr
        frames.append(pd.read_csv(out / "metrics.csv"))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert not np.allclose(frames[0].train_loss, frames[2].train_loss)


def test_interrupted_run_resumes_to_the_same_numbers(fact_cli, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert fact_cli("train-net", *DIGITS, "plots=false", f"hydra.run.dir={whole}").exit_code == 0
    first = fact_cli("train-net", *DIGITS, "plots=false", "train.max_steps=20", f"hydra.run.dir={parts}")
    assert first.exit_code == 0, first.stderr
    (parts / "summary.json").unlink()  # as if killed after the step-20 checkpoint
    second = fact_cli("train-net", *DIGITS, "plots=false", f"hydra.run.dir={parts}")
    assert second.exit_code == 0, second.stderr
    assert "resuming from" in (parts / "train_net.log").read_text()
    pd.testing.assert_frame_equal(pd.read_csv(whole / "metrics.csv"), pd.read_csv(parts / "metrics.csv"))


def test_checkpoint_of_another_architecture_is_refused(fact_cli, tmp_path):
    out = tmp_path / "run"
    assert fact_cli("train-net", *DIGITS, "plots=false", f"hydra.run.dir={out}").exit_code == 0
    (out / "summary.json").unlink()
    line = error_line(fact_cli("train-net", *DIGITS, "model.hidden=[8]", f"hydra.run.dir={out}"))
    assert "another architecture" in line and "hidden: [16, 16] (checkpoint) vs [8]" in line


def test_zero_weight_decay_is_refused(fact_cli, tmp_path):
    result = fact_cli("train-net", *DIGITS, "optim.weight_decay=0", f"hydra.run.dir={tmp_path}/r")
    assert "FACT is undefined" in error_line(result)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("train-net", *DIGITS, "optim.lr=1e8", "train.checkpoint_every=1",
                      f"hydra.run.dir={out}")  # fmt: skip
    line = error_line(result)
    assert re.search(r"the loss became (nan|inf) at step", line) and "last good checkpoint" in line
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(w).all() for w in checkpoint["model"].values())
    assert not (out / "summary.json").exists() and (out / "error.txt").exists()


def test_mnist_directory_missing_a_file_names_it(fact_cli, tmp_path, shared_data):
    partial = tmp_path / "mnist"
    partial.mkdir()
    shutil.copy(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz", partial)
    result = fact_cli("train-net", "dataset=mnist", "data.split=test", f"data.directory={partial}",
                      f"hydra.run.dir={tmp_path}/r")  # fmt: skip
    assert "t10k-labels-idx1-ubyte" in error_line(result)


def test_mnist_from_the_shared_test_files(fact_cli, tmp_path, shared_data):
    out = tmp_path / "run"
    result = fact_cli(
        "train-net", "dataset=mnist", "data.split=test", "data.train_size=200", "data.test_size=100",
        f"data.root={shared_data}", "model.hidden=[16,16,16,16,16]", "train.max_steps=10",
        "train.finish=none", "train.log_every=10", "plots=false", "threads=1", f"hydra.run.dir={out}",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["architecture"]["in_dim"] == 784 and len(summary["layers"]) == 6
    assert "200 train / 100 held-out test rows of the test files" in summary["dataset"]


def _write_tiny_cifar(directory, per_batch=12):
    rng = np.random.default_rng(0)
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))


def test_cifar10_conv_net_and_adamw_says_fact_is_approximate(fact_cli, tmp_path):
    _write_tiny_cifar(tmp_path / "cifar")
    out = tmp_path / "run"
    result = fact_cli(
        "train-net", "dataset=cifar10", f"data.directory={tmp_path / 'cifar'}", "data.test_split=test",
        "data.train_size=40", "data.test_size=10", "model=conv", "model.channels=[4,6]", "optim=adamw",
        "optim.batch_size=8", "train.max_steps=6", "train.log_every=3", "train.finish=none", "plots=false",
        "threads=1",
        f"hydra.run.dir={out}",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["fact_validity"].startswith("approximate only")
    assert summary["convergence"]["reading"].startswith("NOT at a critical point")
    assert "(AdamW): even at its fixed points FACT is approximate" in summary["convergence"]["reading"]
    assert [layer["shape"] for layer in summary["layers"]] == ["4x27", "6x36", "10x384"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert np.allclose(metrics.fact, metrics.fact_per_sample, atol=1e-9)  # conv: over patches


def test_conv_needs_images(fact_cli, tmp_path):
    result = fact_cli("train-net", "dataset=wine", "model=conv", f"hydra.run.dir={tmp_path}/r")
    assert "needs square images" in error_line(result)


def test_estimate_only_prints_the_time_and_trains_nothing(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("train-net", *DIGITS, "train.estimate_only=true", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert "estimated time on cpu" in (out / "train_net.log").read_text()
    summary = summary_of(out)
    assert summary["stop_reason"] == "estimate_only" and summary["estimate"]["total_seconds"] > 0
    assert not (out / "checkpoint.pt").exists()


def test_learning_rate_schedules():
    from types import SimpleNamespace

    from factcli.experiments.common.optim import lr_factor

    optim = SimpleNamespace(warmup_steps=10, schedule="cosine", min_lr_factor=0.1, step_every=5, gamma=0.5)
    assert lr_factor(0, optim, 110) == pytest.approx(0.1) and lr_factor(9, optim, 110) == 1.0
    assert lr_factor(10, optim, 110) == pytest.approx(1.0)
    assert lr_factor(60, optim, 110) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway: cos(π/2) = 0
    assert lr_factor(110, optim, 110) == pytest.approx(0.1)
    assert lr_factor(500, optim, 110) == pytest.approx(0.1)
    optim.schedule, optim.warmup_steps = "step", 0
    assert [lr_factor(s, optim, 100) for s in (0, 4, 5, 14)] == [1.0, 1.0, 0.5, 0.25]


def test_teacher_task_is_seeded():
    from factcli.data.teacher import make_teacher

    a, b = make_teacher(50, dim=6, rank=2, seed=3), make_teacher(50, dim=6, rank=2, seed=3)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_allclose(a.directions.T @ a.directions, np.eye(2), atol=1e-12)
    assert not np.array_equal(make_teacher(50, dim=6, rank=2, seed=4).X, a.X)
    regression = make_teacher(40, dim=6, rank=2, classes=3, task="regression", seed=3)
    assert regression.y.shape == (40, 3) and abs(regression.y.mean()) < 1e-12


def test_a_resume_refuses_settings_that_shaped_the_steps_taken_and_changes_nothing(fact_cli, tmp_path):
    out = tmp_path / "run"
    assert (
        fact_cli("train-net", *DIGITS, "plots=false", "train.max_steps=20", f"hydra.run.dir={out}").exit_code
        == 0
    )
    (out / "summary.json").unlink()  # as if killed after the step-20 checkpoint
    before = {name: (out / name).read_bytes() for name in ("checkpoint.pt", "config.yaml", "metrics.csv")}
    result = fact_cli("train-net", *DIGITS, "plots=false", "optim.momentum=0.5", "optim.batch_size=16",
                      f"hydra.run.dir={out}")  # fmt: skip
    line = error_line(result)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "optim.batch_size=32 (checkpoint) vs 16, optim.momentum=0.9 (checkpoint) vs 0.5" in line
    assert "use a new run directory" in line
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_resume_with_a_smaller_lr_takes_effect_from_the_checkpoint_and_is_recorded(fact_cli, tmp_path):
    out = tmp_path / "run"
    assert (
        fact_cli("train-net", *DIGITS, "plots=false", "train.max_steps=20", f"hydra.run.dir={out}").exit_code
        == 0
    )
    (out / "summary.json").unlink()
    result = fact_cli("train-net", *DIGITS, "plots=false", "optim.lr=0.01", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["resumes"] == [
        {"step": 20, "changed": {"optim.lr": [0.05, 0.01], "train.max_steps": [20, 40]}}
    ]
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics[metrics.step <= 20].lr) == {0.05} and set(metrics[metrics.step > 20].lr) == {0.01}
    assert "lr: 0.01" in (out / "config.yaml").read_text()


def test_along_training_plot_shows_negative_correlations():
    """A correlation of −0.45 (FACT away from convergence, NFA in the counterexample) is inside the
    axes, not clipped at −0.1; the step axis has integer ticks."""
    from factcli.experiments.nets.plots import training_figure

    rows = [
        {"step": step, "layer": "W1", "fact": fact, "fact_sym": 0.2, "nfa": -0.28, "enfa_s0.5": 0.1,
         "residual": 1.0 / (step + 1)}
        for step, fact in ((0, -0.45), (5, -0.18), (10, 0.99))
    ]  # fmt: skip
    figure = training_figure(rows, tol=1e-3)
    axes = figure.axes[0]
    low, high = axes.get_ylim()
    assert low < -0.45 and high >= 1.0
    assert all(float(tick).is_integer() for tick in axes.get_xticks())


@pytest.mark.slow
@pytest.mark.parametrize("tied", ["false", "true"])
def test_transformer_preset_reaches_a_critical_point_where_fact_holds_in_every_matrix(
    fact_cli, tmp_path, tied
):
    """experiment=nets/transformer: every weight matrix (embedding, positions, Q, K, V, output
    projection, MLP, unembedding or the tied embedding) at residual <= 1e-3 with corr(WᵀW, F) >= 0.999."""
    out = tmp_path / "run"
    result = fact_cli("train-net", "experiment=nets/transformer", f"model.tied={tied}", "threads=1",
                      f"hydra.run.dir={out}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["stop_reason"] == "converged" and summary["convergence"]["at_critical_point"]
    layers = summary["layers"]
    assert len(layers) == (8 if tied == "true" else 9)
    assert all(r["residual"] <= 1e-3 and r["fact"] >= 0.999 for r in layers)
    assert all("nfa" in r for r in layers if r["module"] != "positions")
    assert (out / "plots" / "correlations_per_layer.png").stat().st_size > 0
