"""A synthetic teacher task: Gaussian inputs, labels from a random network that sees few directions.

x ~ N(0, I_d); the teacher projects x onto ``rank`` random orthonormal directions U (d×r), applies a
random one-hidden-layer tanh network and outputs c scores. Classification labels are the argmax of
the scores; regression targets are the scores standardized per output. A network trained on it should
learn features concentrated on span(U): WᵀW of its first layer then has its mass there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factcli.choices import FIXED_TASKS


@dataclass
class TeacherData:
    X: np.ndarray  # (n, d) float64
    y: np.ndarray  # classification: int64 (n,); regression: float64 (n, c)
    directions: np.ndarray  # (d, rank), orthonormal columns: the subspace the teacher reads
    task: str


def make_teacher(
    n: int,
    dim: int = 20,
    rank: int = 2,
    classes: int = 3,
    width: int = 16,
    task: str = "classification",
    seed: int = 0,
) -> TeacherData:
    """``n`` samples of the teacher task (same seed, same teacher and samples)."""
    if task not in FIXED_TASKS:
        raise ValueError(f"teacher task must be 'classification' or 'regression', not {task!r}")
    if not 1 <= rank <= dim:
        raise ValueError(f"teacher rank must be between 1 and dim={dim}, not {rank}")
    rng = np.random.default_rng(seed)
    directions, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    hidden = rng.standard_normal((rank, width)) * np.sqrt(2.0)  # ~unit-variance pre-activations
    readout = rng.standard_normal((width, classes)) / np.sqrt(width)
    X = rng.standard_normal((n, dim))
    scores = np.tanh(X @ directions @ hidden) @ readout
    if task == "classification":
        y = scores.argmax(axis=1).astype(np.int64)
    else:
        y = (scores - scores.mean(0)) / scores.std(0).clip(min=1e-12)
    return TeacherData(X=X, y=y, directions=directions, task=task)
