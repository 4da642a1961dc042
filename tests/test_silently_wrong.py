"""Results that were silently wrong: the task guess, overflowing and stray values, the UCI
benchmark's status and stored-result identity, verify-fact on a diverged or untrained checkpoint."""

import numpy as np
import pandas as pd
import pytest
import torch
from test_run_records import QUICK
from test_train_net import TINY, error_line, summary_of

from factcli.data import load_tabular
from factcli.data.tabular import standardize
from factcli.errors import FactError
from factcli.experiments.rfm.store import ResultStore

FAST = ["rfm.iters=1", "grid.ridges=[1.0,0.1]", "plots=false", "threads=1"]
BENCH = ["fit-rfm", "benchmark=uci", "rfm.iters=1", "grid.ridges=[1.0]", "plots=false", "threads=1"]


def houses(tmp_path, n=45):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"rooms": rng.integers(1, 6, n), "area": rng.normal(100, 20, n)})
    frame["price"] = (50_000 * frame.rooms + 1_000 * frame.area + rng.normal(0, 5_000, n)).round().astype(int)
    path = tmp_path / "houses.csv"
    frame.to_csv(path, index=False)
    return path


def test_45_house_prices_are_a_regression_and_the_summary_says_it_was_guessed(fact_cli, tmp_path):
    path = houses(tmp_path)
    out = tmp_path / "run"
    result = fact_cli("fit-rfm", f"dataset={path}", "data.target=price", *FAST, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["task"] == "regression" and summary["task_source"] == "guessed"
    assert "45 distinct integers in 45 rows (fewer than 5 rows each)" in summary["task_reason"]
    assert summary["metric"] == "mse"


def test_a_given_task_overrides_the_guess(tmp_path):
    frame = pd.DataFrame({"x": np.arange(300.0), "grade": np.arange(300) % 5 + 1})
    path = tmp_path / "grades.csv"
    frame.to_csv(path, index=False)
    guessed = load_tabular(str(path), target="grade")
    assert (guessed.task, guessed.task_source, guessed.n_classes) == ("classification", "guessed", 5)
    given = load_tabular(str(path), target="grade", task="regression")
    assert (given.task, given.task_source) == ("regression", "given")


def test_a_stray_text_cell_in_a_numeric_column_is_named(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40).round(3).astype(str)})
    frame["y"] = np.arange(40) % 2
    frame.loc[7, "b"] = "n/a?"
    path = tmp_path / "stray.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(FactError, match=r"column 'b' in .* holds numbers except 1 cell \(row 8: 'n/a\?'\)"):
        load_tabular(str(path), target="y")
    frame["y"] = frame["y"].astype(str)
    frame.loc[3, "y"] = "n/a?"  # a lone "?" is the UCI collection's missing marker: a missing label
    frame["b"] = rng.normal(size=40)
    frame.to_csv(path, index=False)
    with pytest.raises(FactError, match=r"target 'y' in .* holds numbers except 1 cell \(row 4: 'n/a\?'\)"):
        load_tabular(str(path), target="y")


def test_standardizing_survives_values_near_the_float64_limit():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    rows = np.arange(20)
    huge = X * np.array([1.0, 1e300, 1e-300])
    expected = (X - X[rows].mean(0)) / X[rows].std(0)
    np.testing.assert_allclose(standardize(huge, rows, ["a", "b", "c"]), expected, rtol=1e-12, atol=1e-12)


def test_a_column_of_1e300_is_standardized_or_refused_but_never_zeroed(fact_cli, tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    frame["y"] = (frame.a + frame.b > 0).astype(int)
    scores = {}
    for scale in (1.0, 1e300):
        path = tmp_path / f"scale{scale:g}.csv"
        frame.assign(b=frame.b * scale).to_csv(path, index=False)
        out = tmp_path / f"run{scale:g}"
        result = fact_cli("fit-rfm", f"dataset={path}", "data.target=y", *FAST, f"hydra.run.dir={out}")
        assert result.exit_code == 0, result.stderr
        scores[scale] = summary_of(out)["test_accuracy"]
    assert scores[1e300] == scores[1.0] > 0.8  # the huge column carries its signal, as when small
    out = tmp_path / "raw"
    result = fact_cli("fit-rfm", f"dataset={tmp_path / 'scale1e+300.csv'}", "data.target=y",
                      "data.standardize=no", *FAST, f"hydra.run.dir={out}")  # fmt: skip
    assert "feature 'b' has values up to" in error_line(result) and "overflow" in error_line(result)
    frame.assign(y=frame.a * 1e300).to_csv(tmp_path / "target.csv", index=False)
    with pytest.raises(FactError, match="target 'y' .* too large to square in float64"):
        load_tabular(str(tmp_path / "target.csv"), target="y")


def test_benchmark_with_every_dataset_too_large_is_refused(fact_cli, shared_data, tmp_path):
    out = tmp_path / "run"
    result = fact_cli(*BENCH, f"data.root={shared_data}", "benchmark.datasets=[balloons,lenses]",
                      "benchmark.max_samples=10", f"hydra.run.dir={out}")  # fmt: skip
    assert "every requested dataset has more than benchmark.max_samples=10 rows" in error_line(result)
    assert not out.exists()


def test_benchmark_status_is_incomplete_when_a_dataset_is_skipped(fact_cli, shared_data, tmp_path):
    out = tmp_path / "run"
    result = fact_cli(*BENCH, f"data.root={shared_data}", "benchmark.datasets=[balloons,lenses]",
                      "benchmark.methods=[laplace]", "benchmark.max_samples=20",
                      f"hydra.run.dir={out}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["status"] == "incomplete" and summary["complete"] is False
    assert summary["skipped"] == {"lenses": "24 rows > benchmark.max_samples=20"}
    rows = 1 + 3  # laplace and the three default baselines (l1-krr, l2-krr, svc-rbf), both protocols
    assert summary["results_missing"] == rows * 2 and summary["datasets_complete"] == 1
    assert "lenses: 24 rows > benchmark.max_samples=20" in summary["incomplete_reason"]
    assert len(pd.read_csv(out / "table.csv")) == rows * 2


def test_benchmark_results_remember_data_standardize(fact_cli, shared_data, tmp_path):
    results = tmp_path / "results"
    common = [*BENCH, f"data.root={shared_data}", "benchmark.datasets=[balloons]",
              "benchmark.methods=[laplace]", f"benchmark.results_dir={results}"]  # fmt: skip
    first = fact_cli(*common, f"hydra.run.dir={tmp_path / 'a'}")
    assert first.exit_code == 0, first.stderr
    assert summary_of(tmp_path / "a")["status"] == "finished"
    stored = ResultStore(results).pairs()["balloons", "laplace"]
    assert stored["settings"]["data"] == {"standardize": False}
    again = fact_cli(*common, "data.standardize=no", f"hydra.run.dir={tmp_path / 'b'}")
    assert again.exit_code == 0, again.stderr  # auto is no for the UCI data: the same results, reused
    other = fact_cli(*common, "data.standardize=yes", f"hydra.run.dir={tmp_path / 'c'}")
    assert "made with other settings (data.standardize)" in error_line(other)
    assert not (tmp_path / "c").exists()


def test_benchmark_results_from_before_the_nystrom_path_count_as_exact_solves(
    fact_cli, shared_data, tmp_path
):
    """Results stored before rfm.solver existed carry none of its keys: they were exact solves, so a
    rerun with rfm.solver=exact reuses them and one that may switch to Nyström (auto) is refused."""
    results = tmp_path / "results"
    common = [*BENCH, f"data.root={shared_data}", "benchmark.datasets=[balloons]",
              "benchmark.methods=[laplace]", f"benchmark.results_dir={results}"]  # fmt: skip
    assert fact_cli(*common, "rfm.solver=exact", f"hydra.run.dir={tmp_path / 'a'}").exit_code == 0
    store = ResultStore(results)
    written = store.pairs()["balloons", "laplace"]
    for key in ("solver", "centers", "exact_max_rows", "cg_max_iters"):
        del written["settings"]["rfm"][key]  # as written before the Nyström path
    store.add("balloons", "laplace", written["rows"], written["settings"])
    before = (results / "results.csv").read_bytes()
    again = fact_cli(*common, "rfm.solver=exact", f"hydra.run.dir={tmp_path / 'b'}")
    assert again.exit_code == 0, again.stderr
    assert summary_of(tmp_path / "b")["status"] == "finished"
    assert (results / "results.csv").read_bytes() == before  # reused
    auto = fact_cli(*common, f"hydra.run.dir={tmp_path / 'c'}")
    assert "made with other settings (rfm.solver)" in error_line(auto)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A short train-net run's checkpoint payload and its directory."""
    from typer.testing import CliRunner

    from factcli.cli import app

    out = tmp_path_factory.mktemp("train") / "run"
    steps = ["train.max_steps=20", "train.log_every=20", "train.checkpoint_every=20", "plots=false"]
    result = CliRunner().invoke(app, ["train-net", *TINY, *steps, f"hydra.run.dir={out}"])
    assert result.exit_code == 0, result.stderr
    return torch.load(out / "checkpoint.pt", weights_only=True), out


def test_verify_fact_refuses_a_diverged_checkpoint(fact_cli, tmp_path, checkpoint):
    payload, _ = checkpoint
    broken = {**payload, "model": {k: v.clone() for k, v in payload["model"].items()}}
    next(iter(broken["model"].values()))[0, 0] = float("nan")
    torch.save(broken, tmp_path / "diverged.pt")
    out = tmp_path / "verify"
    line = error_line(fact_cli("verify-fact", f"source={tmp_path / 'diverged.pt'}", f"hydra.run.dir={out}"))
    assert "has non-finite weights" in line and "training diverged" in line
    assert not out.exists()


def test_verify_fact_warns_about_an_untrained_checkpoint(fact_cli, tmp_path, checkpoint):
    payload, _ = checkpoint
    torch.save({**payload, "step": 0}, tmp_path / "step0.pt")
    out = tmp_path / "verify"
    result = fact_cli("verify-fact", f"source={tmp_path / 'step0.pt'}", "plots=false", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert "was never trained (step 0)" in result.stderr
    [warning] = summary_of(out)["warnings"]
    assert "was never trained (step 0)" in warning


def test_fit_rfm_on_the_builtin_data_reports_the_datasets_task(fact_cli, tmp_path):
    out = tmp_path / "run"
    assert fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}").exit_code == 0
    assert summary_of(out)["task_source"] == "dataset"
