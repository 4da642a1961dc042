"""Sweeps through Hydra's launchers: joblib workers and submitit processes give the sequential results;
sweep.csv from the job directories; cores divided between side-by-side jobs; bad launchers refused."""

import csv
import json

import numpy as np
import pytest

from factcli import launchers
from factcli.commands import COMMANDS
from factcli.launch import prepare

QUICK = ["dataset=iris", "rfm.iters=1", "grid.ridges=[1.0,0.01]", "plots=false"]


def jobs_of(sweep_dir):
    return sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def sweep_rows(sweep_dir):
    with open(sweep_dir / "sweep.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_joblib_sweep_of_4_jobs_on_2_workers_equals_the_sequential_sweep(fact_cli, tmp_path):
    seeds = "seed=0,1,2,3"  # each seed draws another train / validation / test split
    basic, joblib = tmp_path / "basic", tmp_path / "joblib"
    result = fact_cli("fit-rfm", "-m", *QUICK, seeds, f"hydra.sweep.dir={basic}")
    assert result.exit_code == 0, result.stderr
    result = fact_cli(
        "fit-rfm",
        "-m",
        *QUICK,
        seeds,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={joblib}",
    )
    assert result.exit_code == 0, result.stderr
    for one, other in zip(jobs_of(basic), jobs_of(joblib), strict=True):
        a, b = (json.loads((job / "summary.json").read_text()) for job in (one, other))
        for key in ("seed", "chosen", "val_accuracy", "test_accuracy", "fold_test_accuracy"):
            assert a[key] == b[key], key
        np.testing.assert_allclose(
            np.load(one / "feature_matrix.npy"), np.load(other / "feature_matrix.npy"), rtol=1e-5
        )
        # Two jobs at a time share the cores; the summary says how many threads the job used.
        assert b["threads"] == max(1, launchers.usable_cores() // 2)
    rows = sweep_rows(joblib)
    assert [row["seed"] for row in rows] == ["0", "1", "2", "3"]
    assert {row["status"] for row in rows} == {"finished"}
    assert [float(r["test_accuracy"]) for r in rows] == [float(r["test_accuracy"]) for r in sweep_rows(basic)]


@pytest.mark.slow
def test_submitit_local_sweep_records_the_failed_job_and_exits_1(fact_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = fact_cli(
        "fit-rfm",
        "-m",
        *QUICK[1:],
        "dataset=iris,nosuch",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: 1 job(s) failed (job 1: unknown dataset 'nosuch'")
    )
    rows = sweep_rows(sweep)
    assert [(r["dataset"], r["status"]) for r in rows] == [("iris", "finished"), ("nosuch", "failed")]
    assert rows[1]["error"].startswith("unknown dataset 'nosuch'")
    assert (sweep / "1" / "error.txt").read_text().startswith("unknown dataset 'nosuch'")
    # The same job in this process gives the same numbers as the submitit process did.
    single = tmp_path / "single"
    assert fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={single}").exit_code == 0
    here = json.loads((single / "summary.json").read_text())
    assert float(rows[0]["test_accuracy"]) == here["test_accuracy"]
    assert float(rows[0]["val_accuracy"]) == here["val_accuracy"]


@pytest.mark.slow
def test_with_hydras_own_flags_a_job_failed_in_a_worker_still_exits_1(fact_cli, tmp_path):
    """``-cn`` leaves the run to Hydra without fact's composition; a joblib worker's failure must
    still reach the exit status."""
    sweep = tmp_path / "sweep"
    result = fact_cli(
        "fit-rfm",
        "-m",
        "-cn",
        "fit_rfm",
        *QUICK[1:],
        "dataset=iris,nosuch",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 job(s) failed (job 1: unknown dataset 'nosuch'")
    assert (sweep / "0" / "summary.json").is_file() and (sweep / "1" / "error.txt").is_file()


def test_with_hydras_own_flags_a_failed_single_run_exits_1_in_one_line(fact_cli, tmp_path):
    result = fact_cli("fit-rfm", "-cn", "fit_rfm", "dataset=nosuch", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown dataset 'nosuch'")


@pytest.mark.slow
def test_sweep_table_is_rebuilt_from_the_job_directories(fact_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 0, result.stderr
    written = (sweep / "sweep.csv").read_text()
    (sweep / "sweep.csv").unlink()
    result = fact_cli("sweep-table", sweep)
    assert result.exit_code == 0 and (sweep / "sweep.csv").read_text() == written
    # A rerun into the same sweep directory keeps the finished jobs as they are ...
    before = {p: (p / "summary.json").stat().st_mtime_ns for p in jobs_of(sweep)}
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 0, result.stderr
    assert {p: (p / "summary.json").stat().st_mtime_ns for p in jobs_of(sweep)} == before
    # ... and refuses, before anything starts, a different sweep there.
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=5,6", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 1 and "holds a sweep of other overrides" in result.stderr
    assert not (sweep / "2").exists()
    result = fact_cli("sweep-table", tmp_path)
    assert result.exit_code == 1 and "holds no sweep jobs" in result.stderr


@pytest.mark.parametrize(
    "overrides, problem",
    [
        (["hydra/launcher=jobilb"], "unknown launcher 'jobilb'; choose one of basic, joblib"),
        (
            ["hydra/launcher=submitit_slurm"],
            "hydra/launcher=submitit_slurm needs SLURM, but sbatch is not on PATH",
        ),
        (["hydra/launcher=joblib", "device=cpu,cuda"], "device=cuda but no CUDA device is available"),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0 runs nothing"),
    ],
)
def test_bad_launcher_or_device_is_one_line_and_starts_nothing(
    fact_cli, tmp_path, monkeypatch, overrides, problem
):
    import torch

    monkeypatch.setattr(launchers.shutil, "which", lambda name: None)  # a machine without SLURM
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # and without a GPU
    sweep = tmp_path / "sweep"
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=0,1", *overrides, f"hydra.sweep.dir={sweep}")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {problem}"), result.stderr
    assert not sweep.exists()


def plan(overrides, command="fit-rfm", multirun=True):
    return prepare(COMMANDS[command], overrides, multirun=multirun).plan


def test_cores_are_divided_between_the_jobs_running_at_once(monkeypatch):
    monkeypatch.setattr(launchers, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    four = ["seed=0,1,2,3"]
    assert plan(four) == launchers.SweepPlan("basic", 4, 1, None)  # one at a time: every core
    assert plan([*four, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]).threads == 4
    assert plan([*four, "hydra/launcher=joblib"]).threads == 2  # n_jobs=-1: all 4 jobs at once
    assert plan(["seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=-3"]).threads == 4  # 6 workers
    assert plan([*four, "hydra/launcher=submitit_local"]).threads == 2  # every job starts at once
    assert plan([*four, "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3"]).threads == 3
    monkeypatch.setattr(launchers.shutil, "which", lambda name: "/usr/bin/sbatch")
    assert plan([*four, "hydra/launcher=submitit_slurm"]).threads is None  # the node's allocation
    assert plan([*four, "hydra/launcher=submitit_slurm", "hydra.launcher.cpus_per_task=6"]).threads == 6
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's cap holds
    assert plan([*four, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]).threads == 1
    # Sweeps a preset defines count too: 4 learners × 3 seeds, or × 2 seeds from the command line.
    assert plan(["experiment=parity/acceptance"], "parity").jobs == 12
    assert plan(["experiment=parity/acceptance", "seed=0,1"], "parity").jobs == 8
    assert plan(["seed=0,1"], multirun=False).threads is None


def test_device_cuda_without_a_gpu_stops_a_single_run_before_it_starts(fact_cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = fact_cli("parity", "device=cuda", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: device=cuda but no CUDA device is available on this machine; use device=cpu or "
        "device=auto, or run on a machine with a GPU"
    )
    assert not (tmp_path / "run").exists()


def test_a_job_runs_with_the_thread_variables_of_the_process_that_launched_it(monkeypatch):
    """joblib's workers start with OMP_NUM_THREADS=cores/n_jobs; BLAS loaded that way sums in another
    order, so a job puts back the launching process's variables before anything loads BLAS."""
    import os
    import pickle

    from factcli.job import Job, restore_thread_environment

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    # pickled and unpickled, as a worker receives it
    job = pickle.loads(
        pickle.dumps(Job("fit-rfm", "fact fit-rfm", default_threads=1))
    )  # as a worker receives it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what a loky worker finds
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    restore_thread_environment(job.environment)
    assert "OMP_NUM_THREADS" not in os.environ and "OPENBLAS_NUM_THREADS" not in os.environ
    assert os.environ["MKL_NUM_THREADS"] == "3"
