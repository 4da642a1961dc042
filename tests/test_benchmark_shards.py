"""The UCI benchmark's shards as the jobs of one sweep: one results folder, one table equal to the
single-process run's (timings aside; that run has every core, each shard its share), and a killed
sweep resumes where it stopped."""

import csv
import json

import pytest

from factcli.experiments.rfm.benchmark import TABLE_COLUMNS
from factcli.experiments.rfm.store import ResultStore, encode
from factcli.rundir import write_atomic

SMALL = [
    "benchmark=uci",
    "benchmark.datasets=[balloons,lenses,fertility]",
    "benchmark.methods=[laplace,fact]",
]
QUICK = ["rfm.iters=2", "benchmark.baselines=[]", "grid.ridges=[1.0,0.01]", "plots=false"]
TIMINGS = {name for name in TABLE_COLUMNS if name.endswith("seconds")}


def table_without_timings(path) -> list[list[str]]:
    """The table's text, cell by cell, without the timing columns."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name not in TIMINGS]
    return [[row[i] for i in keep] for row in rows]


@pytest.mark.slow
def test_shards_in_a_joblib_sweep_fill_one_table_that_equals_the_single_run(fact_cli, shared_data, tmp_path):
    common = [*SMALL, *QUICK, f"data.root={shared_data}"]
    single = tmp_path / "single"
    result = fact_cli("fit-rfm", *common, f"hydra.run.dir={single}")
    assert result.exit_code == 0, result.stderr

    sweep = tmp_path / "sweep"
    shards = [*common, "benchmark.num_shards=4", "benchmark.shard=range(4)"]
    result = fact_cli("fit-rfm", "-m", *shards, "hydra/launcher=joblib", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 0, result.stderr
    expected = table_without_timings(single / "table.csv")
    assert len(expected) == 1 + 3 * 2 * 2
    assert table_without_timings(sweep / "table.csv") == expected
    store = ResultStore(sweep)
    assert sorted(store.pairs()) == sorted(
        (name, method) for name in ("balloons", "lenses", "fertility") for method in ("laplace", "fact")
    )
    assert not any((sweep / str(shard) / "results.csv").exists() for shard in range(4))  # one file only

    # A kill in the middle of shard 2 (fertility): its fact result and its summary never got written.
    lines = [line for line in store.lines() if (line["dataset"], line["label"]) != ("fertility", "fact")]
    write_atomic(store.path, encode(lines))
    (sweep / "2" / "summary.json").unlink()
    (sweep / "table.csv").unlink()
    kept = {(line["dataset"], line["label"], line["protocol"]): line for line in store.lines()}
    result = fact_cli("fit-rfm", "-m", *shards, "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}")
    assert result.exit_code == 0, result.stderr
    again = {(line["dataset"], line["label"], line["protocol"]): line for line in store.lines()}
    assert {key: again[key] for key in kept} == kept  # nothing finished was recomputed (timings too)
    assert ("fertility", "fact", "strict") in again
    assert table_without_timings(sweep / "table.csv") == expected
    assert json.loads((sweep / "benchmark_summary.json").read_text())["complete"] is True
    with open(sweep / "sweep.csv", newline="") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["finished"] * 4


def test_a_result_stored_while_a_shard_writes_the_table_is_in_the_table(tmp_path, monkeypatch):
    """Two shards finishing together: the one whose table misses the other's result writes it again."""
    import pandas as pd

    from factcli.experiments.rfm import benchmark as rfm_benchmark

    store = ResultStore(tmp_path)

    def store_result(name):
        row = {column: 1.0 for column in TABLE_COLUMNS}
        row.update(dataset=name, label="fact", method="fact", protocol="strict", test_accuracy=80.0)
        store.add(name, "fact", [row])

    store_result("balloons")
    collect = rfm_benchmark.collect_rows
    calls = []

    def collect_then_other_shard_stores(*args):
        rows = collect(*args)
        if not calls:  # the other shard stores its result just after this shard read the folder
            store_result("lenses")
        calls.append(len(rows))
        return rows

    monkeypatch.setattr(rfm_benchmark, "collect_rows", collect_then_other_shard_stores)
    rfm_benchmark.write_shared_table(tmp_path, ["balloons", "lenses"], ["fact"], ["strict"], {})
    assert calls == [1, 2]  # read again after the write, because the folder had changed
    assert list(pd.read_csv(tmp_path / "table.csv").dataset) == ["balloons", "lenses"]
    assert json.loads((tmp_path / "benchmark_summary.json").read_text())["complete"] is True
