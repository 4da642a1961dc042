"""fit-rfm with the Nyström solver, the user's own test file and missing values, through the CLI."""

import json

import numpy as np
import pytest

FAST = ["rfm.iters=1", "grid.ridges=[0.1]", "grid.normalize_rows=[false]", "plots=false", "threads=1"]


def one_line_error(result, code=1):
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_table(path, n, seed, colour_levels=("red", "green", "blue"), with_missing=False):
    """Two numbers, a text column, label = x0 + x1 > 0 (learnable); optional missing cells."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    colour = rng.choice(colour_levels, n).astype(object)
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    lines = ["x0,x1,colour,label"]
    for i in range(n):
        x0 = "" if with_missing and i % 17 == 0 else f"{x[i, 0]:.6f}"
        c = "" if with_missing and i % 13 == 0 else colour[i]
        lines.append(f"{x0},{x[i, 1]:.6f},{c},{label[i]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_nystrom_solver_with_a_test_file_scores_held_data_and_counts_unseen_categories(fact_cli, tmp_path):
    train = write_table(tmp_path / "train.csv", 600, seed=0, with_missing=True)
    test = write_table(tmp_path / "test.csv", 300, seed=1, colour_levels=("red", "violet"))
    out = tmp_path / "run"
    args = ["dataset=" + str(train), "data.target=label", f"data.test={test}", "data.missing=median"]
    result = fact_cli(
        "fit-rfm", *args, "rfm.solver=nystrom", "rfm.centers=100", *FAST, f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["solver"] == {"name": "nystrom", "reason": "rfm.solver=nystrom", "centers": 100}
    assert summary["test_rows"] == 300 and summary["test_accuracy"] > 0.9  # a linear boundary
    assert summary["imputed_missing"] == {"x0": len(range(0, 600, 17))}
    violet = sum(1 for line in test.read_text().splitlines()[1:] if ",violet," in line)
    assert summary["unseen_test_categories"] == {"colour": violet} and violet > 0
    assert "solver: nystrom with 100 centres" in (out / "fit_rfm.log").read_text()


def test_missing_numbers_are_refused_unless_imputation_is_asked_for(fact_cli, tmp_path):
    train = write_table(tmp_path / "train.csv", 200, seed=0, with_missing=True)
    line = one_line_error(fact_cli("fit-rfm", f"dataset={train}", "data.target=label", *FAST))
    assert "column 'x0' has 12 missing values" in line and "data.missing=median" in line
    assert "colour" not in line  # missing text is a category of its own


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rfm.centers=0", "rfm.centers must be at least 1"),
        ("rfm.centers=100000", "100000 centres but only"),
        ("rfm.solver=fast", "unknown rfm.solver 'fast'"),
    ],
)
def test_senseless_solver_options_are_one_line(fact_cli, tmp_path, override, message):
    train = write_table(tmp_path / "train.csv", 200, seed=0)
    out = tmp_path / "run"
    args = [f"dataset={train}", "data.target=label", "rfm.solver=nystrom", override, *FAST]
    line = one_line_error(fact_cli("fit-rfm", *args, f"hydra.run.dir={out}"))
    assert message in line
    assert not (out / "summary.json").exists()


def test_test_file_with_other_columns_names_them(fact_cli, tmp_path):
    train = write_table(tmp_path / "train.csv", 100, seed=0)
    test = tmp_path / "test.csv"
    test.write_text("x0,x2,colour,label\n0.1,0.2,red,1\n")
    line = one_line_error(
        fact_cli("fit-rfm", f"dataset={train}", "data.target=label", f"data.test={test}", *FAST)
    )
    assert "missing from the test file: x1" in line and "not in the training file: x2" in line


def test_l1_kernel_runs_on_the_nystrom_path_and_records_its_cg_solves(fact_cli, tmp_path):
    import pandas as pd

    train = write_table(tmp_path / "train.csv", 200, seed=0)
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm",
        f"dataset={train}",
        "data.target=label",
        "kernel.name=l1",
        "rfm.solver=nystrom",
        "rfm.centers=50",
        *FAST,
        f"hydra.run.dir={out}",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kernel"]["name"] == "l1" and summary["solver"]["name"] == "nystrom"
    assert summary["test_accuracy"] > 0.75
    metrics = pd.read_csv(out / "metrics.csv")
    assert (metrics.cg_steps >= 1).all() and (metrics.solve_residual <= 1e-3).all()
