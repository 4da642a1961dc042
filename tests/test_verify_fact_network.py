"""`fact verify-fact model=FILE.py:FUNCTION`: a network defined and trained outside the project,
checked from the command line; every misfit of constructor, weights, data and λ in one line."""

import importlib.util
import json
import re
import sys

import numpy as np
import pytest
import torch
from test_train_net import error_line

LAM = 1e-2
MODEL_SOURCE = '''
import torch
from torch import nn


class Net(nn.Module):
    """LayerNorm on the image, a biased Conv2d, a biased hidden Linear, a biased output layer."""

    def __init__(self, width=12):
        super().__init__()
        self.norm = nn.LayerNorm([1, 8, 8])
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.hidden = nn.Linear(4 * 4 * 4, width)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        h = torch.tanh(self.conv(self.norm(x)))
        return self.head(nn.functional.gelu(self.hidden(h.flatten(1))))


def build():
    return Net()


def wider():
    return Net(width=20)


def not_a_module():
    return "a string"


def empty():
    return nn.Sequential(nn.Tanh())


class Tokens(nn.Module):
    """Integer token ids through an embedding, read out by a Linear."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(17, 4)
        self.head = nn.Linear(4 * 64, 10)

    def forward(self, tokens):
        return self.head(self.embed(tokens.flatten(1)).flatten(1))


def tokens():
    return Tokens()
'''


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """The user's model file, its trained weights (a critical point of L_λ) and its data."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("user")
    (folder / "my_net.py").write_text(MODEL_SOURCE)
    spec = importlib.util.spec_from_file_location("my_net_for_training", folder / "my_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    digits = load_digits()
    X = torch.tensor(digits.data[:150] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(digits.target[:150])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = module.build().double()
        params = list(model.parameters())
        optimizer = torch.optim.LBFGS(
            params, history_size=50, max_iter=400, line_search_fn="strong_wolfe", tolerance_grad=1e-13,
            tolerance_change=0.0,
        )  # fmt: skip

        def objective():  # the user's own training: mean cross-entropy + (λ/2)‖θ‖², float64
            optimizer.zero_grad()
            value = torch.nn.functional.cross_entropy(model(X.double()), y)
            value = value + 0.5 * LAM * sum(p.pow(2).sum() for p in params)
            value.backward()
            return value

        optimizer.step(objective)
    finally:
        torch.set_num_threads(threads)
    torch.save(model.state_dict(), folder / "weights.pt")
    torch.save({"X": X, "y": y}, folder / "data.pt")
    np.savez(folder / "data.npz", X=X.numpy(), y=y.numpy())
    return folder


def _verify(fact_cli, folder, out, *extra):
    return fact_cli(
        "verify-fact", f"model={folder / 'my_net.py'}:build", f"weights={folder / 'weights.pt'}",
        f"inputs={folder / 'data.pt'}", f"lam={LAM}", "loss=cross_entropy", "plots=false",
        f"hydra.run.dir={out}", *extra,
    )  # fmt: skip


def test_a_network_trained_elsewhere_is_at_its_critical_point_and_fact_holds(fact_cli, tmp_path, user_files):
    out = tmp_path / "verify"
    result = _verify(fact_cli, user_files, out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary)[:2] == ["status", "convergence"]  # the verdict before any correlation
    assert summary["convergence"]["at_critical_point"] is True
    assert [layer["module"] for layer in summary["layers"]] == ["conv", "hidden", "head"]
    for layer in summary["layers"]:
        assert layer["residual"] <= 1e-3 and layer["fact"] >= 0.999, layer
        assert layer["fact_paths_relerr"] < 1e-10
    assert summary["skipped_layers"] == [
        {"module": "norm", "type": "LayerNorm",
         "reason": "normalisation layer: its scale and shift are not a weight matrix W of z = W h",
         "parameter": "norm.weight, norm.bias"},
    ]  # fmt: skip
    assert summary["lambda"] == LAM and "CrossEntropyLoss" in summary["loss_convention"]


def test_npz_data_and_an_importable_module_give_the_same_table(fact_cli, tmp_path, user_files, monkeypatch):
    monkeypatch.syspath_prepend(str(user_files))
    first, second = tmp_path / "a", tmp_path / "b"
    assert _verify(fact_cli, user_files, first).exit_code == 0
    result = fact_cli(
        "verify-fact", "network=my_net:build", f"weights={user_files / 'weights.pt'}",
        f"inputs={user_files / 'data.npz'}", f"lam={LAM}", "loss=cross_entropy", "plots=false",
        f"hydra.run.dir={second}",
    )  # fmt: skip
    sys.modules.pop("my_net", None)
    assert result.exit_code == 0, result.output
    a, b = (json.loads((d / "fact_layers.json").read_text()) for d in (first, second))
    assert [r["fact"] for r in a] == [r["fact"] for r in b]


def test_a_built_in_dataset_instead_of_a_data_file(fact_cli, tmp_path, user_files):
    """dataset=digits: its training rows, which the weights were not fitted to (only 150 of them were)."""
    out = tmp_path / "verify"
    result = fact_cli(
        "verify-fact", f"model={user_files / 'my_net.py'}:build", f"weights={user_files / 'weights.pt'}",
        "dataset=digits", f"lam={LAM}", "loss=cross_entropy", "plots=false", f"hydra.run.dir={out}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_rows"] == 1438 and "scikit-learn digits" in summary["dataset"]
    assert summary["convergence"]["at_critical_point"] is False  # not the data it was trained on


def test_an_unconverged_network_is_called_so_first(fact_cli, tmp_path, user_files):
    """The same network moved off its critical point: the verdict comes first, in words."""
    state = torch.load(user_files / "weights.pt", weights_only=True)
    state["hidden.weight"] = state["hidden.weight"] * 1.5
    torch.save(state, tmp_path / "moved.pt")
    out = tmp_path / "verify"
    result = _verify(fact_cli, user_files, out, f"weights={tmp_path / 'moved.pt'}")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    reading = summary["convergence"]
    assert reading["at_critical_point"] is False and reading["max_residual"] > 0.1
    assert reading["reading"].startswith("NOT at a critical point")
    assert "FACT (W^T W = F) only holds at convergence" in reading["reading"]
    assert set(reading["residuals"]) == {"W1", "W2", "W3"}
    log = (out / "verify_fact.log").read_text().splitlines()
    first_verdict = next(i for i, line in enumerate(log) if "NOT at a critical point" in line)
    first_correlation = next(i for i, line in enumerate(log) if re.search(r"W1 +\S+ +residual .* FACT", line))
    assert first_verdict < first_correlation


@pytest.mark.parametrize(
    "change, message",
    [
        (["model=nowhere/missing.py:build"], "no such file nowhere/missing.py"),
        (["model={folder}/my_net.py:absent"], "has no function 'absent'"),
        (["model={folder}/my_net.py:not_a_module"], "not_a_module() returned a str, not a torch.nn.Module"),
        (["model={folder}/my_net.py"], "give the constructor as path/to/file.py:function"),
        (["network=no_such_package.models:build"], "cannot import module no_such_package.models"),
        (["model={folder}/my_net.py:wider"], "key 'hidden.weight': shape [12, 64] in the file, [20, 64]"),
        (["inputs={folder}/flat.pt"], "inputs of shape [64] per row do not fit the network"),
        (["model={folder}/my_net.py:empty", "weights=null"], "the model has no parameters"),
        (["inputs={folder}/nan.pt"], "X holds NaN or infinite values"),
        (["weights={folder}/nan_weights.pt"], "parameter hidden.weight holds NaN or infinite values"),
        (["lam=0"], "network= needs lam > 0"),
        (["lam=-1e-3"], "network= needs lam > 0"),
    ],
    ids=["missing-file", "missing-function", "not-a-module", "no-colon", "no-module", "state-dict",
         "data-shape", "no-parameters", "nan-inputs", "nan-weights", "lam-zero", "lam-negative"],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(fact_cli, tmp_path, user_files, change, message):
    data = torch.load(user_files / "data.pt", weights_only=True)
    torch.save({"X": data["X"].reshape(len(data["y"]), -1), "y": data["y"]}, user_files / "flat.pt")
    torch.save(
        {"X": data["X"].masked_fill(data["X"] > 0.9, float("nan")), "y": data["y"]}, user_files / "nan.pt"
    )
    weights = torch.load(user_files / "weights.pt", weights_only=True)
    weights["hidden.weight"][0, 0] = float("nan")
    torch.save(weights, user_files / "nan_weights.pt")
    out = tmp_path / "verify"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = _verify(fact_cli, user_files, out, *(c.format(folder=user_files) for c in change))
    line = error_line(result)
    assert message in line, line
    assert not (out / "fact_layers.csv").exists() and not (out / "summary.json").exists()
    assert (out / "notes.txt").read_text() == "mine"


def test_a_state_dict_with_a_key_the_model_lacks_is_named(fact_cli, tmp_path, user_files):
    state = torch.load(user_files / "weights.pt", weights_only=True)
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "extra.pt")
    result = _verify(fact_cli, user_files, tmp_path / "v", f"weights={tmp_path / 'extra.pt'}")
    assert "first mismatching key 'extra.weight': in the file, not in the model" in error_line(result)


def test_integer_inputs_are_token_ids_for_an_embedding_and_numbers_for_a_convolution(
    fact_cli, tmp_path, user_files
):
    data = torch.load(user_files / "data.pt", weights_only=True)
    pixels = (data["X"] * 16).round().long()  # the digits' 0..16 grey levels as integers
    torch.save({"X": pixels, "y": data["y"]}, user_files / "integers.pt")
    as_numbers = _verify(fact_cli, user_files, tmp_path / "conv", f"inputs={user_files / 'integers.pt'}")
    assert as_numbers.exit_code == 0, as_numbers.stderr
    as_tokens = fact_cli(
        "verify-fact", f"model={user_files / 'my_net.py'}:tokens", f"inputs={user_files / 'integers.pt'}",
        f"lam={LAM}", "loss=cross_entropy", "plots=false", f"hydra.run.dir={tmp_path / 'tokens'}",
    )  # fmt: skip
    assert as_tokens.exit_code == 0, as_tokens.stderr
    rows = json.loads((tmp_path / "tokens" / "summary.json").read_text())["layers"]
    assert [(r["module"], r["uses"], r["shape"]) for r in rows] == [
        ("embed", "embedding", "4x17"),
        ("head", "linear", "10x256"),
    ]
    assert all(r["fact_paths_relerr"] < 1e-10 for r in rows)
