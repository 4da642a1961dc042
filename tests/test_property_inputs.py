"""Property-based: random valid and invalid inputs never give a traceback.

1. Every subcommand's validation, over every key of its schema: a random config (defaults with a few
   keys set to adversarial values of the key's type: NaN, ±inf, negatives, zero, 2**31, 2**70, empty
   lists, stray text) is either accepted, and then holds no NaN, infinity or out-of-range seed, or
   refused with a FactError of one line. Fast: no Hydra, no run.
2. The CLI end to end: random small tables (sizes 1-40, constant, huge, stray-text and NaN cells; binary,
   multi-class, continuous, text and constant targets) with random fit-rfm settings, and random small
   settings of train-net, verify-fact, grokking and parity: either one ``error:`` line, a non-zero exit
   and nothing written, or a finished run whose summary agrees with its config.
3. The estimators on random small tables: a ValueError (scikit-learn's kind), or a fit whose
   predictions have the right shape, classes and probabilities.
4. Table files as users write them: random CSV text (separators, quoting, BOM, CRLF, numbers with
   currency, percent and thousands marks, ISO dates, '?' markers, stray cells, duplicate headers)
   reads as written or is refused in one line; a training file and a test file that differ in one
   cell (shuffled rows, another format) leave everything learned from the training file as it is,
   encode every unchanged test row as its training row, or are refused in one line naming the test
   file; fit-rfm on such pairs records what ran.

The default run draws a few examples (derandomized, so the same ones every time); ``-m slow`` draws many.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import tempfile
import types
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PROPERTY_DERANDOMIZE
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import GrammarParseError, ValidationError
from test_train_net import TINY
from typer.testing import CliRunner

from factcli.cli import app
from factcli.commands import COMMANDS
from factcli.data import load_tabular
from factcli.data.table_pair import load_with_test_file
from factcli.errors import FactError
from factcli.job import validate
from factcli.schema._checks import SEED_LIMIT
from factcli.schema.fit_rfm import BenchmarkConfig


def examples(count: int, slow: bool = False):
    """Few derandomized examples in the default run (the same every time); many random ones when slow,
    unless FACT_PROPERTY_DERANDOMIZE is set (CI: a gate must give the same verdict on the same code)."""
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=not slow or PROPERTY_DERANDOMIZE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- 1. validation over every key ------------------------------------------------------------

SUBCOMMANDS = ["fit-rfm", "train-net", "verify-fact", "grokking", "parity"]
HUGE_INTS = [-1, 0, 1, 2, 3, SEED_LIMIT, 2**32, 2**63, 2**70]
ODD_FLOATS = [0.0, -0.0, -1.0, 1e-300, 1e300, 0.5, 2.0, math.nan, math.inf, -math.inf]


def _leaf_types(config_class, prefix=""):
    """Dotted key → annotation of every leaf of a schema dataclass (nested dataclasses walked)."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        kind = hints[field.name]
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = typing.get_origin(kind) in (typing.Union, types.UnionType) and len(inner) == 1
        target = inner[0] if optional else kind
        if dataclasses.is_dataclass(target) and optional:
            continue  # an optional group (fit-rfm's benchmark) is switched on by the caller
        if dataclasses.is_dataclass(target):
            yield from _leaf_types(target, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", target


def _values_of(kind):
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.one_of(st.sampled_from(HUGE_INTS), st.integers(-10, 10))
    if kind is float:
        return st.one_of(st.sampled_from(ODD_FLOATS), st.floats(allow_nan=True, allow_infinity=True))
    if kind is str:
        return st.one_of(st.sampled_from(["", "auto", "float64", "fact", "nfa", "xx"]), st.text(max_size=4))
    if typing.get_origin(kind) is list:
        return st.lists(_values_of(typing.get_args(kind)[0]), max_size=3)
    return st.none()


@st.composite
def perturbed_config(draw, name):
    schema = COMMANDS[name].schema
    leaves = dict(_leaf_types(schema))
    cfg = OmegaConf.structured(schema)
    if name == "fit-rfm" and draw(st.booleans()):
        cfg.benchmark = OmegaConf.structured(BenchmarkConfig)
        leaves.update(_leaf_types(BenchmarkConfig, "benchmark."))
    keys = draw(st.lists(st.sampled_from(sorted(leaves)), min_size=1, max_size=4, unique=True))
    for key in keys:
        value = draw(_values_of(leaves[key]))
        try:
            OmegaConf.update(cfg, key, value, merge=False)
        except ValidationError:  # a value of another type: Hydra's composition refuses it (exit 2)
            pass
        except GrammarParseError:  # text such as "${": on a command line Hydra's parser refuses it
            pass
    return cfg


def _check_validation(name, cfg):
    try:
        validate(COMMANDS[name], cfg)
    except FactError as error:
        assert str(error).strip() and "\n" not in str(error), repr(str(error))
        return
    for key, value in _all_leaves(OmegaConf.to_container(cfg)):
        assert not (isinstance(value, float) and not math.isfinite(value)), (key, value)
        assert not (isinstance(value, int) and abs(value) >= 2**63), (key, value)
    assert 0 <= cfg.seed < SEED_LIMIT


def _all_leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _all_leaves(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for value in node:
            yield from _all_leaves(value, prefix)
    else:
        yield prefix, node


def _validation_property(count, slow=False):
    @examples(count, slow)
    @given(data=st.data(), name=st.sampled_from(SUBCOMMANDS))
    def check(data, name):
        _check_validation(name, data.draw(perturbed_config(name)))

    return check


test_validation_of_every_subcommand_is_one_line_or_accepts = _validation_property(60)
test_validation_of_every_subcommand_many = pytest.mark.slow(_validation_property(3000, slow=True))


# --- 2. the CLI end to end -------------------------------------------------------------------

runner = CliRunner()


@st.composite
def small_table(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    frame = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(d)})
    special = draw(st.sampled_from(["none", "constant", "huge", "text", "stray", "missing", "integers"]))
    if special == "constant":
        frame["x0"] = 3.0
    elif special == "huge":
        frame["x0"] = frame["x0"] * 1e300
    elif special == "text":
        frame["color"] = rng.choice(["red", "blue"], n)
    elif special == "stray" and n >= 10:
        frame["x0"] = frame["x0"].astype(object)
        frame.loc[n // 2, "x0"] = "oops"
    elif special == "missing":
        frame.loc[0, "x0"] = np.nan
    elif special == "integers":
        frame["x0"] = rng.integers(0, 5, n)
    target = draw(st.sampled_from(["binary", "classes", "continuous", "text", "constant", "counts"]))
    frame["y"] = {
        "binary": lambda: (frame.index % 2).to_numpy(),
        "classes": lambda: rng.integers(0, 4, n),
        "continuous": lambda: rng.normal(size=n),
        "text": lambda: rng.choice(["cat", "dog", "eel"], n),
        "constant": lambda: np.ones(n, dtype=int),
        "counts": lambda: rng.integers(0, 1000, n),
    }[target]()
    return frame


FIT_RFM_VALUES = {
    "seed": st.sampled_from([0, 1, -1, 2**31, 2**70]),
    "method": st.sampled_from(["laplace", "nfa", "fact", "fact-geo", "bogus"]),
    "protocol": st.sampled_from(["strict", "paper", "other"]),
    "kernel.name": st.sampled_from(["laplace", "gaussian"]),
    "kernel.bandwidth": st.sampled_from([10.0, 0.5, 1e300, 0.0, -1.0, math.nan, math.inf]),
    "rfm.iters": st.sampled_from([0, 1, 2, -1]),
    "rfm.solve_tol": st.sampled_from([1e-3, 0.5, -1.0, 0.0]),
    "rfm.precision": st.sampled_from(["auto", "float32", "float64"]),
    "rfm.nfa_power": st.sampled_from([0.5, 1.0, 0.0, -1.0]),
    "grid.ridges": st.lists(st.sampled_from([1.0, 0.1, 0.0, 1e-8, -1.0, math.nan]), max_size=2),
    "grid.normalize_rows": st.lists(st.booleans(), max_size=2),
    "data.test_fraction": st.sampled_from([0.2, 0.5, 0.999, 0.0, 1.0, -0.1]),
    "data.val_fraction": st.sampled_from([0.25, 0.5, 0.9, 0.0]),
    "data.task": st.sampled_from(["auto", "classification", "regression", "guess"]),
    "data.standardize": st.sampled_from(["auto", "yes", "no"]),
    "threads": st.sampled_from([1, 0, -2]),
    "memory_limit_gb": st.sampled_from([1.0, 1e-9, -1.0]),
}


def _hydra_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return str(value)


@st.composite
def overrides_from(draw, pool, count=(0, 4)):
    keys = draw(st.lists(st.sampled_from(sorted(pool)), min_size=count[0], max_size=count[1], unique=True))
    return {key: draw(pool[key]) for key in keys}


def _check_cli(args: list[str], out: Path, consistent) -> None:
    result = runner.invoke(app, [*args, f"hydra.run.dir={out}"])
    event(f"{args[0]}: {'finished' if result.exit_code == 0 else 'refused'}")  # --hypothesis-show-statistics
    output = result.stderr + result.stdout
    assert "Traceback" not in output and result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 0:
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "finished"
        consistent(summary)
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), output
    assert sum(line.startswith("error") for line in lines) == 1, output
    assert not out.exists(), f"{args} failed ({lines[-1]}) but left {sorted(p.name for p in out.iterdir())}"


def _fit_rfm_property(count, slow=False):
    @examples(count, slow)
    @given(frame=small_table(), chosen=overrides_from(FIT_RFM_VALUES))
    def check(frame, chosen):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "table.csv"
            frame.to_csv(path, index=False)
            args = ["fit-rfm", f"dataset={path}", "data.target=y", "plots=false", "threads=1"]
            args += [f"{key}={_hydra_value(value)}" for key, value in chosen.items()]

            def consistent(summary):
                assert summary["n"] == len(frame) and summary["seed"] == chosen.get("seed", 0)
                assert summary["method"] == chosen.get("method", "fact")
                assert summary["protocol"] == chosen.get("protocol", "strict")
                if chosen.get("data.task", "auto") != "auto":
                    assert summary["task"] == chosen["data.task"] and summary["task_source"] == "given"
                assert summary["chosen"]["ridge"] in chosen.get("grid.ridges", [10.0, 1.0, 0.1, 0.01, 0.001])
                assert summary["chosen"]["iteration"] <= chosen.get("rfm.iters", 5)
                score = summary[f"test_{summary['metric']}"]
                assert math.isfinite(score) and (summary["metric"] == "mse" or 0 <= score <= 1)

            _check_cli(args, Path(folder) / "run", consistent)

    return check


test_fit_rfm_on_random_tables_and_settings = _fit_rfm_property(3)
test_fit_rfm_on_random_tables_and_settings_many = pytest.mark.slow(_fit_rfm_property(150, slow=True))


STEPS = ["train.max_steps=20", "train.log_every=10", "train.check_every=10", "train.checkpoint_every=10"]
BASE_ARGS = {
    "train-net": [*TINY, *STEPS, "plots=false"],
    "verify-fact": [*TINY, *STEPS, "plots=false"],
    "grokking": ["p=5", "rfm.iters=1", "measures.tau=false", "plots=false", "threads=1"],
    "parity": ["d=6", "k=2", "n=30", "test_size=20", "rfm.iters=1", "plots=false", "threads=1"],
}
SHARED_VALUES = {"seed": st.sampled_from([0, 3, -1, 2**40, 2**80])}
COMMAND_VALUES = {
    "train-net": {
        "model.hidden": st.sampled_from([[4], [3, 2], [0], [], [4, -1]]),
        "optim.lr": st.sampled_from([0.1, 0.0, -1.0, math.nan, math.inf]),
        "optim.weight_decay": st.sampled_from([0.05, 0.0, -0.1]),
        "optim.momentum": st.sampled_from([0.0, 0.9, -1.0]),
        "data.train_size": st.sampled_from([10, 0, 5000]),
        "data.test_size": st.sampled_from([5, 0.5, 0.0, 2.0]),
        "data.teacher.dim": st.sampled_from([2, 0]),
        "train.tol": st.sampled_from([1e-3, 0.0, math.nan]),
        "model.activation": st.sampled_from(["tanh", "relu", "sigmoid"]),
    },
    "grokking": {
        "p": st.sampled_from([5, 7, 4, 1, 0, -3]),
        "train_fraction": st.sampled_from([0.5, 0.05, 0.99, 1.0, math.nan]),
        "kernel.bandwidth": st.sampled_from([2.5, 0.0, math.inf]),
        "rfm.ridge": st.sampled_from([0.0, 1e-3, -1.0]),
        "rfm.precision": st.sampled_from(["float64", "float32"]),
        "learner": st.sampled_from(["fact", "nfa", "fact-geo", "other"]),
        "operation": st.sampled_from(["add", "mul", "div", "pow"]),
    },
    "parity": {
        "d": st.sampled_from([6, 2, 0, -1]),
        "k": st.sampled_from([2, 1, 0, 7]),
        "n": st.sampled_from([30, 2, 1, 0]),
        "test_size": st.sampled_from([20, 1, 0]),
        "label_noise": st.sampled_from([0.0, 0.2, 0.5, -0.1]),
        "support": st.sampled_from([None, [0, 1], [0, 0], [0, 9]]),
        "learner": st.sampled_from(["fact", "laplace", "nfa", "net"]),
        "rfm.ridge": st.sampled_from([1e-3, 0.0, -1.0]),
    },
}
COMMAND_VALUES["verify-fact"] = {
    **COMMAND_VALUES["train-net"],
    "verify.enfa_powers": st.sampled_from([[0.5], [], [0.0], [-1.0]]),
    "verify.heatmap_layers": st.sampled_from([[1], [0], [9]]),
    "verify.batch_size": st.sampled_from([16, 0]),
    "source": st.sampled_from(["null", "/nonexistent/run", "/etc/hostname"]),
}


def _command_property(count, slow=False):
    @examples(count, slow)
    @given(command=st.sampled_from(sorted(BASE_ARGS)), data=st.data())
    def check(command, data):
        chosen = data.draw(overrides_from({**SHARED_VALUES, **COMMAND_VALUES[command]}, count=(1, 3)))
        args = [command, *BASE_ARGS[command], *(f"{k}={_hydra_value(v)}" for k, v in chosen.items())]

        def consistent(summary):
            assert summary["seed"] == chosen.get("seed", 0)
            for key in ("p", "d", "k", "n"):
                if key in chosen and key in summary:
                    assert summary[key] == chosen[key]

        with tempfile.TemporaryDirectory() as folder:
            _check_cli(args, Path(folder) / "run", consistent)

    return check


test_other_subcommands_on_random_settings = pytest.mark.slow(_command_property(3))
test_other_subcommands_on_random_settings_many = pytest.mark.slow(_command_property(150, slow=True))


# --- 3. the estimators -----------------------------------------------------------------------


@st.composite
def estimator_data(draw):
    n = draw(st.integers(1, 25))
    d = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rng.normal(size=(n, d))
    special = draw(st.sampled_from(["none", "nan", "inf", "huge", "constant"]))
    if special == "nan":
        X[0, 0] = np.nan
    elif special == "inf":
        X[0, 0] = np.inf
    elif special == "huge":
        X[:, 0] *= 1e200
    elif special == "constant":
        X[:] = 1.0
    kind = draw(st.sampled_from(["binary", "classes", "continuous", "text", "single", "nan"]))
    y = {
        "binary": lambda: np.arange(n) % 2,
        "classes": lambda: rng.integers(0, 4, n),
        "continuous": lambda: rng.normal(size=n),
        "text": lambda: rng.choice(["a", "b"], n),
        "single": lambda: np.zeros(n),
        "nan": lambda: np.where(np.arange(n) == 0, np.nan, 1.0),
    }[kind]()
    params = {
        "ridge": draw(st.sampled_from([1e-3, 1.0, 0.0, -1.0, math.nan])),
        "iters": draw(st.sampled_from([0, 1, 2, -1])),
        "bandwidth": draw(st.sampled_from([10.0, 1.0, 0.0, math.inf])),
        "method": draw(st.sampled_from(["fact", "nfa", "laplace", "fact-geo", "bad"])),
    }
    return X, y, params


def _estimator_property(count, slow=False):
    @examples(count, slow)
    @given(case=estimator_data(), classify=st.booleans())
    def check(case, classify):
        from factcli.estimator import FactRFMClassifier, FactRFMRegressor

        X, y, params = case
        model = (FactRFMClassifier if classify else FactRFMRegressor)(**params)
        try:
            model.fit(X, y)
        except ValueError as error:  # scikit-learn's own input errors run on over several lines
            assert str(error).strip().splitlines()[0], repr(str(error))
            return
        predictions = model.predict(X)
        assert len(predictions) == len(X)
        if classify:
            assert set(predictions) <= set(model.classes_)
            proba = model.predict_proba(X)
            assert np.all(proba >= 0) and np.allclose(proba.sum(1), 1.0)
        else:
            assert np.isfinite(predictions).all()

    return check


test_estimators_on_random_tables = _estimator_property(40)
test_estimators_on_random_tables_many = pytest.mark.slow(_estimator_property(1500, slow=True))


# --- 4. table files as users write them -----------------------------------------------------

FEATURE_KINDS = ["number", "money", "percent", "thousands", "date", "text", "unknowns", "stray"]
TARGET_KINDS = ["binary", "labels", "floats", "one_point_zero", "counts"]
SEPARATORS = [",", ";", "\t", "|"]
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL]
# What one changed test cell can be: unreadable, missing, out of range, another form, a new category.
TEST_CELLS = [
    "?",
    "",
    "oops",
    "1e400",
    "-inf",
    "0.5",
    "2024-01-01",
    "$5",
    "12%",
    "violet",
    "1.0",
    " 3 ",
    "NA",
]


@dataclasses.dataclass
class CsvTable:
    header: list[str]
    rows: list[list[str]]
    kinds: dict[str, str]  # column → kind
    expected: dict[str, np.ndarray]  # number-like column → its values (NaN = missing)
    duplicate: bool = False

    def column(self, name: str) -> list[str]:
        j = self.header.index(name)
        return [row[j] for row in self.rows]


@st.composite
def csv_format(draw):
    return {
        "sep": draw(st.sampled_from(SEPARATORS)),
        "quoting": draw(st.sampled_from(QUOTING)),
        "bom": draw(st.booleans()),
        "crlf": draw(st.booleans()),
    }


def write_csv_text(path: Path, table: CsvTable, fmt: dict) -> None:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=fmt["sep"], quoting=fmt["quoting"], lineterminator="\r\n" if fmt["crlf"] else "\n"
    )
    writer.writerow(table.header)
    writer.writerows(table.rows)
    path.write_bytes(("\ufeff" * fmt["bom"] + buffer.getvalue()).encode())


def _number_cells(kind, values, rng):
    """(cells, expected values) of one number-like column, the expected values read independently."""
    if kind == "money":
        cells = [f"{'-' if v < 0 else ''}${abs(v):,.2f}" for v in values]
    elif kind == "percent":
        cells = [f"{v:.1f}%" for v in values]
    elif kind == "thousands":
        cells = [f"{v:,.0f}" for v in values]
    elif kind == "date":
        days = rng.integers(-20000, 30000, len(values))
        cells = [str(np.datetime64("1970-01-01") + int(k)) for k in days]
        return cells, days.astype(float)
    else:
        cells = [repr(round(float(v), 4)) for v in values]
        if kind == "unknowns":
            cells = [c if i % 4 else "?" for i, c in enumerate(cells)]
    expected = [
        math.nan
        if c == "?"
        else float(c.replace("$", "").replace(",", "").rstrip("%")) / (100 if "%" in c else 1)
        for c in cells
    ]
    return cells, np.array(expected)


@st.composite
def csv_table(draw, clean=False):
    """A random table as text: number-like columns in several written forms, text, '?' markers, a stray
    cell, a target of several kinds; ``clean``: nothing a careful reader must refuse."""
    n = draw(st.integers(2, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    pool = [k for k in FEATURE_KINDS if not (clean and k in ("stray", "unknowns"))]
    kinds = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    header, columns, expected = [], [], {}
    for j, kind in enumerate(kinds):
        name = f"{kind}{j}"
        header.append(name)
        if kind == "text":
            columns.append(list(rng.choice(["red", "blue", "green"], n)))
            continue
        values = rng.normal(size=n) * 10 ** float(rng.integers(0, 6))
        cells, numbers = _number_cells("number" if kind == "stray" else kind, values, rng)
        if kind == "stray":
            cells[int(rng.integers(n))] = "oops"
        else:
            expected[name] = numbers
        columns.append(cells)
    target = draw(st.sampled_from(TARGET_KINDS))
    labels = {
        "binary": lambda: [str(i % 2) for i in range(n)],
        "labels": lambda: ["cat", "dog"] + list(rng.choice(["cat", "dog", "eel"], n - 2)),
        "floats": lambda: [repr(float(v)) for v in rng.normal(size=n) + 0.5],
        "one_point_zero": lambda: [["1", "2.0", "1.0", "2"][i % 4] for i in range(n)],
        "counts": lambda: ["0", "999"] + [str(k) for k in rng.integers(0, 1000, n - 2)],
    }[target]()
    header.append("y")
    columns.append(labels)
    table = CsvTable(
        header,
        [list(row) for row in zip(*columns, strict=True)],
        dict(zip(header, [*kinds, target], strict=True)),
        expected,
    )
    if not clean and len(header) > 2 and draw(st.integers(0, 9)) == 0:
        table.header[1] = table.header[0]
        table.duplicate = True
    return table


def _check_encoded(data, table: CsvTable, missing: str) -> None:
    """A loaded table holds what its text says: every number-like column one feature with the values
    written, every text column one block of its levels, the task its target asks for."""
    n = len(table.rows)
    assert data.X.shape == (n, data.d) and data.X.dtype == np.float64 and len(data.feature_names) == data.d
    if missing == "refuse":
        assert not np.isnan(data.X).any()
    for name, values in table.expected.items():
        label = f"{name} (days since 1970-01-01)" if table.kinds[name] == "date" else name
        column = data.X[:, data.feature_names.index(label)]
        np.testing.assert_allclose(column, values, rtol=1e-12, atol=0)  # NaN where '?'
    for name, kind in table.kinds.items():
        if kind == "text":
            block = [j for j, f in enumerate(data.feature_names) if f.startswith(f"{name}=")]
            assert [data.feature_names[j] for j in block] == [
                f"{name}={v}" for v in sorted(set(table.column(name)))
            ]
            assert (data.X[:, block].sum(1) == 1).all()
        elif kind == "stray":  # a typo in a number column: refused, or (few rows) a few categories
            assert sum(f.startswith(f"{name}=") for f in data.feature_names) <= 10
    target = table.kinds["y"]
    if target in ("binary", "labels", "one_point_zero"):
        assert data.task == "classification"
        names = {"binary": ["0", "1"], "one_point_zero": ["1", "2"]}.get(
            target, sorted(set(table.column("y")))
        )
        assert data.class_names == names
        assert [names[k] for k in data.y] == [
            str(int(float(v))) if target == "one_point_zero" else v for v in table.column("y")
        ]
    elif target == "floats" or len(set(table.column("y"))) > 10:
        assert data.task == "regression"
        np.testing.assert_array_equal(data.y, [float(v) for v in table.column("y")])


def _one_line(error: FactError) -> str:
    message = str(error)
    assert message.strip() == message and message and "\n" not in message, repr(message)
    return message


def _csv_property(count, slow=False):
    @examples(count, slow)
    @given(table=csv_table(), fmt=csv_format(), missing=st.sampled_from(["refuse", "median"]))
    def check(table, fmt, missing):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "table.csv"
            write_csv_text(path, table, fmt)
            try:
                data = load_tabular(str(path), target="y", missing=missing)
            except FactError as error:
                message = _one_line(error)
                event("refused")
                has_missing = any(np.isnan(v).any() for v in table.expected.values())
                stray = "stray" in table.kinds.values()
                assert table.duplicate or stray or (missing == "refuse" and has_missing), message
                return
        event("loaded")
        assert not table.duplicate
        _check_encoded(data, table, missing)

    return check


test_csv_text_reads_as_written = _csv_property(60)
test_csv_text_reads_as_written_many = pytest.mark.slow(_csv_property(2000, slow=True))


@st.composite
def table_pair(draw):
    """A clean training table and a test table: the same rows, shuffled, one cell changed."""
    train = draw(csv_table(clean=True))
    order = draw(st.permutations(range(len(train.rows))))
    rows = [list(train.rows[i]) for i in order]
    row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(train.header) - 1))
    rows[row][column] = draw(st.sampled_from(TEST_CELLS))
    test = CsvTable(list(train.header), rows, train.kinds, {})
    return train, test, list(order), (row, column)


def _pair_property(count, slow=False):
    @examples(count, slow)
    @given(
        pair=table_pair(),
        formats=st.tuples(csv_format(), csv_format()),
        missing=st.sampled_from(["refuse", "median"]),
    )
    def check(pair, formats, missing):
        train, test, order, (row, column) = pair
        with tempfile.TemporaryDirectory() as folder:
            train_path, test_path = Path(folder) / "train.csv", Path(folder) / "test.csv"
            write_csv_text(train_path, train, formats[0])
            write_csv_text(test_path, test, formats[1])
            alone = load_tabular(str(train_path), target="y", missing=missing)  # a clean table loads
            try:
                data, held_out = load_with_test_file(train_path, test_path, target="y", missing=missing)
            except FactError as error:
                message = _one_line(error)
                assert str(test_path) in message and str(train_path) not in message, message
                event("test file refused")
                return
        event("test file read")
        n = alone.n
        # Nothing learned from data moved: the training rows, columns, task and classes are as alone.
        assert data.feature_names == alone.feature_names and data.class_names == alone.class_names
        assert (data.task, data.task_reason, data.task_source) == (
            alone.task,
            alone.task_reason,
            alone.task_source,
        )
        np.testing.assert_array_equal(data.X[:n], alone.X)
        np.testing.assert_array_equal(data.y[:n], alone.y)
        assert held_out.rows == len(test.rows) and data.n == n + len(test.rows)
        # Every unchanged test row is encoded exactly as its training row.
        for r, source in enumerate(order):
            if r != row:
                np.testing.assert_array_equal(data.X[n + r], alone.X[source])
                assert data.y[n + r] == alone.y[source]
        assert sum(held_out.unseen_categories.values()) <= 1
        if missing == "refuse":
            assert not np.isnan(data.X).any()

    return check


test_train_test_pairs_differing_in_one_cell = _pair_property(60)
test_train_test_pairs_differing_in_one_cell_many = pytest.mark.slow(_pair_property(2000, slow=True))


def _pair_cli_property(count, slow=False):
    @examples(count, slow)
    @given(pair=table_pair(), fmt=csv_format())
    def check(pair, fmt):
        train, test, _, _ = pair
        with tempfile.TemporaryDirectory() as folder:
            train_path, test_path = Path(folder) / "train.csv", Path(folder) / "test.csv"
            write_csv_text(train_path, train, fmt)
            write_csv_text(test_path, test, fmt)
            alone = load_tabular(str(train_path), target="y", missing="median")
            args = [
                "fit-rfm",
                f"dataset={train_path}",
                "data.target=y",
                f"data.test={test_path}",
                "data.missing=median",
            ]
            args += [
                "rfm.iters=1",
                "grid.ridges=[0.1]",
                "grid.normalize_rows=[false]",
                "plots=false",
                "threads=1",
            ]

            def consistent(summary):
                assert (summary["n"], summary["d"]) == (alone.n + len(test.rows), alone.d)
                assert summary["test_rows"] == len(test.rows) and summary["test_file"] == str(test_path)
                assert (summary["task"], summary["task_reason"]) == (alone.task, alone.task_reason)
                assert summary["read_as"] == alone.read_as

            _check_cli(args, Path(folder) / "run", consistent)

    return check


test_fit_rfm_on_train_test_pairs = _pair_cli_property(3)
test_fit_rfm_on_train_test_pairs_many = pytest.mark.slow(_pair_cli_property(100, slow=True))
