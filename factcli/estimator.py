"""FACT-RFM as scikit-learn estimators, so it drops into pipelines and grid searches.

    from factcli.estimator import FactRFMClassifier
    from sklearn.model_selection import GridSearchCV
    search = GridSearchCV(FactRFMClassifier(), {"ridge": [1e-3, 1e-1], "iters": [0, 2, 5]}).fit(X, y)
    search.best_estimator_.M_          # the learned feature matrix

Hyperparameters live in ``__init__``; learned state in attributes ending in ``_``. ``fit`` runs
``iters`` RFM iterations on all the data it is given and keeps the last iterate (choose ``iters``
by cross-validation, as above, or with ``fact fit-rfm``'s validation protocol).

Both pass scikit-learn's estimator checks (tests/test_estimator_checks.py). The classifier refuses a
continuous target, as scikit-learn's classifiers do. Its ``predict_proba`` is the Euclidean projection
of the kernel machine's outputs (fitted to one-hot targets) onto the probability simplex: the closest
probability vector, consistent with ``predict`` and ``decision_function``, but not calibrated (wrap the
classifier in ``CalibratedClassifierCV`` for calibrated probabilities). Errors are ``ValueError``s
whose message says what to change.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .core.kernels import Kernel
from .core.rfm import FeatureCollapse, InaccurateSolve, RFMOptions, rfm_path
from .core.simplex import project_to_simplex


class _FactRFM(BaseEstimator):
    def __init__(
        self,
        method="fact",
        kernel="laplace",
        bandwidth=10.0,
        ridge=1e-3,
        iters=5,
        nfa_power=0.5,
        centered_agop=False,
        rescale="trace",
        precision="auto",
        solve_tol=1e-3,
        device="cpu",
    ):
        self.method = method
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.ridge = ridge
        self.iters = iters
        self.nfa_power = nfa_power
        self.centered_agop = centered_agop
        self.rescale = rescale
        self.precision = precision
        self.solve_tol = solve_tol
        self.device = device

    def _options(self) -> RFMOptions:
        positive = {"bandwidth": self.bandwidth, "nfa_power": self.nfa_power, "solve_tol": self.solve_tol}
        for name, value in {**positive, "ridge": self.ridge}.items():
            low_ok = float(value) >= 0 if name == "ridge" else float(value) > 0
            if not (np.isfinite(float(value)) and low_ok):
                what = "non-negative" if name == "ridge" else "positive"
                raise ValueError(f"{name} must be a finite {what} number, got {value!r}")
        if not float(self.iters).is_integer() or self.iters < 0:
            raise ValueError(f"iters must be a non-negative integer, got {self.iters!r}")
        return RFMOptions(
            kernel=Kernel(self.kernel, float(self.bandwidth)),
            method=self.method,
            ridge=float(self.ridge),
            iters=int(self.iters),
            nfa_power=float(self.nfa_power),
            centered_agop=bool(self.centered_agop),
            rescale=self.rescale,
            precision=self.precision,
            solve_tol=float(self.solve_tol),
        )

    def _fit_targets(self, X, Y: np.ndarray):
        options = self._options()
        # Copies: scikit-learn may hand over read-only arrays, which torch must not share.
        X_t = torch.tensor(np.asarray(X, dtype=np.float64), device=self.device)
        Y_t = torch.tensor(Y, dtype=torch.float64, device=self.device)
        self.history_ = []
        try:
            for iterate in rfm_path(X_t, Y_t, options):
                self.history_.append({"iteration": iterate.t, "residual": iterate.solve.relative_residual})
                last = iterate
        except FeatureCollapse as error:
            raise ValueError(f"{error}: the features carry no variation the kernel can see") from None
        except InaccurateSolve as error:
            raise ValueError(f"{error}; raise ridge or use precision='float64'") from None
        # Predictions in float64 whatever the fit's precision: the same rows score the same in any batch.
        predictor = last.predictor
        self.predictor_ = replace(
            predictor,
            **{name: getattr(predictor, name).double() for name in ("points", "center", "M", "alpha")},
        )
        self.M_ = last.M.cpu().numpy()
        self.n_iter_ = last.t
        return self

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "predictor_")
        X = validate_data(self, X, reset=False)
        X_t = torch.tensor(X, dtype=torch.float64, device=self.device)
        with torch.no_grad():
            return self.predictor_(X_t).double().cpu().numpy()


class FactRFMClassifier(ClassifierMixin, _FactRFM):
    """FACT-RFM classifier: one-hot targets, kernel ridge regression, argmax of the raw outputs."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, ensure_min_samples=2)
        check_classification_targets(y)  # a continuous y is refused ("Unknown label type")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"classification needs at least two classes; y has only one class: {self.classes_.tolist()}"
            )
        return self._fit_targets(X, np.eye(len(self.classes_))[encoded])

    def decision_function(self, X) -> np.ndarray:
        """One column per class (the raw outputs); for two classes, as scikit-learn expects, one
        score whose sign picks the class: output of classes_[1] minus output of classes_[0]."""
        outputs = self._outputs(X)
        return outputs[:, 1] - outputs[:, 0] if len(self.classes_) == 2 else outputs

    def predict_proba(self, X) -> np.ndarray:
        """The outputs projected onto the probability simplex: the closest probability vectors (not
        calibrated; see the module docstring)."""
        return project_to_simplex(self._outputs(X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "predictor_")
        return self.classes_[self._outputs(X).argmax(1)]


class FactRFMRegressor(RegressorMixin, _FactRFM):
    """FACT-RFM regressor: kernel ridge regression on the (possibly multi-output) targets."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # n×t targets fit t outputs at once
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, ensure_min_samples=2)
        self.single_output_ = np.ndim(y) == 1
        return self._fit_targets(X, np.asarray(y, dtype=np.float64).reshape(len(y), -1))

    def predict(self, X) -> np.ndarray:
        outputs = self._outputs(X)
        return outputs[:, 0] if self.single_output_ else outputs
