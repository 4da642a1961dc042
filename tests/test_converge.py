"""The default schedule converges: minibatch steps, then full-batch L-BFGS on L_λ until every layer's
residual is at most train.tol; an unconverged network is called so first; resume inside the L-BFGS
phase gives the same numbers."""

import pandas as pd
import pytest
from test_train_net import DIGITS, summary_of

# The defaults (digits, 5 hidden GELU layers, SGD then L-BFGS, λ = 1e-3, tol = 1e-3) on a smaller
# budget: fewer rows and narrower layers, everything else as `fact verify-fact` with no arguments.
SMALL_DEFAULT = ["data.train_size=200", "model.hidden=[12,12,12,12,12]", "train.max_steps=1000"]
# A small digits net whose L-BFGS phase spans several log steps (for resume inside it).
FINISHING = [
    "data.train_size=200", "data.test_size=100", "model.hidden=[8,8]", "train.max_steps=200",
    "train.log_every=100", "train.check_every=100", "train.checkpoint_every=100",
]  # fmt: skip


@pytest.mark.slow
def test_the_default_reaches_a_critical_point_and_fact_holds(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("verify-fact", *SMALL_DEFAULT, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.output
    summary = summary_of(out)
    assert list(summary)[:2] == ["status", "convergence"]
    assert summary["convergence"]["at_critical_point"] is True
    assert summary["convergence"]["reading"].startswith("At a critical point of L_lambda")
    assert summary["training"]["stop_reason"] == "converged"
    table = pd.read_csv(out / "fact_layers.csv")
    assert len(table) == 6 and (table.residual <= 1e-3).all() and (table.fact >= 0.999).all()
    assert (table.fact_paths_relerr < 1e-10).all()
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics.phase.iloc[0] == "train" and metrics.phase.iloc[-1] == "finish"
    early = metrics[metrics.step == metrics.step.min()]
    assert early.fact.max() < 0.5 and early.residual.min() > 0.1  # FACT does not hold at the start
    train = summary_of(out)["training"]
    assert train["steps"] > 1000  # the SGD steps, then L-BFGS iterations
    assert (out / "plots" / "fact_vs_nfa_along_training.png").is_file()
    assert (out / "plots" / "correlations_per_layer.png").is_file()


def test_a_step_budget_without_the_finish_is_read_as_not_converged(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("verify-fact", *DIGITS, "plots=false", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.output
    summary = summary_of(out)
    assert list(summary)[:2] == ["status", "convergence"]
    reading = summary["convergence"]
    assert reading["at_critical_point"] is False and reading["max_residual"] > 1e-3
    assert reading["reading"].startswith("NOT at a critical point of L_lambda")
    assert summary["training"]["stop_reason"] == "step_budget"
    assert reading["tol"] == 1e-3 and set(reading["residuals"]) == {"W1", "W2", "W3"}
    log = (out / "verify_fact.log").read_text()
    assert log.index("NOT at a critical point") < log.index("W1 16x64")
    train_summary = pd.read_csv(out / "metrics.csv")
    assert (train_summary.phase == "train").all()


def test_train_net_says_whether_it_converged(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli(
        "train-net", *FINISHING, "plots=false", "train.finish_max_iters=100", f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.output
    summary = summary_of(out)
    assert summary["stop_reason"] == "finish_budget"
    assert "train.finish_max_iters=100 L-BFGS iterations reached" in summary["stop_detail"]
    assert summary["convergence"]["at_critical_point"] is False
    assert summary["finish"]["started_at_step"] == 200 and summary["finish"]["iterations"] == 100
    assert summary["fact_validity"].startswith("exact: L-BFGS minimizes L_lambda itself")
    assert "NOT at a critical point" in (out / "train_net.log").read_text()


def test_resume_inside_the_lbfgs_phase_gives_the_same_numbers(fact_cli, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert fact_cli("train-net", *FINISHING, "plots=false", f"hydra.run.dir={whole}").exit_code == 0
    first = fact_cli(
        "train-net", *FINISHING, "plots=false", "train.finish_max_iters=100", f"hydra.run.dir={parts}"
    )
    assert first.exit_code == 0, first.output
    (parts / "summary.json").unlink()  # as if killed after the checkpoint 100 L-BFGS iterations in
    second = fact_cli("train-net", *FINISHING, "plots=false", f"hydra.run.dir={parts}")
    assert second.exit_code == 0, second.output
    a, b = pd.read_csv(whole / "metrics.csv"), pd.read_csv(parts / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)
    assert summary_of(whole)["stop_reason"] == summary_of(parts)["stop_reason"] == "converged"
    assert summary_of(whole)["steps"] == summary_of(parts)["steps"]


def test_the_plot_marks_where_each_residual_first_reaches_the_tolerance():
    from factcli.experiments.nets.plots import tolerance_crossings

    rows = [
        {"step": s, "layer": layer, "residual": r}
        for s, residuals in ((0, (5.0, 3.0)), (100, (9e-4, 0.5)), (200, (2e-3, 1e-3)), (300, (1e-4, 1e-4)))
        for layer, r in zip(("W1", "W2"), residuals, strict=True)
    ]
    assert tolerance_crossings(rows, 1e-3) == {"W1": 100.0, "W2": 200.0}
    assert tolerance_crossings(rows, 1e-5) == {"W1": None, "W2": None}


@pytest.mark.parametrize("bad", ["train.finish=newton", "train.finish_max_iters=0"])
def test_bad_finish_settings_are_refused(fact_cli, tmp_path, bad):
    from test_train_net import error_line

    line = error_line(fact_cli("train-net", bad, f"hydra.run.dir={tmp_path}/r"))
    assert "train.finish" in line
    assert not (tmp_path / "r" / "summary.json").exists()
