"""rundir.py: atomic writes survive a crash mid-write; a sweep's table joins overrides and summaries."""

import json
import os

import pytest
import yaml

from factcli import rundir
from factcli.rundir import ERROR, SUMMARY, RunDir, collect_sweep, write_atomic, write_json, write_sweep_table


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_the_file(tmp_path):
    path = tmp_path / "deep" / "summary.json"
    write_atomic(path, "old\n")
    write_atomic(path, b"new\n")
    assert path.read_bytes() == b"new\n" and leftovers(path.parent) == []


def test_crash_before_the_rename_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_json(path, {"accuracy": 0.9})

    def crash(src, dst):
        raise KeyboardInterrupt  # Ctrl-C between writing the temporary file and renaming it

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"accuracy": 0.1})
    assert json.loads(path.read_text()) == {"accuracy": 0.9}
    assert leftovers(tmp_path) == []


def test_crash_while_writing_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    write_atomic(path, "a,b\n1,2\n")
    real_fdopen = os.fdopen

    class FailingHandle:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])  # half the bytes reach the disk, then the crash
            raise OSError("disk full")

    monkeypatch.setattr(rundir.os, "fdopen", lambda fd, mode: FailingHandle(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "a,b\n3,4\n5,6\n")
    assert path.read_text() == "a,b\n1,2\n"
    assert leftovers(tmp_path) == []


def test_non_finite_floats_become_null_in_json(tmp_path):
    path = tmp_path / "s.json"
    write_json(path, {"loss": float("nan"), "values": [1.0, float("inf")]})
    assert json.loads(path.read_text()) == {"loss": None, "values": [1.0, None]}


def make_job(sweep, number, overrides, summary=None, error=None):
    job = sweep / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if summary is not None:
        (job / SUMMARY).write_text(json.dumps(summary))
    if error is not None:
        (job / ERROR).write_text(error + "\n")


def test_sweep_table_joins_overrides_with_summary_scalars(tmp_path):
    sweep = tmp_path / "multirun"
    make_job(
        sweep, 10, ["learner=nfa", "+seed=1"], summary={"status": "finished", "acc": 0.5, "kernel": {"L": 10}}
    )
    make_job(
        sweep, 2, ["learner=fact", "+seed=0"], summary={"status": "finished", "acc": 0.75, "curve": [1, 2]}
    )
    make_job(sweep, 3, ["learner=laplace", "+seed=0"], error="unknown kernel")
    make_job(sweep, 4, ["learner=fact-geo", "+seed=0"])
    (sweep / "multirun.yaml").write_text("not a job\n")
    (sweep / "notes").mkdir()  # a folder without .hydra/overrides.yaml is not a job

    rows = collect_sweep(sweep)
    assert [row["job"] for row in rows] == ["2", "3", "4", "10"]  # numeric order, not text order
    assert rows[0] == {"job": "2", "learner": "fact", "seed": "0", "status": "finished", "acc": 0.75}
    assert rows[1] == {
        "job": "3",
        "learner": "laplace",
        "seed": "0",
        "status": "failed",
        "error": "unknown kernel",
    }
    assert rows[2] == {"job": "4", "learner": "fact-geo", "seed": "0", "status": "unfinished"}
    assert rows[3] == {
        "job": "10",
        "learner": "nfa",
        "seed": "1",
        "status": "finished",
        "acc": 0.5,
        "kernel.L": 10,
    }

    path = write_sweep_table(sweep)
    lines = path.read_text().splitlines()
    assert lines[0] == "job,learner,seed,status,acc,error,kernel.L"
    assert lines[1:] == [
        "2,fact,0,finished,0.75,,",
        "3,laplace,0,failed,,unknown kernel,",
        "4,fact-geo,0,unfinished,,,",
        "10,nfa,1,finished,0.5,,10",
    ]


def test_empty_sweep_writes_no_table(tmp_path):
    assert write_sweep_table(tmp_path) is None and not (tmp_path / "sweep.csv").exists()


def test_a_finished_run_is_never_restarted(tmp_path):
    run = RunDir.start(tmp_path / "run", "seed: 0\n")
    run.log(step=1, loss=0.5)
    run.finish({"acc": 1.0}, seed=0, command=["fit-rfm"])
    summary = json.loads((tmp_path / "run" / SUMMARY).read_text())
    assert summary["status"] == "finished" and summary["acc"] == 1.0 and summary["seed"] == 0
    with pytest.raises(Exception, match="already holds a finished run"):
        RunDir.start(tmp_path / "run", "seed: 1\n")
    assert (tmp_path / "run" / "config.yaml").read_text() == "seed: 0\n"
