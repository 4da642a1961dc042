"""What fit-rfm's console and log say: which rows are which, progress lines that each say something new."""

import re

import numpy as np

FAST = ["rfm.iters=1", "grid.ridges=[0.1]", "grid.normalize_rows=[false]", "plots=false", "threads=1"]
TIMESTAMP = re.compile(r"^\[[^\]]*\]\s*")


def write_table(path, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    label = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = [f"{a:.6f},{b:.6f},{c:.6f},{y}" for (a, b, c), y in zip(X, label, strict=True)]
    path.write_text("x0,x1,x2,label\n" + "\n".join(rows) + "\n")
    return path


def logged(out):
    return [TIMESTAMP.sub("", line) for line in (out / "fit_rfm.log").read_text().splitlines()]


def header_and_solver(out):
    lines = logged(out)
    header = next(line for line in lines if "method=" in line)
    solver = next(line for line in lines if line.startswith("solver:"))
    return header, solver


def test_the_header_counts_training_and_test_rows_of_a_test_file_apart(fact_cli, tmp_path):
    train = write_table(tmp_path / "train.csv", 300, seed=0)
    test = write_table(tmp_path / "held.csv", 120, seed=1)
    out = tmp_path / "run"
    args = [f"dataset={train}", "data.target=label", f"data.test={test}", "rfm.solver=nystrom"]
    result = fact_cli("fit-rfm", *args, "rfm.centers=40", *FAST, f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    header, solver = header_and_solver(out)
    # 300 training rows: ⌈0.25 · 300⌉ = 75 validate the grid (data.val_fraction), 225 fit it
    assert "300 training rows (225 to fit, 75 to validate for selection)" in header, header
    assert "120 test rows (held.csv)" in header, header
    assert "420" not in header  # never the two counted together
    assert "(rfm.solver=nystrom)" in solver, solver  # asked for: no count to give


def test_the_header_counts_an_internal_split(fact_cli, tmp_path):
    table = write_table(tmp_path / "table.csv", 250)
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm", f"dataset={table}", "data.target=label", "rfm.solver=auto", *FAST, f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.stderr
    header, solver = header_and_solver(out)
    # test: ⌈0.2 · 250⌉ = 50; validation: ⌈0.25 · 200⌉ = 50
    assert "200 training rows (150 to fit, 50 to validate for selection)" in header, header
    assert "50 test rows (a seeded split, data.test_fraction=0.2)" in header, header
    assert "(auto: 200 training rows <= rfm.exact_max_rows=" in solver, solver  # the same count


class SlowClock:
    """Every reading 31 s after the last: each CG step of a small fit is as far apart as a long
    fit's, so every throttled progress line is written."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 31.0
        return self.now

    def __getattr__(self, name):  # time.time and the rest as they are
        import time

        return getattr(time, name)


def test_progress_lines_of_a_nystrom_fit_each_say_something_new(fact_cli, tmp_path, monkeypatch):
    from factcli.experiments.common import scalable

    monkeypatch.setattr(scalable, "time", SlowClock())
    monkeypatch.setattr(scalable, "LOGGED_FIT_SECONDS", 0.0)  # a small fit logs its progress too
    table = write_table(tmp_path / "table.csv", 300)
    out = tmp_path / "run"
    grid = ["grid.ridges=[0.1,1]", "grid.bandwidths=[1,2]", "rfm.iters=2", "plots=false", "threads=1"]
    nystrom = ["rfm.solver=nystrom", "rfm.centers=50"]
    result = fact_cli(
        "fit-rfm", f"dataset={table}", "data.target=label", *nystrom, *grid, f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.stderr
    lines = logged(out)
    cg = [line for line in lines if "CG step" in line]
    assert len(cg) > 10, lines  # the solver's steps are reported
    repeated = [(a, b) for a, b in zip(lines, lines[1:], strict=False) if a == b]
    assert not repeated, repeated
    assert len(set(cg)) == len(cg), cg  # not even apart: every solve's steps are told apart
    # each CG line says where the fit is: which solve, the step, how much is done and the time left
    assert all(re.search(r"solve \d+, CG step \d+ of at most \d+", line) for line in cg), cg
    assert all(re.search(r"\d+ of \d+ iterates done, about .+ left", line) for line in cg), cg
