"""Resume sequences of train-net, property-based: run, interrupt, change one setting, rerun.

Whatever the setting and the step of the interruption, the rerun either refuses in one ``error:``
line naming the setting (a setting that shaped the steps already taken), leaving the checkpoint,
config.yaml and metrics.csv as they were, or resumes with the new value in effect from the
checkpoint on, recorded in config.yaml, in metrics.csv (the learning rate of every step) and in
summary.json's ``resumes``. Never a traceback, never a record that disagrees with what ran.
Two short runs per sequence: every test here is in the slow suite (``-m slow``), a few derandomized
examples and many random ones.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROPERTY_DERANDOMIZE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from typer.testing import CliRunner

from factcli.cli import app
from factcli.experiments.nets.train import RESUME_MAY_CHANGE

BASE = [
    "dataset=teacher", "data.teacher.dim=4", "data.train_size=24", "data.test_size=8", "model.hidden=[6]",
    "optim.batch_size=8", "optim.lr=0.05", "train.max_steps=40", "train.log_every=10",
    "train.check_every=10", "train.checkpoint_every=10", "train.finish=none", "threads=1", "plots=false",
]  # fmt: skip
CHANGES = {
    "optim.lr": [0.01, 0.2],
    "optim.momentum": [0.0, 0.5],
    "optim.batch_size": [4, 12],
    "optim.weight_decay": [0.01],
    "optim.schedule": ["cosine"],
    "seed": [1],
    "loss": ["cross_entropy"],
    "dtype": ["float64"],
    "model.init": ["default"],
    "model.hidden": ["[5]"],
    "data.train_size": [20],
    "train.max_steps": [30, 60],
    "train.log_every": [5, 20],
    "train.tol": [0.5],
}
RECORDS = ("checkpoint.pt", "config.yaml", "metrics.csv")


def examples(count: int, slow: bool = False):
    return settings(
        max_examples=count, deadline=None, database=None, derandomize=not slow or PROPERTY_DERANDOMIZE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip


def _run(out: Path, *overrides):
    return CliRunner().invoke(app, ["train-net", *BASE, *overrides, f"hydra.run.dir={out}"])


def _check_sequence(interrupt_at: int, key: str, value) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        first = _run(out, f"train.max_steps={interrupt_at}")
        assert first.exit_code == 0, first.output
        (out / "summary.json").unlink()  # as if killed right after the checkpoint of that step
        before = {name: (out / name).read_bytes() for name in RECORDS}
        saved = OmegaConf.load(out / "config.yaml")
        result = _run(out, f"{key}={value}")
        assert "Traceback" not in result.output
        new = OmegaConf.create(f"v: {value}").v
        changed = OmegaConf.select(saved, key) != new
        if result.exit_code != 0:  # refused: one line naming the key, nothing rewritten
            lines = [line for line in result.output.splitlines() if line.startswith("error:")]
            named = f"{key}=" in lines[0] or f"{key.rsplit('.', 1)[-1]}: " in lines[0]  # or as architecture
            assert len(lines) == 1 and named, result.output
            assert changed and not key.startswith(RESUME_MAY_CHANGE)
            assert {name: (out / name).read_bytes() for name in RECORDS} == before
            return
        assert not changed or key.startswith(RESUME_MAY_CHANGE), f"{key} changed silently"
        config = OmegaConf.load(out / "config.yaml")
        assert OmegaConf.select(config, key) == new
        summary = json.loads((out / "summary.json").read_text())
        recorded = {k for entry in summary["resumes"] for k in entry["changed"]}
        assert recorded == {"train.max_steps"} | (
            {key} if changed else set()
        )  # the interrupted run had fewer
        assert summary["resumes"][0]["step"] == interrupt_at
        metrics = pd.read_csv(out / "metrics.csv")
        lr = float(OmegaConf.select(config, "optim.lr"))
        assert set(metrics[metrics.step > interrupt_at].lr) <= {lr}
        assert set(metrics[metrics.step <= interrupt_at].lr) == {0.05}
        assert summary["steps"] == config.train.max_steps or summary["stop_reason"] == "converged"


def _property(count, slow=False):
    @examples(count, slow)
    @given(
        interrupt_at=st.sampled_from([10, 20]),
        change=st.sampled_from(sorted(CHANGES)).flatmap(
            lambda k: st.tuples(st.just(k), st.sampled_from(CHANGES[k]))
        ),
    )
    def test(interrupt_at, change):
        _check_sequence(interrupt_at, *change)

    return test


# Each sequence is two short train-net runs (a few seconds): all of them are in the slow suite; the
# default suite has the lr and momentum cases in test_train_net.py.
test_resume_sequences_agree_with_what_ran = pytest.mark.slow(_property(4))
test_resume_sequences_agree_with_what_ran_many = pytest.mark.slow(_property(40, slow=True))


@pytest.mark.slow
@pytest.mark.parametrize("key", ["optim.lr", "optim.momentum", "train.max_steps"])
def test_the_settings_that_matter_most(key):
    """The settings of the issue, always: lr (may change), momentum (may not), budgets (may)."""
    _check_sequence(20, key, CHANGES[key][-1])
