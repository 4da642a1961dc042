"""The RFM's config groups, shared by the RFM commands (fit-rfm, grokking, parity; docs/SPEC.md §4).

A command whose defaults differ says so where it uses a group (``field(default_factory=...)``), so
each default still has one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from factcli.choices import SOLVERS
from factcli.errors import FactError

from . import choose


@dataclass
class KernelConfig:
    name: str = "laplace"  # laplace | gaussian | l1 (| quadratic, in grokking)
    bandwidth: float = 10.0  # L (ignored by the quadratic kernel)


@dataclass
class RfmConfig:
    """The feature-learning loop. fit-rfm selects the ridge from grid.ridges, so it has none here."""

    iters: int = 5  # feature-learning iterations T; the iterates t = 0..T are all scored
    nfa_power: float = 0.5  # nfa: M ← AGOP^s (the original RFM code used s = 1)
    fact_power: float = 1.0  # fact: M ← |F|^s, |F| = (FFᵀ)^½ (s = 1: the paper's update; s = 2: M ← FFᵀ)
    form: str = "full"  # full | diagonal (one weight per coordinate; the statistic's diagonal)
    centered_agop: bool = False  # nfa: subtract the mean Jacobian first
    rescale: str = "trace"  # trace (tr M = d) | max (max |M_ij| = 1) | none
    precision: str = "auto"  # auto (float32, redone in float64 when inaccurate) | float32 | float64
    solve_tol: float = 1e-3  # largest accepted relative residual of the kernel solve


@dataclass
class RidgeRfmConfig(RfmConfig):
    """The loop with one fixed ridge (grokking, parity)."""

    ridge: float = 1e-3  # λ_r of the kernel solve


@dataclass
class SolverFields:
    """How the kernel system is solved: exactly (n×n) or with Nyström centres (core/nystrom.py)."""

    solver: str = "auto"  # auto (exact up to exact_max_rows training rows, then nystrom) | exact | nystrom
    exact_max_rows: int = 20_000  # auto: the largest training part solved exactly (n×n)
    centers: int | None = None  # nystrom: centres m (null: every row up to 2,000, then 2,000)
    cg_max_iters: int = 100  # nystrom: most conjugate-gradient steps per solve


@dataclass
class ScalableRfmConfig(RfmConfig, SolverFields):
    """fit-rfm's loop: exact or Nyström."""


@dataclass
class ScalableRidgeRfmConfig(RidgeRfmConfig, SolverFields):
    """parity's loop: one ridge, exact or Nyström."""


def validate_solver(rfm) -> None:
    choose(rfm.solver, SOLVERS, "rfm.solver")
    if rfm.centers is not None and rfm.centers < 1:
        raise FactError(f"rfm.centers must be at least 1 (or null for the default), got {rfm.centers}")
    if rfm.cg_max_iters < 1 or rfm.exact_max_rows < 0:
        raise FactError("rfm.cg_max_iters must be at least 1 and rfm.exact_max_rows at least 0")
