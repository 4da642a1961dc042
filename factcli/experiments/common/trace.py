"""What one learner's run produced, and when its curve first reached a level (grokking, parity)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class LearnerTrace:
    """One metrics row and one feature matrix (M, or W₁ᵀW₁ for a network) per logged iterate or step."""

    rows: list[dict]
    matrices: list[torch.Tensor]  # on the CPU, in the order of rows
    seconds: float
    error: str | None = None  # why the path stopped early, if it did
    details: dict = field(default_factory=dict)  # the learner's own summary entries


def first_reaching(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first step whose value is at least ``threshold`` (None if none is)."""
    return next((s for s, v in zip(steps, values, strict=True) if v >= threshold), None)
