"""How to read FACT numbers: whether the network is at a critical point of L_λ, said first, in words.

FACT (WᵀW = F) is a property of critical points of L_λ = L + (λ/2)‖θ‖². Away from one, F is not
WᵀW and a low FACT correlation only measures the distance from convergence; reading it as "FACT
fails" is the mistake this verdict prevents. Both train-net and verify-fact put it first in the
console and in summary.json, before any correlation.
"""

from __future__ import annotations

RESIDUAL = "||grad_W L + lambda W|| / ||lambda W||"
PRECONDITIONED = "||P^-1 grad_W L + lambda W|| / ||lambda W||"


def convergence_reading(rows: list[dict], tol: float, fact_validity: str | None = None) -> dict:
    """The verdict on per-layer rows (each with ``layer`` and ``residual``) at tolerance ``tol``."""
    residuals = {str(row["layer"]): float(row["residual"]) for row in rows}
    worst = max(residuals, key=residuals.get)
    above = [layer for layer, value in residuals.items() if not value <= tol]
    largest = residuals[worst]
    if not above:
        reading = (
            f"At a critical point of L_lambda: every layer's stationarity residual {RESIDUAL} is "
            f"<= {tol:g} (largest {largest:.2g}, in {worst}). FACT (W^T W = F) holds at such points, "
            "so the correlations below test it."
        )
    else:
        reading = (
            f"NOT at a critical point of L_lambda: the stationarity residual {RESIDUAL} is "
            f"{largest:.3g} in {worst}, above the tolerance {tol:g} in {len(above)} of "
            f"{len(residuals)} layers. FACT (W^T W = F) only holds at convergence, so the FACT "
            "correlations below measure how far this network is from a critical point, not whether "
            "FACT holds. Train until every residual is below the tolerance (train-net's default "
            "ends with full-batch L-BFGS, train.finish=lbfgs) before reading them."
        )
    if fact_validity and fact_validity.startswith("approximate"):
        reading += (
            " Its optimizer decouples the weight decay (AdamW): even at its fixed points FACT is approximate."
        )
    verdict = {
        "at_critical_point": not above,
        "reading": reading,
        "tol": tol,
        "max_residual": largest,
        "residuals": residuals,
    }
    preconditioned = {
        str(row["layer"]): float(row["preconditioned_residual"])
        for row in rows
        if row.get("preconditioned_residual") not in (None, "")
    }
    if preconditioned:
        text, fields = _adamw_reading(preconditioned, tol, not above)
        verdict["reading"] += text
        verdict.update(fields)
    return verdict


def _adamw_reading(residuals: dict[str, float], tol: float, fact_holds: bool) -> tuple[str, dict]:
    """Which of FACT and AdamW's preconditioned FACT the weights satisfy (docs/SPEC.md §10)."""
    worst = max(residuals, key=residuals.get)
    at_fixed_point = all(value <= tol for value in residuals.values())
    plain = "FACT holds too" if fact_holds else "FACT itself does not (the residual above)"
    if at_fixed_point:
        text = (
            f" At a fixed point of AdamW: every matrix's {PRECONDITIONED} is <= {tol:g} (largest "
            f"{residuals[worst]:.2g}, in {worst}), so the preconditioned FACT W^T W = -(1/lambda) W^T "
            f"P^-1 grad_W L holds (P from the optimizer's state); {plain}."
        )
    else:
        text = (
            f" Nor at a fixed point of AdamW: {PRECONDITIONED} is {residuals[worst]:.3g} in {worst} "
            f"(tolerance {tol:g}), so neither FACT nor its preconditioned form is expected to hold."
        )
    return text, {
        "at_adamw_fixed_point": at_fixed_point,
        "max_preconditioned_residual": residuals[worst],
        "preconditioned_residuals": residuals,
    }
