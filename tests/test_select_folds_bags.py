"""Selection on k inner folds of the tuning rows, and bagged refits at evaluation (grid.py, protocol.py).

Each is checked against a loop written out here: the inner folds' scores against plain kernel ridge
regression solved by torch.linalg on every fold, the paths' against rfm_path run fold by fold, and
the bagged score against the mean of the separately fitted models' outputs. With k = 1 both are
the one-split selection and the single refit, bit for bit.
"""

import dataclasses

import pytest
import torch
from sklearn.model_selection import StratifiedKFold

from factcli.core import InvalidInput
from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, rfm_path
from factcli.experiments.rfm import grid as rfm_grid
from factcli.experiments.rfm.grid import GridSpec, best_of, feature_stage, kernel_stage, select
from factcli.experiments.rfm.protocol import Split, Task, fit_fold, inner_folds
from factcli.experiments.rfm.suite import Entry, Suite

TASK = Task("classification", 3)
SPEC = GridSpec(bandwidths=(0.5, 2.0), ridges=(1.0, 1e-2), normalizations=(False, True))
OPTIONS = RFMOptions(precision="float64", fact_power=2.0, iters=3)


def table(n=72, seed=0):
    """Three classes from a product of two features (a metric must find them) plus a noise feature."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = (X[:, 0] * X[:, 1] > 0).long() + (X[:, 0] > 1).long()
    return X, y


def tuning_split(n=72):
    X, y = table(n)
    half = n // 2
    return Split(X[:half], y[:half], X[half:], y[half:])


def normalized(X, on):
    return X / X.norm(dim=1, keepdim=True) if on else X


def brute_force_median(X):
    """Median of the positive pairwise L2 distances after centring (every row: n < 1,000); of an even
    count the lower middle one, as torch.median takes."""
    X = X - X.mean(0)
    distances = [float((X[i] - X[j]).norm()) for i in range(len(X)) for j in range(i + 1, len(X))]
    positive = sorted(d for d in distances if d > 0)
    return positive[(len(positive) - 1) // 2]


def test_inner_folds_partition_the_rows_stratified_and_refuse_too_few():
    y = torch.tensor([0] * 9 + [1] * 6 + [2] * 3)
    folds = inner_folds(TASK, y, 3)
    held = torch.cat([b for _, b in folds])
    assert sorted(held.tolist()) == list(range(len(y)))  # every row held out exactly once
    for a, b in folds:
        assert sorted(torch.cat([a, b]).tolist()) == list(range(len(y)))
        assert torch.bincount(y[b], minlength=3).tolist() == [3, 2, 1]  # stratified
    assert [b.tolist() for _, b in inner_folds(TASK, y, 3)] == [b.tolist() for _, b in folds]  # seeded
    tiny = inner_folds(TASK, torch.tensor([0, 1, 2, 0, 1]), 4)  # no class has 4 rows: plain k-fold
    assert sorted(torch.cat([b for _, b in tiny]).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(InvalidInput, match="at least k rows"):
        inner_folds(TASK, torch.tensor([0, 1, 0]), 4)
    with pytest.raises(InvalidInput, match="grid folds"):
        GridSpec(folds=0)


def test_one_fold_is_todays_selection_bit_for_bit():
    split = tuning_split()
    stage = kernel_stage(TASK, "laplace", SPEC, OPTIONS, split)
    scaled = kernel_stage(TASK, "laplace", SPEC, OPTIONS, split, scale_rows=split.X_train)
    assert stage.candidates == scaled.candidates  # the median taken on the same rows: same numbers
    best0 = best_of(TASK, stage.candidates)
    paths = feature_stage(TASK, stage, SPEC, OPTIONS, split)
    started = feature_stage(TASK, stage, SPEC, OPTIONS, split, start=(best0.bandwidth, best0.normalize))
    assert paths.candidates == started.candidates and torch.equal(paths.M, started.M)
    for kernel in ("laplace", "auto"):
        today = select(TASK, kernel, SPEC, OPTIONS, split)
        one = select(TASK, kernel, dataclasses.replace(SPEC, folds=1), OPTIONS, split)
        assert one.chosen == today.chosen and one.candidates == today.candidates
        assert torch.equal(one.M, today.M)


def test_inner_fold_scores_are_the_mean_of_plain_krr_on_every_fold():
    split, k = tuning_split(), 3
    spec = dataclasses.replace(SPEC, folds=k)
    selection = select(TASK, "laplace", spec, dataclasses.replace(OPTIONS, method="laplace"), split)
    X, y = torch.cat([split.X_train, split.X_held_out]), torch.cat([split.y_train, split.y_held_out])
    folds = list(StratifiedKFold(k, shuffle=True, random_state=0).split(X.numpy(), y.numpy()))
    expected = {}
    for normalize in (False, True):
        median = brute_force_median(normalized(X, normalize))
        for s in spec.bandwidths:
            for ridge in spec.ridges:
                accuracies = []
                for a, b in folds:
                    A, B = normalized(X[a], normalize), normalized(X[b], normalize)
                    K = torch.exp(-torch.cdist(A, A) / (s * median))
                    Y = torch.nn.functional.one_hot(y[a], 3).double()
                    alpha = torch.linalg.solve(K + ridge * torch.eye(len(a), dtype=torch.float64), Y)
                    outputs = torch.exp(-torch.cdist(B, A) / (s * median)) @ alpha
                    accuracies.append(float((outputs.argmax(1) == y[b]).double().mean()))
                expected[(s, normalize, ridge)] = sum(accuracies) / k
    assert len(selection.candidates) == len(expected) == 8
    for c in selection.candidates:
        s = next(
            s
            for s in spec.bandwidths
            if abs(c.bandwidth - s * brute_force_median(normalized(X, c.normalize))) < 1e-10
        )
        assert c.iteration == 0 and c.val_score == pytest.approx(
            expected[(s, c.normalize, c.ridge)], abs=1e-12
        )
    best = max(expected.values())
    assert selection.chosen.val_score == pytest.approx(best, abs=1e-12)
    assert max(c.val_score for c in selection.candidates) == selection.chosen.val_score


def test_inner_fold_paths_are_the_mean_of_rfm_path_on_every_fold():
    split, k = tuning_split(), 3
    spec = dataclasses.replace(SPEC, folds=k)
    selection = select(TASK, "laplace", spec, OPTIONS, split)
    X, y = torch.cat([split.X_train, split.X_held_out]), torch.cat([split.y_train, split.y_held_out])
    folds = list(StratifiedKFold(k, shuffle=True, random_state=0).split(X.numpy(), y.numpy()))
    stage0 = [c for c in selection.candidates if c.iteration == 0]
    best0 = max(stage0, key=lambda c: (c.val_score, -c.iteration, c.ridge, c.bandwidth, not c.normalize))
    paths = [c for c in selection.candidates if c.iteration > 0]
    assert len(paths) == len(spec.ridges) * OPTIONS.iters
    assert {(c.bandwidth, c.normalize) for c in paths} == {(best0.bandwidth, best0.normalize)}
    for ridge in spec.ridges:
        scores = torch.zeros(OPTIONS.iters + 1, dtype=torch.float64)
        for a, b in folds:
            A, B = normalized(X[a], best0.normalize), normalized(X[b], best0.normalize)
            options = dataclasses.replace(OPTIONS, kernel=Kernel("laplace", best0.bandwidth), ridge=ridge)
            for iterate in rfm_path(A, TASK.targets(y[a]), options):
                scores[iterate.t] += TASK.score(iterate.predictor(B), y[b]) / k
        for c in paths:
            if c.ridge == ridge:
                assert c.val_score == pytest.approx(float(scores[c.iteration]), abs=1e-12)
    if selection.chosen.iteration > 0:  # each fold learned its own M: none is the selection's
        assert selection.M is None


def test_bagged_refit_scores_the_mean_of_the_fold_models_outputs():
    X, y = table(96, seed=1)
    split = Split(X[:72], y[:72], X[72:], y[72:])
    fit = dataclasses.replace(OPTIONS, kernel=Kernel("laplace", 2.0), ridge=1e-2)
    k, t = 3, 2
    result = fit_fold(TASK, fit, True, t, None, "strict", split, bags=k)
    outputs = torch.zeros(t + 1, 24, 3, dtype=torch.float64)
    for a, _ in StratifiedKFold(k, shuffle=True, random_state=0).split(split.X_train, split.y_train):
        path = rfm_path(normalized(split.X_train[a], True), TASK.targets(split.y_train[a]), fit)
        for iterate in path:
            if iterate.t <= t:
                outputs[iterate.t] += iterate.predictor(normalized(split.X_held_out, True)) / k
    expected = [float((o.argmax(1) == split.y_held_out).double().mean()) for o in outputs]
    assert result.path_scores == pytest.approx(expected, abs=1e-12)
    assert result.score == result.path_scores[-1]
    single = fit_fold(TASK, fit, True, t, None, "strict", split)
    alone = list(rfm_path(normalized(split.X_train, True), TASK.targets(split.y_train), fit))[t]
    assert single.score == TASK.score(alone.predictor(normalized(split.X_held_out, True)), split.y_held_out)
    assert torch.equal(single.M, alone.M)


def test_suite_entries_with_folds_and_bags(shared_data):
    from factcli.data.uci import load_uci

    data = load_uci(shared_data / "uci", "iris")
    options = RFMOptions(kernel=Kernel("laplace", 10.0), precision="float64")
    spec = GridSpec(bandwidths=(1.0, 4.0), ridges=(1.0, 1e-2))
    default = Entry("fact", kernel="auto", fact_power=2.0)
    bagged = Entry("fact-bag", kernel="auto", fact_power=2.0, bags=4)
    shared = Suite(data, spec, options)
    first = shared.run(default, ["strict"])[0]
    after = shared.run(bagged, ["strict"])[0]  # the t = 0 fold fits cached for `fact` are not reused
    alone = Suite(data, spec, options).run(bagged, ["strict"])[0]
    assert after["test_accuracy"] == alone["test_accuracy"] and after["error"] == ""
    assert (first["bandwidth"], first["ridge"]) == (after["bandwidth"], after["ridge"])  # same selection
    folded = Entry("fact-cv", kernel="auto", fact_power=2.0, folds=4)
    row = Suite(data, spec, options).run(folded, ["strict"])[0]
    assert row["error"] == "" and 80 < row["test_accuracy"] <= 100
    with pytest.raises(InvalidInput, match="folds and bags apply to krr and rfm"):
        Entry("svc", kind="svc", bags=4)
    with pytest.raises(InvalidInput, match="bags must be a whole number"):
        Entry("x", bags=0)


def test_paper_protocol_refuses_a_selection_without_one_m():
    split = tuning_split()
    selection = select(TASK, "laplace", dataclasses.replace(SPEC, folds=3), OPTIONS, split)
    chosen = dataclasses.replace(selection.chosen, iteration=2)
    without_m = dataclasses.replace(selection, chosen=chosen, M=None)
    with pytest.raises(InvalidInput, match="use the strict protocol"):
        rfm_grid.evaluate(TASK, OPTIONS, without_m, "paper", split)
    assert rfm_grid.evaluate(TASK, OPTIONS, without_m, "strict", split).score > 0.3
