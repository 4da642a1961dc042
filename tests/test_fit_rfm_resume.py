"""An interrupted fit-rfm resumes in its run directory: finished selection units are reused, the
result equals an uninterrupted run's number for number, and a rerun with other settings is refused."""

import json

import numpy as np
import pytest

from factcli.experiments.rfm import resume

GRID = [
    "grid.bandwidths=[0.5,2]",
    "grid.ridges=[0.01,1]",
    "grid.normalize_rows=[false,true]",
    "rfm.iters=2",
    "kernel.name=laplace",
    "plots=false",
    "threads=1",
]
SOLVERS = {"exact": ["rfm.solver=exact"], "nystrom": ["rfm.solver=nystrom", "rfm.centers=60"]}


def write_table(path, n=240, seed=0, d=8):
    """d numbers; the label is the sign of x0·x1, the rest noise: selection keeps a learned M (t = 2)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    label = (X[:, 0] * X[:, 1] > 0).astype(int)
    rows = [",".join(f"{v:.6f}" for v in x) + f",{y}" for x, y in zip(X, label, strict=True)]
    path.write_text(",".join(f"x{j}" for j in range(d)) + ",label\n" + "\n".join(rows) + "\n")
    return path


def interrupt_after(monkeypatch, units: int):
    """Ctrl-C right after the ``units``-th finished unit was kept (as a kill at that moment would)."""
    kept = []
    save = resume.Units._save

    def save_then_stop(self):
        save(self)
        kept.append(1)
        if len(kept) == units:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume.Units, "_save", save_then_stop)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(fact_cli, tmp_path, monkeypatch, solver):
    table = write_table(tmp_path / "table.csv")
    args = [f"dataset={table}", "data.target=label", *GRID, *SOLVERS[solver]]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert fact_cli("fit-rfm", *args, f"hydra.run.dir={whole}").exit_code == 0

    # 2 normalizations × 2 bandwidths = 4 stage-0 units, then 2 paths (one per ridge): stop after 5.
    with monkeypatch.context() as patch:
        interrupt_after(patch, 5)
        stopped = fact_cli("fit-rfm", *args, f"hydra.run.dir={resumed}")
    assert stopped.exit_code == 130, stopped.stderr
    assert not (resumed / "summary.json").exists()
    stored = json.loads((resumed / "selection" / "units.json").read_text())
    assert (len(stored["stage0"]), len(stored["paths"])) == (4, 1)

    again = fact_cli("fit-rfm", *args, f"hydra.run.dir={resumed}")
    assert again.exit_code == 0, again.stderr
    a = json.loads((whole / "summary.json").read_text())
    b = json.loads((resumed / "summary.json").read_text())
    assert a["reused_from_interrupted_run"] == {"stage0_points": 0, "paths": 0}
    assert b["reused_from_interrupted_run"] == {"stage0_points": 8, "paths": 1}
    assert a["chosen"]["iteration"] > 0, a["chosen"]  # a learned M, from a path
    for key in ("chosen", "val_accuracy", "test_accuracy", "fold_test_accuracy", "failures", "precision"):
        assert a[key] == b[key], key
    # every candidate's scores, residuals and CG steps, and every test row: the same text
    assert (whole / "metrics.csv").read_text() == (resumed / "metrics.csv").read_text()
    np.testing.assert_array_equal(
        np.load(whole / "feature_matrix.npy"), np.load(resumed / "feature_matrix.npy"), strict=True
    )
    log = (resumed / "fit_rfm.log").read_text()
    assert "reused 8 of 8 stage-0 grid points and 1 of 2 feature-learning paths" in log


def test_the_chosen_path_is_reused_with_its_learned_m(fact_cli, tmp_path, monkeypatch):
    """The paper protocol refits with the selected M itself: a reused path must bring it back."""
    table = write_table(tmp_path / "table.csv")
    args = [f"dataset={table}", "data.target=label", *GRID, "rfm.solver=exact", "protocol=paper"]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert fact_cli("fit-rfm", *args, f"hydra.run.dir={whole}").exit_code == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 6)  # every unit finished, the refits not
        assert fact_cli("fit-rfm", *args, f"hydra.run.dir={resumed}").exit_code == 130
    assert fact_cli("fit-rfm", *args, f"hydra.run.dir={resumed}").exit_code == 0
    a = json.loads((whole / "summary.json").read_text())
    b = json.loads((resumed / "summary.json").read_text())
    assert a["chosen"]["iteration"] > 0, a["chosen"]  # else no M was learned and nothing is tested
    assert b["reused_from_interrupted_run"] == {"stage0_points": 8, "paths": 2}
    assert (a["chosen"], a["test_accuracy"]) == (b["chosen"], b["test_accuracy"])
    assert (whole / "metrics.csv").read_text() == (resumed / "metrics.csv").read_text()


def test_a_rerun_with_other_settings_is_refused_naming_them(fact_cli, tmp_path, monkeypatch):
    table = write_table(tmp_path / "table.csv")
    args = [f"dataset={table}", "data.target=label", *GRID, "rfm.solver=exact"]
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        assert fact_cli("fit-rfm", *args, f"hydra.run.dir={out}").exit_code == 130
    units = (out / "selection" / "units.json").read_text()

    config = (out / "config.yaml").read_text()

    changed = [a.replace("grid.ridges=[0.01,1]", "grid.ridges=[0.1,1]") for a in args]
    other = fact_cli("fit-rfm", *changed, "seed=3", f"hydra.run.dir={out}")
    errors = [line for line in other.stderr.splitlines() if line.startswith("error:")]
    assert other.exit_code == 1 and len(errors) == 1, other.stderr
    assert "grid.ridges=[0.01,1.0] (interrupted run) vs [0.1,1.0]" in errors[0]
    assert "seed=0 (interrupted run) vs 3" in errors[0]
    assert "rerun with the interrupted run's values, or use a new run directory" in errors[0]
    assert (out / "selection" / "units.json").read_text() == units  # nothing recorded changed
    assert (out / "config.yaml").read_text() == config

    # output and hardware settings may change: plots, threads
    output = {"threads=1": "threads=2", "plots=false": "plots=true"}
    fine = fact_cli("fit-rfm", *(output.get(a, a) for a in args), f"hydra.run.dir={out}")
    assert fine.exit_code == 0, fine.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reused_from_interrupted_run"]["stage0_points"] == 4


def test_changed_data_is_refused(fact_cli, tmp_path, monkeypatch):
    table = write_table(tmp_path / "table.csv")
    args = [f"dataset={table}", "data.target=label", *GRID, "rfm.solver=exact"]
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        assert fact_cli("fit-rfm", *args, f"hydra.run.dir={out}").exit_code == 130
    write_table(table, seed=1)
    result = fact_cli("fit-rfm", *args, f"hydra.run.dir={out}")
    assert result.exit_code == 1
    assert "was made from other data" in result.stderr and "use a new run directory" in result.stderr


def test_candidates_read_back_exactly():
    candidate = resume.Candidate("laplace", 0.1 + 0.2, True, 1e-3, 2, 2 / 3, 1 / 7, 0.9, float("nan"), None)
    record = json.loads(json.dumps(resume.candidate_record(candidate), allow_nan=True).replace("NaN", "null"))
    back = resume.candidate_of(record)
    assert back == candidate and back.val_score == 2 / 3 and np.isnan(back.solve_residual)
