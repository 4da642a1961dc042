"""Each subcommand's quick run writes exactly the files README.md's run-directory tables list."""

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import TEACHER_NET

README = Path(__file__).resolve().parent.parent / "README.md"
LOGS = {"fit-rfm": "fit_rfm.log", "train-net": "train_net.log", "verify-fact": "verify_fact.log"}


def readme_tables() -> tuple[set[str], dict[str, set[str]]]:
    """(the files every run writes, {run as the README names it: its own files})."""
    section = README.read_text().split("## What a run leaves behind", 1)[1].split("\n## ", 1)[0]
    common, own = set(), {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("file", "run") or set(cells[0]) <= {"-", " "}:
            continue
        if len(cells) == 2:  # the table of every run: | `file` | what |
            common.add(cells[0].strip("`"))
        else:  # | `run` | `file`, `file` | what |
            own[cells[0].strip("`")] = set(re.findall(r"`([^`]+)`", cells[1]))
    return common, own


def written(path: Path) -> set[str]:
    return {p.name + ("/" if p.is_dir() else "") for p in path.iterdir() if not p.name.startswith(".")}


def expected(common: set[str], own: set[str], log: str) -> set[str]:
    """A finished quick run (plots=false): the common files but the figures and the failure record."""
    files = (common - {"plots/", "error.txt"}) | own
    return {log if name == "<subcommand>.log" else name for name in files}


def write_table(path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    rows = [f"{a:.6f},{b:.6f},{int(a + b > 0)}" for a, b in X]
    path.write_text("x0,x1,label\n" + "\n".join(rows) + "\n")
    return path


def quick_run(name: str, tmp_path: Path, fact_cli, shared_data) -> tuple[str, list[str]]:
    """(the subcommand, its arguments) of the README row ``name``."""
    if name == "fit-rfm":
        table = write_table(tmp_path / "table.csv")
        return "fit-rfm", [f"dataset={table}", "data.target=label", "rfm.iters=1", "grid.ridges=[0.1]"]
    if name == "fit-rfm benchmark=uci":
        one = [
            "benchmark.datasets=[acute-inflammation]",
            "benchmark.methods=[laplace]",
            "benchmark.baselines=[]",
        ]
        return "fit-rfm", ["benchmark=uci", f"data.root={shared_data}", *one, "rfm.iters=1"]
    if name == "train-net":
        return "train-net", TEACHER_NET
    if name == "verify-fact source=DIR":
        trained = tmp_path / "trained"
        result = fact_cli("train-net", *TEACHER_NET, "plots=false", "threads=1", f"hydra.run.dir={trained}")
        assert result.exit_code == 0, result.stderr
        return "verify-fact", [f"source={trained}"]
    if name == "verify-fact":
        return "verify-fact", TEACHER_NET
    if name == "grokking":
        return "grokking", ["p=7", "rfm.iters=2"]
    if name == "parity":
        return "parity", ["d=12", "k=3", "n=200", "test_size=100", "rfm.iters=2"]
    raise AssertionError(f"README.md lists a run this test does not know: {name}")


RUNS = sorted(readme_tables()[1])


def test_the_readme_lists_every_subcommand():
    from factcli.commands import COMMANDS

    listed = {name.split()[0] for name in RUNS}
    assert listed == set(COMMANDS), (listed, set(COMMANDS))


@pytest.mark.parametrize("name", RUNS)
def test_a_quick_run_writes_exactly_the_files_the_readme_lists(name, fact_cli, tmp_path, shared_data):
    common, own = readme_tables()
    command, args = quick_run(name, tmp_path, fact_cli, shared_data)
    out = tmp_path / "run"
    result = fact_cli(command, *args, "plots=false", "threads=1", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    log = LOGS.get(command, f"{command}.log")
    assert written(out) == expected(common, own[name], log)
