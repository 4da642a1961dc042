"""fit-rfm's estimate of its time and memory on wide tables: every term that grows with d is counted
(d×d matrices and their eigendecompositions, n·d² products, the L1 kernel's n²·d passes), and a fit
whose d×d matrices cannot fit is refused before anything is computed."""

import time

import numpy as np
import pandas as pd
import pytest

from factcli.experiments.common import scalable
from factcli.experiments.rfm import fit as fit_module

# One grid point, two feature-learning steps: the run stays short while every kind of work (stage 0,
# the path's statistics and updates of M, the strict refit, predictions) is in it.
SMALL_GRID = [
    "grid.bandwidths=[1.0]",
    "grid.ridges=[0.1]",
    "grid.normalize_rows=[false]",
    "rfm.iters=2",
    "plots=false",
    "threads=1",
]


def wide_table(path, n, d, seed=0):
    """n rows of d Gaussian columns; the label depends on the first three (so features matter)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
    frame["label"] = (np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] > 0).astype(int)
    frame.to_csv(path, index=False, float_format="%.5g")
    return path


@pytest.fixture
def timed_estimate(monkeypatch):
    """Records fit-rfm's estimate (seconds, bytes) and when it was made, by wrapping estimate_fit."""
    record = {}
    original = fit_module.estimate_fit

    def recording(*args, **kwargs):
        seconds, memory = original(*args, **kwargs)
        record.update(seconds=seconds, memory=memory, at=time.perf_counter())
        return seconds, memory

    monkeypatch.setattr(fit_module, "estimate_fit", recording)
    return record


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["laplace", "l1"])
def test_wide_table_estimate_is_within_twice_the_time_it_takes(fact_cli, tmp_path, timed_estimate, kernel):
    # d = 2,000 with a full M: each update eigendecomposes a 2,000×2,000 matrix (seconds), which the
    # estimate used to leave out entirely (it said 0 s for a fit of over a minute).
    table = wide_table(tmp_path / "wide.csv", 300, 2000)
    args = [f"dataset={table}", "data.target=label", f"kernel.name={kernel}", "rfm.form=full", *SMALL_GRID]
    result = fact_cli("fit-rfm", *args, f"hydra.run.dir={tmp_path / 'run'}")
    finished = time.perf_counter()
    assert result.exit_code == 0, result.stderr
    actual = finished - timed_estimate["at"]
    ratio = timed_estimate["seconds"] / actual
    assert 0.5 <= ratio <= 2.0, (timed_estimate["seconds"], actual)


def test_wide_table_estimate_counts_the_d_cubed_updates(fact_cli, tmp_path, timed_estimate):
    # A faster relative of the test above (d = 600): the estimate is within 2× of the actual time too.
    table = wide_table(tmp_path / "wide.csv", 200, 600)
    args = [f"dataset={table}", "data.target=label", "kernel.name=laplace", *SMALL_GRID]
    result = fact_cli("fit-rfm", *args, f"hydra.run.dir={tmp_path / 'run'}")
    finished = time.perf_counter()
    assert result.exit_code == 0, result.stderr
    ratio = timed_estimate["seconds"] / (finished - timed_estimate["at"])
    assert 0.5 <= ratio <= 2.0, ratio


def test_full_form_costs_more_than_diagonal_by_the_eigendecompositions():
    # The update of a full M is an eigendecomposition (d³); a diagonal one a few passes (d²).
    work = scalable.Work(300, 4000, 2, 100, "full", "fact")
    full = scalable.update_seconds(work)
    diagonal = scalable.update_seconds(scalable.Work(300, 4000, 2, 100, "diagonal", "fact"))
    assert full > scalable.rates().eigh64 * 4000**3 > 10 * diagonal


def test_d_by_d_matrices_that_cannot_fit_are_refused_up_front_with_the_numbers(fact_cli, tmp_path):
    # 60 rows, d = 3,000: the n×n kernel matrix is tiny, but each d×d matrix is 69 MiB and selection
    # keeps one per path iterate; 0.5 GiB cannot hold them.
    table = wide_table(tmp_path / "wide.csv", 60, 3000)
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm",
        f"dataset={table}",
        "data.target=label",
        "memory_limit_gb=0.5",
        "threads=1",
        f"hydra.run.dir={out}",
    )
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "n=48, d=3000" in line and "d×d matrices" in line and "only 512.0 MiB is available" in line
    assert "fewer columns" in line and "method=laplace" in line
    assert not (out / "summary.json").exists() and not (out / "metrics.csv").exists()
    assert not (out / "feature_matrix.npy").exists()


def test_the_same_shape_with_few_columns_fits_the_same_limit(fact_cli, tmp_path):
    table = wide_table(tmp_path / "narrow.csv", 60, 30)
    args = [f"dataset={table}", "data.target=label", "memory_limit_gb=0.5", *SMALL_GRID]
    result = fact_cli("fit-rfm", *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.exit_code == 0, result.stderr
