"""`fact verify-fact`: the per-layer table, both ways of computing F, plots, §9 preset, bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
from test_train_net import DIGITS, TINY, error_line, summary_of

TABLE_COLUMNS = [
    "layer", "module", "shape", "residual", "fact", "fact_transpose", "fact_sym", "fact_relerr",
    "bfact", "bfact_relerr", "fact_per_sample", "nfa", "nfa_centered", "enfa_s0.5", "enfa_s1",
    "fact_paths_relerr", "lambda", "uses", "form", "loss_convention",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A converged tiny train-net run (float64), shared by the tests below."""
    from typer.testing import CliRunner

    from factcli.cli import app

    out = tmp_path_factory.mktemp("trained") / "run"
    result = CliRunner().invoke(app, ["train-net", *TINY, "plots=false", f"hydra.run.dir={out}"])
    assert result.exit_code == 0, result.stderr
    return out


def test_verify_a_run_directory_writes_table_json_and_plots(fact_cli, tmp_path, trained_run):
    out = tmp_path / "verify"
    result = fact_cli("verify-fact", f"source={trained_run}", "verify.heatmap_layers=[1,3]",
                      f"hydra.run.dir={out}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(out / "fact_layers.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert table.layer.tolist() == ["W1", "W2", "W3"]
    assert (table.fact_paths_relerr < 1e-10).all()  # hooks vs −(1/λ)Wᵀ∇L
    assert (table.fact > 1 - 1e-8).all() and (table.fact_relerr < 1e-4).all()
    assert (table.bfact_relerr < 1e-4).all() and (table.residual < 1e-6).all()
    assert (table["lambda"] == 0.05).all() and table.loss_convention.str.contains("MSELoss").all()
    rows = json.loads((out / "fact_layers.json").read_text())
    assert [r["layer"] for r in rows] == ["W1", "W2", "W3"] and rows[0]["fact"] == table.fact[0]
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "correlations_per_layer.png", "heatmaps_W1.png", "heatmaps_W3.png",
    ]  # fmt: skip
    summary = summary_of(out)
    assert summary["source"].endswith("checkpoint.pt (step 600)")
    assert summary["fact_method"].startswith("both") and summary["optimizer"] == "gd"


def test_identity_path_gives_the_same_fact_numbers(fact_cli, tmp_path, trained_run):
    tables = []
    for method in ("both", "identity"):
        out = tmp_path / method
        result = fact_cli("verify-fact", f"source={trained_run / 'checkpoint.pt'}", "plots=false",
                          f"verify.fact_method={method}", f"hydra.run.dir={out}")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        tables.append(pd.read_csv(out / "fact_layers.csv"))
    both, identity = tables
    assert "fact_per_sample" not in identity.columns and "fact_paths_relerr" not in identity.columns
    for column in ("fact", "fact_sym", "fact_relerr", "nfa", "enfa_s1", "residual"):
        np.testing.assert_allclose(identity[column], both[column], rtol=1e-12)


def test_without_source_it_trains_first(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("verify-fact", *DIGITS, "plots=false", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    summary = summary_of(out)
    assert summary["training"]["stop_reason"] == "step_budget" and summary["training"]["steps"] == 40
    assert (out / "checkpoint.pt").exists() and (out / "metrics.csv").exists()
    assert len(pd.read_csv(out / "fact_layers.csv")) == 3


def test_nfa_counterexample_preset(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli(
        "verify-fact", "experiment=nets/nfa_counterexample", "threads=1", f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.stderr
    first = summary_of(out)["first_layer"]
    assert first["nfa"] < 0.3 and first["fact"] > 0.99
    table = pd.read_csv(out / "fact_layers.csv")
    assert table.residual.max() < 1e-6 and table.fact_relerr.max() < 1e-4


def test_run_directory_without_checkpoint_is_refused(fact_cli, tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    line = error_line(fact_cli("verify-fact", f"source={empty}", f"hydra.run.dir={tmp_path}/v"))
    assert f"{empty} holds no checkpoint.pt" in line


def test_foreign_checkpoint_is_refused(fact_cli, tmp_path):
    import torch

    bogus = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, bogus)
    line = error_line(fact_cli("verify-fact", f"source={bogus}", f"hydra.run.dir={tmp_path}/v"))
    assert "is not a train-net checkpoint" in line
    line = error_line(fact_cli("verify-fact", f"source={tmp_path}/nowhere", f"hydra.run.dir={tmp_path}/w"))
    assert "no such checkpoint or run directory" in line


def test_polish_solves_the_quadratic_nets_stationarity_conditions():
    import torch

    from factcli.core.fact import layer_agreement, network_statistics
    from factcli.core.losses import mse_per_sample
    from factcli.core.nets import quadratic_net
    from factcli.experiments.nets.data import counterexample_data
    from factcli.experiments.nets.polish import polish_quadratic_net

    data = counterexample_data(0.05, 100.0)
    torch.manual_seed(0)
    model = quadratic_net(2, 8).double()
    polish_quadratic_net(model, data.X_train, data.y_train, lam=1e-3)
    stats = network_statistics(model, data.X_train, data.y_train, mse_per_sample, 1e-3)
    for row in map(layer_agreement, stats.layers):
        assert row["residual"] < 1e-6 and row["fact_relerr"] < 1e-4
    assert layer_agreement(stats.layers[0])["nfa"] < 0.3
    first, second = model.layers[0], model.layers[2]
    a, W = second.weight[0].detach(), first.weight.detach()
    torch.testing.assert_close(a**2, W.pow(2).sum(1) / 2, rtol=1e-6, atol=1e-12)  # balanced neurons
    # A = Wᵀ diag(a) W fits the targets y = xᵀ diag(1, δ) x up to the weight-decay compromise.
    A = W.T @ (a[:, None] * W)
    torch.testing.assert_close(A, torch.diag(torch.tensor([1.0, 0.05], dtype=A.dtype)), atol=2e-3, rtol=0)
