"""Modular arithmetic data against brute-force loops; splits; operation names; bad moduli."""

import pytest
import torch

from factcli.data.modular import (
    all_pairs,
    canonical_operation,
    check_modulus,
    load_modular,
    one_hot_pairs,
    split_indices,
)
from factcli.errors import FactError


def brute_force_label(a, b, p, operation):
    if operation == "add":
        return (a + b) % p
    if operation == "sub":
        return (a - b) % p
    if operation == "mul":
        return (a * b) % p
    # a / b is the x with x·b ≡ a (mod p), found by search
    return next(x for x in range(p) if (x * b) % p == a)


@pytest.mark.parametrize("operation", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("p", [2, 7, 11])
def test_every_pair_has_its_brute_force_label(operation, p):
    a, b, labels = all_pairs(p, operation)
    expected_pairs = [(x, y) for x in range(p) for y in range(p) if not (operation == "div" and y == 0)]
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == expected_pairs
    assert labels.tolist() == [brute_force_label(x, y, p, operation) for x, y in expected_pairs]


def test_composite_modulus_allowed_for_addition_and_subtraction():
    a, b, labels = all_pairs(12, "sub")
    assert len(labels) == 144 and labels[(a == 3) & (b == 5)].item() == 10


def test_one_hot_pairs_place_a_then_b():
    X = one_hot_pairs(torch.tensor([0, 4]), torch.tensor([2, 0]), 5)
    expected = torch.zeros(2, 10, dtype=torch.float64)
    expected[0, 0] = expected[0, 5 + 2] = 1
    expected[1, 4] = expected[1, 5 + 0] = 1
    assert torch.equal(X, expected)


def test_split_is_seeded_disjoint_and_complete():
    train, test = split_indices(100, 0.3, seed=5)
    assert len(train) == 30 and len(test) == 70
    assert sorted(torch.cat([train, test]).tolist()) == list(range(100))
    again, _ = split_indices(100, 0.3, seed=5)
    other, _ = split_indices(100, 0.3, seed=6)
    assert torch.equal(train, again) and not torch.equal(train, other)


def test_dataset_inputs_and_targets_match_rows():
    data = load_modular(7, "+", 0.5, seed=1)
    assert data.operation == "add" and len(data.train) + len(data.test) == 49
    X, Y = data.inputs(data.train), data.targets(data.train)
    a, b = X[:, :7].argmax(1), X[:, 7:].argmax(1)
    assert torch.equal((a + b) % 7, Y.argmax(1)) and torch.equal(Y.argmax(1), data.labels[data.train])


@pytest.mark.parametrize(
    ("name", "expected"),
    [("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "div"), ("x/y", "div"), ("MUL", "mul")],
)
def test_operation_aliases(name, expected):
    assert canonical_operation(name) == expected


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(FactError, match="unknown operation 'pow'") as error:
        canonical_operation("pow")
    with pytest.raises(FactError, match="p = 12 is not prime") as error:
        check_modulus(12, "div")
    with pytest.raises(FactError, match="not prime"):
        check_modulus(15, "mul")
    with pytest.raises(FactError, match="strictly between 0 and 1"):
        split_indices(10, 1.0, 0)
    with pytest.raises(FactError, match="empty training or test set"):
        split_indices(4, 0.05, 0)
    assert "\n" not in str(error.value)
