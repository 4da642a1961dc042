"""`fact fit-rfm benchmark=uci` on a few small UCI datasets: table contract, protocols, resume, shards."""

import json

import pandas as pd
import pytest

from factcli.experiments.rfm.benchmark import TABLE_COLUMNS

SMALL = "benchmark.datasets=[balloons,lenses,fertility]"
QUICK = ["rfm.iters=2", "grid.ridges=[1.0,0.01]", "plots=false"]


@pytest.fixture
def bench(fact_cli, shared_data):
    def run(*args):
        result = fact_cli("fit-rfm", "benchmark=uci", f"data.root={shared_data}", *QUICK, *args)
        assert result.exit_code == 0, result.stderr
        return result

    return run


def test_table_has_one_row_per_dataset_method_protocol(bench, tmp_path):
    out = tmp_path / "run"
    bench(SMALL, "benchmark.methods=[laplace,fact]", f"hydra.run.dir={out}")
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 3 * 2 * 2
    assert set(table.protocol) == {"paper", "strict"}
    folds = table[[f"fold{i}_accuracy" for i in range(1, 5)]]
    assert (table.test_accuracy - folds.mean(axis=1)).abs().max() < 1e-9
    # Without feature learning both protocols solve the same systems: identical accuracies.
    laplace = table[table.method == "laplace"].pivot(
        index="dataset", columns="protocol", values="test_accuracy"
    )
    assert (laplace.paper == laplace.strict).all()
    assert (table[table.method == "laplace"].iteration == 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["datasets_complete"] == 3 and summary["complete"] is True
    assert set(summary["mean_test_accuracy"]) == {"paper", "strict"}
    assert summary["wall_over_floor"]["fact"] > 1  # the floor is part of the wall time


def test_rerun_resumes_and_shards_share_one_results_folder(bench, tmp_path):
    results = tmp_path / "results"
    for shard in (0, 1):
        bench(
            SMALL,
            "benchmark.methods=[laplace]",
            "benchmark.num_shards=2",
            f"benchmark.shard={shard}",
            f"benchmark.results_dir={results}",
            f"hydra.run.dir={tmp_path / f'shard{shard}'}",
        )
    # Smallest first, dealt round-robin: balloons (16 rows), lenses (24), fertility (100), so shard 0
    # took balloons then fertility and shard 1 lenses; the second run assembled all three.
    assert len(pd.read_csv(tmp_path / "shard0" / "table.csv")) == 2 * 2
    written = {p.name.split("__")[0]: p.stat().st_mtime_ns for p in (results / "results").iterdir()}
    assert written["balloons"] < written["fertility"]
    assert len(pd.read_csv(results / "table.csv")) == 3 * 2
    stored = {p.name: p.stat().st_mtime_ns for p in (results / "results").iterdir()}
    bench(
        SMALL,
        "benchmark.methods=[laplace]",
        f"benchmark.results_dir={results}",
        f"hydra.run.dir={tmp_path / 'again'}",
    )
    assert {
        p.name: p.stat().st_mtime_ns for p in (results / "results").iterdir()
    } == stored  # nothing recomputed
    assert len(pd.read_csv(tmp_path / "again" / "table.csv")) == 3 * 2


def test_unknown_uci_dataset_and_missing_data_root(fact_cli, shared_data, tmp_path, monkeypatch):
    result = fact_cli(
        "fit-rfm",
        "benchmark=uci",
        f"data.root={shared_data}",
        "benchmark.datasets=[nosuch]",
        f"hydra.run.dir={tmp_path / 'a'}",
    )
    assert result.exit_code == 1 and "unknown UCI dataset(s) nosuch" in result.stderr
    monkeypatch.delenv("FACT_DATA", raising=False)
    result = fact_cli("fit-rfm", "benchmark=uci", f"hydra.run.dir={tmp_path / 'b'}")
    assert result.exit_code == 1 and "set FACT_DATA or data.root" in result.stderr


def test_rerun_with_other_settings_is_refused_and_keeps_the_results(bench, fact_cli, shared_data, tmp_path):
    out = tmp_path / "run"
    bench("benchmark.datasets=[balloons]", "benchmark.methods=[laplace]", f"hydra.run.dir={out}")
    stored = (out / "results" / "balloons__laplace.json").read_bytes()
    assert json.loads(stored)["settings"]["grid"]["ridges"] == [1.0, 0.01]
    result = fact_cli(
        "fit-rfm",
        "benchmark=uci",
        f"data.root={shared_data}",
        "benchmark.datasets=[balloons]",
        "benchmark.methods=[laplace]",
        "rfm.iters=2",  # as QUICK, but another ridge grid
        "grid.ridges=[0.1]",
        "plots=false",
        f"benchmark.results_dir={out}",
        f"hydra.run.dir={tmp_path / 'other'}",
    )
    assert result.exit_code == 1
    assert "holds results made with other settings (grid.ridges)" in result.stderr
    assert (out / "results" / "balloons__laplace.json").read_bytes() == stored
