"""`fact fit-rfm` end to end: run directory contract, reproducibility, sweeps, and every bad input."""

import json

import numpy as np
import pandas as pd
import pytest

FAST = ["rfm.iters=2", "grid.ridges=[1.0,0.1]", "plots=false"]


def run_dir_files(path):
    return sorted(p.name for p in path.iterdir() if not p.name.startswith("."))


def test_fit_rfm_writes_the_run_directory_contract(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("fit-rfm", "--dataset", "breast_cancer", "rfm.iters=2", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert run_dir_files(out) == [
        "config.yaml",
        "feature_matrix.npy",
        "fit_rfm.log",
        "metrics.csv",
        "plots",
        "selection",
        "summary.json",
    ]
    assert (out / ".hydra" / "overrides.yaml").exists()
    summary = json.loads((out / "summary.json").read_text())
    plotted = ["accuracy_vs_iteration.png", "feature_matrix.png"]
    if summary["chosen"]["iteration"] > 0:  # the refit's path has more than one iterate to plot
        plotted.append("test_vs_iteration.png")
    assert sorted(p.name for p in (out / "plots").iterdir()) == plotted
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == [
        "phase",
        "kernel",
        "bandwidth",
        "normalize_rows",
        "ridge",
        "iteration",
        "train_accuracy",
        "val_accuracy",
        "solve_residual",
        "cg_steps",
        "fold",
        "test_accuracy",
    ]
    # Stage 0 for both kernels (kernel.name=auto): 5 bandwidths × 2 normalizations × 5 ridges each;
    # then t = 1, 2 from the best stage-0 (kernel, bandwidth, normalization) for every ridge.
    assert (metrics.phase == "select").sum() == 2 * 50 + 5 * 2
    selected = metrics[metrics.phase == "select"]
    assert (metrics.solve_residual <= 1e-3).all() and metrics.cg_steps.isna().all()  # exact: no CG
    paths = selected[selected.iteration > 0][["kernel", "bandwidth", "normalize_rows"]].drop_duplicates()
    assert len(paths) == 1 and paths.kernel.iloc[0] == summary["kernel"]["name"]
    assert summary["status"] == "finished" and summary["method"] == "fact" and summary["seed"] == 0
    assert summary["test_accuracy"] > 0.93  # held-out 20% of breast_cancer
    assert summary["chosen"]["iteration"] in (0, 1, 2)
    M = np.load(out / "feature_matrix.npy")
    assert M.shape == (30, 30) and np.allclose(M, M.T) and np.trace(M) == pytest.approx(30, rel=1e-6)


def test_same_seed_same_numbers_and_another_seed_another_split(fact_cli, tmp_path):
    summaries = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        result = fact_cli(
            "fit-rfm", "dataset=wine", f"seed={seed}", *FAST, f"hydra.run.dir={tmp_path / name}"
        )
        assert result.exit_code == 0, result.stderr
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
        summaries[-1]["M"] = np.load(tmp_path / name / "feature_matrix.npy")
        summaries[-1]["metrics"] = pd.read_csv(tmp_path / name / "metrics.csv")
    a, b, c = summaries
    assert a["test_accuracy"] == b["test_accuracy"] and a["val_accuracy"] == b["val_accuracy"]
    np.testing.assert_array_equal(a["M"], b["M"])
    pd.testing.assert_frame_equal(a["metrics"], b["metrics"])
    assert not a["metrics"].equals(c["metrics"])  # another seed, another split


def test_csv_with_categorical_column_and_regression_target(fact_cli, tmp_path):
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "color": rng.choice(["red", "blue"], n)}
    )
    frame["y"] = 2 * frame.x1 - frame.x2 + (frame.color == "red") + 0.05 * rng.normal(size=n)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    result = fact_cli("fit-rfm", f"dataset={path}", "data.target=y", *FAST, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "regression" and "guessed" in summary["task_reason"]
    assert summary["d"] == 4  # x1, x2 and two one-hot columns
    assert summary["test_mse"] < 0.25 * frame.y.var()


def test_sweep_writes_one_table_joining_overrides_and_summaries(fact_cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = fact_cli(
        "fit-rfm", "-m", "dataset=iris", "method=laplace,fact", *FAST, f"hydra.sweep.dir={sweep}"
    )
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(sweep / "sweep.csv")
    assert list(table.method) == ["laplace", "fact"]
    assert set(table.status) == {"finished"}
    assert {"job", "dataset", "test_accuracy", "chosen.ridge", "wall_seconds"} <= set(table.columns)
    assert (table.test_accuracy > 0.85).all()


def one_line_error(result, code=1):
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_dataset_lists_the_known_ones(fact_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("FACT_DATA", raising=False)
    line = one_line_error(fact_cli("fit-rfm", "dataset=irsi", f"hydra.run.dir={tmp_path / 'r'}"))
    assert (
        "unknown dataset 'irsi'" in line
        and "breast_cancer, diabetes, digits, iris, signal_in_noise, wine" in line
    )


def test_unknown_method_and_config_typo(fact_cli, tmp_path):
    line = one_line_error(fact_cli("fit-rfm", "method=factt", f"hydra.run.dir={tmp_path / 'r'}"))
    assert "unknown method 'factt'; choose one of laplace, nfa, fact, fact-geo" in line
    line = one_line_error(fact_cli("fit-rfm", "rfm.iter=3"), code=2)
    assert "unknown config key 'rfm.iter' (did you mean rfm.iters" in line
    line = one_line_error(fact_cli("fit-rfm", "rfm.iters=many"), code=2)
    assert "rfm.iters=many" in line and "Integer" in line
    assert not (tmp_path / "r").exists() or not (tmp_path / "r" / "summary.json").exists()


@pytest.mark.parametrize(
    "frame, extra, message",
    [
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0, 1, 0, 1]}),
            ["data.target=label"],
            "column 'label' not found",
        ),
        (pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [0, 1, 0, 1]}), ["data.target=b"], "'a'"),
        (
            pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 1, 1, 1]}),
            ["data.target=b", "data.task=classification"],
            "only one class",
        ),
    ],
    ids=["missing-target-column", "nan-in-features", "single-class"],
)
def test_bad_tables_fail_with_one_line(fact_cli, tmp_path, frame, extra, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    line = one_line_error(fact_cli("fit-rfm", f"dataset={path}", *extra, f"hydra.run.dir={tmp_path / 'r'}"))
    assert message in line
    assert not (tmp_path / "r" / "summary.json").exists()


def test_kernel_matrix_too_large_for_memory_says_how_much_it_needs(fact_cli, tmp_path):
    args = ("fit-rfm", "dataset=digits", "memory_limit_gb=0.001")
    line = one_line_error(fact_cli(*args, "rfm.solver=exact", f"hydra.run.dir={tmp_path / 'r'}"))
    # digits: 1797 rows, 80% for training → a 1437×1437 float32 kernel matrix: 1.1·1437² entries with
    # slack, plus a 2^22-entry block of predictions, 4 bytes each = 24.7 MiB.
    assert "the 1437×1437 kernel matrix (auto) needs 24.7 MiB but only 1.0 MiB is available" in line
    assert "use rfm.solver=auto or rfm.solver=nystrom" in line  # the way that works, not just "a subset"
    # rfm.solver=auto turns to Nyström centres when the n×n matrix does not fit, and says when they don't.
    line = one_line_error(fact_cli(*args, f"hydra.run.dir={tmp_path / 'r2'}"))
    assert "the Nyström fit (n=1437, 1437 centres) needs" in line and "only 1.0 MiB is available" in line


def test_finished_run_directory_is_never_overwritten(fact_cli, tmp_path):
    out = tmp_path / "run"
    assert fact_cli("fit-rfm", "dataset=iris", *FAST, f"hydra.run.dir={out}").exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    line = one_line_error(fact_cli("fit-rfm", "dataset=wine", *FAST, f"hydra.run.dir={out}"))
    assert "already holds a finished run" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_every_command_has_help_with_an_example(fact_cli):
    result = fact_cli("--help")
    assert result.exit_code == 0
    commands = ["fit-rfm", "train-net", "verify-fact", "grokking", "parity"]
    assert all(name in result.stdout for name in commands)
    for name in [*commands, "datasets", "fetch"]:
        help_text = fact_cli(name, "--help")
        assert help_text.exit_code == 0 and "Example" in help_text.stdout, name


def test_datasets_lists_builtins_and_uci(fact_cli, shared_data):
    result = fact_cli("datasets", "--root", shared_data)
    names = result.stdout.split()
    assert result.exit_code == 0
    assert (
        names[:6] == ["breast_cancer", "diabetes", "digits", "iris", "signal_in_noise", "wine"]
        and "abalone" in names
    )
    assert len(names) == 6 + 96


def test_fetch_refuses_an_unknown_image_dataset(fact_cli, tmp_path):
    line = one_line_error(fact_cli("fetch", "imagenet", tmp_path))
    assert "unknown image dataset 'imagenet'; choose one of mnist, cifar10" in line


def test_an_inaccurate_solve_in_float64_is_not_answered_with_float64_advice():
    from factcli.core.rfm import InaccurateSolve
    from factcli.errors import FactError
    from factcli.experiments.rfm.folds import clear_solver_errors

    problem = "kernel solve in float64 has relative residual 1.0e-01 > 1e-03"
    for precision, advised in (("float64", False), ("auto", True), ("float32", True)):
        with pytest.raises(FactError) as error, clear_solver_errors(precision):
            raise InaccurateSolve(problem)
        assert "raise the smallest ridge in grid.ridges" in str(error.value)
        assert ("rfm.precision=float64" in str(error.value)) == advised
