"""`fact parity` end to end through the Typer app: runs, sweeps, the network, and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose as compose_command
from typer.testing import CliRunner

from factcli.cli import app
from factcli.data.parity import make_parity

runner = CliRunner()
SMALL = ["d=12", "k=3", "n=300", "test_size=400", "rfm.iters=3"]


def invoke(*args):
    return runner.invoke(app, ["parity", *args])


def reference_accuracies(M, data, ridge, bandwidth):
    """Kernel ridge regression with the Laplace kernel, written from SPEC §4 in float64: test accuracy,
    train accuracy and test MSE of the fit with feature matrix M."""
    X, Xt = (torch.as_tensor(a, dtype=torch.float64) for a in (data.X_train, data.X_test))
    M = torch.as_tensor(M, dtype=torch.float64)

    def kernel(A, B):
        diff = A[:, None, :] - B[None, :, :]
        return torch.exp(-torch.einsum("abi,ij,abj->ab", diff, M, diff).clamp_min(0).sqrt() / bandwidth)

    Y = torch.nn.functional.one_hot(torch.as_tensor(data.y_train), 2).double()
    K = kernel(X, X)
    alpha = torch.linalg.solve(K + ridge * torch.eye(len(X), dtype=torch.float64), Y)
    test_out = kernel(Xt, X) @ alpha
    y_test = torch.as_tensor(data.y_test)
    test_mse = (test_out - torch.nn.functional.one_hot(y_test, 2)).pow(2).mean().item()
    test_acc = (test_out.argmax(1) == y_test).double().mean().item()
    train_acc = ((K @ alpha).argmax(1) == torch.as_tensor(data.y_train)).double().mean().item()
    return test_acc, train_acc, test_mse


def test_rfm_run_writes_every_iterate_and_matches_an_independent_kernel_fit(tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(*SMALL, "seed=4", "rfm.precision=float64", f"hydra.run.dir={run_dir}")
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = pd.read_csv(run_dir / "metrics.csv")
    matrices = np.load(run_dir / "feature_matrices.npy")
    assert list(metrics["iteration"]) == [0, 1, 2, 3] and matrices.shape == (4, 12, 12)
    assert summary["status"] == "finished" and summary["learner"] == "fact" and summary["unit"] == "iteration"
    for name in ("accuracy_vs_iteration", "loss_vs_iteration", "diag_feature_matrix", "feature_matrix"):
        assert (run_dir / "plots" / f"{name}.png").stat().st_size > 0

    data = make_parity(n=300, d=12, k=3, test_size=400, seed=4)
    assert summary["support"] == list(data.support)
    np.testing.assert_allclose(matrices[0], np.eye(12))
    for t in (0, 3):
        test_acc, train_acc, test_mse = reference_accuracies(matrices[t], data, ridge=1e-3, bandwidth=10.0)
        row = metrics.iloc[t]
        assert abs(row["test_accuracy"] - test_acc) <= 1 / 400  # at most one borderline point differs
        assert row["test_mse"] == pytest.approx(test_mse, rel=1e-6)
        assert row["train_accuracy"] == train_acc
        diagonal = np.diag(matrices[t])
        assert row["support_mass"] == pytest.approx(diagonal[list(data.support)].sum() / diagonal.sum())
    # This easy setting is learned: the support is found and test accuracy is (near) perfect.
    assert summary["support_recovered"] and summary["test_accuracy"] >= 0.95
    assert np.isclose(np.trace(matrices[3]), 12)  # trace rescaling (the default rule)


def test_laplace_baseline_has_a_single_iterate(tmp_path):
    run_dir = tmp_path / "laplace"
    result = invoke(*SMALL, "learner=laplace", "plots=false", f"hydra.run.dir={run_dir}")
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics["iteration"]) == [0] and metrics["effective_rank"][0] == pytest.approx(12)


def test_network_learner_logs_measures_and_fact_correlations(tmp_path):
    run_dir = tmp_path / "net"
    result = invoke(
        "learner=net",
        "d=8",
        "k=2",
        "n=256",
        "test_size=128",
        "net.width=16",
        "net.steps=100",
        "net.log_every=25",
        "net.fact_every=50",
        f"hydra.run.dir={run_dir}",
    )
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics["step"]) == [0, 25, 50, 75, 100]
    with_fact = metrics.dropna(subset=["fact_corr"])
    assert list(with_fact["step"]) == [0, 50, 100]
    assert with_fact[["fact_corr", "nfa_corr", "residual"]].abs().le(1e6).all().all()
    assert metrics[["support_mass", "effective_rank", "test_accuracy"]].notna().all().all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["unit"] == "step" and summary["steps"] == 100 and summary["optimizer"] == "sgd"
    assert (run_dir / "plots" / "correlations_vs_step.png").exists()


def test_network_stops_early_with_the_fact_measures_of_its_last_step(tmp_path):
    run_dir = tmp_path / "net_stop"
    overrides = ["learner=net", "d=8", "k=2", "n=64", "test_size=32", "net.width=8", "net.stop_accuracy=0.0"]
    result = invoke(*overrides, "plots=false", f"hydra.run.dir={run_dir}")
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 0 and summary["fact_corr"] is not None and summary["stationarity_residual"] > 0


def test_sweep_over_n_writes_the_phase_transition(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = invoke("-m", "n=100,200", "learner=laplace,fact", *SMALL[:2], "test_size=200", "rfm.iters=1",
                    "plots=false", f"hydra.sweep.dir={sweep_dir}")  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(sweep_dir / "phase_transition.csv")
    jobs = pd.read_csv(sweep_dir / "sweep.csv")
    assert len(jobs) == 4 and set(table["n"]) == {100, 200} and set(table["learner"]) == {"laplace", "fact"}
    for _, row in table.iterrows():
        job = jobs[(jobs["learner"] == row["learner"]) & (jobs["n"] == row["n"])]
        assert row["mean_test_accuracy"] == pytest.approx(job["test_accuracy"].item())
    smallest = json.loads((sweep_dir / "phase_transition.json").read_text())
    assert {row["learner"] for row in smallest} == {"laplace", "fact"}
    assert (sweep_dir / "phase_transition.png").stat().st_size > 0
    for column in ("first_95_at", "first_99_at", "support_recovered", "test_accuracy"):
        assert column in jobs.columns


def compose(overrides):
    return compose_command("parity", overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["k=60"], "k must lie between 1 and d=50"),
        (["k=0"], "k must lie between 1 and d=50"),
        (["d=3", "k=4"], "k must lie between 1 and d=3"),
        (["n=1"], "n must be at least 2"),
        (["k=3", "support=[4,4,9]"], "repeats a coordinate"),
        (["k=3", "support=[4,9,50]"], "outside 0..49"),
        (["k=3", "support=[-1,4,9]"], "outside 0..49"),
        (["k=3", "support=[4,9]"], "has 2 coordinates but k=3"),
        (["learner=svm"], "unknown learner 'svm'"),
        (["inputs=gaussian"], "unknown inputs 'gaussian'"),
        (["label_noise=0.5"], "label_noise must lie in [0, 0.5)"),
        (["learner=net", "net.weight_decay=0"], "FACT needs weight decay"),
        (["net.threads=0"], "net.threads must be at least 1"),
        (["threads=0"], "threads must be at least 1"),
    ],
)
def test_bad_input_is_refused_with_one_line(overrides, message):
    from factcli.errors import FactError
    from factcli.schema.parity import validate

    with pytest.raises(FactError) as error:
        validate(compose(overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides, message",
    [(["k=60"], "k must lie between 1 and d=50"), (["k=3", "support=[4,4,9]"], "repeats a coordinate")],
)
def test_bad_input_through_the_cli_exits_1(tmp_path, overrides, message):
    result = invoke(*overrides, f"hydra.run.dir={tmp_path / 'bad'}")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert not (tmp_path / "bad" / "metrics.csv").exists()


def test_memory_is_checked_before_any_work(tmp_path):
    result = invoke("experiment=parity/paper", "memory_limit_gb=1", f"hydra.run.dir={tmp_path / 'big'}")
    assert result.exit_code == 1
    assert "the 25000×25000 kernel matrix" in result.stderr and "needs 2.6 GiB" in result.stderr
    assert "rfm.solver=nystrom rfm.centers=1000" in result.stderr  # the options that work at 10⁶ rows
    assert not (tmp_path / "big" / "metrics.csv").exists()


def test_a_million_rows_are_refused_before_the_data_is_drawn(tmp_path, monkeypatch):
    """The exact solver's refusal comes first: nothing is drawn, nothing written."""
    import factcli.experiments.parity.experiment as experiment

    def never(*args, **kwargs):
        raise AssertionError("the data was drawn before the memory check")

    monkeypatch.setattr(experiment, "make_parity", never)
    result = invoke("d=100", "n=1000000", f"hydra.run.dir={tmp_path / 'big'}")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the 1000000×1000000 kernel matrix (auto) needs 4.0 TiB" in errors[0]
    assert "rfm.solver=nystrom rfm.centers=1000" in errors[0]
    assert not (tmp_path / "big" / "metrics.csv").exists()


def test_network_trains_on_net_threads_and_restores_the_setting():
    from factcli.runtime import threads_within as threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_d100_transition_preset_is_a_sweep_of_fifteen_jobs():
    """Five sizes × three seeds (its values: tests/test_presets.py)."""
    from factcli.commands import COMMANDS
    from factcli.launch import prepare

    plan = prepare(COMMANDS["parity"], ["experiment=parity/sample_size_d100"], multirun=True).plan
    assert plan.jobs == 15
