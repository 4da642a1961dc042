"""Shared fixtures."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
