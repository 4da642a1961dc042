"""Sweeps: every failed job recorded where it ran, the sweep going on, honest exit codes."""

import pandas as pd
import pytest
from test_run_records import QUICK, contents

import factcli.experiments.rfm.fit as fit_rfm


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error")]


@pytest.fixture
def crash_on_seed(monkeypatch):
    """Make fit-rfm's experiment raise ``exception`` for one seed (a bug, or Ctrl-C, mid-sweep)."""

    def install(seed, exception):
        real = fit_rfm.run

        def run(cfg, run_dir):
            if cfg.seed == seed:
                raise exception
            return real(cfg, run_dir)

        monkeypatch.setattr(fit_rfm, "run", run)

    return install


def test_a_crashing_job_is_recorded_and_the_sweep_goes_on(fact_cli, tmp_path, crash_on_seed):
    crash_on_seed(1, ZeroDivisionError("division by zero"))
    sweep = tmp_path / "sweep"
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1,2", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert line.startswith("error: 1 job(s) failed (job 1: unexpected ZeroDivisionError: division by zero")
    error = (sweep / "1" / "error.txt").read_text()
    assert error.startswith("unexpected ZeroDivisionError: division by zero (traceback in ")
    assert "raise exception" in (sweep / "1" / "traceback.txt").read_text()
    table = pd.read_csv(sweep / "sweep.csv")
    assert table.status.tolist() == ["finished", "failed", "finished"]
    assert table.seed.tolist()[::2] == [0, 2] and table.error[1] == error.strip()


def test_a_job_failing_validation_is_a_failed_row_with_its_reason(fact_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = fact_cli("fit-rfm", "-m", *QUICK, "rfm.solve_tol=1e-3,-1", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 1
    [line] = error_lines(result)
    assert line == "error: 1 job(s) failed (job 1: rfm.solve_tol must be positive, got -1.0)"
    assert (sweep / "1" / "error.txt").read_text() == "rfm.solve_tol must be positive, got -1.0\n"
    table = pd.read_csv(sweep / "sweep.csv")
    assert table.status.tolist() == ["finished", "failed"]
    assert table["rfm.solve_tol"].tolist() == [1e-3, -1]  # its overrides beside its reason


def test_an_interrupted_sweep_rerun_finishes_and_exits_zero(fact_cli, tmp_path, crash_on_seed, monkeypatch):
    sweep = tmp_path / "sweep"
    command = ["fit-rfm", "-m", *QUICK, "seed=0,1,2", f"hydra.sweep.dir={sweep}"]
    crash_on_seed(1, KeyboardInterrupt())  # Ctrl-C during job 1
    assert fact_cli(*command).exit_code != 0
    assert (sweep / "0" / "summary.json").is_file() and not (sweep / "1" / "summary.json").exists()
    assert not (sweep / "1" / "error.txt").exists() and not (sweep / "2").exists()
    first_job = contents(sweep / "0")
    monkeypatch.undo()
    result = fact_cli(*command)
    assert result.exit_code == 0, result.stderr
    assert error_lines(result) == []
    again = contents(sweep / "0")  # done before: reported done (one more log line), not redone
    assert again.pop("fit_rfm.log").startswith(first_job.pop("fit_rfm.log")) and again == first_job
    table = pd.read_csv(sweep / "sweep.csv")
    assert table.status.tolist() == ["finished"] * 3 and table.seed.tolist() == [0, 1, 2]
