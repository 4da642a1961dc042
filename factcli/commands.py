"""The registry of `fact`'s experiment commands: what each one composes, checks and runs.

One entry per command: its name on the command line, the family folder of ``conf/`` that holds its
primary config and config groups (its presets are ``experiment=<family>/<name>``), the config's name
(which also names its runs: ``runs/<config_name>/...``), the dataclass schema Hydra type-checks every
override against, the check of values a type cannot express, and the entry point
``run(cfg, run) -> summary``. launch.py runs a command only through this table; cli.py makes one
subcommand per entry.

The entry points import their experiment when called, so `fact --help` never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .schema import fit_rfm, grokking, parity, train_net, verify_fact

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass(frozen=True)
class Command:
    name: str  # fact <name>
    family: str  # conf/<family>/ holds the primary config, its groups and presets
    config_name: str  # conf/<family>/<config_name>.yaml
    schema: type  # the dataclass every override is type-checked against
    validate: Callable[[Any], None]  # raises FactError for values a type cannot express
    run: Callable[[Any, Any], dict]  # run(cfg, run_dir) -> the summary's figures
    help: str

    @property
    def config_dir(self) -> Path:
        return CONF_DIR / self.family


def _fit_rfm(cfg, run) -> dict:
    from .experiments.rfm.fit import run as fit

    return fit(cfg, run)


def _train_net(cfg, run) -> dict:
    from .experiments.nets.train import run as train

    return train(cfg, run)


def _verify_fact(cfg, run) -> dict:
    from .experiments.nets.verify import run as verify

    return verify(cfg, run)


def _grokking(cfg, run) -> dict:
    from .experiments.grokking.experiment import run as grok

    return grok(cfg, run)


def _parity(cfg, run) -> dict:
    from .experiments.parity.experiment import run as learn_parity

    return learn_parity(cfg, run)


COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command(
            "fit-rfm", "rfm", "fit_rfm", fit_rfm.Config, fit_rfm.validate, _fit_rfm,
            "Fit FACT-RFM (or nfa, fact-geo, the laplace baseline) on a tabular dataset; hyperparameters "
            "and the iteration are chosen on a validation split, the model refit on all training data and "
            "scored on test.\n\nExamples: `fact fit-rfm --dataset wine method=nfa` · "
            "`fact fit-rfm dataset=data.csv data.target=y` · "
            "`fact fit-rfm benchmark=uci` (all UCI datasets, 4 methods, 2 protocols; $FACT_DATA)",
        ),
        Command(
            "train-net", "nets", "train_net", train_net.Config, train_net.validate, _train_net,
            "Train a network with weight decay until every layer is stationary (minibatch steps, then "
            "full-batch L-BFGS until every residual is below train.tol), logging per layer how well "
            "WᵀW agrees with FACT, NFA and eNFA along training.\n\nExample: `fact train-net dataset=digits "
            "optim.weight_decay=1e-3` · `fact train-net experiment=nets/mnist_cpu`",
        ),
        Command(
            "verify-fact", "nets", "verify_fact", verify_fact.Config, verify_fact.validate, _verify_fact,
            "Check FACT layer by layer on a trained network: first whether it is at a critical point of "
            "L_λ (the residual per layer), then correlations of WᵀW with F, (FFᵀ)^½, NFA and eNFA, errors, "
            "plots.\n\nExample: `fact verify-fact source=runs/train_net/RUN` · "
            "`fact verify-fact experiment=nets/paper_figures` · any network of yours: "
            "`fact verify-fact model=my_net.py:build weights=w.pt inputs=xy.pt lam=1e-4`",
        ),
        Command(
            "grokking", "grokking", "grokking", grokking.Config, grokking.validate, _grokking,
            "Modular arithmetic (a ∘ b mod p) with FACT-RFM, NFA-RFM and a network: the delayed jump of "
            "test accuracy, circulant structure of M.\n\nExample: `fact grokking p=61 learner=fact` · "
            "`fact grokking -m learner=fact,fact-geo,nfa seed=0,1,2`",
        ),
        Command(
            "parity", "parity", "parity", parity.Config, parity.validate, _parity,
            "Sparse parity (XOR of k of d bits) with FACT-RFM, NFA-RFM, the Laplace baseline and a network: "
            "phase transitions in iterations and in sample size.\n\nExample: `fact parity d=50 k=4 n=4000` · "
            "`fact parity -m n=500,1000,2000,4000,8000 learner=fact`",
        ),
    )
}  # fmt: skip
