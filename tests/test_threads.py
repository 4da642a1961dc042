"""`threads=N` reaches every thread pool of the process, and summary.json records what each one used.

Thread pools are process-wide and a BLAS library sizes itself when it loads, so each check runs the CLI
in a fresh interpreter: the test's own process (its libraries already loaded) is left untouched.
"""

import json
import os
import subprocess
import sys

import pytest

# Runs one fit-rfm (which loads scipy's and scikit-learn's libraries only once it runs), then reads
# every pool of its process with threadpoolctl.
SCRIPT = """
import json, sys
from typer.testing import CliRunner
from factcli.cli import app

result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, result.output
import torch
from threadpoolctl import threadpool_info
print(json.dumps({
    "intra": torch.get_num_threads(),
    "inter": torch.get_num_interop_threads(),
    "pools": [(p["user_api"], p["internal_api"], p["filepath"], p["num_threads"]) for p in threadpool_info()],
}))
"""


def run_isolated(tmp_path, *overrides):
    out = tmp_path / "run"
    # Libraries that read these when they load would start at 3 threads on any machine: each pool at 1
    # afterwards can only be the run's doing.
    environment = {**os.environ, "OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    argv = ["fit-rfm", "dataset=iris", "rfm.iters=1", "grid.ridges=[1.0]", "plots=false", *overrides]
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv, f"hydra.run.dir={out}"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    measured = json.loads(process.stdout.strip().splitlines()[-1])
    return measured, json.loads((out / "summary.json").read_text())


def test_threads_1_reaches_every_pool_and_the_summary_says_so(tmp_path):
    measured, summary = run_isolated(tmp_path, "threads=1")
    apis = {user_api for user_api, *_ in measured["pools"]}
    assert {"blas", "openmp"} <= apis  # numpy's / scipy's OpenBLAS, torch's / scikit-learn's OpenMP
    assert measured["intra"] == 1 and measured["inter"] == 1
    assert [threads for *_, threads in measured["pools"]] == [1] * len(measured["pools"])
    assert summary["threads"] == 1
    recorded = summary["thread_pools"]
    assert recorded[:2] == [
        {"pool": "torch intra-op", "threads": 1},
        {"pool": "torch inter-op", "threads": 1},
    ]
    # One record per library threadpoolctl finds, in its order, each with the threads it really used.
    libraries = [os.path.basename(filepath) for _, _, filepath, _ in measured["pools"]]
    assert [pool["library"] for pool in recorded[2:]] == libraries
    assert {pool["threads"] for pool in recorded} == {1}


@pytest.mark.slow  # a second fresh interpreter; the threads=1 test guards the default suite
def test_threads_2_is_recorded_per_pool_too(tmp_path):
    measured, summary = run_isolated(tmp_path, "threads=2")
    assert summary["threads"] == 2
    assert [pool["threads"] for pool in summary["thread_pools"]] == [
        measured["intra"],
        measured["inter"],
        *(threads for *_, threads in measured["pools"]),
    ]
    assert {threads for *_, threads in measured["pools"]} == {2} and measured["intra"] == 2
