"""scikit-learn's own estimator checks, every one of them, on both FACT-RFM estimators.

Skipped by scikit-learn itself, not by us: ``check_array_api_input`` (it needs SCIPY_ARRAY_API=1 set
before SciPy is imported, and the estimators compute in torch, not through the array API).
"""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from factcli.estimator import FactRFMClassifier, FactRFMRegressor
from factcli.runtime import threads_within


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The checks fit tiny problems: one thread each for torch and BLAS, no spinning siblings."""
    from threadpoolctl import threadpool_limits

    with threads_within(1), threadpool_limits(1):
        yield


@parametrize_with_checks([FactRFMClassifier(iters=1), FactRFMRegressor(iters=1)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [FactRFMClassifier(), FactRFMRegressor()])
def test_not_fitted_error_before_fit(estimator):
    for method in ("predict", "decision_function", "predict_proba"):
        if hasattr(estimator, method):
            with pytest.raises(NotFittedError):
                getattr(estimator, method)(np.ones((3, 2)))


def test_classifier_refuses_a_continuous_target():
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        FactRFMClassifier().fit(X, X[:, 0] * 1.5)
