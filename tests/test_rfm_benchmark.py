"""`fact fit-rfm benchmark=uci` on a few small UCI datasets: table contract, protocols, resume, shards."""

import json
import re

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


def console_text(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # rich wraps long lines; compare words


SHOWN = {
    "mean_test_accuracy": {"strict": {"fact": 80.0, "svc-rbf": 79.0, "lightgbm": 81.5}},
    "datasets_complete": 3,
    "datasets_requested": 5,
    "complete": False,
    "seconds": {"fact": 12.3, "svc-rbf": 0.5, "lightgbm": 2.0},
    "cholesky_floor_seconds": {"fact": 0.004, "svc-rbf": 0.0, "lightgbm": 0.0},
    "wall_over_floor": {"fact": 3075.0, "svc-rbf": None, "lightgbm": None},
}


def test_the_console_table_says_what_each_number_is(capsys):
    from factcli.experiments.rfm.benchmark import print_summary

    print_summary(SHOWN, (1, 4), None)
    text = console_text(capsys)
    assert "over the 3 datasets every row finished (3 of 5 requested; not final)" in text
    # The paper's column is the paper's own mean over its 120 datasets, and says so.
    assert "paper's mean*" in text and "85.22" in text
    assert "* the paper's published mean over its 120 datasets" in text and "the 3 here" in text
    # Rows without a factorization say so; nothing prints a raw None or a rounded-away floor.
    assert "None" not in text and " 0.0 " not in text
    assert "│ svc-rbf │ 79.00 │ — │ 0.5 │ none │ — │" in text
    assert "│ fact │ 80.00 │ 85.22 │ 12.3 │ 0.004 │ 3075.00 │" in text
    # A shard's table is what the shards finished so far, not the final one.
    assert "Shard 1 of 4: what the shards have finished so far, not the final table" in text
    print_summary({**SHOWN, "complete": True, "datasets_complete": 5}, (3, 4), None)
    text = console_text(capsys)
    assert "not final" not in text and "Shard 3 of 4: every shard's results are in" in text


def test_a_small_cholesky_floor_is_not_rounded_to_zero():
    from factcli.experiments.rfm.benchmark import summarize

    row = {column: 1.0 for column in TABLE_COLUMNS}
    row.update(dataset="balloons", n=16, label="fact", protocol="strict", error="", params="")
    row.update(selection_seconds=0.5, eval_seconds=0.1, cholesky_seconds=0.004, iteration=0)
    summary = summarize([row], ["balloons"], ["fact"], ["strict"])
    assert summary["cholesky_floor_seconds"]["fact"] == 0.004
    assert summary["wall_over_floor"]["fact"] == 150.0
    # Below a millisecond the floor keeps its digits, so the table never shows "none" beside a ratio.
    row.update(cholesky_seconds=0.00023)
    summary = summarize([row], ["balloons"], ["fact"], ["strict"])
    assert summary["cholesky_floor_seconds"]["fact"] == 0.00023


def test_the_readme_names_the_files_the_benchmark_writes(bench, tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    paragraph = readme[readme.index("Read the benchmark") :].split("\n\n")[0]
    named = set(re.findall(r"`([\w.-]+\.(?:md|csv|json))`", paragraph))
    assert "benchmark_summary.md" in named
    out = tmp_path / "run"
    bench(
        "benchmark.datasets=[balloons]", "benchmark.methods=[laplace]", NO_BASELINES, f"hydra.run.dir={out}"
    )
    assert all((out / name).is_file() for name in named), named
