"""Parity data and the measures of a feature matrix, each against an independent computation."""

import functools
import math
import operator

import numpy as np
import pytest
import scipy.stats
import torch

from factcli.data.parity import draw_support, make_parity
from factcli.experiments.parity.experiment import summarize
from factcli.experiments.parity.measures import (
    accuracy_and_mse,
    effective_rank,
    feature_measures,
    support_mass,
    top_coordinates,
    top_k_is_support,
)
from factcli.experiments.parity.sweep import (
    phase_transition_table,
    smallest_n_reaching,
    write_phase_transition,
)

# ------------------------------------------------------------------------------------ data


def test_labels_are_the_xor_of_the_support_bits():
    data = make_parity(n=64, d=9, k=3, test_size=32, seed=3, support=[8, 0, 4])
    assert data.support == (0, 4, 8)
    for X, y in ((data.X_train, data.y_train), (data.X_test, data.y_test)):
        assert set(np.unique(X)) <= {0.0, 1.0}
        expected = [functools.reduce(operator.xor, (int(row[j]) for j in (0, 4, 8))) for row in X]
        assert y.tolist() == expected


def test_sign_inputs_encode_the_same_bits_and_labels():
    bits = make_parity(n=50, d=7, k=2, test_size=20, seed=1)
    signs = make_parity(n=50, d=7, k=2, test_size=20, seed=1, inputs="signs")
    assert set(np.unique(signs.X_train)) == {-1.0, 1.0}
    np.testing.assert_array_equal(signs.X_train, 2 * bits.X_train - 1)
    np.testing.assert_array_equal(signs.y_train, bits.y_train)
    np.testing.assert_array_equal(signs.X_test, 2 * bits.X_test - 1)
    # with ±1 inputs the label is also the sign of the product of the support's coordinates
    product = signs.X_test[:, list(signs.support)].prod(axis=1)
    np.testing.assert_array_equal(signs.y_test, (product < 0).astype(int))


def test_support_is_drawn_with_the_seed():
    supports = {draw_support(50, 4, seed) for seed in range(20)}
    assert len(supports) > 15  # different seeds, different supports
    for support in supports:
        assert (
            len(set(support)) == 4 and all(0 <= j < 50 for j in support) and list(support) == sorted(support)
        )
    assert draw_support(50, 4, 7) == draw_support(50, 4, 7)
    assert make_parity(10, 50, 4, 5, seed=7).support == draw_support(50, 4, 7)


def test_samples_are_nested_in_n_and_the_test_set_does_not_depend_on_n():
    small = make_parity(n=100, d=20, k=3, test_size=50, seed=5)
    large = make_parity(n=300, d=20, k=3, test_size=50, seed=5)
    np.testing.assert_array_equal(small.X_train, large.X_train[:100])
    np.testing.assert_array_equal(small.X_test, large.X_test)
    other_seed = make_parity(n=100, d=20, k=3, test_size=50, seed=6, support=small.support)
    assert not np.array_equal(small.X_train, other_seed.X_train)


def test_label_noise_flips_training_labels_only():
    clean = make_parity(n=4000, d=10, k=2, test_size=500, seed=0)
    noisy = make_parity(n=4000, d=10, k=2, test_size=500, seed=0, label_noise=0.2)
    flipped = clean.y_train != noisy.y_train
    assert flipped.sum() == noisy.flipped
    assert 0.17 < noisy.flipped / 4000 < 0.23
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)


def test_bad_support_is_refused():
    with pytest.raises(ValueError, match="distinct"):
        make_parity(10, 5, 2, 5, support=[1, 1])
    with pytest.raises(ValueError, match="distinct"):
        make_parity(10, 5, 2, 5, support=[1, 5])


# -------------------------------------------------------------------------------- measures


def test_support_mass_by_hand():
    M = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    M[0, 1] = M[1, 0] = 5.0  # off-diagonal entries do not count
    assert support_mass(M, [1, 3]) == pytest.approx((2 + 4) / 10, abs=1e-15)
    assert support_mass(torch.eye(50), range(4)) == pytest.approx(4 / 50, abs=1e-15)


@pytest.mark.parametrize(
    "diagonal, support, expected",
    [
        ([5.0, 1.0, 4.0, 2.0], [0, 2], True),
        ([5.0, 1.0, 4.0, 2.0], [2, 0], True),  # order does not matter
        ([5.0, 1.0, 4.0, 2.0], [0, 3], False),  # 2 is not among the top 2
        ([5.0, 4.0, 4.0, 2.0], [0, 2], False),  # a tie with an outside coordinate is no recovery
        ([1.0, 1.0, 1.0, 1.0], [0, 1], False),  # M = I recovers nothing
        ([1.0, 2.0, 3.0], [0, 1, 2], True),  # k = d
    ],
)
def test_top_k_exact(diagonal, support, expected):
    assert top_k_is_support(torch.diag(torch.tensor(diagonal)), support) is expected


def test_top_coordinates_largest_first():
    assert top_coordinates(torch.diag(torch.tensor([0.1, 3.0, 2.0, 5.0])), 3) == [3, 1, 2]


def test_effective_rank_of_identity_projector_and_by_hand():
    assert effective_rank(torch.eye(50)) == pytest.approx(50, rel=1e-12)
    Q, _ = torch.linalg.qr(
        torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    )
    assert effective_rank(Q @ Q.T) == pytest.approx(3, rel=1e-9)  # a rank-3 projector
    # eigenvalues (1, 1, 2): p = (1/4, 1/4, 1/2), entropy = 1.5 ln 2, effective rank 2^1.5
    assert effective_rank(torch.diag(torch.tensor([1.0, 1.0, 2.0]))) == pytest.approx(2**1.5, rel=1e-12)


def test_effective_rank_against_numpy_and_scipy():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 7))
    M = A @ A.T  # PSD of rank 7, with eigenvalues near 0 that rounding can make slightly negative
    eigenvalues = np.clip(np.linalg.eigvalsh(M), 0, None)
    expected = math.exp(scipy.stats.entropy(eigenvalues))  # scipy normalizes to a distribution
    assert effective_rank(torch.from_numpy(M)) == pytest.approx(expected, rel=1e-10)
    assert effective_rank(torch.zeros(3, 3)) == 0.0


def test_feature_measures_row():
    M = torch.diag(torch.tensor([0.5, 9.0, 0.5, 8.0]))
    row = feature_measures(M, (1, 3))
    assert row["top_k_exact"] is True and row["top_k"] == "1 3"
    assert row["support_mass"] == pytest.approx(17 / 18, abs=1e-15)


def test_accuracy_and_mse_by_hand():
    outputs = torch.tensor([[0.9, 0.1], [0.2, 0.6], [0.7, 0.4]])
    labels = torch.tensor([0, 1, 1])
    accuracy, mse = accuracy_and_mse(outputs, labels)
    assert accuracy == pytest.approx(2 / 3)
    squares = [0.1**2, 0.1**2, 0.2**2, 0.4**2, 0.7**2, 0.6**2]
    assert mse == pytest.approx(sum(squares) / 6, rel=1e-6)


def _row(t, accuracy, mass, exact):
    return {
        "iteration": t,
        "test_accuracy": accuracy,
        "test_mse": 0.25 if accuracy < 0.9 else 0.01,
        "support_mass": mass,
        "top_k_exact": exact,
        "effective_rank": 10.0,
    }


def test_summary_finds_the_jump_and_the_hidden_progress():
    from types import SimpleNamespace

    rows = [
        _row(0, 0.50, 0.08, False),
        _row(1, 0.51, 0.10, True),
        _row(2, 0.53, 0.20, True),
        _row(3, 0.70, 0.40, True),
        _row(4, 0.96, 0.70, True),
        _row(5, 0.995, 0.80, True),
    ]
    cfg = SimpleNamespace(learner="fact", d=50, k=4, n=100, test_size=10, inputs="bits", label_noise=0.0)
    summary = summarize(rows, "iteration", SimpleNamespace(support=(0, 1, 2, 3)), cfg, 1.0)
    assert summary["first_95_at"] == 4 and summary["first_99_at"] == 5
    assert summary["loss_drop_at"] == 4
    assert summary["near_chance_before_95"] == 3  # iterations 0, 1, 2 lie within 5 points of 50%
    assert summary["support_mass_rise_near_chance"] == pytest.approx(0.12)
    assert summary["first_support_recovered_at"] == 1 and summary["support_recovered"] is True
    assert summary["test_accuracy"] == 0.995 and summary["best_test_accuracy"] == 0.995


def test_phase_transition_table_and_smallest_n():
    def job(learner, k, n, accuracy, status="finished"):
        return {"status": status, "learner": learner, "d": 50, "k": k, "n": n, "test_accuracy": accuracy}

    jobs = [
        job("fact", 4, 500, 0.5),
        job("fact", 4, 1000, 0.97),
        job("fact", 4, 1000, 0.91),  # a second seed: mean 0.94 < 0.95
        job("fact", 4, 2000, 0.99),
        job("nfa", 4, 500, 0.5),
        job("nfa", 4, 2000, 0.6),
        job("nfa", 4, 4000, 0.99, status="failed"),  # failed jobs are left out
    ]
    table = phase_transition_table(jobs)
    fact_1000 = next(r for r in table if r["learner"] == "fact" and r["n"] == 1000)
    assert fact_1000["mean_test_accuracy"] == pytest.approx(0.94) and fact_1000["seeds"] == 2
    assert (fact_1000["min_test_accuracy"], fact_1000["max_test_accuracy"]) == (0.91, 0.97)
    smallest = {row["learner"]: row["smallest_n"] for row in smallest_n_reaching(table)}
    assert smallest == {"fact": 2000, "nfa": None}


def test_phase_transition_pools_several_sweeps(tmp_path):
    """Seeds run as separate sweeps are pooled: each (learner, k, n) averages over every sweep's jobs."""
    import json

    def fake_job(sweep, number, seed, n, accuracy):
        job = tmp_path / sweep / str(number)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- n={n}\n- seed={seed}\n")
        summary = {
            "status": "finished",
            "learner": "fact",
            "d": 50,
            "k": 4,
            "n": n,
            "test_accuracy": accuracy,
        }
        (job / "summary.json").write_text(json.dumps(summary))

    fake_job("seed0", 0, 0, 1000, 0.50)
    fake_job("seed0", 1, 0, 4000, 0.92)
    fake_job("seed1", 0, 1, 1000, 0.52)
    fake_job("seed1", 1, 1, 4000, 1.00)
    out = tmp_path / "pooled"
    assert write_phase_transition(out, [tmp_path / "seed0", tmp_path / "seed1"]).exists()
    smallest = json.loads((out / "phase_transition.json").read_text())
    assert smallest == [
        {"learner": "fact", "d": 50, "k": 4, "target": 0.95, "smallest_n": 4000, "largest_n_tried": 4000}
    ]
    table = (out / "phase_transition.csv").read_text().splitlines()
    assert table[2].startswith("fact,50,4,4000,0.96,0.92,1.0,2")
    assert write_phase_transition(tmp_path / "seed0" / "0") is None  # no jobs there: nothing to plot


def test_phase_transition_of_two_dimensions_side_by_side(tmp_path, monkeypatch):
    """The d = 50 and d = 100 sweeps pooled: one line each, told apart by name (and marker)."""
    import json

    import factcli.experiments.parity.sweep as sweep

    for d, accuracies in ((50, (0.6, 1.0)), (100, (0.5, 0.99))):
        for number, (n, accuracy) in enumerate(zip((10_000, 100_000), accuracies, strict=True)):
            job = tmp_path / f"d{d}" / str(number)
            (job / ".hydra").mkdir(parents=True)
            (job / ".hydra" / "overrides.yaml").write_text(f"- n={n}\n")
            summary = {
                "status": "finished",
                "learner": "fact",
                "d": d,
                "k": 4,
                "n": n,
                "test_accuracy": accuracy,
            }
            (job / "summary.json").write_text(json.dumps(summary))
    figures = []
    monkeypatch.setattr(sweep, "save", lambda fig, path: figures.append(fig) or path)
    write_phase_transition(tmp_path / "both", [tmp_path / "d50", tmp_path / "d100"])
    (ax,) = figures[0].axes
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"fact, d=50, k=4", "fact, d=100, k=4", "95% target", "chance (0.5)"}
    assert lines["fact, d=50, k=4"].get_marker() != lines["fact, d=100, k=4"].get_marker()
    assert list(lines["fact, d=100, k=4"].get_ydata()) == [0.5, 0.99]
