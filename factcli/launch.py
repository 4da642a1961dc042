"""The only place Hydra meets Typer.

``launch`` runs one command of the registry (commands.py) through ``hydra.main``, with its family's
config folder and ``sys.argv`` replaced by the command's own overrides for that call only, so
everything Hydra offers keeps working (run directories with ``.hydra/``, ``-m`` sweeps, ``--cfg job``,
``-cd``, ``-h``) and the real argv is never read.

Errors reach the user as one line: config typos are caught by composing the config once before
Hydra starts (exit 2, nothing written); an unknown launcher, the SLURM launcher without SLURM and
``device=cuda`` without a GPU (launchers.py), bad values and unusable run directories
(``job.preflight``) are refused before Hydra writes anything (exit 1); a failure inside a job, whatever
its kind, is caught by the job wrapper (job.py), recorded in the job's directory as ``error.txt`` and
turned into exit status 1 after the run or sweep ends, so one failing job does not stop a sweep. Jobs
may run in other processes (``hydra/launcher=joblib``, ``submitit_*``), so a sweep's failures are read
back from its job directories (sweep.py), never from memory.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from unittest import mock

import typer

from . import job
from .commands import COMMANDS, CONF_DIR, Command
from .launchers import check_launcher_name, plan_sweep
from .rundir import write_sweep_table
from .sweep import failed_jobs, take_started_sweep

log = logging.getLogger("fact")

# Flags handed to Hydra untouched; any other leading "-" argument disables the pre-check.
_MULTIRUN_FLAGS = {"-m", "--multirun"}


def launch(command_path: str, command: Command, overrides: list[str]) -> None:
    """Run ``command`` (an entry of commands.COMMANDS) with ``overrides``."""
    import hydra

    register()
    flags = [arg for arg in overrides if arg.startswith("-")]
    pinned: list[str] = []
    plan = None
    if set(flags) <= _MULTIRUN_FLAGS:
        plain = [arg for arg in overrides if not arg.startswith("-")]
        check_launcher_name(command, plain)
        first_variant = _check_composes(command, plain)
        task = [arg for arg in plain if not arg.lstrip("+~").startswith(("hydra.", "hydra/"))]
        plan = plan_sweep(command, plain, multirun=bool(flags))  # launcher and device: nothing started yet
        first = compose(command, first_variant, with_hydra=True)
        pinned = job.preflight(command, first, task, multirun=bool(flags))

    # A module-level object, not a closure: the joblib and submitit launchers ship it to other processes.
    task_function = job.Job(command.name, command_path, default_threads=plan.threads if plan else None)
    argv = [command_path, *overrides, *pinned]
    main = hydra.main(
        version_base="1.3", config_path=str(command.config_dir), config_name=command.config_name
    )(task_function)
    take_started_sweep()
    try:  # HYDRA_FULL_ERROR: Hydra re-raises its own errors, so the CLI turns them into one line
        with mock.patch.object(sys, "argv", argv), mock.patch.dict(os.environ, {"HYDRA_FULL_ERROR": "1"}):
            main()
    except BaseException:
        sweep_dir = take_started_sweep()
        if sweep_dir is not None and sweep_dir.is_dir():  # interrupted: the table of what is done
            write_sweep_table(sweep_dir)
        raise
    finally:
        job.end()
    sweep_dir = take_started_sweep()
    failures = failed_jobs(sweep_dir) if sweep_dir is not None else task_function.failures
    if len(failures) == 1 and not flags:
        typer.echo(f"error: {failures[0]}", err=True)
        raise typer.Exit(1)
    if failures:
        typer.echo(f"error: {len(failures)} job(s) failed ({'; '.join(failures)})", err=True)
        raise typer.Exit(1)


def register() -> None:
    """Give Hydra every command's schema (``<config_name>_schema``) and the shared ``hydra/fact``
    settings (run directories, sweeps, logging), which each family's config folder finds here."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    for command in COMMANDS.values():
        store.store(name=f"{command.config_name}_schema", node=command.schema)
    store.store(group="hydra", name="fact", node=OmegaConf.load(CONF_DIR / "hydra" / "fact.yaml"))


def compose(command: Command, overrides: list[str] = (), with_hydra: bool = False):
    """The command's config with ``overrides``, composed as a run would compose it (no run made);
    ``with_hydra`` keeps the ``hydra`` node (sweeper parameters, callbacks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(command.config_dir), version_base="1.3"):
            return hydra_compose(
                config_name=command.config_name, overrides=list(overrides), return_hydra_config=with_hydra
            )
    finally:
        GlobalHydra.instance().clear()


def _check_composes(command: Command, overrides: list[str]) -> list[str]:
    """Compose the config once (every sweep value too) so a typo fails before any work, as one line;
    return the first variant's plain overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        _usage_error(str(error))
    # The first value of every sweep, then each other value of each sweep on its own.
    choices = [list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.input_line] for o in parsed]
    base = [values[0] for values in choices]
    variants = [base] + [
        base[:i] + [value] + base[i + 1 :] for i, values in enumerate(choices) for value in values[1:]
    ]
    for variant in variants:
        plain = [_as_assignment(parsed[i], value) for i, value in enumerate(variant)]
        try:
            compose(command, plain)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            _usage_error(_explain(error, command))
    return [_as_assignment(parsed[i], value) for i, value in enumerate(base)]  # the first variant


def _as_assignment(override, value: str) -> str:
    if not override.is_sweep_override():
        return value
    prefix = {"ADD": "+", "FORCE_ADD": "++", "DEL": "~"}.get(override.type.name, "")
    return f"{prefix}{override.get_key_element()}={value}"


def _explain(error: BaseException, command: Command) -> str:
    """One line from Hydra's multi-line message; for an unknown key, the closest real keys."""
    import re

    text = f"{error}\n{error.__cause__ or ''}"
    override = re.search(r"Could not (?:override|append to config\. An item is already at) '([^']+)'", text)
    if override:
        key = override.group(1)
        keys = _config_keys(command)
        if key not in keys:
            hint = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
            suggestion = f" (did you mean {', '.join(hint)}?)" if hint else ""
            return f"unknown config key '{key}'{suggestion}; --cfg job prints every key"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    skip = ("full_key:", "object_type", "reference_type", "To append to your config", "Set the environment")
    keep = list(dict.fromkeys(line for line in lines if not line.startswith(skip)))
    return " ".join(keep).split(" Config search path")[0] or type(error).__name__


def _config_keys(command: Command) -> list[str]:
    """Every dotted key of the composed default config (for suggestions)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(command), resolve=False)

    def walk(node, prefix=""):
        for key, value in node.items():
            yield f"{prefix}{key}"
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")

    return list(walk(cfg))


def _usage_error(message: str):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
