"""The only place Hydra meets Typer: one command of the registry (commands.py), run through ``hydra.main``.

A command's way from its arguments to its jobs:

1. ``prepare`` parses the overrides once (Hydra's public override parser) and composes the config once
   (with its ``hydra`` node), in one ``initialize_config_dir``: an unknown key, a preset or launcher
   that does not exist, or a ``+key`` the schema lacks is refused there as one line (exit 2, nothing
   written); a key given twice is said (Hydra would take the last without a word). Each other
   value of a ``-m`` sweep is composed once more, so a typo in the last value stops the sweep before
   its first job. The launcher, the device and the run (or sweep) directory are read from that one
   composition (launchers.plan_sweep, job.preflight): refused in one line before Hydra starts (exit 1).
   ``hydra.main`` then composes again itself (twice: once for the run mode, once for the run), which
   no public Hydra API avoids.
2. ``job.preflight`` validates a single run's values, locks the run (or sweep) directory and pins its
   path, so the directory Hydra uses is the one checked and held.
3. ``hydra.main`` runs the job(s), with ``sys.argv`` replaced by the command's overrides for that call
   only (``_run_hydra``, the one place: Hydra has no public way to hand overrides to ``hydra.main``).
   Everything Hydra offers keeps working (``-m``, launchers, ``--cfg job``, ``-cd``, ``--hydra-help``).
4. The job wrapper (job.py) records a failure in the job's directory as ``error.txt``; after the run
   or sweep the exit status is read back from the directories (sweep.py), since jobs may have run in
   other processes (``hydra/launcher=joblib``, ``submitit_*``); with Hydra's own flags (no composition
   here, so no known sweep directory) from a file every job appends its failure to.

Nothing is kept between calls in this module: what one step hands the next is passed (``Prepared``,
``job.Preflight``, the ``job.Job`` object Hydra calls).
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import typer

from . import job
from .commands import CONF_DIR, Command
from .errors import FactError
from .launchers import SweepPlan, job_choices, plan_sweep
from .rundir import write_sweep_table
from .sweep import failed_jobs

log = logging.getLogger("fact")

# Flags handed to Hydra untouched; any other leading "-" argument (--cfg, -cd, --info, --hydra-help)
# leaves the run to Hydra without the pre-check.
_MULTIRUN_FLAGS = {"-m", "--multirun"}
HYDRA_KEYS = ("hydra.", "hydra/")


@dataclass(frozen=True)
class Prepared:
    """One invocation parsed and composed: what the pre-flight and the launch read."""

    cfg: Any  # the first job's config, with its hydra node
    task_overrides: list[str]  # the user's own non-Hydra overrides as typed (they identify a sweep)
    multirun: bool
    plan: SweepPlan
    said: list[str]  # warnings, printed once the pre-flight passed (a refusal stays one line)


def launch(command_path: str, command: Command, arguments: list[str]) -> None:
    """Run ``command`` (an entry of commands.COMMANDS) with ``arguments`` (overrides and Hydra flags)."""
    register(command)
    flags = [arg for arg in arguments if arg.startswith("-")]
    if not set(flags) <= _MULTIRUN_FLAGS:  # Hydra's own flags: no pre-check, Hydra reports
        # No composition here, so no sweep directory to read failures back from: jobs append them to
        # a file instead (joblib's and submitit's local workers share this machine's disk).
        with tempfile.TemporaryDirectory(prefix="fact-") as scratch:
            failure_log = os.path.join(scratch, "failures")
            task_function = job.Job(command.name, command_path, failure_log=failure_log)
            _run_hydra(command_path, command, task_function, arguments)
            failures = job.read_failures(failure_log)
        _exit_on_failures(failures, multirun=bool(set(flags) & _MULTIRUN_FLAGS))
        return

    prepared = prepare(command, [arg for arg in arguments if not arg.startswith("-")], bool(flags))
    with ExitStack() as cleanup:
        checked = job.preflight(command, prepared.cfg, prepared.task_overrides, prepared.multirun)
        cleanup.callback(checked.release)
        for line in prepared.said:
            typer.echo(line, err=True)
        # A module-level class, not a closure: the joblib and submitit launchers ship it to other processes.
        task_function = job.Job(
            command.name,
            command_path,
            default_threads=prepared.plan.threads,
            held_dir=None if prepared.multirun else str(checked.path),
            fresh_dir=str(checked.path) if checked.fresh and not prepared.multirun else None,
        )
        try:
            _run_hydra(command_path, command, task_function, [*arguments, *checked.pin])
        except BaseException:
            if prepared.multirun and checked.path.is_dir():  # interrupted: the table of what is done
                write_sweep_table(checked.path)
            raise
    failures = failed_jobs(checked.path) if prepared.multirun else task_function.failures
    _exit_on_failures(failures, multirun=prepared.multirun)


def _run_hydra(command_path: str, command: Command, task_function: job.Job, arguments: list[str]) -> None:
    """``hydra.main`` over ``task_function``, with ``sys.argv`` replaced for this call only."""
    import hydra

    main = hydra.main(
        version_base="1.3", config_path=str(command.config_dir), config_name=command.config_name
    )(task_function)
    argv = [command_path, *arguments]
    # HYDRA_FULL_ERROR: Hydra re-raises its own errors, so the CLI turns them into one line
    with mock.patch.object(sys, "argv", argv), mock.patch.dict(os.environ, {"HYDRA_FULL_ERROR": "1"}):
        main()


def _exit_on_failures(failures: list[str], multirun: bool) -> None:
    if len(failures) == 1 and not multirun:
        typer.echo(f"error: {failures[0]}", err=True)
        raise typer.Exit(1)
    if failures:
        typer.echo(f"error: {len(failures)} job(s) failed ({'; '.join(failures)})", err=True)
        raise typer.Exit(1)


def register(command: Command) -> None:
    """Give Hydra ``command``'s schema (``<config_name>_schema``) and the shared ``hydra/fact``
    settings (run directories, sweeps, logging), which each family's config folder finds here.

    Stored once per process: building a structured config from a dataclass costs a tenth of a
    second, and Hydra's ConfigStore keeps what it was given (the store is Hydra's, not ours).
    """
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    name = f"{command.config_name}_schema"
    if f"{name}.yaml" not in store.repo:
        store.store(name=name, node=command.schema)
    if "fact.yaml" not in store.repo.get("hydra", {}):
        store.store(group="hydra", name="fact", node=OmegaConf.load(CONF_DIR / "hydra" / "fact.yaml"))


def compose(command: Command, overrides: list[str] = (), with_hydra: bool = False):
    """The command's config with ``overrides``, composed as a run would compose it (no run made);
    ``with_hydra`` keeps the ``hydra`` node (sweeper parameters, callbacks)."""
    with _hydra_context(command):
        return _compose(command, list(overrides), with_hydra)


# --- parse once, compose once ----------------------------------------------------------------


def prepare(command: Command, overrides: list[str], multirun: bool) -> Prepared:
    """Parse ``overrides`` (no flags) once, compose the first job once; refuse what cannot run."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    parsed = _parse(overrides)
    try:
        choices = job_choices(parsed)
    except FactError as error:
        _usage_error(str(error))
    first = [values[0] for values in choices]
    with _hydra_context(command) as loader:
        try:
            cfg = _compose(command, first, with_hydra=True)
            for i, values in enumerate(choices):  # each other sweep value, the rest at their first
                for value in values[1:]:
                    _compose(command, [*first[:i], value, *first[i + 1 :]], with_hydra=False)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            _check_group_choices(loader, command, parsed)  # listing options is slow: only on failure
            _usage_error(explain(error, command))
    _refuse_unknown_added_keys(command, parsed, cfg)
    multirun = multirun or str(cfg.hydra.mode).endswith("MULTIRUN")
    from_config = _parse([f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()])
    plan = plan_sweep(cfg, [*from_config, *parsed], multirun)
    task = [arg for arg in overrides if not arg.lstrip("+~").startswith(HYDRA_KEYS)]
    return Prepared(cfg=cfg, task_overrides=task, multirun=multirun, plan=plan, said=_repeated_keys(parsed))


def _parse(overrides: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        _usage_error(explain(error, None))


def _repeated_keys(parsed) -> list[str]:
    """``seed=1 seed=2``: Hydra takes the last without a word; one line saying which one runs
    (appending an override to a command is common, so this is said, not refused)."""
    seen: dict[str, str] = {}
    said = []
    for override in parsed:
        key = override.key_or_group
        if key in seen and seen[key] != override.input_line:
            said.append(
                f"warning: {key} is given twice ({seen[key]}, then {override.input_line}): "
                f"the last, {override.input_line}, is used"
            )
        seen[key] = override.input_line
    return said


def _check_group_choices(loader, command: Command, parsed) -> None:
    """``group=option`` for a group of the config (a preset, a launcher): an option that exists."""
    groups = set(_groups(loader, ""))
    for override in parsed:
        group = override.key_or_group
        if group not in groups or override.is_delete():
            continue
        known = _usable_options(loader, command, group)
        values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
        for value in values:
            if value is not None and str(value) not in known:
                hint = "; hydra/launcher=joblib runs the jobs in parallel on this machine"
                other = str(value) in _options(loader, group)  # another command's preset
                what = f"{_group_name(group)} {str(value)!r}"
                _usage_error(
                    (f"{what} is not one of fact {command.name}'s" if other else f"unknown {what}")
                    + f"; choose one of {', '.join(known)} (typed as {group}={known[0]})"
                    + (hint if group == "hydra/launcher" else "")
                )


def _group_name(group: str) -> str:
    return {"hydra/launcher": "launcher", "experiment": "preset"}.get(group, group)


def _groups(loader, parent: str):
    for name in loader.list_groups(parent):
        group = f"{parent}/{name}" if parent else name
        yield group
        yield from _groups(loader, group)


def _options(loader, group: str) -> list[str]:
    """A group's options as typed: ``experiment`` → ``grokking/mul``, … (subfolders included)."""
    options = list(loader.get_group_options(group))
    for sub in loader.list_groups(group):
        options += [f"{sub}/{option}" for option in _options(loader, f"{group}/{sub}")]
    return options


def group_options(command: Command, group: str) -> list[str]:
    """The options of one config group of ``command`` as typed (``experiment=<option>``)."""
    with _hydra_context(command) as loader:
        return _usable_options(loader, command, group) if group in set(_groups(loader, "")) else []


def _usable_options(loader, command: Command, group: str) -> list[str]:
    """A group's options that compose with ``command`` (train-net and verify-fact share a folder of
    presets, some of which set verify-fact's own keys)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if group != "experiment":
        return _options(loader, group)
    usable = []
    for option in _options(loader, group):
        try:
            _compose(command, [f"{group}={option}"], with_hydra=False)
        except (HydraException, OmegaConfBaseException, ValueError):
            continue
        usable.append(option)
    return usable


def _refuse_unknown_added_keys(command: Command, parsed, cfg) -> None:
    """``+key=value`` (or ``++``) on a key the schema lacks would be stored and never read."""
    from omegaconf import OmegaConf

    groups = set(cfg.hydra.runtime.choices)
    schema = None
    for override in parsed:
        key = override.key_or_group
        if not (override.is_add() or override.is_force_add()) or key.startswith(HYDRA_KEYS) or key in groups:
            continue
        schema = OmegaConf.structured(command.schema) if schema is None else schema
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(schema, parent) if parent else schema
        if OmegaConf.is_dict(node) and OmegaConf.get_type(node) is not dict and leaf not in node:
            _usage_error(_unknown_key(key, command, added=True))


@contextmanager
def _hydra_context(command: Command):
    """``initialize_config_dir`` for one command, yielding its config loader; Hydra's global state is
    cleared before and after, so nothing of this composition outlives it."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register(command)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(command.config_dir), version_base="1.3"):
            yield GlobalHydra.instance().config_loader()
    finally:
        GlobalHydra.instance().clear()


def _compose(command: Command, overrides: list[str], with_hydra: bool):
    from hydra import compose as hydra_compose

    return hydra_compose(config_name=command.config_name, overrides=overrides, return_hydra_config=with_hydra)


# --- one line from Hydra's errors ------------------------------------------------------------


def explain(error: BaseException, command: Command | None) -> str:
    """One line from Hydra's multi-line message; for an unknown key, the closest real keys."""
    import re

    text = f"{error}\n{error.__cause__ or ''}"
    override = re.search(r"Could not (?:override|append to config\. An item is already at) '([^']+)'", text)
    if override and command is not None and override.group(1) not in schema_keys(command):
        return _unknown_key(override.group(1), command)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    skip = ("full_key:", "object_type", "reference_type", "To append to your config", "Set the environment")
    keep = list(dict.fromkeys(line for line in lines if not line.startswith(skip)))
    return " ".join(keep).split(" Config search path")[0] or type(error).__name__


def _unknown_key(key: str, command: Command, added: bool = False) -> str:
    hint = difflib.get_close_matches(key, schema_keys(command), n=3, cutoff=0.6)
    suggestion = f" (did you mean {', '.join(hint)}?)" if hint else ""
    how = " (added with +, it would be stored and never read)" if added else ""
    return f"unknown config key '{key}'{how}{suggestion}; `fact {command.name} --help` lists the keys"


def schema_keys(command: Command) -> list[str]:
    """Every dotted key of the command's schema (for suggestions)."""
    from .schema import describe

    return [entry.key for entry in describe(command.schema, leaves_only=False)]


def _usage_error(message: str):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
