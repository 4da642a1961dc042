"""Modular arithmetic data (docs/SPEC.md §7): every pair (a, b) with label a ∘ b mod p, split at random.

Inputs are one-hot pairs e_a ⊕ e_b ∈ R^{2p} (coordinates 0..p−1 for a, p..2p−1 for b), targets
one-hot e_{a∘b}. Division runs over b ≠ 0 (a / b = a · b^{p−2} mod p, by Fermat). The split is a
seeded random permutation, so a seed gives the same training set on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

from factcli.choices import OPERATIONS
from factcli.core.circulant import is_prime
from factcli.errors import FactError

SYMBOLS = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}
ALIASES = {"+": "add", "-": "sub", "*": "mul", "x": "mul", "/": "div", "x+y": "add", "x-y": "sub"}
ALIASES |= {"x*y": "mul", "x/y": "div", "plus": "add", "minus": "sub", "times": "mul", "divide": "div"}


def canonical_operation(name: str) -> str:
    """add | sub | mul | div, also accepting + − * / and a few spelled-out forms."""
    name = str(name).strip().lower()
    operation = ALIASES.get(name, name)
    if operation not in OPERATIONS:
        raise FactError(f"unknown operation {name!r}; choose one of add (+), sub (-), mul (*), div (/)")
    return operation


def check_modulus(p: int, operation: str) -> None:
    """p ≥ 2; prime for ÷ (inverses) and × (the discrete-log order of Z_p^*)."""
    if p < 2:
        raise FactError(f"p = {p}: the modulus must be at least 2")
    if operation in ("mul", "div") and not is_prime(p):
        why = "division needs inverses mod p" if operation == "div" else "the discrete log needs Z_p^* cyclic"
        raise FactError(f"p = {p} is not prime, but {operation} needs a prime ({why}); choose a prime p")


def all_pairs(p: int, operation: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operands a, b and labels a ∘ b mod p for every pair (b ≠ 0 for division), a-major order."""
    operation = canonical_operation(operation)
    check_modulus(p, operation)
    a_values = torch.arange(p)
    b_values = torch.arange(1 if operation == "div" else 0, p)
    a, b = torch.cartesian_prod(a_values, b_values).T
    if operation == "add":
        labels = (a + b) % p
    elif operation == "sub":
        labels = (a - b) % p
    elif operation == "mul":
        labels = (a * b) % p
    else:
        inverses = torch.tensor([pow(int(v), p - 2, p) for v in b_values])
        labels = (a * inverses[b - 1]) % p
    return a, b, labels


def one_hot_pairs(a: torch.Tensor, b: torch.Tensor, p: int, dtype=torch.float64) -> torch.Tensor:
    """e_a ⊕ e_b for every pair: an (N, 2p) matrix with two ones per row."""
    return torch.cat([nnf.one_hot(a, p), nnf.one_hot(b, p)], dim=1).to(dtype)


def split_indices(count: int, train_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random permutation cut at round(fraction · count): (train rows, test rows)."""
    if not 0 < train_fraction < 1:
        raise FactError(f"train_fraction = {train_fraction} must lie strictly between 0 and 1")
    n_train = round(train_fraction * count)
    if not 0 < n_train < count:
        raise FactError(
            f"train_fraction = {train_fraction} of {count} pairs leaves an empty training or test set; "
            "choose a larger p or a fraction further from 0 and 1"
        )
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(count, generator=generator)
    return order[:n_train].sort().values, order[n_train:].sort().values


@dataclass
class ModularData:
    """All pairs of one task and a train/test split (row indices into the pairs)."""

    p: int
    operation: str
    a: torch.Tensor
    b: torch.Tensor
    labels: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.operation]

    @property
    def description(self) -> str:
        return f"(a {self.symbol} b) mod {self.p}"

    def inputs(self, rows: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
        return one_hot_pairs(self.a[rows], self.b[rows], self.p, dtype)

    def targets(self, rows: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
        return nnf.one_hot(self.labels[rows], self.p).to(dtype)


def load_modular(p: int, operation: str, train_fraction: float, seed: int) -> ModularData:
    operation = canonical_operation(operation)
    a, b, labels = all_pairs(p, operation)
    train, test = split_indices(len(labels), train_fraction, seed)
    return ModularData(p, operation, a, b, labels, train, test)
