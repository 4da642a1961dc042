"""The RFM's config groups, shared by the RFM commands (fit-rfm, grokking, parity; docs/SPEC.md §4).

A command whose defaults differ says so where it uses a group (``field(default_factory=...)``), so
each default still has one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from factcli.choices import SOLVERS
from factcli.core import defaults
from factcli.errors import FactError

from . import choose


@dataclass
class KernelConfig:
    name: str = defaults.KERNEL  # laplace | gaussian | l1 (| quadratic, in grokking)
    bandwidth: float = defaults.BANDWIDTH  # L (ignored by the quadratic kernel)


@dataclass
class RfmConfig:
    """The feature-learning loop. fit-rfm selects the ridge from grid.ridges, so it has none here."""

    iters: int = defaults.ITERS  # feature-learning iterations T; the iterates t = 0..T are all scored
    nfa_power: float = defaults.NFA_POWER  # nfa: M ← AGOP^s (the original RFM code used s = 1)
    fact_power: float = defaults.FACT_POWER  # fact: M ← |F|^s, |F| = (FFᵀ)^½ (s = 1: the paper; s = 2: FFᵀ)
    form: str = defaults.FORM  # full | diagonal (one weight per coordinate; the statistic's diagonal)
    centered_agop: bool = defaults.CENTERED_AGOP  # nfa: subtract the mean Jacobian first
    rescale: str = defaults.RESCALE  # trace (tr M = d) | max (max |M_ij| = 1) | none
    precision: str = (
        defaults.PRECISION
    )  # auto (float32, redone in float64 when inaccurate) | float32 | float64
    solve_tol: float = (
        defaults.SOLVE_TOL
    )  # largest accepted relative residual of a kernel solve (solver's check)


@dataclass
class RidgeRfmConfig(RfmConfig):
    """The loop with one fixed ridge (grokking, parity)."""

    ridge: float = defaults.RIDGE  # λ_r of the kernel solve


@dataclass
class SolverFields:
    """How the kernel system is solved: exactly (n×n) or with Nyström centres (core/nystrom.py)."""

    solver: str = (
        defaults.SOLVER
    )  # auto (exact up to exact_max_rows training rows, then nystrom) | exact | nystrom
    exact_max_rows: int = defaults.EXACT_MAX_ROWS  # auto: the largest training part solved exactly (n×n)
    centers: int | None = None  # nystrom: centres m (null: every row up to 2,000, then 2,000)
    cg_max_iters: int = defaults.CG_MAX_ITERS  # nystrom: most CG steps per solve (×4 when redone)


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
