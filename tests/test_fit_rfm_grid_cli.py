"""`fact fit-rfm` with the grid options: the L1 kernel, absolute bandwidths (the paper's L = 10), the
noise rule, a diagonal M; and bad values of the new settings as one-line errors."""

import json

import numpy as np
import pytest
from test_fit_rfm_cli import one_line_error


def run(fact_cli, out, *overrides):
    result = fact_cli(
        "fit-rfm", "--dataset", "wine", "rfm.iters=2", "plots=false", f"hydra.run.dir={out}", *overrides
    )
    assert result.exit_code == 0, result.stderr
    return json.loads((out / "summary.json").read_text())


def test_l1_kernel_with_a_diagonal_M_and_the_paper_bandwidth(fact_cli, tmp_path):
    summary = run(fact_cli, tmp_path / "l1", "kernel.name=l1", "rfm.form=diagonal", "rfm.fact_power=1")
    assert summary["kernel"]["name"] == "l1" and summary["rfm"]["form"] == "diagonal"
    assert summary["test_accuracy"] > 0.9  # wine, held-out 20%
    M = np.load(tmp_path / "l1" / "feature_matrix.npy")
    assert np.count_nonzero(M - np.diag(np.diag(M))) == 0  # stays diagonal through the refit
    paper = run(
        fact_cli,
        tmp_path / "paper",
        "grid.bandwidths=[10]",
        "grid.bandwidth_unit=absolute",
        "rfm.fact_power=1",
    )
    assert paper["kernel"]["bandwidth"] == 10.0 and paper["chosen"]["bandwidth"] == 10.0


def test_noise_rule_keeps_the_plain_choice_or_falls_back_to_t0(fact_cli, tmp_path):
    plain = run(fact_cli, tmp_path / "plain")
    noise = run(fact_cli, tmp_path / "noise", "grid.rule=noise")
    assert noise["chosen"] == plain["chosen"] or noise["chosen"]["iteration"] == 0
    assert noise["val_accuracy"] <= plain["val_accuracy"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("grid.bandwidths=[]", "grid.bandwidths must be a non-empty list of positive numbers"),
        ("grid.bandwidths=[1,-2]", "grid.bandwidths must be a non-empty list of positive numbers"),
        ("grid.bandwidth_unit=mean", "unknown grid.bandwidth_unit 'mean'; choose one of median, absolute"),
        ("grid.rule=lucky", "unknown grid.rule 'lucky'; choose one of best, noise"),
        ("rfm.form=banded", "unknown rfm.form 'banded'; choose one of full, diagonal"),
        ("kernel.name=l2", "unknown kernel 'l2'; choose one of auto, laplace, gaussian, l1"),
        ("rfm.fact_power=0", "rfm.fact_power must be positive, got 0"),
    ],
)
def test_bad_grid_and_kernel_settings_fail_with_one_line(fact_cli, tmp_path, override, message):
    line = one_line_error(
        fact_cli("fit-rfm", "--dataset", "wine", override, f"hydra.run.dir={tmp_path / 'r'}")
    )
    assert message in line
    assert not (tmp_path / "r" / "summary.json").exists()


def test_kernel_bandwidth_is_not_a_fit_rfm_setting(fact_cli, tmp_path):
    line = one_line_error(fact_cli("fit-rfm", "kernel.bandwidth=10"), code=2)
    assert "kernel.bandwidth" in line
