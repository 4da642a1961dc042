"""benchmarks/gpu_check.py must keep working where there is no GPU: the CPU checked against itself.

The real check (`make gpu-check`: CUDA against the CPU) needs a GPU machine; this runs the same
script, every subcommand and every comparison, with device=cpu on both sides, so it cannot rot.
"""

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
def test_gpu_check_runs_every_subcommand_and_compares_cpu_with_cpu(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.chdir(tmp_path)
    import gpu_check

    out = tmp_path / "gpu_check.json"
    code = gpu_check.main(["--device", "cpu", "--reference", "cpu", "--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 0 and result["ok"], [row for row in result["checks"] if not row["ok"]]
    checked = {row["check"].split(":")[0] for row in result["checks"]}
    assert checked == {f"fit-rfm {m}" for m in ("fact", "nfa")} | {
        "train-net",
        "verify-fact",
        "verify-fact §9",
        "grokking",
        "parity",
    }
    matrices = [row for row in result["checks"] if row["check"].startswith("verify-fact: W")]
    assert {row["check"].split()[-1] for row in matrices} == {"fact", "fact_per_sample", "agop", "enfa"}
    # The same device against itself: the numbers are bit for bit the same.
    assert all(row.get("relative_error", 0.0) == 0.0 for row in result["checks"])
    engine = result["engine"]
    for precision in ("float32", "float64"):
        assert engine[precision]["cholesky_seconds"] > 0 and engine[precision]["iteration_seconds"] > 0
    sys.modules.pop("gpu_check", None)
