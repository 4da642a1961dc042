"""The parity acceptance settings, end to end (minutes on a shared 2-core CPU): `make test-slow`."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from factcli.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def run_parity(run_dir, *overrides) -> tuple[dict, pd.DataFrame]:
    result = runner.invoke(app, ["parity", *overrides, "plots=false", f"hydra.run.dir={run_dir}"])
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "summary.json").read_text()), pd.read_csv(run_dir / "metrics.csv")


def test_fact_rfm_jumps_after_hidden_progress_and_laplace_stays_at_chance(tmp_path):
    summary, metrics = run_parity(tmp_path / "fact", "experiment=parity/acceptance", "seed=0")
    assert summary["test_accuracy"] >= 0.95 and summary["support_recovered"]
    # Before the jump: at least two iterations within 5 points of chance while the support mass rises.
    assert summary["near_chance_before_95"] >= 2 and summary["support_mass_rise_near_chance"] > 0.02
    before = metrics[metrics["iteration"] < summary["first_95_at"]]
    assert before["support_mass"].is_monotonic_increasing
    baseline, _ = run_parity(tmp_path / "laplace", "experiment=parity/acceptance", "learner=laplace")
    assert baseline["test_accuracy"] < 0.6


def test_network_drops_from_a_plateau_to_95_percent(tmp_path):
    summary, metrics = run_parity(tmp_path / "net", "experiment=parity/net")
    assert summary["test_accuracy"] >= 0.95
    drop = summary["loss_drop_at"]
    # A visible plateau first: at least 10 logged steps (1000 steps) with test MSE near the 1/4 of
    # a constant prediction, then the drop below 1/8.
    plateau = metrics[(metrics["step"] < drop) & (metrics["test_mse"].between(0.24, 0.26))]
    assert len(plateau) >= 10 and drop >= 1000
