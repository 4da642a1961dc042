"""Run records: one writer per run directory, nothing a run recorded rewritten by a refused
invocation, result files as readable as the umask allows."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest
from test_train_net import TINY, error_line

QUICK = ["dataset=iris", "rfm.iters=1", "grid.ridges=[1.0]", "plots=false", "threads=1"]
RECORDS = ["config.yaml", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"]


def contents(path) -> dict:
    """Every file under ``path`` (the lock file aside) → its bytes."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".fact.lock"
    }


@pytest.fixture
def holder(tmp_path):
    """Start a second process that takes a directory's lock and sleeps; yields (Popen, directory)."""
    processes = []

    def start(directory):
        code = textwrap.dedent(f"""
            import sys, time
            from factcli import rundir_lock
            rundir_lock.hold({str(directory)!r})
            print("held", flush=True)
            time.sleep(120)
        """)
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_a_directory_in_use_is_refused_and_freed_when_its_holder_dies(fact_cli, tmp_path, holder):
    out = tmp_path / "run"
    process = holder(out)
    result = fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}")
    line = error_line(result)
    assert f"is in use by pid {process.pid} on " in line and "choose another run directory" in line
    assert contents(out) == {}  # the refused run wrote nothing
    process.kill()  # SIGKILL: no cleanup ran, yet the kernel dropped the lock
    process.wait()
    result = fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert (out / "summary.json").is_file()


def test_a_sweep_directory_in_use_is_refused(fact_cli, tmp_path, holder):
    sweep = tmp_path / "sweep"
    holder(sweep)
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert "is in use by pid" in error_line(result)
    assert contents(sweep) == {}


def test_refused_rerun_of_a_finished_run_rewrites_nothing(fact_cli, tmp_path):
    out = tmp_path / "run"
    assert fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}").exit_code == 0
    before = contents(out)
    assert set(RECORDS) <= set(before)
    for other in (["seed=7"], ["method=nfa", "rfm.iters=2"], []):
        result = fact_cli("fit-rfm", *QUICK, *other, f"hydra.run.dir={out}")
        assert "already holds a finished run" in error_line(result)
        assert contents(out) == before


def test_refused_resume_with_other_settings_keeps_the_runs_records(fact_cli, tmp_path):
    """An interrupted train-net run (checkpoint, no summary) rerun with another seed is refused; the
    records of the run in that directory stay those of the run that made its checkpoint."""
    out = tmp_path / "run"
    steps = ["train.max_steps=50", "train.checkpoint_every=50", "train.log_every=50", "plots=false"]
    assert fact_cli("train-net", *TINY, *steps, f"hydra.run.dir={out}").exit_code == 0
    (out / "summary.json").unlink()  # as if interrupted after its last checkpoint
    before = contents(out)
    result = fact_cli("train-net", *TINY, *steps, "seed=3", f"hydra.run.dir={out}")
    assert "seed=0 (checkpoint) vs 3" in error_line(result)
    after = contents(out)
    log = "train_net.log"  # a log only grows: the refused attempt's lines are appended
    assert after[log].startswith(before[log])
    assert {k: v for k, v in after.items() if k != log} == {k: v for k, v in before.items() if k != log}


def test_refused_invocation_in_a_new_directory_leaves_no_directory(fact_cli, tmp_path):
    table = tmp_path / "two.csv"
    table.write_text("a,y\n1.0,0\n2.0,1\n")
    out = tmp_path / "new" / "run"
    result = fact_cli("fit-rfm", f"dataset={table}", "data.target=y", f"hydra.run.dir={out}")
    assert "two has 2 rows" in error_line(result) and "each part needs at least one row" in error_line(result)
    assert not out.exists()


def test_a_run_directory_that_is_a_file_is_refused(fact_cli, tmp_path):
    path = tmp_path / "taken"
    path.write_text("not a directory\n")
    result = fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={path}")
    assert "is a file, not a directory" in error_line(result)
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={path}")
    assert "is a file, not a directory" in error_line(result)
    assert path.read_text() == "not a directory\n"


def test_a_sweep_directory_is_only_resumed_by_the_same_sweep(fact_cli, tmp_path):
    sweep = tmp_path / "sweep"
    assert fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}").exit_code == 0
    before = contents(sweep)
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=5,6", f"hydra.sweep.dir={sweep}")
    assert "holds a sweep of other overrides" in error_line(result)
    assert contents(sweep) == before  # sweep.csv, multirun.yaml and every job's records unchanged


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_result_files_follow_the_umask(fact_cli, tmp_path, umask):
    out = tmp_path / "run"
    previous = os.umask(umask)
    try:
        assert fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}").exit_code == 0
    finally:
        os.umask(previous)
    for name in ("summary.json", "metrics.csv", "config.yaml", ".hydra/overrides.yaml", "fit_rfm.log"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name
