"""Inputs: every value checked before work starts; one line naming it, exit 1, nothing written.

Each case below was a Python traceback (or, for the messages, advice that did not fit the cause).
"""

import pytest
from test_run_records import QUICK
from test_train_net import TINY, error_line

from factcli.core.rfm import FeatureCollapse, InaccurateSolve
from factcli.errors import FactError
from factcli.experiments.rfm.folds import clear_solver_errors

GROKKING = ["p=7", "rfm.iters=1", "plots=false", "threads=1"]
PARITY = ["d=6", "k=2", "n=40", "test_size=20", "rfm.iters=1", "plots=false", "threads=1"]

CASES = [
    ("fit-rfm", [*QUICK, "seed=-1"], "seed must be an integer in 0..2147483647, got -1"),
    ("fit-rfm", [*QUICK, f"seed={2**70}"], f"seed = {2**70} does not fit in 64 bits"),
    ("fit-rfm", [*QUICK, f"seed={2**32}"], f"seed must be an integer in 0..2147483647, got {2**32}"),
    ("fit-rfm", [*QUICK, "grid.ridges=[]"], "grid.ridges must be a non-empty list"),
    ("fit-rfm", [*QUICK, "grid.normalize_rows=[]"], "grid.normalize_rows is an empty list"),
    ("fit-rfm", [*QUICK, "grid.bandwidths=[1.0,nan]"], "nan"),
    ("fit-rfm", [*QUICK, "grid.bandwidths=[inf]"], "inf"),
    ("fit-rfm", [*QUICK, "grid.ridges=[1.0,nan]"], "grid.ridges[1] = nan: give a number"),
    ("fit-rfm", [*QUICK, "rfm.solve_tol=-1"], "rfm.solve_tol must be positive, got -1.0"),
    ("fit-rfm", [*QUICK, "rfm.nfa_power=0"], "rfm.nfa_power must be positive, got 0.0"),
    ("fit-rfm", [*QUICK, "data.test_fraction=0.999"], "leave 0 to fit, 0 to validate and 150 to test"),
    ("fit-rfm", [*QUICK, "benchmark=uci", "benchmark.methods=[fact,nfa,fact]"],
     "benchmark.methods lists fact more than once"),
    ("fit-rfm", [*QUICK, "benchmark=uci", "benchmark.datasets=[iris,wine,iris]"],
     "benchmark.datasets lists iris more than once"),
    ("fit-rfm", [*QUICK, "benchmark=uci", "benchmark.methods=[]"], "benchmark.methods is an empty list"),
    ("train-net", [*TINY, "model.hidden=[0]"], "every entry of model.hidden must be at least 1, got [0]"),
    ("train-net", [*TINY, "model.hidden=[6,0]"], "every entry of model.hidden must be at least 1"),
    ("train-net", [*TINY, "optim.lr=nan"], "optim.lr = nan: give a number"),
    ("train-net", [*TINY, "data.test_size=0"], "data.test_size must be positive, got 0.0"),
    ("train-net", [*TINY, "data.teacher.rank=9"], "data.teacher.rank=9 exceeds data.teacher.dim=4"),
    ("train-net", [*TINY, "optim.betas=[0.9]"], "optim.betas must be two numbers in [0, 1)"),
    ("verify-fact", [*TINY, "verify.enfa_powers=[]"], "verify.enfa_powers is an empty list"),
    ("grokking", [*GROKKING, "seed=-1"], "seed must be an integer in 0..2147483647, got -1"),
    ("grokking", [*GROKKING, "net.init_scale=nan"], "net.init_scale = nan: give a number"),
    ("grokking", [*GROKKING, "learner=fact", "compare=[nfa,nfa]"], "compare lists nfa more than once"),
    ("parity", [*PARITY, "rfm.solve_tol=-1"], "rfm.solve_tol must be positive, got -1.0"),
    ("parity", [*PARITY, "net.momentum=-0.5"], "net.momentum must be at least 0, got -0.5"),
]  # fmt: skip


BRACKETS = str.maketrans("[]", "()")  # test ids: the command and its bad value


@pytest.mark.parametrize(
    ("command", "overrides", "message"),
    [pytest.param(*case, id=f"{case[0]}:{case[1][-1]}".translate(BRACKETS)) for case in CASES],
)
def test_bad_value_is_one_line_before_anything_is_written(fact_cli, tmp_path, command, overrides, message):
    out = tmp_path / "run"
    line = error_line(fact_cli(command, *overrides, f"hydra.run.dir={out}"))
    assert message in line
    assert not out.exists()


def test_a_bad_value_in_one_sweep_job_stops_nothing_else(fact_cli, tmp_path):
    out = tmp_path / "sweep"
    result = fact_cli("fit-rfm", "-m", *QUICK, "seed=-1,0", f"hydra.sweep.dir={out}")
    assert "job 0: seed must be an integer in 0..2147483647, got -1" in error_line(result)
    assert (out / "0" / "error.txt").is_file() and (out / "1" / "summary.json").is_file()


def test_a_collapsed_feature_matrix_is_not_answered_with_ridge_advice():
    with pytest.raises(FactError) as collapse, clear_solver_errors():
        raise FeatureCollapse("the feature matrix collapsed to zero (the fit is exact or degenerate)")
    assert "bandwidth" in str(collapse.value) and "ridge" not in str(collapse.value)
    with pytest.raises(FactError) as inaccurate, clear_solver_errors():
        raise InaccurateSolve("kernel solve in float64 has relative residual 1.0e-01 > 1e-03")
    assert "raise the smallest ridge in grid.ridges" in str(inaccurate.value)


def test_constant_features_are_named_as_the_cause(fact_cli, tmp_path):
    table = tmp_path / "flat.csv"
    table.write_text("a,b,y\n" + "".join(f"1.5,2,{i % 2}\n" for i in range(40)))
    out = tmp_path / "run"
    line = error_line(fact_cli("fit-rfm", f"dataset={table}", "data.target=y", f"hydra.run.dir={out}"))
    assert "every feature of flat is constant on the training rows" in line and "ridge" not in line
    assert not out.exists()


def test_an_unexpected_exception_at_the_cli_edge_is_one_line_with_its_traceback_kept(fact_cli, monkeypatch):
    import re

    import factcli.launch

    def broken(*args):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(factcli.launch, "launch", broken)
    line = error_line(fact_cli("fit-rfm", "dataset=iris"))
    assert line.startswith("error: unexpected RuntimeError: something nobody foresaw (a bug in fact")
    path = re.search(r"the traceback is in (\S+);", line).group(1)
    with open(path) as handle:
        assert "RuntimeError: something nobody foresaw" in handle.read()
