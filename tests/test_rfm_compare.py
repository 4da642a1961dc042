"""The benchmark summary's paired statistics and the paper protocol's leak column, on a made-up table."""

import pandas as pd
import pytest
from scipy.stats import wilcoxon

from factcli.experiments.rfm.compare import compare_table, paired, report, with_leak


def table():
    rows = []
    accuracy = {"base": [80, 70, 90, 60, 85, 75], "new": [82, 70, 89, 65, 86, 79]}
    sizes = [100, 500, 2000, 5000, 20000, 900]
    for i, n in enumerate(sizes):
        for label, values in accuracy.items():
            for protocol, leak in (("strict", 0.0), ("paper", 1.5 if label == "new" else 0.0)):
                rows.append(
                    {
                        "dataset": f"d{i}",
                        "n": n,
                        "label": label,
                        "protocol": protocol,
                        "test_accuracy": values[i] + leak,
                        "iteration": 2 if label == "new" else 0,
                        "error": "",
                    }
                )
    return pd.DataFrame(rows)


def test_paired_counts_and_wilcoxon_match_a_direct_computation():
    a, b = pd.Series([82.0, 70, 89, 65, 86, 79]), pd.Series([80.0, 70, 90, 60, 85, 75])
    result = paired(a, b)
    assert (result["wins"], result["ties"], result["losses"]) == (4, 1, 1)
    diff = [2.0, -1, 5, 1, 4]  # the tie dropped
    assert result["wilcoxon_p"] == pytest.approx(wilcoxon(diff).pvalue)
    assert result["mean_diff"] == pytest.approx(11 / 6)
    assert paired(a, a)["wilcoxon_p"] == 1.0


def test_compare_table_bins_by_size_and_counts_failures():
    frame = table()
    frame.loc[(frame.dataset == "d5") & (frame.label == "new"), ["test_accuracy", "error"]] = [None, "boom"]
    result = compare_table(frame, ["base", "new"], ["base"])
    assert result["datasets_all_finished"] == 5 and result["failures"]["new"] == ["d5"]
    assert result["versus"]["new"]["base"]["wins"] == 3
    bins = result["by_size"]
    assert bins["n < 1,000"]["datasets"] == 2  # d0, d1 (d5 failed)
    assert bins["1,000 ≤ n ≤ 10,000"]["datasets"] == 2 and bins["n > 10,000"]["datasets"] == 1
    assert result["mean_iteration"]["new"] == 2.0


def test_leak_column_is_paper_minus_strict_and_the_report_leads_with_strict():
    leaked = with_leak(table())
    assert set(leaked[leaked.label == "new"].paper_minus_strict) == {1.5}
    assert set(leaked[leaked.label == "base"].paper_minus_strict) == {0.0}
    summary, markdown = report(table(), ["base", "new"], ["base"])
    assert summary["leak"]["new"]["mean"] == 1.5 and summary["leak"]["new"]["datasets_gaining"] == 6
    assert markdown.index("Strict protocol") < markdown.index("Paper protocol")
