"""Number theory, circulant deviation, orders, alignment and the SPEC §8 τ measure, each against
brute-force loops or closed forms written independently of factcli/core/circulant.py."""

import math

import pytest
import torch

from factcli.core import circulant
from factcli.data.modular import all_pairs

PRIMES_BELOW_100 = [
    2,
    3,
    5,
    7,
    11,
    13,
    17,
    19,
    23,
    29,
    31,
    37,
    41,
    43,
    47,
    53,
    59,
    61,
    67,
    71,
    73,
    79,
    83,
    89,
    97,
]


def test_is_prime_matches_a_sieve():
    sieve = [True] * 100
    sieve[0] = sieve[1] = False
    for q in range(2, 100):
        for multiple in range(2 * q, 100, q):
            sieve[multiple] = False
    assert [q for q in range(100) if circulant.is_prime(q)] == [q for q in range(100) if sieve[q]]
    assert [q for q in range(100) if sieve[q]] == PRIMES_BELOW_100


@pytest.mark.parametrize("p", PRIMES_BELOW_100[1:])
def test_smallest_generator_by_brute_force(p):
    generators = [g for g in range(1, p) if {pow(g, k, p) for k in range(p - 1)} == set(range(1, p))]
    assert circulant.smallest_generator(p) == generators[0]


def test_known_generators_and_log_order():
    assert [circulant.smallest_generator(p) for p in (7, 23, 41, 61)] == [3, 5, 6, 2]
    assert circulant.discrete_log_order(7) == [1, 3, 2, 6, 4, 5]
    with pytest.raises(ValueError):
        circulant.smallest_generator(12)


@pytest.mark.parametrize("operation", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("p", [5, 7, 13])
def test_additive_order_turns_the_operation_into_addition(operation, p):
    """Label at (position i of a, position j of b) depends only on (i + j) mod q."""
    first, second = circulant.additive_order(p, operation)
    q = len(first)
    assert q == (p if operation in ("add", "sub") else p - 1)
    a, b, labels = all_pairs(p, operation)
    table = {(x, y): z for x, y, z in zip(a.tolist(), b.tolist(), labels.tolist(), strict=True)}
    by_sum = {}
    for i, x in enumerate(first):
        for j, y in enumerate(second):
            by_sum.setdefault((i + j) % q, set()).add(table[(x, y)])
    assert all(len(values) == 1 for values in by_sum.values())
    assert len(by_sum) == q


def brute_force_deviation(B):
    """Undo row ℓ's circulant shift by loops, then Σ_j Σ_ℓ (S_ℓj − mean_j)² / Σ B²."""
    q = len(B)
    S = [[B[row][(column + row) % q] for column in range(q)] for row in range(q)]
    deviation = 0.0
    for column in range(q):
        values = [S[row][column] for row in range(q)]
        mean = sum(values) / q
        deviation += sum((v - mean) ** 2 for v in values)
    return deviation / sum(B[row][column] ** 2 for row in range(q) for column in range(q))


def circulant_from(c):
    q = len(c)
    return torch.tensor([[c[(m - ell) % q] for m in range(q)] for ell in range(q)], dtype=torch.float64)


def test_deviation_is_zero_exactly_for_circulant_blocks():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(11, generator=g).tolist()
    C = circulant_from(c)
    assert torch.equal(C[1], torch.roll(C[0], 1))  # each row is the previous one shifted right
    assert circulant.circulant_deviation(C) == pytest.approx(0.0, abs=1e-15)
    R = torch.randn(11, 11, generator=g, dtype=torch.float64)
    assert circulant.circulant_deviation(R) > 0.5
    hankel = torch.tensor([[c[(m + ell) % 11] for m in range(11)] for ell in range(11)], dtype=torch.float64)
    assert circulant.circulant_deviation(hankel) > 0.1  # a Hankel block is not circulant


@pytest.mark.parametrize("seed", range(4))
def test_deviation_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(6, 6, generator=g, dtype=torch.float64) + 0.3 * circulant_from(list(range(6)))
    assert circulant.circulant_deviation(B) == pytest.approx(brute_force_deviation(B.tolist()), rel=1e-12)


def spec_recipe_by_loops(B):
    """SPEC §7 literally: shift row ℓ right by ℓ, then Σ_j Σ_ℓ (S_ℓj − mean_j)² / Σ B²."""
    q = len(B)
    S = [[B[row][(column - row) % q] for column in range(q)] for row in range(q)]
    deviation = sum(
        sum((S[row][column] - sum(S[r][column] for r in range(q)) / q) ** 2 for row in range(q))
        for column in range(q)
    )
    return deviation / sum(value**2 for line in B for value in line)


@pytest.mark.parametrize("seed", range(3))
def test_anticirculant_deviation_is_the_spec_recipe(seed):
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(7, 7, generator=g, dtype=torch.float64)
    assert circulant.anticirculant_deviation(B) == pytest.approx(spec_recipe_by_loops(B.tolist()), rel=1e-12)
    c = torch.randn(7, generator=g).tolist()
    hankel = torch.tensor([[c[(m + ell) % 7] for m in range(7)] for ell in range(7)], dtype=torch.float64)
    assert circulant.anticirculant_deviation(hankel) == pytest.approx(0.0, abs=1e-15)
    assert circulant.anticirculant_deviation(circulant_from(c)) > 0.1


def test_deviation_of_a_hand_example():
    # S = [[1, 2], [4, 3]] (row 1 shifted left by one): columns (1, 4), (2, 3) deviate by 4.5 + 0.5.
    B = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert circulant.circulant_deviation(B) == pytest.approx(5.0 / 30.0)
    assert math.isnan(circulant.circulant_deviation(torch.zeros(3, 3)))


@pytest.mark.parametrize("operation", ["add", "sub", "mul", "div"])
def test_block_circulant_feature_matrix_in_additive_order_has_zero_deviation(operation):
    """B[b, a] = c[(pos_a − pos_b) mod q] in the operation's order; junk at residue 0 for × and ÷."""
    p = 7
    g = torch.Generator().manual_seed(1)
    first, second = circulant.additive_order(p, operation)
    q = len(first)
    c = torch.randn(q, generator=g, dtype=torch.float64)
    M = torch.randn(2 * p, 2 * p, generator=g, dtype=torch.float64)  # random diagonal blocks
    for i, b in enumerate(second):
        for j, a in enumerate(first):
            M[p + b, a] = c[(j - i) % q]
    assert circulant.feature_deviations(M, p, operation)["circulant_deviation"] == pytest.approx(
        0.0, abs=1e-14
    )
    if operation != "add":  # the plain order does not show the structure
        assert circulant.circulant_deviation(M[p:, :p]) > 0.05
    R = circulant.reordered(M, p, operation)
    assert torch.equal(R[q:, :q], circulant.cross_block(M, p, operation))


def test_alignment_is_the_cosine():
    A = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    B = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert circulant.alignment(A, B) == pytest.approx(5 / (math.sqrt(30) * math.sqrt(2)))
    assert circulant.alignment(A, 3 * A) == pytest.approx(1.0)


def test_tau_matrix_by_loops():
    g = torch.Generator().manual_seed(2)
    K = torch.randn(5, 5, generator=g, dtype=torch.float64)
    K = K + K.T
    expected = [[sum(K[i, l] * K[l, j] for l in range(5)) / 5 for j in range(5)] for i in range(5)]
    torch.testing.assert_close(circulant.tau_matrix(K), torch.tensor(expected, dtype=torch.float64))


def test_proportionality_r2_closed_forms():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    exact = circulant.proportionality_r2(2.5 * x, x)
    assert exact["r2"] == pytest.approx(1.0) and exact["slope"] == pytest.approx(2.5)
    # t = x + 1: the line through 0 misses; the line with an intercept fits exactly.
    t = x + 1
    fit = circulant.proportionality_r2(t, x)
    slope = 40 / 30  # Σtx / Σx² = (2 + 6 + 12 + 20) / 30
    residual = sum((ti - slope * xi) ** 2 for ti, xi in zip(t.tolist(), x.tolist(), strict=True))
    total = sum((ti - 3.5) ** 2 for ti in t.tolist())
    assert fit["slope"] == pytest.approx(slope)
    assert fit["r2"] == pytest.approx(1 - residual / total)
    assert fit["r2_linear"] == pytest.approx(1.0)
