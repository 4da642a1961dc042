"""How to read FACT numbers: whether the network is at a critical point of L_λ, said first, in words.

FACT (WᵀW = F) is a property of critical points of L_λ = L + (λ/2)‖θ‖². Away from one, F is not
WᵀW and a low FACT correlation only measures the distance from convergence; reading it as "FACT
fails" is the mistake this verdict prevents. Both train-net and verify-fact put it first in the
console and in summary.json, before any correlation.
"""

from __future__ import annotations

RESIDUAL = "||grad_W L + lambda W|| / ||lambda W||"


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
    return {
        "at_critical_point": not above,
        "reading": reading,
        "tol": tol,
        "max_residual": largest,
        "residuals": residuals,
    }
