"""Shared fixtures and helpers (tests import the helpers: ``from conftest import raises_one_line``)."""

import os
from pathlib import Path

import pytest
import torch

from factcli.errors import FactError

REPO = Path(__file__).resolve().parent.parent


# The slow property tests draw new random examples on every run, to find what the fixed ones miss;
# with FACT_PROPERTY_DERANDOMIZE set (CI) they draw the same ones, so a gate gives one verdict per commit.
PROPERTY_DERANDOMIZE = bool(os.environ.get("FACT_PROPERTY_DERANDOMIZE"))

# A teacher-student network small enough to reach a critical point in seconds (train-net tests).
TEACHER_NET = [
    "dataset=teacher", "data.teacher.dim=4", "data.teacher.classes=2", "data.teacher.task=regression",
    "data.train_size=24", "data.test_size=8", "model.hidden=[6,5]", "model.activation=tanh",
    "model.init=default", "model.bias=true", "dtype=float64", "optim=gd", "optim.lr=0.3",
    "optim.weight_decay=0.05", "train.tol=1e-6", "train.check_every=50", "train.log_every=200",
    "train.max_steps=3000",
]  # fmt: skip


def raises_one_line(match, call, *args, **kwargs):
    """Run call, expect FactError matching ``match``, check the message is one line; return it."""
    with pytest.raises(FactError, match=match) as excinfo:
        call(*args, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message and message.strip() == message
    return message


def compose(command: str, overrides=(), with_hydra: bool = False):
    """The config of ``fact <command> overrides...`` as a run composes it (no run is made)."""
    from factcli.commands import COMMANDS
    from factcli.launch import compose as compose_command

    return compose_command(COMMANDS[command], list(overrides), with_hydra)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only data root beside the project: $FACT_DATA, else ../shared/data; else skip."""
    if os.environ.get("FACT_DATA"):
        return Path(os.environ["FACT_DATA"])
    candidate = REPO.parent / "shared" / "data"
    if candidate.is_dir():
        return candidate
    pytest.skip("needs ../shared/data (set FACT_DATA)")


@pytest.fixture
def fact_cli():
    """Run the `fact` CLI in-process: ``fact_cli("fit-rfm", "dataset=iris", ...)`` → click Result."""
    from typer.testing import CliRunner

    from factcli.cli import app

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(arg) for arg in args])

    return invoke


@pytest.fixture
def float64_by_default():
    """Checks of formulas run in float64; the default is restored so other test modules are unaffected
    (modules opt in with ``pytestmark = pytest.mark.usefixtures("float64_by_default")``)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def random_psd(d, generator):
    """A well-conditioned random PSD matrix (a feature matrix M)."""
    A = torch.randn(d, d, generator=generator)
    return A @ A.T / d + 0.1 * torch.eye(d)
