"""Every preset of every command composes, validates, and sets the values that make it that preset.

A preset's expected values are the ones that differ from the schema's defaults, so each assertion
below would fail if the preset were ignored. A new preset file fails the inventory test until it is
listed here.
"""

import re

import pytest
from conftest import compose
from omegaconf import OmegaConf

from factcli.commands import COMMANDS

HIDDEN_512 = [512, 512, 512, 512, 512]
PAPER_TRAINING = {
    "data.test_split": "test",
    "data.test_size": 10000,
    "model.hidden": HIDDEN_512,
    "model.activation": "relu",
    "optim.name": "gd",
    "optim.weight_decay": 1e-4,
    "train.finish": "none",
    "train.tol": 1e-2,
    "train.check_every": 500,
    "train.log_every": 5000,
    "train.checkpoint_every": 5000,
    "train.stats_batch_size": 4096,
}
MNIST_CPU = {
    "dataset": "mnist",
    "data.split": "test",
    "data.train_size": 2000,
    "data.test_size": 1000,
    "optim.weight_decay": 2e-3,
    "train.log_every": 250,
    "train.checkpoint_every": 250,
}
# nets/mnist_cpu with a metrics row every 100 steps, for the along-training figure
PAPER_FIGURES = {
    **{k: v for k, v in MNIST_CPU.items() if k != "train.checkpoint_every"},
    "train.log_every": 100,
}
PAPER_MNIST = {"dataset": "mnist", **PAPER_TRAINING, "train.max_steps": 200000}
PAPER_CIFAR10 = {"dataset": "cifar10", **PAPER_TRAINING, "optim.lr": 0.02, "train.max_steps": 300000}

# (command, preset) → the values that distinguish it; "hydra.…" keys are read from Hydra's own node.
TRANSFORMER = {
    "dataset": "modular", "loss": "cross_entropy", "model.kind": "transformer", "model.init": "default",
    "optim.name": "adam", "optim.lr": 3e-3, "train.max_steps": 1000,
}  # fmt: skip
PRESETS = {
    ("train-net", "nets/mnist_cpu"): MNIST_CPU,
    ("train-net", "nets/paper_mnist"): PAPER_MNIST,
    ("train-net", "nets/paper_cifar10"): PAPER_CIFAR10,
    # verify-fact trains the configured network when given no source, so train-net's presets work there
    ("verify-fact", "nets/mnist_cpu"): MNIST_CPU,
    ("verify-fact", "nets/paper_figures"): PAPER_FIGURES,
    ("train-net", "nets/paper_figures"): PAPER_FIGURES,
    ("verify-fact", "nets/paper_mnist"): PAPER_MNIST,
    ("verify-fact", "nets/paper_cifar10"): PAPER_CIFAR10,
    ("verify-fact", "nets/nfa_counterexample"): {
        "dataset": "nfa_counterexample",
        "dtype": "float64",
        "data.counterexample.delta": 0.05,
        "data.counterexample.tau": 100.0,
        "model.hidden": [8],
        "model.activation": "quadratic",
        "optim.name": "adam",
        "optim.lr": 0.01,
        "optim.schedule": "cosine",
        "train.tol": 1e-6,
        "train.check_every": 500,
        "train.log_every": 250,
        "train.polish_quadratic": True,
    },
    ("train-net", "nets/transformer"): TRANSFORMER,
    ("verify-fact", "nets/transformer"): TRANSFORMER,
    ("grokking", "grokking/mul"): {"operation": "mul"},
    ("grokking", "grokking/net"): {"learner": "net"},
    ("grokking", "grokking/quadratic"): {"kernel.name": "quadratic", "rfm.iters": 40},
    ("parity", "parity/acceptance"): {
        "hydra.sweeper.params.learner": "fact,fact-geo,nfa,laplace",
        "hydra.sweeper.params.seed": "0,1,2",
    },
    ("parity", "parity/net"): {"k": 3, "n": 20000, "learner": "net", "net.steps": 10000},
    ("parity", "parity/paper"): {"n": 25000, "support": [7, 15, 25, 29]},
    ("parity", "parity/sample_size"): {
        "hydra.sweeper.params.n": "500,1000,2000,4000,8000",
        "hydra.sweeper.params.k": "3,4",
        "hydra.sweeper.params.learner": "fact,fact-geo,nfa,laplace",
    },
    ("parity", "parity/sample_size_d100"): {
        "d": 100,
        "rfm.solver": "nystrom",
        "rfm.centers": 1000,
        "rfm.cg_max_iters": 15,
        "hydra.sweeper.params.n": "10000,30000,100000,300000,1000000",
        "hydra.sweeper.params.seed": "0,1,2",
    },
}


def preset_files(command) -> set[str]:
    root = command.config_dir / "experiment"
    return {str(path.relative_to(root).with_suffix("")) for path in root.rglob("*.yaml")}


def test_every_preset_file_is_listed_and_namespaced_by_its_family():
    for command in COMMANDS.values():
        files = preset_files(command)
        assert all(name.startswith(f"{command.family}/") for name in files), files
    listed = {preset for _, preset in PRESETS}
    found = set().union(*(preset_files(command) for command in COMMANDS.values()))
    assert found == listed


@pytest.mark.parametrize("name, preset", sorted(PRESETS), ids=[f"{c}:{p}" for c, p in sorted(PRESETS)])
def test_preset_composes_validates_and_sets_its_values(name, preset):
    expected = PRESETS[(name, preset)]
    cfg = compose(name, [f"experiment={preset}"], with_hydra=True)
    default = compose(name, with_hydra=True)
    COMMANDS[name].validate(cfg)
    for key, value in expected.items():
        got = OmegaConf.select(cfg, key)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        assert got == value, f"{preset}: {key} = {got}, expected {value}"
        assert OmegaConf.select(default, key) != value, f"{key} = {value} is the default: not distinguishing"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_lists_only_the_family_presets_as_typed(fact_cli, name):
    result = fact_cli(name, "-h")
    assert result.exit_code == 0, result.output
    listed = [line.strip() for line in result.output.splitlines() if re.fullmatch(r"  experiment=\S+", line)]
    family = COMMANDS[name].family
    expected = sorted(f"experiment={p}" for c, p in PRESETS if c == name)  # those that compose for it
    assert sorted(listed) == expected
    assert all(line.startswith(f"experiment={family}/") for line in listed), listed
