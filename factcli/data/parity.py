"""Sparse parity (docs/SPEC.md §6): x uniform on the hypercube, y = XOR of the k coordinates in the support.

Inputs are bits {0,1} (``inputs="bits"``) or signs ±1 (``inputs="signs"``, bit b ↦ 2b − 1); the label
is the parity of the support's *bits* either way, so both encodings describe the same task.
Coordinates are numbered from 0.

Every random choice has its own NumPy stream derived from the seed (support, test set, training set,
label noise), so the test set does not depend on n and, for one seed, the training set of a smaller n
is the first rows of a larger one: a sweep over n compares nested samples on a common test set.
Label noise flips training labels only; test labels stay clean, so test accuracy measures how well
the parity itself was learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factcli.choices import PARITY_INPUTS

# Independent random streams, one per purpose (np.random.default_rng([seed, stream])).
_SUPPORT, _TEST, _TRAIN, _NOISE = range(4)


@dataclass
class ParityData:
    X_train: np.ndarray  # (n, d) float32, entries in {0, 1} or {−1, +1}
    y_train: np.ndarray  # (n,) int64 labels in {0, 1}, after label noise
    X_test: np.ndarray  # (test_size, d)
    y_test: np.ndarray  # (test_size,) clean labels
    support: tuple[int, ...]  # sorted coordinates (0-based) whose XOR is the label
    flipped: int  # training labels flipped by the noise


def draw_support(d: int, k: int, seed: int) -> tuple[int, ...]:
    """k distinct coordinates of 0..d−1, drawn with the seed, sorted."""
    rng = np.random.default_rng([seed, _SUPPORT])
    return tuple(sorted(int(j) for j in rng.choice(d, size=k, replace=False)))


def parity_labels(bits: np.ndarray, support) -> np.ndarray:
    """XOR of the support's bits, row by row: (Σ_{j∈S} b_j) mod 2."""
    return (bits[:, list(support)].sum(axis=1) % 2).astype(np.int64)


def sample_bits(rng: np.random.Generator, rows: int, d: int) -> np.ndarray:
    return rng.integers(0, 2, size=(rows, d), dtype=np.int8)


def make_parity(
    n: int,
    d: int,
    k: int,
    test_size: int,
    seed: int = 0,
    support=None,
    inputs: str = "bits",
    label_noise: float = 0.0,
) -> ParityData:
    """n training and ``test_size`` test samples of the k-sparse parity on d coordinates."""
    if inputs not in PARITY_INPUTS:
        raise ValueError(f"unknown inputs {inputs!r}; choose one of {', '.join(PARITY_INPUTS)}")
    support = draw_support(d, k, seed) if support is None else tuple(sorted(int(j) for j in support))
    if len(support) != k or len(set(support)) != k or not all(0 <= j < d for j in support):
        raise ValueError(f"support {support} is not {k} distinct coordinates of 0..{d - 1}")
    test_bits = sample_bits(np.random.default_rng([seed, _TEST]), test_size, d)
    train_bits = sample_bits(np.random.default_rng([seed, _TRAIN]), n, d)
    y_train = parity_labels(train_bits, support)
    flips = np.random.default_rng([seed, _NOISE]).random(n) < label_noise
    y_train[flips] ^= 1

    def encode(bits):
        return (2 * bits.astype(np.float32) - 1) if inputs == "signs" else bits.astype(np.float32)

    return ParityData(
        X_train=encode(train_bits),
        y_train=y_train,
        X_test=encode(test_bits),
        y_test=parity_labels(test_bits, support),
        support=support,
        flipped=int(flips.sum()),
    )
