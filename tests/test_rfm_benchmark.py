"""`fact fit-rfm benchmark=uci` on a few small UCI datasets: table contract, protocols, resume, shards."""

import json

import pandas as pd
import pytest

from factcli.experiments.rfm.benchmark import TABLE_COLUMNS
from factcli.experiments.rfm.store import ResultStore

SMALL = "benchmark.datasets=[balloons,lenses,fertility]"
QUICK = ["rfm.iters=2", "grid.ridges=[1.0,0.01]", "grid.bandwidths=[1.0,4.0]", "plots=false"]
NO_BASELINES = "benchmark.baselines=[]"


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
    assert len(table) == 3 * 5 * 2  # laplace, fact and the default baselines l1-krr, l2-krr, svc-rbf
    assert set(table.label) == {"laplace", "fact", "l1-krr", "l2-krr", "svc-rbf"}
    assert (table[table.label != "fact"].iteration == 0).all()
    assert set(table.protocol) == {"paper", "strict"}
    folds = table[[f"fold{i}_accuracy" for i in range(1, 5)]]
    assert (table.test_accuracy - folds.mean(axis=1)).abs().max() < 1e-9
    # Without feature learning both protocols solve the same systems: identical accuracies.
    for label in ("laplace", "l1-krr", "l2-krr", "svc-rbf"):
        krr = table[table.label == label].pivot(index="dataset", columns="protocol", values="test_accuracy")
        assert (krr.paper == krr.strict).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["datasets_complete"] == 3 and summary["complete"] is True
    assert set(summary["mean_test_accuracy"]) == {"paper", "strict"}
    assert summary["wall_over_floor"]["fact"] > 1  # the floor is part of the wall time
    # Every row against every baseline, strict first; the markdown beside it.
    versus = summary["comparison"]["strict"]["versus"]["fact"]
    assert set(versus) == {"laplace", "l1-krr", "l2-krr", "svc-rbf"}
    # laplace (KRR with the kernel selected, kernel.name=auto) is at least as good on validation as
    # either kernel's KRR: it chooses among their candidates.
    strict = table[table.protocol == "strict"].pivot(index="dataset", columns="label", values="val_accuracy")
    assert (strict.laplace >= strict[["l1-krr", "l2-krr"]].max(axis=1) - 1e-9).all()
    assert sum(versus["laplace"][k] for k in ("wins", "ties", "losses")) == 3
    assert (out / "benchmark_summary.md").read_text().startswith("## Strict protocol")


def test_rerun_resumes_and_shards_share_one_results_folder(bench, tmp_path):
    results = tmp_path / "results"
    for shard in (0, 1):
        bench(
            SMALL,
            "benchmark.methods=[laplace]",
            NO_BASELINES,
            "benchmark.num_shards=2",
            f"benchmark.shard={shard}",
            f"benchmark.results_dir={results}",
            f"hydra.run.dir={tmp_path / f'shard{shard}'}",
        )
    # Smallest first, dealt round-robin: balloons (16 rows), lenses (24), fertility (100), so shard 0
    # took balloons then fertility and shard 1 lenses; the second run assembled all three.
    assert len(pd.read_csv(tmp_path / "shard0" / "table.csv")) == 2 * 2
    written = [line["dataset"] for line in ResultStore(results).lines()]
    assert written.index("balloons") < written.index("fertility")  # in the order they finished
    assert len(pd.read_csv(results / "table.csv")) == 3 * 2
    stored = (results / "results.csv").read_bytes()
    bench(
        SMALL,
        "benchmark.methods=[laplace]",
        NO_BASELINES,
        f"benchmark.results_dir={results}",
        f"hydra.run.dir={tmp_path / 'again'}",
    )
    assert (results / "results.csv").read_bytes() == stored  # nothing recomputed
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
    bench(
        "benchmark.datasets=[balloons]", "benchmark.methods=[laplace]", NO_BASELINES, f"hydra.run.dir={out}"
    )
    stored = (out / "results.csv").read_bytes()
    assert ResultStore(out).pairs()["balloons", "laplace"]["settings"]["grid"]["ridges"] == [1.0, 0.01]
    result = fact_cli(
        "fit-rfm",
        "benchmark=uci",
        f"data.root={shared_data}",
        "benchmark.datasets=[balloons]",
        "benchmark.methods=[laplace]",
        NO_BASELINES,
        "rfm.iters=2",  # as QUICK, but another ridge grid
        "grid.ridges=[0.1]",
        "grid.bandwidths=[1.0,4.0]",
        "plots=false",
        f"benchmark.results_dir={out}",
        f"hydra.run.dir={tmp_path / 'other'}",
    )
    assert result.exit_code == 1
    assert "holds results made with other settings (grid.ridges)" in result.stderr
    assert (out / "results.csv").read_bytes() == stored
