"""The only place Hydra meets Typer.

``launch`` runs one subcommand through ``hydra.main`` with ``sys.argv`` replaced by the command's own
overrides for that call only, so everything Hydra offers keeps working (run directories with
``.hydra/``, ``-m`` sweeps, ``--cfg job``, ``-cd``, ``-h``) and the real argv is never read.

Errors reach the user as one line: config typos are caught by composing the config once before
Hydra starts (exit 2, nothing written); bad values and unusable run directories are refused by
``job.preflight`` before Hydra writes anything (exit 1); a failure inside a job is caught by the job
wrapper (job.py), recorded in a sweep job's directory as ``error.txt`` and turned into exit status 1
after the run or sweep ends, so one failing job does not stop a sweep.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from pathlib import Path
from unittest import mock

import typer

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
log = logging.getLogger("fact")

# Flags handed to Hydra untouched; any other leading "-" argument disables the pre-check.
_MULTIRUN_FLAGS = {"-m", "--multirun"}


def launch(command_path: str, config_name: str, overrides: list[str]) -> None:
    """Run subcommand ``config_name`` (its experiment module has the same name) with ``overrides``."""
    import hydra

    from . import job, schema

    schema.register()  # every subcommand's dataclass schema, in Hydra's ConfigStore
    flags = [arg for arg in overrides if arg.startswith("-")]
    pinned: list[str] = []
    if set(flags) <= _MULTIRUN_FLAGS:
        plain = [arg for arg in overrides if not arg.startswith("-")]
        first_variant = _check_composes(config_name, plain)
        task = [arg for arg in plain if not arg.lstrip("+~").startswith("hydra.")]
        pinned = job.preflight(config_name, first_variant, task, multirun=bool(flags))

    failures: list[str] = []  # one line each: "job N: reason" in a sweep, the reason for a single run

    def task_function(cfg) -> dict | None:
        summary, failure = job.run_job(config_name, command_path, cfg)
        if failure is not None:
            failures.append(failure)
        return summary

    argv = [command_path, *overrides, *pinned]
    main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(task_function)
    try:  # HYDRA_FULL_ERROR: Hydra re-raises its own errors, so the CLI turns them into one line
        with mock.patch.object(sys, "argv", argv), mock.patch.dict(os.environ, {"HYDRA_FULL_ERROR": "1"}):
            main()
    finally:
        job.end()
    if len(failures) == 1 and not flags:
        typer.echo(f"error: {failures[0]}", err=True)
        raise typer.Exit(1)
    if failures:
        typer.echo(f"error: {len(failures)} job(s) failed ({'; '.join(failures)})", err=True)
        raise typer.Exit(1)


def _check_composes(config_name: str, overrides: list[str]) -> list[str]:
    """Compose the config once (every sweep value too) so a typo fails before any work, as one line."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
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
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                compose(config_name=config_name, overrides=plain)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            _usage_error(_explain(error, config_name))
        finally:
            GlobalHydra.instance().clear()
    return [_as_assignment(parsed[i], value) for i, value in enumerate(base)]


def _as_assignment(override, value: str) -> str:
    if not override.is_sweep_override():
        return value
    prefix = {"ADD": "+", "FORCE_ADD": "++", "DEL": "~"}.get(override.type.name, "")
    return f"{prefix}{override.get_key_element()}={value}"


def _explain(error: BaseException, config_name: str) -> str:
    """One line from Hydra's multi-line message; for an unknown key, the closest real keys."""
    import re

    text = f"{error}\n{error.__cause__ or ''}"
    override = re.search(r"Could not (?:override|append to config\. An item is already at) '([^']+)'", text)
    if override:
        key = override.group(1)
        keys = _config_keys(config_name)
        if key not in keys:
            hint = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
            suggestion = f" (did you mean {', '.join(hint)}?)" if hint else ""
            return f"unknown config key '{key}'{suggestion}; --cfg job prints every key"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    skip = ("full_key:", "object_type", "reference_type", "To append to your config", "Set the environment")
    keep = list(dict.fromkeys(line for line in lines if not line.startswith(skip)))
    return " ".join(keep).split(" Config search path")[0] or type(error).__name__


def _config_keys(config_name: str) -> list[str]:
    """Every dotted key of the composed default config (for suggestions)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = OmegaConf.to_container(compose(config_name=config_name), resolve=False)
    finally:
        GlobalHydra.instance().clear()

    def walk(node, prefix=""):
        for key, value in node.items():
            yield f"{prefix}{key}"
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")

    return list(walk(cfg))


def _usage_error(message: str):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
