"""FACT-RFM as scikit-learn estimators, so it drops into pipelines and grid searches.

    from factcli.estimator import FactRFMClassifier, FactRFMClassifierCV
    FactRFMClassifierCV().fit(X, y)    # what `fact fit-rfm` does: selection on a validation split
    FactRFMClassifier().fit(X, y)      # one configuration, no hidden tuning (wrap it in GridSearchCV)

Two kinds, as scikit-learn's ``Ridge`` and ``RidgeCV``:

- ``FactRFMClassifier`` / ``FactRFMRegressor``: the single-configuration algorithm of ``fact fit-rfm``
  with its grid switched off — the same update (M ← FFᵀ, fact_power=2), form and loop — at one kernel,
  bandwidth, ridge and number of iterations; ``fit`` keeps the last iterate.
- ``FactRFMClassifierCV`` / ``FactRFMRegressorCV``: what ``fact fit-rfm`` does by default. ``fit``
  holds out a validation split (seeded and stratified as fit-rfm's, or the first split of ``cv``),
  selects the kernel (laplace or l1), bandwidth, ridge, row normalization and iteration t on it
  (experiments/rfm/grid.py), then relearns M_0..M_t on all the rows it was given (the strict protocol);
  the solver (exact or Nyström centres) is chosen by size as fit-rfm chooses it.

Every default comes from core/defaults.py, as the CLI's do. Allowed values are declared once
(``_parameter_constraints``); a bad one raises scikit-learn's ``InvalidParameterError`` naming it.
The classifiers refuse a continuous target, as scikit-learn's do. ``predict_proba`` is the Euclidean
projection of the kernel machine's outputs (fitted to one-hot targets) onto the probability simplex:
the closest probability vector, consistent with ``predict`` and ``decision_function``, but not
calibrated (wrap the classifier in ``CalibratedClassifierCV`` for calibrated probabilities). Other
errors are ``ValueError``s whose message says what to change.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .choices import (
    AUTO_KERNEL,
    BANDWIDTH_UNITS,
    DEVICES,
    FORMS,
    KERNELS,
    METHODS,
    PRECISIONS,
    RESCALE_RULES,
    SEARCHES,
    SELECTION_RULES,
    SOLVERS,
)
from .core import defaults
from .core.kernels import Kernel
from .core.rfm import FeatureCollapse, InaccurateSolve, RFMOptions, rfm_path
from .core.simplex import project_to_simplex
from .errors import FactError
from .experiments.common import scalable
from .experiments.rfm.folds import validation_split
from .experiments.rfm.grid import GridSpec, chosen_fit, select
from .experiments.rfm.protocol import Split, Task, normalize_rows, refit

_PATH_CONSTRAINTS = {
    "method": [StrOptions(set(METHODS))],
    "iters": [Interval(Integral, 0, None, closed="left")],
    "fact_power": [Interval(Real, 0, None, closed="neither")],
    "form": [StrOptions(set(FORMS))],
    "nfa_power": [Interval(Real, 0, None, closed="neither")],
    "centered_agop": ["boolean"],
    "rescale": [StrOptions(set(RESCALE_RULES))],
    "precision": [StrOptions(set(PRECISIONS))],
    "solve_tol": [Interval(Real, 0, None, closed="neither")],
    "device": [StrOptions(set(DEVICES))],
}


def _device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; CUDA asked for without one is a ValueError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but no CUDA device is available; use device='cpu' or 'auto'")
    return torch.device(name)


def _solve_advice(precision: str) -> str:
    return "raise ridge" if precision == "float64" else "raise ridge or use precision='float64'"


class _Outputs:
    """What a fitted estimator of either kind predicts with: the predictor in float64 (the same rows
    score the same in any batch, whatever the fit's precision), and whether rows are normalized."""

    def _keep(self, predictor, normalize: bool) -> None:
        names = ("points", "center", "M", "alpha")
        self.predictor_ = replace(predictor, **{name: getattr(predictor, name).double() for name in names})
        if predictor.fitted is not None:
            self.predictor_.fitted = predictor.fitted.double()
        self.normalize_rows_ = bool(normalize)

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "predictor_")
        X = validate_data(self, X, reset=False)
        X_t = normalize_rows(
            torch.tensor(X, dtype=torch.float64, device=self.predictor_.points.device), self.normalize_rows_
        )
        with torch.no_grad():
            return self.predictor_(X_t).double().cpu().numpy()


class _FactRFM(_Outputs, BaseEstimator):
    _parameter_constraints = {
        **_PATH_CONSTRAINTS,
        "kernel": [StrOptions(set(KERNELS))],
        "bandwidth": [Interval(Real, 0, None, closed="neither")],
        "ridge": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        method=defaults.METHOD,
        kernel=defaults.KERNEL,
        bandwidth=defaults.BANDWIDTH,
        ridge=defaults.RIDGE,
        iters=defaults.ITERS,
        fact_power=defaults.TABULAR_FACT_POWER,
        form=defaults.FORM,
        nfa_power=defaults.NFA_POWER,
        centered_agop=defaults.CENTERED_AGOP,
        rescale=defaults.RESCALE,
        precision=defaults.PRECISION,
        solve_tol=defaults.SOLVE_TOL,
        device="cpu",
    ):
        self.method = method
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.ridge = ridge
        self.iters = iters
        self.fact_power = fact_power
        self.form = form
        self.nfa_power = nfa_power
        self.centered_agop = centered_agop
        self.rescale = rescale
        self.precision = precision
        self.solve_tol = solve_tol
        self.device = device

    def _options(self) -> RFMOptions:
        return RFMOptions(
            kernel=Kernel(self.kernel, float(self.bandwidth)),
            method=self.method,
            ridge=float(self.ridge),
            iters=int(self.iters),
            nfa_power=float(self.nfa_power),
            fact_power=float(self.fact_power),
            form=self.form,
            centered_agop=bool(self.centered_agop),
            rescale=self.rescale,
            precision=self.precision,
            solve_tol=float(self.solve_tol),
        )

    def _fit_targets(self, X, Y: np.ndarray):
        options = self._options()
        device = _device(self.device)
        # Copies: scikit-learn may hand over read-only arrays, which torch must not share.
        X_t = torch.tensor(np.asarray(X, dtype=np.float64), device=device)
        Y_t = torch.tensor(Y, dtype=torch.float64, device=device)
        self.history_ = []
        try:
            for iterate in rfm_path(X_t, Y_t, options):
                self.history_.append({"iteration": iterate.t, "residual": iterate.solve.relative_residual})
                last = iterate
        except FeatureCollapse as error:
            raise ValueError(f"{error}: the features carry no variation the kernel can see") from None
        except InaccurateSolve as error:
            raise ValueError(f"{error}; {_solve_advice(self.precision)}") from None
        self._keep(last.predictor, normalize=False)
        self.M_ = last.M.cpu().numpy()
        self.n_iter_ = last.t
        return self


class _FactRFMCV(_Outputs, BaseEstimator):
    _parameter_constraints = {
        **_PATH_CONSTRAINTS,
        "kernel": [StrOptions({AUTO_KERNEL, *KERNELS})],
        "bandwidths": ["array-like"],
        "bandwidth_unit": [StrOptions(set(BANDWIDTH_UNITS))],
        "ridges": ["array-like"],
        "normalize_rows": ["array-like"],
        "search": [StrOptions(set(SEARCHES))],
        "rule": [StrOptions(set(SELECTION_RULES))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "cv": [None, "cv_object"],
        "solver": [StrOptions(set(SOLVERS))],
        "exact_max_rows": [Interval(Integral, 0, None, closed="left")],
        "centers": [None, Interval(Integral, 1, None, closed="left")],
        "cg_max_iters": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, 2**32 - 2, closed="both")],
    }

    def __init__(
        self,
        method=defaults.METHOD,
        kernel=defaults.TABULAR_KERNEL,
        bandwidths=defaults.GRID_BANDWIDTHS,
        bandwidth_unit=defaults.GRID_BANDWIDTH_UNIT,
        ridges=defaults.GRID_RIDGES,
        normalize_rows=defaults.GRID_NORMALIZATIONS,
        search=defaults.GRID_SEARCH,
        rule=defaults.GRID_RULE,
        iters=defaults.ITERS,
        fact_power=defaults.TABULAR_FACT_POWER,
        form=defaults.FORM,
        nfa_power=defaults.NFA_POWER,
        centered_agop=defaults.CENTERED_AGOP,
        rescale=defaults.RESCALE,
        precision=defaults.PRECISION,
        solve_tol=defaults.SOLVE_TOL,
        validation_fraction=defaults.VALIDATION_FRACTION,
        cv=None,
        solver=defaults.SOLVER,
        exact_max_rows=defaults.EXACT_MAX_ROWS,
        centers=None,
        cg_max_iters=defaults.CG_MAX_ITERS,
        random_state=0,
        device="cpu",
    ):
        self.method = method
        self.kernel = kernel
        self.bandwidths = bandwidths
        self.bandwidth_unit = bandwidth_unit
        self.ridges = ridges
        self.normalize_rows = normalize_rows
        self.search = search
        self.rule = rule
        self.iters = iters
        self.fact_power = fact_power
        self.form = form
        self.nfa_power = nfa_power
        self.centered_agop = centered_agop
        self.rescale = rescale
        self.precision = precision
        self.solve_tol = solve_tol
        self.validation_fraction = validation_fraction
        self.cv = cv
        self.solver = solver
        self.exact_max_rows = exact_max_rows
        self.centers = centers
        self.cg_max_iters = cg_max_iters
        self.random_state = random_state
        self.device = device

    def _spec(self) -> GridSpec:
        try:
            return GridSpec(
                bandwidths=self.bandwidths,
                bandwidth_unit=self.bandwidth_unit,
                ridges=self.ridges,
                normalizations=self.normalize_rows,
                search=self.search,
                rule=self.rule,
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"bandwidths, ridges, normalize_rows: {error}") from None

    def _rows(self, X, labels) -> tuple[np.ndarray, np.ndarray]:
        """(rows to fit, rows to validate on): the first split of ``cv``, or fit-rfm's split."""
        if self.cv is None:
            return validation_split(np.arange(len(X)), labels, self.validation_fraction, self.random_state)
        from sklearn.model_selection import check_cv

        splitter = check_cv(self.cv, labels, classifier=labels is not None)
        train, val = next(iter(splitter.split(X, labels)))
        return np.asarray(train), np.asarray(val)

    def _fit_selected(self, X, y_encoded: np.ndarray, task: Task, labels):
        device = _device(self.device)
        train, val = self._rows(X, labels)
        if len(train) < 1 or len(val) < 1:
            raise ValueError(
                f"{len(X)} rows leave {len(train)} to fit and {len(val)} to validate on; use more rows or"
                " another validation_fraction"
            )
        X_t = torch.tensor(np.asarray(X, dtype=np.float64), device=device)
        y_t = torch.tensor(y_encoded, device=device)
        options = RFMOptions(
            kernel=Kernel(defaults.KERNEL if self.kernel == AUTO_KERNEL else self.kernel, defaults.BANDWIDTH),
            method=self.method,
            iters=int(self.iters),
            nfa_power=float(self.nfa_power),
            fact_power=float(self.fact_power),
            form=self.form,
            centered_agop=bool(self.centered_agop),
            rescale=self.rescale,
            precision=self.precision,
            solve_tol=float(self.solve_tol),
        )
        rfm_cfg = SimpleNamespace(
            solver=self.solver,
            exact_max_rows=self.exact_max_rows,
            centers=self.centers,
            cg_max_iters=self.cg_max_iters,
        )
        try:
            choice = scalable.choose_solver(rfm_cfg, len(X), self.precision, device, None)
            options = scalable.with_choice(options, choice, rfm_cfg, self.random_state)
            split = Split.of(X_t, y_t, train, val)
            selection = select(task, self.kernel, self._spec(), options, split)
            fit, how = chosen_fit(options, selection, "strict")
            chosen = selection.chosen
            iterates = refit(task, fit, chosen.normalize, chosen.iteration, selection.M, how, X_t, y_t)
        except FactError as error:
            raise ValueError(str(error)) from None
        except FeatureCollapse as error:
            raise ValueError(f"{error}: the features carry no variation the kernel can see") from None
        except InaccurateSolve as error:
            raise ValueError(
                f"{error}; {_solve_advice(self.precision)} (or drop the smallest ridges)"
            ) from None
        self._keep(iterates[-1].predictor, chosen.normalize)
        self.solver_ = choice.solver
        self.chosen_ = {
            "kernel": chosen.kernel,
            "bandwidth": chosen.bandwidth,
            "ridge": chosen.ridge,
            "normalize_rows": chosen.normalize,
            "iteration": chosen.iteration,
            "form": selection.form,
        }
        self.best_score_ = chosen.val_score
        self.candidates_ = [candidate.row(task.metric) for candidate in selection.candidates]
        self.M_ = iterates[-1].M.cpu().numpy()
        self.n_iter_ = chosen.iteration
        return self


class _ClassifierOutputs:
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

    def _classes(self, X, y):
        X, y = validate_data(self, X, y, ensure_min_samples=2)
        check_classification_targets(y)  # a continuous y is refused ("Unknown label type")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"classification needs at least two classes; y has only one class: {self.classes_.tolist()}"
            )
        return X, encoded


class _RegressorOutputs:
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # n×t targets fit t outputs at once
        return tags

    def predict(self, X) -> np.ndarray:
        outputs = self._outputs(X)
        return outputs[:, 0] if self.single_output_ else outputs

    def _targets(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, ensure_min_samples=2)
        self.single_output_ = np.ndim(y) == 1
        return X, np.asarray(y, dtype=np.float64).reshape(len(y), -1)


class FactRFMClassifier(_ClassifierOutputs, ClassifierMixin, _FactRFM):
    """FACT-RFM classifier: one-hot targets, kernel ridge regression, argmax of the raw outputs."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        X, encoded = self._classes(X, y)
        return self._fit_targets(X, np.eye(len(self.classes_))[encoded])


class FactRFMRegressor(_RegressorOutputs, RegressorMixin, _FactRFM):
    """FACT-RFM regressor: kernel ridge regression on the (possibly multi-output) targets."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        X, Y = self._targets(X, y)
        return self._fit_targets(X, Y)


class FactRFMClassifierCV(_ClassifierOutputs, ClassifierMixin, _FactRFMCV):
    """FACT-RFM classifier with fit-rfm's selection on a validation split inside ``fit``."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        X, encoded = self._classes(X, y)
        return self._fit_selected(X, encoded, Task("classification", len(self.classes_)), encoded)


class FactRFMRegressorCV(_RegressorOutputs, RegressorMixin, _FactRFMCV):
    """FACT-RFM regressor with fit-rfm's selection on a validation split inside ``fit``."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        X, Y = self._targets(X, y)
        return self._fit_selected(X, Y, Task("regression", Y.shape[1]), None)
