"""`fact`: one thin Typer command per subcommand; Hydra does the configuration (see launch.py).

Every subcommand takes Hydra overrides (key=value), `-m` sweeps, `hydra.run.dir=...`, `--cfg job`
(print the config) and `-h` (Hydra's help). Imports of torch and pandas happen inside commands so
`fact --help` answers instantly.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="fact",
    help="Experiments on the Features At Convergence Theorem (FACT): networks trained with weight decay, "
    "FACT-RFM on tabular data, grokking and sparse parity. Results go to `runs/SUBCOMMAND/TIME/`.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)

HYDRA = {"ignore_unknown_options": True, "allow_extra_args": True}
Overrides = Annotated[list[str] | None, typer.Argument(help="Hydra overrides (key=value), -m for sweeps.")]
COMMON = (
    "\n\nOverrides: `key=value` (see `--cfg job`), `-m` to sweep comma-separated values, "
    "`hydra.run.dir=DIR` to choose the run directory, `-h` for Hydra's help."
)


def _run(ctx: typer.Context, config_name: str, overrides: list[str] | None, extra: list[str] = ()) -> None:
    from .errors import FactError
    from .launch import launch

    try:
        launch(ctx.command_path, config_name, [*extra, *(overrides or [])])
    except FactError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command(
    "fit-rfm",
    context_settings=HYDRA,
    help=(
        "Fit FACT-RFM (or nfa, fact-geo, the laplace baseline) on a tabular dataset; hyperparameters and the "
        "iteration are chosen on a validation split, the model refit on all training data and scored on test."
        "\n\nExamples: `fact fit-rfm --dataset wine method=nfa` · "
        "`fact fit-rfm dataset=data.csv data.target=y` · "
        "`fact fit-rfm benchmark=uci` (all UCI datasets, 4 methods, 2 protocols; $FACT_DATA)" + COMMON
    ),
)
def fit_rfm(
    ctx: typer.Context,
    overrides: Overrides = None,
    dataset: Annotated[str | None, typer.Option(help="Built-in name, CSV/Parquet path or UCI name.")] = None,
    method: Annotated[str | None, typer.Option(help="laplace | nfa | fact | fact-geo.")] = None,
) -> None:
    extra = [f"dataset={dataset}"] if dataset else []
    extra += [f"method={method}"] if method else []
    _run(ctx, "fit_rfm", overrides, extra)


@app.command(
    "train-net",
    context_settings=HYDRA,
    help=(
        "Train a network with weight decay until every layer is stationary, logging per layer how well "
        "WᵀW agrees with FACT, NFA and eNFA along training.\n\nExample: `fact train-net dataset=digits "
        "optim.weight_decay=1e-3` · `fact train-net experiment=train_net_mnist_cpu`" + COMMON
    ),
)
def train_net(ctx: typer.Context, overrides: Overrides = None) -> None:
    _run(ctx, "train_net", overrides)


@app.command(
    "verify-fact",
    context_settings=HYDRA,
    help=(
        "Check FACT layer by layer on a trained network: correlations of WᵀW with F, (FFᵀ)^½, NFA and eNFA, "
        "errors, residuals, plots. It says first whether the network is at a critical point of L_λ."
        "\n\nExample: `fact verify-fact source=runs/train_net/RUN` · "
        "`fact verify-fact experiment=nfa_counterexample` · your own network: "
        "`fact verify-fact model=my_net.py:build weights=w.pt inputs=xy.pt lam=1e-4`" + COMMON
    ),
)
def verify_fact(ctx: typer.Context, overrides: Overrides = None) -> None:
    # model=FILE.py:FUNCTION names the user's constructor (config key network=); model=mlp|conv
    # stays the choice of our own architecture.
    overrides = [
        f"network={arg.partition('=')[2]}" if arg.startswith("model=") and ":" in arg else arg
        for arg in overrides or []
    ]
    _run(ctx, "verify_fact", overrides)


@app.command(
    "grokking",
    context_settings=HYDRA,
    help=(
        "Modular arithmetic (a ∘ b mod p) with FACT-RFM, NFA-RFM and a network: the delayed jump of test "
        "accuracy, circulant structure of M.\n\nExample: `fact grokking p=61 learner=fact` · "
        "`fact grokking -m learner=fact,fact-geo,nfa seed=0,1,2`" + COMMON
    ),
)
def grokking(ctx: typer.Context, overrides: Overrides = None) -> None:
    _run(ctx, "grokking", overrides)


@app.command(
    "parity",
    context_settings=HYDRA,
    help=(
        "Sparse parity (XOR of k of d bits) with FACT-RFM, NFA-RFM, the Laplace baseline and a network: "
        "phase transitions in iterations and in sample size.\n\nExample: `fact parity d=50 k=4 n=4000` · "
        "`fact parity -m n=500,1000,2000,4000,8000 learner=fact`" + COMMON
    ),
)
def parity(ctx: typer.Context, overrides: Overrides = None) -> None:
    _run(ctx, "parity", overrides)


@app.command("datasets", help="List the datasets `fact fit-rfm` finds by name.\n\nExample: `fact datasets`")
def datasets(
    root: Annotated[str | None, typer.Option(help="Data root holding uci/ (default: $FACT_DATA).")] = None,
) -> None:
    from .data import known_datasets

    for name in known_datasets(root):
        typer.echo(name)


@app.command(
    "fetch",
    help=(
        "Download a standard image dataset and verify its checksums (needs network access).\n\n"
        "Example: `fact fetch mnist data/mnist`"
    ),
)
def fetch(
    name: Annotated[str, typer.Argument(help="mnist | cifar10")],
    directory: Annotated[str, typer.Argument(help="Where to put the files.")],
) -> None:
    from .data import fetch_cifar10, fetch_mnist
    from .errors import FactError

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
