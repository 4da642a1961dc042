"""Seeded minibatches without replacement, epoch after epoch: the one sampler of every network.

The rule for the last short batch, decided once: it is dropped, so every step averages the loss over
the same number of rows (the same gradient noise, the same effective step size for a fixed lr); each
epoch is a fresh permutation, so every row is still seen equally often over training. A batch size
of at least n means full-batch training: ``next`` returns None (all rows, in their order).
"""

from __future__ import annotations

import torch


class Batches:
    """Row indices of successive minibatches; its state makes resuming a run exact."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.position = 0

    @property
    def full(self) -> bool:
        return self.batch_size >= self.n

    def next(self) -> torch.Tensor | None:
        """Row indices of the next batch; None means all rows (full-batch training)."""
        if self.full:
            return None
        if self.position + self.batch_size > self.n:  # drop the ragged tail: equal-size batches
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        rows = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return rows

    def take(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rows of the next batch of each tensor (all of them in full-batch training)."""
        rows = self.next()
        return tensors if rows is None else tuple(tensor[rows] for tensor in tensors)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], int(state["position"])
