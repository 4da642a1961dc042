"""`fact grokking` end to end through the Typer app: run directories, metrics, plots, sweeps, errors."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from factcli.cli import app

TINY_RFM = ["p=7", "rfm.iters=3"]
TINY_NET = ["learner=net", "p=7", "net.width=32", "net.steps=60", "net.log_every=20", "net.measure_every=30"]


def grokking(*args):
    return CliRunner().invoke(app, ["grokking", *args])


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_rfm_run_writes_metrics_summary_matrices_and_plots(tmp_path):
    result = grokking(*TINY_RFM, "operation=*", f"hydra.run.dir={tmp_path}/run")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["operation"] == "mul"
    assert summary["iterations"] == 3 and summary["n_train"] + summary["n_test"] == 49
    assert summary["min_train_accuracy"] == 1.0  # ridgeless: the training pairs are interpolated
    for key in ("first_iteration_99", "jump_iteration", "early_test_accuracy", "circulant_deviation_end"):
        assert key in summary
    assert set(summary["tau"]) >= {"start", "end"} and "r2" in summary["tau"]["end"]
    rows = read_rows(run / "metrics.csv")
    assert [row["iteration"] for row in rows] == ["0", "1", "2", "3"]
    assert list(rows[0])[0] == "iteration"
    for column in ("train_accuracy", "test_accuracy", "test_loss", "test_correct_class_loss", "trace_M"):
        assert column in rows[0]
    assert float(rows[-1]["alignment_with_final"]) == pytest.approx(1.0)
    assert float(rows[2]["trace_M"]) == pytest.approx(14.0)  # trace rescaling: tr M = d = 2p
    matrices = np.load(run / "feature_matrices.npz")
    assert matrices["matrices"].shape == (4, 14, 14) and list(matrices["steps"]) == [0, 1, 2, 3]
    plots = ("grokking_curve", "circulant_deviation", "feature_matrix", "feature_matrix_offdiagonal")
    for plot in (*plots, "feature_matrix_reordered"):
        assert (run / "plots" / f"{plot}.png").stat().st_size > 0


def test_network_run_logs_fact_and_nfa_correlations(tmp_path):
    result = grokking(*TINY_NET, f"hydra.run.dir={tmp_path}/run")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iteration_unit"] == "optimizer step" and summary["iterations"] == 60
    assert "AdamW" in summary["fact_note"]
    for key in ("first_step_train_100", "first_step_test_95", "final_fact_corr", "final_nfa_corr"):
        assert key in summary
    rows = read_rows(run / "metrics.csv")
    assert [row["step"] for row in rows] == ["0", "20", "40", "60"]
    measured = [row["step"] for row in rows if row.get("fact_corr")]
    assert measured == ["0", "60"]  # every measure_every steps that is logged, and the last
    assert -1 <= float(rows[-1]["fact_corr"]) <= 1 and float(rows[-1]["residual_W1"]) > 0
    assert (run / "plots" / "fact_nfa_correlation.png").exists()


def test_transformer_learner_runs_with_the_grokking_figures_and_adamws_preconditioned_fact(tmp_path):
    tiny = ["learner=transformer", "p=7", "net.d_model=8", "net.mlp_width=16", "net.steps=40",
            "net.log_every=20", "net.measure_every=20"]  # fmt: skip
    result = grokking(*tiny, f"hydra.run.dir={tmp_path}/run")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["architecture"]["kind"] == "transformer" and "width" not in summary
    assert -1 <= summary["final_preconditioned_fact_corr"] <= 1
    assert summary["final_preconditioned_residual_W1"] > 0
    rows = read_rows(run / "metrics.csv")
    assert [row["step"] for row in rows] == ["0", "20", "40"]
    assert rows[0]["preconditioned_fact_corr"] == ""  # before the first step AdamW has no P
    matrices = np.load(run / "feature_matrices.npz")["matrices"]
    assert matrices.shape == (3, 14, 14)  # the 2p input vectors' Gram matrix, like W1^T W1
    for plot in ("grokking_curve", "circulant_deviation", "feature_matrix", "fact_nfa_correlation"):
        assert (run / "plots" / f"{plot}.png").stat().st_size > 0


def test_sweep_table_has_first_iteration_99_per_job(tmp_path):
    result = grokking(
        "-m", "learner=fact,nfa", "p=5", "rfm.iters=2", "plots=false", f"hydra.sweep.dir={tmp_path}/s"
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "s" / "sweep.csv")
    assert [row["learner"] for row in rows] == ["fact", "nfa"]
    assert all("first_iteration_99" in row and row["status"] == "finished" for row in rows)


def test_compare_runs_more_learners_on_the_same_split_and_figure(tmp_path):
    result = grokking("p=5", "rfm.iters=2", "compare=[nfa,fact-geo]", f"hydra.run.dir={tmp_path}/run")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["learner"] == "fact" and set(summary["compare"]) == {"nfa", "fact-geo"}
    assert "first_iteration_99" in summary["compare"]["nfa"]
    rows = read_rows(run / "metrics.csv")
    assert [row["learner"] for row in rows] == ["fact"] * 3 + ["nfa"] * 3 + ["fact-geo"] * 3
    assert np.load(run / "feature_matrices.npz")["matrices_nfa"].shape == (3, 10, 10)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["p=12", "operation=div"], "p = 12 is not prime"),
        (["p=15", "operation=mul"], "p = 15 is not prime"),
        (["train_fraction=1.5"], "must lie strictly between 0 and 1"),
        (["train_fraction=0"], "must lie strictly between 0 and 1"),
        (["operation=pow"], "unknown operation 'pow'"),
        (["learner=svm"], "unknown learner 'svm'"),
        (["kernel.name=cosine"], "unknown kernel 'cosine'"),
        (["compare=[net]"], "unknown learner to compare 'net'"),
        (["compare=[fact]"], "compare lists other RFM learners"),
        (["threads=0"], "threads must be at least 1"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(tmp_path, overrides, message):
    result = grokking(*overrides, f"hydra.run.dir={tmp_path}/bad")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "bad" / "summary.json").exists()


def test_unknown_key_is_a_usage_error(tmp_path):
    result = grokking("rfm.iterations=3", f"hydra.run.dir={tmp_path}/bad")
    assert result.exit_code == 2 and "rfm.iterations" in result.output
