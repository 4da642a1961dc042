"""The edge between the shell and a run directory, as a hostile user meets it: input that would be
silently ignored, files a sweep left damaged, user code that exits, a filesystem that refuses writes,
run-directory paths Hydra's grammar makes awkward, and random override sequences."""

import errno
import json
import pathlib
import re
import textwrap

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_run_records import QUICK, contents

from factcli.commands import COMMANDS


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.output, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error")]


def one_error(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    [line] = error_lines(result)
    return line


# --- input that would be silently ignored ----------------------------------------------------


@pytest.mark.parametrize("added", ["+foo=1", "++grid.nonsense=3", "+data.targte=y"])
def test_a_key_added_with_plus_that_the_schema_lacks_is_refused(fact_cli, tmp_path, added):
    out = tmp_path / "run"
    line = one_error(fact_cli("fit-rfm", *QUICK, added, f"hydra.run.dir={out}"), 2)
    key = added.lstrip("+").split("=")[0]
    assert line.startswith(f"error: unknown config key '{key}' (added with +"), line
    assert not out.exists()


def test_the_dataset_option_beside_a_dataset_override_is_refused(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("fit-rfm", "--dataset", "wine", *QUICK, f"hydra.run.dir={out}")  # QUICK: dataset=iris
    assert one_error(result, 2) == "error: --dataset wine and dataset=iris both give dataset; give it once"
    assert not out.exists()


def test_an_empty_dataset_option_is_not_replaced_by_the_default(fact_cli, tmp_path):
    out = tmp_path / "run"
    quick = [arg for arg in QUICK if not arg.startswith("dataset=")]
    line = one_error(fact_cli("fit-rfm", "--dataset", "", *quick, f"hydra.run.dir={out}"), 1)
    assert line == "error: dataset is empty; give a value (or leave the key out for its default)", line
    assert not out.exists()


def test_a_key_given_twice_says_which_value_runs(fact_cli, tmp_path):
    out = tmp_path / "run"
    result = fact_cli("fit-rfm", *QUICK, "seed=1", "seed=2", f"hydra.run.dir={out}")
    assert result.exit_code == 0, result.stderr
    assert "warning: seed is given twice (seed=1, then seed=2): the last, seed=2, is used" in result.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 2


def test_a_wrong_preset_lists_the_presets_as_they_are_typed(fact_cli, tmp_path):
    line = one_error(fact_cli("grokking", "experiment=mul", f"hydra.run.dir={tmp_path / 'run'}"), 2)
    assert line == (
        "error: unknown preset 'mul'; choose one of grokking/mul, grokking/net, grokking/quadratic "
        "(typed as experiment=grokking/mul)"
    )
    assert not (tmp_path / "run").exists()
    line = one_error(fact_cli("train-net", "experiment=nets/nfa_counterexample"), 2)  # verify-fact's
    assert line.startswith(
        "error: preset 'nets/nfa_counterexample' is not one of fact train-net's; choose one of"
    )
    assert "nets/mnist_cpu" in line and "nfa_counterexample, " not in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_lists_presets_and_keys_in_the_form_they_are_typed(fact_cli, name):
    from conftest import compose

    from factcli.schema import describe

    for flag in ("-h", "--help"):
        result = fact_cli(name, flag)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        presets = [line.strip() for line in lines if re.fullmatch(r"  experiment=\S+", line)]
        for preset in presets:  # every listed form composes as typed
            compose(name, [preset])
        keys = describe(COMMANDS[name].schema)
        for key in keys:  # every key of the schema, with its default as typed
            assert any(line.strip().startswith(f"{key.key}={key.default}") for line in lines), key
    assert fact_cli("-h").exit_code == 0 and "fit-rfm" in fact_cli("-h").stdout


def test_help_names_the_keys_newcomers_could_only_find_with_cfg_job(fact_cli):
    fit = fact_cli("fit-rfm", "--help").stdout
    assert "benchmark.datasets=[]" in fit and "empty: every dataset under the data root" in fit
    verify = fact_cli("verify-fact", "--help").stdout
    assert "inputs=null" in verify and '.pt ({"X", "y"} or (X, y)) or .npz' in verify


# --- damaged sweep files ---------------------------------------------------------------------


@pytest.fixture
def finished_sweep(fact_cli, tmp_path):
    sweep = tmp_path / "sweep"
    command = ["fit-rfm", "-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}"]
    assert fact_cli(*command).exit_code == 0
    return sweep, command


@pytest.mark.parametrize("damaged, text", [("1/summary.json", ""), ("1/summary.json", "[1, 2"),
                                           ("1/.hydra/overrides.yaml", "- seed=1\n  : ["),
                                           ("1/.hydra/overrides.yaml", "just a string\n")])  # fmt: skip
def test_a_damaged_job_file_is_named_in_one_line_and_the_job_counts_unfinished(
    fact_cli, finished_sweep, damaged, text
):
    sweep, command = finished_sweep
    (sweep / damaged).write_text(text)
    result = fact_cli("sweep-table", sweep)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith(f"warning: {sweep / damaged} ") and "counts as unfinished" in warning
    table = pd.read_csv(sweep / "sweep.csv")
    assert table.status.tolist() == ["finished", "unfinished"]
    if damaged.endswith("summary.json"):  # the rerun runs that job again and finishes
        result = fact_cli(*command)
        assert result.exit_code == 0, result.stderr
        assert error_lines(result) == []
        assert json.loads((sweep / "1" / "summary.json").read_text())["seed"] == 1
        assert pd.read_csv(sweep / "sweep.csv").status.tolist() == ["finished", "finished"]


# --- user code that exits, a filesystem that refuses -----------------------------------------

USER_CODE = textwrap.dedent("""
    import sys

    def interrupt():
        raise KeyboardInterrupt

    def leave():
        sys.exit(3)
""")
NETWORK = ["lam=1e-3", "plots=false", "threads=1"]


@pytest.fixture
def user_code(tmp_path):
    path = tmp_path / "user_net.py"
    path.write_text(USER_CODE)
    return path


def test_user_code_calling_sys_exit_is_a_failure_said_in_one_line(fact_cli, tmp_path, user_code):
    out = tmp_path / "run"
    result = fact_cli("verify-fact", f"network={user_code}:leave", *NETWORK, f"hydra.run.dir={out}")
    line = one_error(result, 1)
    assert line.startswith("error: the job's code called sys.exit(3)"), line
    assert not out.exists()  # refused before producing anything: nothing left behind
    sweep = tmp_path / "sweep"
    result = fact_cli("verify-fact", "-m", f"network={user_code}:leave", *NETWORK, "seed=0,1",
                      f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert one_error(result, 1).startswith("error: 2 job(s) failed (job 0: the job's code called sys.exit(3)")
    assert (sweep / "1" / "error.txt").read_text().startswith("the job's code called sys.exit(3)")
    assert pd.read_csv(sweep / "sweep.csv").status.tolist() == ["failed", "failed"]


def test_user_code_raising_keyboard_interrupt_stops_with_one_line(fact_cli, tmp_path, user_code):
    out = tmp_path / "run"
    result = fact_cli("verify-fact", f"network={user_code}:interrupt", *NETWORK, f"hydra.run.dir={out}")
    assert one_error(result, 130).startswith("error: interrupted")
    assert not out.exists()


def test_a_run_that_produced_results_and_is_interrupted_keeps_them_with_error_txt(
    fact_cli, tmp_path, monkeypatch
):
    import factcli.experiments.rfm.fit as fit_rfm

    def run(cfg, run_dir):
        run_dir.log(step=0)  # metrics.csv written: a result
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_rfm, "run", run)
    out = tmp_path / "run"
    assert one_error(fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}"), 130).startswith(
        "error: interrupted"
    )
    assert (out / "metrics.csv").is_file() and (out / "error.txt").read_text().startswith("interrupted")


def refuse_writes_under(monkeypatch, root: pathlib.Path, code=errno.EACCES):
    """What a read-only (or full) directory does to fact: every file or directory made under
    ``root`` fails as the OS would fail it (tests run as root, whom chmod does not stop)."""
    import tempfile

    from factcli import rundir

    real_mkdir, real_mkstemp = pathlib.Path.mkdir, tempfile.mkstemp

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(root)) and not self.exists():
            raise OSError(code, "refused", str(self))
        return real_mkdir(self, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(root)):
            raise OSError(code, "refused", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    monkeypatch.setattr(rundir.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize(
    "code, said",
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "the filesystem is read-only"),
        (errno.ENOSPC, "no space"),
    ],
)
def test_a_directory_that_cannot_be_written_is_the_machine_not_a_bug(
    fact_cli, tmp_path, monkeypatch, code, said
):
    readonly = tmp_path / "readonly"
    refuse_writes_under(monkeypatch, readonly, code)
    line = one_error(fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={readonly / 'run'}"), 1)
    assert line.startswith(f"error: cannot write {readonly / 'run'}: {said}") and "not fact" in line, line
    assert "bug" not in line


def test_a_run_directory_whose_files_cannot_be_written_is_the_machine_not_a_bug(
    fact_cli, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    out.mkdir()  # exists, but nothing can be written into it
    refuse_writes_under(monkeypatch, out)
    line = one_error(fact_cli("fit-rfm", *QUICK, f"hydra.run.dir={out}"), 1)
    assert line.startswith(f"error: cannot write {out}") and "permission denied" in line, line
    assert "bug" not in line


# --- run-directory paths ---------------------------------------------------------------------


def test_a_refused_run_in_a_timestamped_path_with_quotes_leaves_nothing(fact_cli, tmp_path):
    missing = tmp_path / "missing.csv"
    parent = tmp_path / "runs"
    run_dir = f'"{parent}/it\'s_${{now:%H-%M-%S-%f}}"'
    line = one_error(fact_cli("fit-rfm", f"dataset={missing}", "threads=1", f"hydra.run.dir={run_dir}"), 1)
    assert "file not found" in line
    assert not parent.exists() or list(parent.iterdir()) == []  # no stray directory holding .fact.lock


@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_every_path_is_pinned_exactly(text):
    """A run directory is pinned for Hydra as a quoted override value that reads back as the path."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from factcli.job import quoted

    [override] = OverridesParser.create().parse_overrides([f"hydra.run.dir={quoted(text)}"])
    assert OmegaConf.create({"dir": override.value()}).dir == text


# --- random override sequences ---------------------------------------------------------------

KEYS = ["seed", "dataset", "method", "grid.ridges", "rfm.iters", "data.task", "nonexistent", "grid"]
VALUES = ["1", "-1", "", "iris", "nan", "[1.0]", "[", "a,b", "null", "${oops}", "'q", "1e999", "fact"]


@given(
    st.lists(
        st.tuples(st.sampled_from(["", "+", "++", "~"]), st.sampled_from(KEYS), st.sampled_from(VALUES)),
        min_size=1,
        max_size=4,
    )
)
@example([("+", "nonexistent", "1")])  # the classes random sequences found: a key stored, never read
@example([("", "dataset", "")])  # an empty dataset
@example([("++", "grid", "1")])
@pytest.mark.slow  # ~1 s an example
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_override_sequences_give_a_run_or_one_line_and_no_stray_directory(
    fact_cli, tmp_path_factory, overrides
):
    """Only the pre-flight is exercised: an experiment that would start is replaced by a stub."""
    import factcli.experiments.rfm.fit as fit_rfm

    out = tmp_path_factory.mktemp("random") / "run"
    arguments = [f"{prefix}{key}={value}" for prefix, key, value in overrides]
    real, fit_rfm.run = fit_rfm.run, lambda cfg, run: {"stub": True}
    try:
        result = fact_cli("fit-rfm", *arguments, "threads=1", f"hydra.run.dir={out}")
    finally:
        fit_rfm.run = real
    assert "Traceback" not in result.output and "bug in fact" not in result.output, (arguments, result.output)
    if result.exit_code == 0:  # what config.yaml records is what ran: no key the schema lacks
        from omegaconf import OmegaConf

        from factcli.schema import describe

        assert (out / "summary.json").is_file()
        known = {key.key for key in describe(COMMANDS["fit-rfm"].schema, leaves_only=False)}
        recorded = OmegaConf.load(out / "config.yaml")
        assert {key for key, _ in _leaves(OmegaConf.to_container(recorded))} <= known, arguments
    else:
        assert len(error_lines(result)) == 1, (arguments, result.stderr)
        assert not out.exists() or contents(out) == {}, (arguments, contents(out))


def _leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_log_lines_read_as_sentences_not_python_values(fact_cli, tmp_path):
    """A parity run that never reaches 95%: its closing line says so, never "at None" or "True"."""
    out = tmp_path / "run"
    result = fact_cli("parity", "d=10", "k=3", "n=20", "rfm.iters=1", "threads=1", "plots=false",
                      f"hydra.run.dir={out}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["first_95_at"] is None  # the case that printed "95% at iteration None"
    assert "95% never reached, 99% never reached" in result.stderr
    assert not re.search(r"\b(None|True|False)\b", result.stderr), result.stderr
