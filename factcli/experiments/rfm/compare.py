"""Paired comparison of benchmark rows: every method against every baseline, overall and by size.

For each (method, baseline): mean accuracy difference, wins / ties / losses over the datasets both
finished, and the two-sided Wilcoxon signed-rank p (zero differences dropped, as `scipy.stats.wilcoxon`
does by default; p = 1 when every difference is zero). The same by size: n < 1,000; 1,000–10,000;
> 10,000. A row with an error is a failure: it is counted, and the dataset leaves that method's pairs.
"""

from __future__ import annotations

import math

SIZE_BINS = (("n < 1,000", 0, 1000), ("1,000 ≤ n ≤ 10,000", 1000, 10_001), ("n > 10,000", 10_001, math.inf))
TIE = 1e-9  # accuracies are means of fold accuracies: equal fits give equal numbers to the last bit


def paired(a, b) -> dict:
    """a, b: aligned accuracies (pandas Series) of two methods on the same datasets."""
    from scipy.stats import wilcoxon

    diff = (a - b).dropna()
    wins, losses = int((diff > TIE).sum()), int((diff < -TIE).sum())
    ties = len(diff) - wins - losses
    p = 1.0 if wins + losses == 0 else float(wilcoxon(diff[diff.abs() > TIE]).pvalue)
    mean_diff = float(diff.mean()) if len(diff) else math.nan
    return {
        "datasets": len(diff),
        "mean_diff": mean_diff,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "wilcoxon_p": p,
    }


def _block(wide, sizes, labels, baselines) -> dict:
    return {
        "datasets": int(len(wide)),
        "mean": {label: _round(wide[label].mean()) for label in labels if label in wide},
        "versus": {
            label: {
                base: paired(wide[label], wide[base]) for base in baselines if base in wide and base != label
            }
            for label in labels
            if label in wide
        },
    }


def compare_table(frame, labels, baselines, protocol: str = "strict", label_column: str = "label") -> dict:
    """Summary of one protocol's rows (columns dataset, n, protocol, test_accuracy, error, iteration)."""
    part = frame[frame.protocol == protocol]
    labels = [label for label in labels if label in set(part[label_column])]
    failed = part[part.error.fillna("").astype(str) != ""]
    wide = part.pivot_table(index="dataset", columns=label_column, values="test_accuracy", aggfunc="first")
    sizes = part.groupby("dataset").n.first()
    finished = wide.dropna()  # datasets every method finished without error
    result = {
        "protocol": protocol,
        "datasets": int(part.dataset.nunique()),
        "datasets_all_finished": int(len(finished)),
        "failures": {label: sorted(failed[failed[label_column] == label].dataset) for label in labels},
        "mean_iteration": {
            label: _round(part[part[label_column] == label].iteration.mean()) for label in labels
        },
        "share_t_positive": {
            label: _round((part[part[label_column] == label].iteration > 0).mean()) for label in labels
        },
        **_block(finished, sizes, labels, baselines),
        "by_size": {},
    }
    for name, low, high in SIZE_BINS:
        rows = finished[(sizes[finished.index] >= low) & (sizes[finished.index] < high)]
        if len(rows):
            result["by_size"][name] = _block(rows, sizes, labels, baselines)
    return result


def _round(value) -> float:
    return round(float(value), 3)


def markdown_table(result: dict) -> str:
    """One markdown table overall and one per size bin: mean, then W/T/L (p) against each baseline."""
    finished = result["datasets_all_finished"]
    lines = [f"Protocol `{result['protocol']}`, {finished} datasets finished by every method."]
    lines += _markdown_block(result, result.get("mean_iteration", {}), result.get("failures", {}))
    for name, block in result.get("by_size", {}).items():
        lines += ["", f"**{name}** ({block['datasets']} datasets)", ""]
        lines += _markdown_block(block)
    return "\n".join(lines) + "\n"


def _pair_cell(pair: dict) -> str:
    wtl = f"{pair['wins']}/{pair['ties']}/{pair['losses']}"
    return f"{pair['mean_diff']:+.2f}, {wtl}, {pair['wilcoxon_p']:.2g}"


def _markdown_block(block: dict, iterations=None, failures=None) -> list[str]:
    baselines = sorted(
        {b for versus in block["versus"].values() for b in versus}, key=list(block["mean"]).index
    )
    head = ["method", "mean"] + [f"vs {b}: Δ, W/T/L, p" for b in baselines]
    if iterations:
        head += ["mean t", "failures"]
    lines = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, mean in block["mean"].items():
        cells = [label, f"{mean:.2f}"]
        for base in baselines:
            pair = block["versus"][label].get(base)
            cells.append("—" if pair is None else _pair_cell(pair))
        if iterations:
            cells += [f"{iterations.get(label, float('nan')):.2f}", str(len(failures.get(label, [])))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def with_leak(frame, label_column: str = "label"):
    """The table with a ``paper_minus_strict`` column: on every row, its (dataset, method)'s paper
    accuracy minus its strict accuracy. The paper protocol learns M on the tuning split, which overlaps
    the test folds, so this difference is what the leak is worth (0 where t = 0: no M learned)."""
    wide = frame.pivot_table(index=["dataset", label_column], columns="protocol", values="test_accuracy")
    if not {"paper", "strict"} <= set(wide.columns):
        return frame.assign(paper_minus_strict=float("nan"))
    leak = (wide["paper"] - wide["strict"]).rename("paper_minus_strict").reset_index()
    return frame.drop(columns=["paper_minus_strict"], errors="ignore").merge(
        leak, on=["dataset", label_column], how="left"
    )


def leak_summary(frame, labels, label_column: str = "label") -> dict:
    """Per method: mean leak, how many datasets gain from it, and the largest gains."""
    leaked = with_leak(frame, label_column)
    part = leaked[leaked.protocol == "paper"].dropna(subset=["paper_minus_strict"])
    out = {}
    for label in labels:
        rows = part[part[label_column] == label]
        if len(rows):
            top = rows[rows.paper_minus_strict > TIE].nlargest(3, "paper_minus_strict")
            out[label] = {
                "mean": _round(rows.paper_minus_strict.mean()),
                "datasets_gaining": int((rows.paper_minus_strict > TIE).sum()),
                "datasets_losing": int((rows.paper_minus_strict < -TIE).sum()),
                "largest": {r.dataset: _round(r.paper_minus_strict) for r in top.itertuples()},
            }
    return out


LEAK_PARAGRAPH = (
    "The `paper` protocol (SPEC §5) learns M once, on the tuning split, and reuses it on every fold; the"
    " tuning split overlaps the folds' test parts, so M has seen the labels of test rows. The `strict`"
    " protocol relearns M on each fold's training part. The difference paper − strict (column"
    " `paper_minus_strict` of table.csv) is what that leak is worth; it is 0 wherever t = 0 is chosen."
)


def report(frame, labels, baselines, label_column: str = "label") -> tuple[dict, str]:
    """Strict first (the honest number), then paper with its leak: a JSON-able dict and markdown."""
    frame = frame.assign(error=frame["error"] if "error" in frame else "")
    result = {
        protocol: compare_table(frame, labels, baselines, protocol, label_column)
        for protocol in ("strict", "paper")
    }
    result = {protocol: block for protocol, block in result.items() if block["datasets"]}
    result["leak"] = leak_summary(frame, labels, label_column)
    text = [
        "## Strict protocol (M relearned on every fold's training part)",
        "",
        markdown_table(result["strict"]),
    ]
    if "paper" in result:
        text += [
            "## Paper protocol (for reproduction only)",
            "",
            LEAK_PARAGRAPH,
            "",
            markdown_table(result["paper"]),
        ]
        text += [
            "| method | mean leak (paper − strict) | datasets gaining / losing | largest |",
            "|---|---|---|---|",
        ]
        for label, leak in result["leak"].items():
            largest = ", ".join(f"{name} {value:+.1f}" for name, value in leak["largest"].items()) or "—"
            moved = f"{leak['datasets_gaining']} / {leak['datasets_losing']}"
            text.append(f"| {label} | {leak['mean']:+.2f} | {moved} | {largest} |")
    return result, "\n".join(text) + "\n"
