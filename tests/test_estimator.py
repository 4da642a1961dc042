"""FACT-RFM as scikit-learn estimators: the API contract, held-out accuracy, and the same algorithm
as `fact fit-rfm` (the plain estimators with its grid off, the CV estimators with its selection)."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from factcli.estimator import FactRFMClassifier, FactRFMClassifierCV, FactRFMRegressor, FactRFMRegressorCV


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_classifier_in_a_pipeline_scores_well_on_held_out_data(cancer):
    X_train, X_test, y_train, y_test = cancer
    model = make_pipeline(StandardScaler(), FactRFMClassifier(ridge=0.1, iters=3)).fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.93
    rfm = model[-1]
    assert rfm.M_.shape == (30, 30) and np.trace(rfm.M_) == pytest.approx(30)
    assert rfm.n_iter_ == 3 and len(rfm.history_) == 4
    assert not np.allclose(rfm.M_, np.eye(30))  # features were learned


def test_grid_search_and_clone_follow_the_estimator_contract(cancer):
    X_train, X_test, y_train, y_test = cancer
    estimator = FactRFMClassifier(method="nfa", ridge=1.0)
    assert clone(estimator).get_params() == estimator.get_params()
    search = GridSearchCV(
        make_pipeline(StandardScaler(), estimator),
        {"factrfmclassifier__ridge": [0.1, 1.0], "factrfmclassifier__iters": [0, 2]},
        cv=3,
    ).fit(X_train, y_train)
    assert search.best_score_ > 0.9 and search.score(X_test, y_test) > 0.9


def test_labels_of_any_type_come_back_unchanged(cancer):
    X_train, X_test, y_train, _ = cancer
    names = np.array(["benign", "malignant"])
    X_scaled = StandardScaler().fit(X_train)
    model = FactRFMClassifier(iters=1).fit(X_scaled.transform(X_train), names[y_train])
    assert set(model.predict(X_scaled.transform(X_test))) <= set(names)
    assert list(model.classes_) == ["benign", "malignant"]


def test_same_data_same_model():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    a = FactRFMClassifier(iters=2).fit(X, y)
    b = FactRFMClassifier(iters=2).fit(X, y)
    np.testing.assert_array_equal(a.M_, b.M_)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


def test_regressor_explains_diabetes_progression():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    model = make_pipeline(StandardScaler(), FactRFMRegressor(ridge=1.0, iters=2)).fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.3  # R² on held-out patients (linear regression: ~0.4)
    assert model.predict(X_test).shape == (len(y_test),)


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="at least two classes"):
        FactRFMClassifier().fit(np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10))


def test_solve_tolerance_reaches_the_solver():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X[:80])
    FactRFMRegressor(precision="float64", iters=1).fit(X, y[:80])  # the default tolerance accepts it
    # Already in float64: the advice is the ridge only (it used to advise float64 here too).
    with pytest.raises(ValueError, match="relative residual .* > 1e-30; raise ridge$"):
        FactRFMRegressor(precision="float64", iters=1, solve_tol=1e-30).fit(X, y[:80])
    with pytest.raises(ValueError, match="relative residual .* raise ridge or use precision='float64'"):
        FactRFMRegressor(precision="float32", iters=1, solve_tol=1e-30).fit(X, y[:80])


ESTIMATORS = [FactRFMClassifier, FactRFMRegressor, FactRFMClassifierCV, FactRFMRegressorCV]


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize(
    ("parameter", "value"),
    [("ridge", None), ("centered_agop", "no"), ("iters", -1), ("iters", 2.5), ("method", "magic")],
)
def test_bad_parameters_are_refused_naming_the_parameter(estimator, parameter, value):
    """One declaration of the allowed values; before it, ridge=None died in float() with a TypeError
    and centered_agop='no' was taken as True."""
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    model = estimator(**({"ridges": [None]} if parameter == "ridge" and estimator in ESTIMATORS[2:] else {}))
    if "ridges" not in model.get_params() or parameter != "ridge":
        model.set_params(**{parameter: value})
    with pytest.raises((InvalidParameterError, ValueError), match=f"{parameter}|ridges|bandwidths"):
        model.fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_cuda_without_cuda_is_a_one_line_value_error(estimator):
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match="device='cuda' but no CUDA device is available"):
        estimator(device="cuda").fit(X, y)  # was an AssertionError from torch


def test_the_plain_estimator_runs_fit_rfms_algorithm_with_the_grid_off():
    """The same options dataclass as fit-rfm's (update, fact_power, form, rescale, precision, solver):
    only the grid's choices (kernel, bandwidth, ridge) are the estimator's own."""
    from omegaconf import OmegaConf

    from factcli.core.kernels import Kernel
    from factcli.experiments.rfm.folds import fit_options
    from factcli.schema.fit_rfm import Config

    cfg = OmegaConf.structured(Config())
    estimator = FactRFMClassifier()
    cli = fit_options(cfg, cfg.method)
    options = estimator._options()
    assert options.fact_power == 2.0 and options == type(cli)(
        **{**cli.__dict__, "kernel": Kernel(estimator.kernel, estimator.bandwidth), "ridge": estimator.ridge}
    )
    cv = FactRFMClassifierCV()
    assert (cv.kernel, cv.fact_power, cv.iters) == (cfg.kernel.name, cfg.rfm.fact_power, cfg.rfm.iters)
    assert list(cv.ridges) == list(cfg.grid.ridges) and list(cv.bandwidths) == list(cfg.grid.bandwidths)
    assert cv.validation_fraction == cfg.data.val_fraction and cv.solver == cfg.rfm.solver


def write_csv(path, X, y):
    header = ",".join([f"x{j}" for j in range(X.shape[1])] + ["label"])
    rows = [",".join([*(repr(float(v)) for v in x), str(int(label))]) for x, label in zip(X, y, strict=True)]
    path.write_text("\n".join([header, *rows]) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iris", "wine", "breast-cancer"])
def test_the_cv_estimator_selects_and_predicts_as_fit_rfm(name, shared_data, fact_cli, tmp_path):
    """The same training rows (a fold's), validation split and seed: FactRFMClassifierCV() and
    `fact fit-rfm` (its default selection, strict protocol) choose the same configuration, reach the
    same validation score and score the same test rows identically."""
    from factcli.data.uci import load_uci

    data = load_uci(shared_data / "uci", name)
    train, test = data.splits.folds[0]
    write_csv(tmp_path / "train.csv", data.X[train], data.y[train])
    write_csv(tmp_path / "test.csv", data.X[test], data.y[test])
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm",
        f"dataset={tmp_path / 'train.csv'}",
        f"data.test={tmp_path / 'test.csv'}",
        "data.target=label",
        "data.task=classification",
        "data.standardize=no",
        "plots=false",
        "threads=1",
        f"hydra.run.dir={out}",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    model = FactRFMClassifierCV().fit(data.X[train], data.y[train])
    chosen = {key: model.chosen_[key] for key in ("bandwidth", "ridge", "normalize_rows", "iteration")}
    assert chosen == pytest.approx(summary["chosen"])
    assert (model.chosen_["kernel"], model.chosen_["form"]) == (
        summary["kernel"]["name"],
        summary["rfm"]["form"],
    )
    assert model.best_score_ == summary["val_accuracy"]
    assert model.score(data.X[test], data.y[test]) == summary["test_accuracy"]


@pytest.fixture(scope="module")
def one_thread():
    """The checks fit tiny problems: one thread each for torch and BLAS (no spinning siblings on a
    shared machine, where two threads made them ten times slower)."""
    from threadpoolctl import threadpool_limits

    from factcli.runtime import threads_within

    with threads_within(1), threadpool_limits(1):
        yield


# Every check passes, at the default precision too: predictions are made in float64 whatever the
# fit's precision, so a subset scores exactly as within the whole batch (check_methods_subset_invariance).
# scikit-learn itself skips check_array_api_input unless SCIPY_ARRAY_API=1 is set before SciPy loads.
@parametrize_with_checks(
    [FactRFMClassifier(), FactRFMRegressor(), FactRFMClassifierCV(), FactRFMRegressorCV()]
)
def test_scikit_learn_estimator_checks(estimator, check, one_thread):
    check(estimator)


@pytest.mark.parametrize("estimator", [FactRFMClassifier(), FactRFMRegressor(), FactRFMClassifierCV()])
def test_not_fitted_error_before_fit(estimator):
    for method in ("predict", "decision_function", "predict_proba"):
        if hasattr(estimator, method):
            with pytest.raises(NotFittedError):
                getattr(estimator, method)(np.ones((3, 2)))


def test_classifier_refuses_a_continuous_target():
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        FactRFMClassifier().fit(X, X[:, 0] * 1.5)


def test_predict_proba_is_the_closest_probability_vector_and_agrees_with_predict(cancer):
    X_train, X_test, y_train, y_test = cancer
    scaler = StandardScaler().fit(X_train)
    model = FactRFMClassifier(iters=1).fit(scaler.transform(X_train), y_train)
    proba = model.predict_proba(scaler.transform(X_test))
    assert proba.shape == (len(X_test), 2) and (proba >= 0).all() and np.allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(model.classes_[proba.argmax(1)], model.predict(scaler.transform(X_test)))
    margin = model.decision_function(scaler.transform(X_test))
    np.testing.assert_allclose(proba[:, 1], np.clip((1 + margin) / 2, 0, 1), atol=1e-12)
