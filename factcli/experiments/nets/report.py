"""What verify-fact writes for a network, whoever trained it: the verdict first, then the table.

``verified_table`` is ``core.layer_table.layer_table`` with the verify.* options; ``report`` says
in the console whether the network is at a critical point of L_λ (reading.py) before any
correlation, lists the layers it could not check, writes fact_layers.csv / .json, the bar chart of
the correlations per layer (the paper's Figure 2) and the heatmaps of WᵀW beside F and AGOP^s.
"""

from __future__ import annotations

import logging

from factcli.core.fact import psd_power
from factcli.core.layer_table import LayerTable, layer_table
from factcli.errors import FactError
from factcli.plots import bar_plot, heatmaps
from factcli.rundir import write_csv, write_json

from .metrics import DTYPES
from .plots import short_name
from .reading import convergence_reading

log = logging.getLogger("fact")

TABLE = "fact_layers"


def verified_table(cfg, model, data, loss_fn, lam: float) -> LayerTable:
    """``layer_table`` with the verify.* options (F's per-sample path only up to a size)."""
    rows = len(data[0]) if isinstance(data, tuple) else None
    both = cfg.verify.fact_method == "both" or (
        cfg.verify.fact_method == "auto" and rows is not None and rows <= cfg.verify.per_sample_max_rows
    )
    return layer_table(
        model, data, loss_fn, lam, batch_size=cfg.verify.batch_size, dtype=DTYPES[cfg.verify.dtype],
        per_sample=both, nfa=cfg.verify.nfa, enfa=cfg.verify.enfa, nfa_power=cfg.verify.nfa_power,
        enfa_powers=tuple(cfg.verify.enfa_powers),
    )  # fmt: skip


def report(cfg, run, table: LayerTable, convention: str, validity: str | None):
    """Console and files: first whether the network is at a critical point, then the table.

    Returns (rows as written, the convergence reading, whether plots were drawn).
    """
    reading = convergence_reading(table.rows, cfg.train.tol, validity)
    (log.info if reading["at_critical_point"] else log.warning)("%s", reading["reading"])
    for skipped in table.skipped:
        log.info("not checked: %s (%s): %s", skipped["module"], skipped["type"], skipped["reason"])
    rows = [{**row, "loss_convention": convention} for row in table.rows]
    write_csv(run.file(f"{TABLE}.csv"), rows)
    write_json(run.file(f"{TABLE}.json"), rows)
    plots = cfg.plots and _plots(cfg, run, rows, table.layers, reading)
    for row in rows:
        log.info(
            "%s %-8s residual %.2e  FACT %.4f  (FFᵀ)^½ %.4f  NFA %s  eNFA %s  (%s: %s)",
            row["layer"], row["shape"], row["residual"], row["fact"], row["fact_sym"],
            _fmt(row.get("nfa")), _fmt(row.get(f"enfa_s{cfg.verify.enfa_powers[0]:g}")), row["module"],
            row["uses"],
        )  # fmt: skip
    return rows, reading, plots


def correlation_bars(path, rows: list[dict], enfa_powers, reading: dict):
    """The paper's Figure 2 for any network: per weight matrix, the correlation of WᵀW with FACT's F,
    (FFᵀ)^½, the preconditioned F of AdamW (where computed), NFA and eNFA. A matrix with only the
    identity form (no NFA / eNFA) shows its FACT bars alone."""
    groups = {"FACT (F)": "fact", "FACT (FFᵀ)^½": "fact_sym"}
    if any("preconditioned_fact" in r for r in rows):
        groups["preconditioned FACT (AdamW's P)"] = "preconditioned_fact"
    groups["NFA"] = "nfa"
    groups.update({f"eNFA s={s:g}": f"enfa_s{s:g}" for s in enfa_powers})
    state = (
        f"at a critical point of L_λ (residual ≤ {reading['tol']:g} in every matrix)"
        if reading["at_critical_point"]
        else f"NOT at a critical point (residual up to {reading['max_residual']:.2g}): FACT not expected"
    )
    if reading.get("at_adamw_fixed_point"):
        state += (
            f";\nat AdamW's fixed point (‖P⁻¹∇L + λW‖/‖λW‖ ≤ {reading['tol']:g}): "
            "the preconditioned FACT holds"
        )
    return bar_plot(
        path,
        [f"{r['layer']} {short_name(str(r['module']))}".strip() for r in rows],
        {label: [_number(r.get(key)) for r in rows] for label, key in groups.items()},
        y_label="Pearson correlation with WᵀW",
        title=f"Correlation of each ansatz with the learned features WᵀW\n{state}",
    )


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _plots(cfg, run, rows, layers, reading) -> bool:
    correlation_bars(run.plot_file("correlations_per_layer.png"), rows, cfg.verify.enfa_powers, reading)
    for number in cfg.verify.heatmap_layers:
        if number > len(layers):
            raise FactError(f"verify.heatmap_layers asks for layer {number}; the network has {len(layers)}")
        layer = layers[number - 1]
        if layer.weight.shape[1] > cfg.verify.heatmap_max_dim:
            log.info("skipping heatmaps of W%d: %d > verify.heatmap_max_dim", number, layer.weight.shape[1])
            continue
        matrices = {"WᵀW": layer.gram, "F = −(1/λ)Wᵀ∇L": layer.fact}
        if layer.agop is not None:
            matrices[f"AGOP^{cfg.verify.nfa_power:g}"] = psd_power(layer.agop, cfg.verify.nfa_power)
        heatmaps(run.plot_file(f"heatmaps_W{number}.png"), matrices, title=f"layer W{number}")
    return True


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
