"""Datasets by name: built-in (scikit-learn), CSV/Parquet files, the UCI collection, MNIST and
CIFAR-10.

Importing this package is cheap: pandas, scikit-learn and torch load only when a loader runs.
"""

from factcli.data.images import fetch_cifar10, fetch_mnist, load_cifar10, load_mnist
from factcli.data.records import TabularData, UciSplits, resolve_data_root
from factcli.data.tabular import known_datasets, load_tabular
from factcli.data.uci import list_uci, load_uci

__all__ = [
    "TabularData",
    "UciSplits",
    "fetch_cifar10",
    "fetch_mnist",
    "known_datasets",
    "list_uci",
    "load_cifar10",
    "load_mnist",
    "load_tabular",
    "load_uci",
    "resolve_data_root",
]
