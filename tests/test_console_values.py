"""Console output says values as a person writes them: never None, a dict's braces, a list's brackets
or a float's 15 digits, in the quick run of every subcommand, and in the helper that formats them."""

import re

import numpy as np
import pytest
from conftest import TEACHER_NET

from factcli.messages import as_override, reached, say

TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")
RAW = re.compile(r"\bNone\b|[{}\[\]]|\d\.\d{8,}|\d{9,}")


def raw_lines(text: str, *paths) -> list[str]:
    """The lines of console output that show a raw Python value (the run's own paths left out)."""
    for path in paths:
        text = text.replace(str(path), "<dir>")
    lines = (TIMESTAMP.sub("", line) for line in text.splitlines())
    return [line for line in lines if RAW.search(line)]


def write_table(path, n=150, seed=0):
    """Two numbers (one with missing cells: imputation is reported per column) and a label."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    label = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = [
        f"{'' if i % 7 == 0 else f'{a:.6f}'},{b:.6f},{y}"
        for i, ((a, b), y) in enumerate(zip(X, label, strict=True))
    ]
    path.write_text("x0,x1,label\n" + "\n".join(rows) + "\n")
    return path


QUICK = {
    "fit-rfm": ["data.target=label", "data.missing=median", "rfm.iters=1", "grid.ridges=[0.1]"],
    "grokking": ["p=7", "rfm.iters=3"],
    "parity": ["d=12", "k=3", "n=300", "test_size=400", "rfm.iters=3"],
    "train-net": TEACHER_NET,
}


@pytest.mark.parametrize("command", sorted(QUICK))
def test_quick_runs_print_no_raw_python_values(fact_cli, tmp_path, command):
    args = list(QUICK[command])
    if command == "fit-rfm":
        args.insert(0, f"dataset={write_table(tmp_path / 'table.csv')}")
    out = tmp_path / "run"
    result = fact_cli(command, *args, "plots=false", "threads=1", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("\n") >= 2, result.stderr  # something was said
    assert not raw_lines(result.stderr + result.stdout, out, tmp_path), result.stderr


def test_verify_fact_prints_no_raw_python_values(fact_cli, tmp_path):
    trained = tmp_path / "trained"
    assert (
        fact_cli("train-net", *TEACHER_NET, "plots=false", "threads=1", f"hydra.run.dir={trained}").exit_code
        == 0
    )
    out = tmp_path / "run"
    result = fact_cli("verify-fact", f"source={trained}", "plots=false", "threads=1", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert not raw_lines(result.stderr + result.stdout, out, trained, tmp_path), result.stderr


def test_the_counterexamples_polish_is_reported_in_words(fact_cli, tmp_path):
    out = tmp_path / "run"
    preset = ["experiment=nets/nfa_counterexample", "train.max_steps=300", "train.log_every=300"]
    result = fact_cli("verify-fact", *preset, "plots=false", "threads=1", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert "polished the quadratic net to its critical point: reduced objective" in result.stderr
    assert not raw_lines(result.stderr, out, tmp_path), result.stderr


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "none"),
        ({"a": 1, "b": 2.0}, "a=1, b=2"),
        ([0, 1, 2], "0, 1, 2"),
        ((3,), "3"),
        (0.1234567891234, "0.123"),
        (1.2345e-9, "1.23e-09"),
        (np.float64(2 / 3), "0.667"),
        (np.array([1, 2]), "1, 2"),
        ({"x0": 36, "x1": [1, 2]}, "x0=36, x1=1, 2"),
        ("text", "text"),
        (True, "True"),
        (12, "12"),
    ],
)
def test_say_writes_values_as_a_person_would(value, said):
    assert say(value) == said
    assert not RAW.search(say(value))


def test_as_override_writes_what_is_typed():
    assert [as_override(v) for v in (None, True, [0.1, 1.0], 3, "laplace")] == [
        "null",
        "true",
        "[0.1,1.0]",
        "3",
        "laplace",
    ]


def test_reached_never_says_none():
    assert reached(3, "iteration") == "at iteration 3"
    assert reached(None, "step") == "never reached"
