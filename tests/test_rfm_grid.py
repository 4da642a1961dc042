"""The grid selection: shared stage 0, the tie rule, the noise rule, the suite's rows on real data."""

import math

import pytest
import torch

from factcli.core.kernels import Kernel
from factcli.core.rfm import RFMOptions, rfm_path
from factcli.core.solvers import EigenSolver
from factcli.experiments.rfm import grid as rfm_grid
from factcli.experiments.rfm.grid import Candidate, GridSpec, choose, kernel_stage
from factcli.experiments.rfm.protocol import Split, Task

TASK = Task("classification", 2)


def candidate(val, t=0, ridge=1.0, bandwidth=1.0, normalize=False, kernel="laplace", stderr=0.0):
    return Candidate(kernel, bandwidth, normalize, ridge, t, val, stderr, 1.0)


def test_ties_go_to_the_simplest_candidate_whatever_the_order():
    tied = [
        candidate(0.9, t=2, ridge=10.0),
        candidate(0.9, t=0, ridge=0.1, bandwidth=4.0),
        candidate(0.9, t=0, ridge=1.0, bandwidth=1.0, normalize=True),
        candidate(0.9, t=0, ridge=1.0, bandwidth=1.0, normalize=False, kernel="l1"),
        candidate(0.9, t=0, ridge=1.0, bandwidth=2.0, normalize=True),
        candidate(0.9, t=0, ridge=1.0, bandwidth=1.0, normalize=False),
        candidate(0.8, t=0, ridge=100.0),
    ]
    expected = candidate(0.9, t=0, ridge=1.0, bandwidth=2.0, normalize=True)  # fewer t, larger ridge, L
    for order in (tied, tied[::-1], tied[3:] + tied[:3]):
        assert choose(TASK, order) == expected
    assert choose(TASK, tied[5:6] + tied[3:4]).kernel == "laplace"  # last key: kernel order
    regression = Task("regression", 1)
    assert choose(regression, [candidate(0.5, ridge=1.0), candidate(0.4, t=3)]).iteration == 3  # lower MSE


def test_noise_rule_keeps_t0_unless_the_gain_exceeds_its_standard_error():
    base = candidate(0.80, stderr=0.04)
    assert choose(TASK, [base, candidate(0.83, t=2)], rule="noise") == base
    assert choose(TASK, [base, candidate(0.85, t=2)], rule="noise").iteration == 2
    assert choose(TASK, [base, candidate(0.83, t=2)], rule="best").iteration == 2
    p, se = rfm_grid.score_with_error(
        TASK, torch.tensor([[1.0, 0], [0, 1], [0, 1], [1, 0]]), torch.tensor([0, 1, 0, 0])
    )
    assert p == 0.75 and se == pytest.approx(math.sqrt(0.75 * 0.25 / 4))


def two_moons(n, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = ((X[:, 0] * X[:, 1] > 0) ^ (X[:, 2] > 1)).long()
    return X, y


@pytest.mark.parametrize("kernel", ["laplace", "l1"])
def test_stage0_solves_are_the_paths_t0_and_eigen_equals_cholesky(kernel):
    X, y = two_moons(160, 0)
    split = Split(X[:100], y[:100], X[100:], y[100:])
    options = RFMOptions(precision="float64")
    spec = GridSpec(bandwidths=(1.0, 4.0), ridges=(1.0, 1e-3))
    stage = kernel_stage(TASK, kernel, spec, options, split)
    eigen = kernel_stage(TASK, kernel, spec, RFMOptions(precision="float64", solver=EigenSolver()), split)
    assert len(stage.candidates) == 2 * 2 * 2 and stage.unsolved == 0
    for a, b in zip(stage.candidates, eigen.candidates, strict=True):
        assert (a.bandwidth, a.ridge, a.val_score) == (b.bandwidth, b.ridge, b.val_score)
    for (bandwidth, normalize, ridge), fit in stage.solves.items():
        alpha = fit.alpha
        torch.testing.assert_close(
            eigen.solves[(bandwidth, normalize, ridge)].alpha, alpha, rtol=0, atol=1e-10
        )
        A = X[:100] / X[:100].norm(dim=1, keepdim=True) if normalize else X[:100]
        fresh = next(
            iter(
                rfm_path(
                    A,
                    TASK.targets(y[:100]),
                    RFMOptions(Kernel(kernel, bandwidth), "laplace", ridge, precision="float64"),
                )
            )
        )
        torch.testing.assert_close(fresh.predictor.alpha, alpha, rtol=0, atol=1e-10)
    # Bandwidths are multiples of the median distance (the kernel's own metric) of the training rows.
    median = rfm_grid.median_distance(kernel, X[:100])
    assert sorted({c.bandwidth for c in stage.candidates if not c.normalize}) == pytest.approx(
        [median, 4 * median]
    )
    pairs = torch.cdist(X[:100], X[:100], p=1.0 if kernel == "l1" else 2.0)
    assert median == pytest.approx(pairs[torch.triu_indices(100, 100, 1).unbind()].median().item())


def test_feature_stage_adds_paths_from_the_best_setting_and_strict_never_reads_test_labels():
    X, y = two_moons(200, 1)
    split = Split(X[:120], y[:120], X[120:160], y[120:160])
    options = RFMOptions(method="fact", iters=2, precision="float64")
    spec = GridSpec(bandwidths=(1.0, 4.0), ridges=(1.0, 1e-2))
    stage = kernel_stage(TASK, "laplace", spec, options, split)
    selection = rfm_grid.feature_stage(TASK, stage, spec, options, split)
    best0 = rfm_grid.best_of(TASK, stage.candidates)
    paths = [c for c in selection.candidates if c.iteration > 0]
    assert len(paths) == 2 * 2  # 2 ridges × t = 1, 2, from the best stage-0 setting only
    assert {(c.bandwidth, c.normalize) for c in paths} == {(best0.bandwidth, best0.normalize)}
    every = rfm_grid.feature_stage(
        TASK, stage, GridSpec(bandwidths=(1.0, 4.0), ridges=(1.0, 1e-2), search="all"), options, split
    )
    assert len([c for c in every.candidates if c.iteration > 0]) == 4 * 2 * 2
    fold = Split(X[:160], y[:160], X[160:], y[160:])
    result = rfm_grid.evaluate(TASK, options, selection, "strict", fold)
    shuffled = rfm_grid.evaluate(
        TASK, options, selection, "strict", Split(X[:160], y[:160], X[160:], 1 - y[160:])
    )
    torch.testing.assert_close(result.M, shuffled.M, rtol=0, atol=0)
    assert result.score + shuffled.score == pytest.approx(1.0)  # only the scoring saw the labels


def test_suite_rows_on_a_real_dataset(shared_data):
    from factcli.data.uci import load_uci
    from factcli.experiments.rfm.suite import TABLE_COLUMNS, Entry, Suite

    data = load_uci(shared_data / "uci", "iris")
    options = RFMOptions(kernel=Kernel("laplace", 10.0), iters=2, precision="float64")
    suite = Suite(data, GridSpec(bandwidths=(1.0, 4.0), ridges=(1.0, 1e-2)), options)
    rows = []
    for entry in (
        Entry("L2-KRR", "krr"),
        Entry("L1-KRR", "krr", kernel="l1"),
        Entry("SVC-RBF", "svc"),
        Entry("fact", kernel="l1", form="diagonal"),
    ):
        rows += suite.run(entry, ["strict", "paper"])
    assert all(set(row) == set(TABLE_COLUMNS) for row in rows)
    assert all(row["error"] == "" and row["test_accuracy"] > 85 for row in rows)
    krr = [r for r in rows if r["label"] == "L1-KRR"]
    assert krr[0]["test_accuracy"] == krr[1]["test_accuracy"]  # t = 0: the protocols coincide
    fact = [r for r in rows if r["label"] == "fact"]
    if fact[0]["iteration"] == 0:  # then its folds are the cached L1-KRR fits at the same point
        assert (
            fact[0]["bandwidth"] != krr[0]["bandwidth"] or fact[0]["test_accuracy"] == krr[0]["test_accuracy"]
        )


def test_kernel_selected_on_validation_takes_the_best_stage0_kernel_and_its_paths():
    X, y = two_moons(160, 2)
    parts = (Split(X[:100], y[:100], X[100:], y[100:]),)
    options = RFMOptions(method="fact", iters=1, precision="float64")
    spec = GridSpec(bandwidths=(1.0, 4.0), ridges=(1.0, 1e-2))
    stages = {kernel: kernel_stage(TASK, kernel, spec, options, *parts) for kernel in ("laplace", "l1")}
    best0 = rfm_grid.best_of(TASK, stages["laplace"].candidates + stages["l1"].candidates)
    selection = rfm_grid.select(TASK, "auto", spec, options, *parts, stage_of=stages.get)
    assert {c.kernel for c in selection.candidates if c.iteration > 0} == {best0.kernel}  # its paths only
    assert len(selection.candidates) == 2 * 8 + 2  # both stages, and t = 1 for 2 ridges
    assert selection.chosen.val_score >= best0.val_score
    assert selection.form == ("diagonal" if best0.kernel == "l1" else "full")  # L1: a diagonal M
    krr = rfm_grid.select(TASK, "auto", spec, RFMOptions(method="laplace"), *parts, stage_of=stages.get)
    assert krr.chosen == best0
    # Computed here instead of shared: the same selection.
    again = rfm_grid.select(TASK, "auto", spec, options, *parts)
    assert again.chosen == selection.chosen
