"""`fact`: one thin Typer command per entry of the registry (commands.py); Hydra does the
configuration (see launch.py).

Every experiment command takes Hydra overrides (key=value), `-m` sweeps, `hydra.run.dir=...`,
`--cfg job` (print the config) and `--hydra-help` (Hydra's own help); `-h` / `--help` is this CLI's
help, which lists the command's presets and keys (read from its schema, ``schema.describe``).
Imports of torch, pandas and Hydra happen inside commands so `fact --help` answers instantly.
"""

from __future__ import annotations

from typing import Annotated

import typer
import typer.core

from .choices import METHODS
from .commands import COMMANDS, Command
from .errors import FactError

app = typer.Typer(
    name="fact",
    help="Experiments on the Features At Convergence Theorem (FACT): networks trained with weight decay, "
    "FACT-RFM on tabular data, grokking and sparse parity. Results go to `runs/SUBCOMMAND/TIME/`.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

HYDRA = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}
Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides (key=value), -m for sweeps.")]
COMMON = (
    "\n\nOverrides: `key=value` (every key and its default below), `-m` to sweep comma-separated values, "
    "`hydra.run.dir=DIR` to choose the run directory, `--cfg job` to print the composed config, "
    "`--hydra-help` for Hydra's own help."
)


class ExperimentCommand(typer.core.TyperCommand):
    """An experiment's help ends with what it can be given: its presets and config groups as typed
    (``experiment=grokking/mul``), then every key of its schema with its default and the schema's
    comment, each a ``key=value`` that can be typed as it stands."""

    def format_help(self, ctx, formatter) -> None:
        super().format_help(ctx, formatter)
        typer.echo(keys_help(COMMANDS[self.name]))


def keys_help(command: Command) -> str:
    from .launch import group_options
    from .schema import describe

    lines = []
    for group in ("experiment", "model", "optim", "benchmark"):
        options = group_options(command, group)
        if options:
            title = "Presets" if group == "experiment" else f"Config group {group}"
            lines += [f"{title} (type one as it stands):", *(f"  {group}={option}" for option in options), ""]
    keys = describe(command.schema)
    width = min(34, max(len(f"{k.key}={k.default}") for k in keys))
    lines.append(f"Keys (key=default; e.g. `fact {command.name} {keys[0].key}={keys[0].default}`):")
    for key in keys:
        typed = f"{key.key}={key.default}"
        lines.append(f"  {typed:<{width}}  {key.comment}".rstrip())
    return "\n".join(lines)


def _run(ctx: typer.Context, command: Command, overrides: list[str] | None, extra: list[str] = ()) -> None:
    from .launch import launch

    try:
        launch(ctx.command_path, command, [*extra, *(overrides or [])])
    except FactError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    except typer.Exit:
        raise
    except KeyboardInterrupt:  # Ctrl-C (or user code raising it): the job recorded it; what finished stays
        typer.echo("error: interrupted; what finished is kept, rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader went away (`fact ... | head`): nothing to report
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's documented recipe
        raise typer.Exit(1) from None
    except Exception as error:  # the last resort: one line, the traceback in a file
        from .crash import report

        typer.echo(f"error: {report(error, command)}", err=True)
        raise typer.Exit(1) from None


@app.command("fit-rfm", cls=ExperimentCommand, context_settings=HYDRA, help=COMMANDS["fit-rfm"].help + COMMON)
def fit_rfm(
    ctx: typer.Context,
    overrides: Overrides = None,
    dataset: Annotated[str | None, typer.Option(help="Built-in name, CSV/Parquet path or UCI name.")] = None,
    method: Annotated[str | None, typer.Option(help=" | ".join(METHODS) + ".")] = None,
) -> None:
    # Written out for its two shortcut options; the other experiment commands come from the registry.
    # `--dataset ''` is passed on (and refused there), never dropped for the default.
    extra = []
    for key, value in (("dataset", dataset), ("method", method)):
        if value is None:
            continue
        twice = [arg for arg in overrides or [] if arg.lstrip("+~").split("=", 1)[0] == key]
        if twice:
            typer.echo(f"error: --{key} {value} and {twice[0]} both give {key}; give it once", err=True)
            raise typer.Exit(2)
        extra.append(f"{key}={value}")
    _run(ctx, COMMANDS["fit-rfm"], overrides, extra)


def _add(command: Command) -> None:
    def experiment(ctx: typer.Context, overrides: Overrides = None) -> None:
        _run(ctx, command, _user_network_alias(command, overrides))

    app.command(command.name, cls=ExperimentCommand, context_settings=HYDRA, help=command.help + COMMON)(
        experiment
    )


def _user_network_alias(command: Command, overrides: list[str] | None) -> list[str] | None:
    """verify-fact: ``model=FILE.py:FUNCTION`` (a constructor: a colon, or a .py file) is
    ``network=…``; ``model=mlp`` / ``model=conv`` stay the choice of the project's architectures."""
    if command.name != "verify-fact" or not overrides:
        return overrides

    def constructor(arg: str) -> bool:
        value = arg.removeprefix("model=")
        return arg.startswith("model=") and (":" in value or value.endswith(".py"))

    return [f"network={arg.removeprefix('model=')}" if constructor(arg) else arg for arg in overrides]


for _name in ("train-net", "verify-fact", "grokking", "parity"):
    _add(COMMANDS[_name])


@app.command("datasets", help="List the datasets `fact fit-rfm` finds by name.\n\nExample: `fact datasets`")
def datasets(
    root: Annotated[str | None, typer.Option(help="Data root holding uci/ (default: $FACT_DATA).")] = None,
) -> None:
    from .data import known_datasets

    for name in known_datasets(root):
        typer.echo(name)


@app.command(
    "sweep-table",
    help=(
        "Rebuild a sweep's sweep.csv (one row per job: overrides, status, summary or error) from its job "
        "directories, e.g. after the sweep was interrupted; the sweep's other end-of-sweep outputs too.\n\n"
        "Example: `fact sweep-table runs/parity/multirun_2026-01-01_12-00-00-000000`"
    ),
)
def sweep_table(directory: Annotated[str, typer.Argument(help="The sweep directory.")]) -> None:
    from .sweep import rebuild

    try:
        path, problems = rebuild(directory)
    except FactError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)
    typer.echo(str(path))


@app.command(
    "fetch",
    help="Download a standard image dataset and verify its checksums (needs network access).\n\n"
    "Example: `fact fetch mnist data/mnist`",
)
def fetch(
    name: Annotated[str, typer.Argument(help="mnist | cifar10")],
    directory: Annotated[str, typer.Argument(help="Where to put the files.")],
) -> None:
    from .data import fetch_cifar10, fetch_mnist

    fetchers = {"mnist": fetch_mnist, "cifar10": fetch_cifar10}
    try:
        if name not in fetchers:
            raise FactError(f"unknown image dataset {name!r}; choose one of {', '.join(fetchers)}")
        typer.echo(str(fetchers[name](directory)))
    except FactError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
