"""The simplex projection behind FactRFMClassifier.predict_proba, against a general-purpose solver."""

import numpy as np
import pytest
from scipy.optimize import minimize

from factcli.core.simplex import project_to_simplex


def _solver_projection(s: np.ndarray) -> np.ndarray:
    """argmin ‖p − s‖² on the simplex by SLSQP, independently of the sorting algorithm."""
    c = len(s)
    result = minimize(
        lambda p: 0.5 * np.sum((p - s) ** 2),
        np.full(c, 1.0 / c),
        jac=lambda p: p - s,
        bounds=[(0.0, 1.0)] * c,
        constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0, "jac": lambda p: np.ones(c)}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return result.x


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_projection_matches_a_constrained_solver(classes):
    rng = np.random.default_rng(classes)
    scores = rng.normal(scale=2.0, size=(25, classes))
    projected = project_to_simplex(scores)
    expected = np.stack([_solver_projection(s) for s in scores])
    np.testing.assert_allclose(projected, expected, atol=1e-7)
    assert (projected >= 0).all() and np.allclose(projected.sum(1), 1.0, atol=1e-12)


def test_points_on_the_simplex_stay_and_two_classes_follow_the_margin():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=10)
    np.testing.assert_allclose(project_to_simplex(p), p, atol=1e-12)
    scores = np.array([[0.2, 0.9], [0.6, 0.6], [-3.0, 4.0], [5.0, 1.0]])
    margin = scores[:, 1] - scores[:, 0]
    np.testing.assert_allclose(project_to_simplex(scores)[:, 1], np.clip((1 + margin) / 2, 0, 1), atol=1e-12)
