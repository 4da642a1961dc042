"""The convergent end of train-net's schedule: full-batch L-BFGS on L_λ in float64 until every layer
is stationary.

Mini-batch SGD or Adam fit the data quickly but hover around a critical point of
L_λ = L + (λ/2)‖θ‖² at a distance set by their noise and step size; full-batch GD creeps towards it
at the rate of the smallest curvature (≈ λ). FACT is a statement about that point, so train-net
ends with a phase that converges to it: L-BFGS with a strong-Wolfe line search on the full training
set, in float64 (F = −(1/λ)Wᵀ∇_W L is a difference of nearly equal terms there), stopped by the
stationarity residual ‖∇_W L + λW‖/‖λW‖ of every layer, never by an iteration count: the cap
``train.finish_max_iters`` only ends a run that does not converge, and the summary says so.

Every parameter (biases too) carries the decay λ, as in the optimizers of common/optim.py.
"""

from __future__ import annotations

import math

import torch

from factcli.core.uses import discover


class LbfgsFinish:
    """L-BFGS on the full-batch L_λ of ``model`` (float64), run in chunks of iterations."""

    def __init__(self, model, X, Y, loss_fn, lam: float, history: int, batch_size: int):
        self.model, self.X, self.Y, self.loss_fn, self.lam = model, X, Y, loss_fn, lam
        self.batch_size = batch_size
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.matrices, _ = discover(model, X[:1])  # the rows of train-net's table, in its order
        self.optimizer = torch.optim.LBFGS(
            self.params, lr=1.0, history_size=history, max_iter=1, line_search_fn="strong_wolfe",
            tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip
        self._current: float | None = None  # L_λ at the current point, its gradient in .grad

    def objective(self) -> torch.Tensor:
        """L_λ at the current weights; leaves ∇L_λ in every parameter's .grad.

        The mean loss is accumulated over row batches, so memory is O(batch) whatever n is.
        """
        if self._current is not None:  # just evaluated here by residuals(): reuse, do not redo
            value, self._current = self._current, None
            return torch.tensor(value, dtype=torch.float64)
        self.optimizer.zero_grad()
        n, total = self.X.shape[0], 0.0
        for start in range(0, n, self.batch_size):
            rows = slice(start, start + self.batch_size)
            batch = self.loss_fn(self.model(self.X[rows]), self.Y[rows]).sum() / n
            batch.backward()
            total += batch.item()
        with torch.no_grad():
            for p in self.params:
                p.grad.add_(p, alpha=self.lam)
            total += 0.5 * self.lam * sum(p.pow(2).sum().item() for p in self.params)
        return torch.tensor(total, dtype=torch.float64)

    def residuals(self) -> tuple[float, list[float]]:
        """L_λ and every layer's ‖∇_W L + λW‖/‖λW‖ at the current weights (one full-batch pass)."""
        value = self.objective().item()
        self._current = value  # the next L-BFGS step starts by evaluating this very point
        residuals = []
        for m in self.matrices:
            w, g = m.of(m.parameter.detach()), m.of(m.parameter.grad)
            residuals.append((g.norm() / (self.lam * w.norm())).item() if w.norm() > 0 else math.inf)
        return value, residuals

    def run(self, iterations: int) -> int:
        """Up to ``iterations`` L-BFGS iterations; returns how many were done."""
        self.optimizer.param_groups[0]["max_iter"] = iterations
        self.optimizer.param_groups[0]["max_eval"] = iterations * 25 // 20 + 25
        before = self.optimizer.state[self.optimizer._params[0]].get("n_iter", 0)
        self.optimizer.step(self.objective)
        self._current = None
        return self.optimizer.state[self.optimizer._params[0]].get("n_iter", 0) - before

    def restart(self) -> None:
        """Forget the curvature history (after a step that could not decrease L_λ)."""
        self.optimizer.state.clear()
        self._current = None

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)
