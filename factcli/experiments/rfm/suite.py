"""One UCI dataset × a list of table rows (baselines, feature-learning methods, variants) × protocols.

Each ``Entry`` is one row of the benchmark table. Entries share what they can: stage 0 (KRR at every
grid point) once per kernel, and on the folds every t = 0 fit (same kernel, bandwidth, normalization
and ridge) once, whichever entry selected it. Selection never sees a test fold; the strict protocol
relearns M on every fold's training part. A row that fails (no accurate solve) is kept with its error
and no accuracies, so failures are counted rather than hidden. An entry may select on k inner folds
of the tuning rows (``folds``) and predict with the mean of k refits per fold (``bags``): grid.py,
protocol.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, astuple, dataclass, replace

import numpy as np
import torch

from factcli.core import InvalidInput, defaults
from factcli.core.linalg import timing_factorizations
from factcli.core.rfm import InaccurateSolve, RFMOptions

from . import grid as rfm_grid
from . import svc as svc_baseline
from . import trees
from .protocol import Split, Task

KINDS = ("krr", "rfm", "svc", *trees.TREE_KINDS)


@dataclass(frozen=True)
class Entry:
    """One table row: ``krr`` (tuned kernel ridge, t = 0), ``rfm`` (a feature-learning method),
    ``svc`` (tuned SVC-RBF) or ``forest`` / ``lightgbm`` (tuned tree ensembles, trees.py)."""

    label: str
    kind: str = "rfm"
    kernel: str = "laplace"
    method: str = ""  # default by kind: fact (rfm), laplace (krr: no feature learning), svc
    form: str = defaults.FORM
    fact_power: float = defaults.FACT_POWER
    nfa_power: float = defaults.NFA_POWER
    iters: int = defaults.ITERS
    rule: str = "best"
    search: str = "best"
    folds: int = defaults.GRID_FOLDS  # selection on k inner folds of the tuning rows (1: its validation part)
    bags: int = defaults.BAGS  # evaluation: the mean of k refits on each fold's k-fold training parts

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"unknown entry kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind not in ("krr", "rfm") and (self.folds, self.bags) != (1, 1):
            raise InvalidInput(f"entry {self.label!r}: folds and bags apply to krr and rfm entries only")
        if isinstance(self.bags, bool) or not isinstance(self.bags, int) or self.bags < 1:
            raise InvalidInput(f"entry {self.label!r}: bags must be a whole number >= 1, got {self.bags!r}")
        if not self.method:
            default = {"krr": "laplace", "svc": "svc", "forest": "forest", "lightgbm": "lightgbm"}.get(
                self.kind, "fact"
            )
            object.__setattr__(self, "method", default)  # frozen: set once, here


TABLE_COLUMNS = [
    "dataset",
    "n",
    "d",
    "classes",
    "label",
    "kind",
    "kernel",
    "method",
    "form",
    "protocol",
    "bandwidth",
    "ridge",
    "normalize_rows",
    "iteration",
    "val_accuracy",
    "fold1_accuracy",
    "fold2_accuracy",
    "fold3_accuracy",
    "fold4_accuracy",
    "test_accuracy",
    "selection_seconds",
    "eval_seconds",
    "cholesky_seconds",
    "failures",
    "precision",
    "error",
    "params",  # the chosen hyperparameters of a row the columns above do not describe (tree ensembles)
]


class Suite:
    """Runs entries on one dataset, sharing stage 0 and t = 0 fold fits between them."""

    def __init__(self, data, spec: rfm_grid.GridSpec, options: RFMOptions, device="cpu"):
        self.data, self.spec, self.options = data, spec, options
        self.task = Task("classification", data.n_outputs)
        self.X = torch.tensor(data.X, device=device)
        self.y = torch.tensor(data.y, device=device)
        train, val = (torch.as_tensor(rows, device=device) for rows in (data.splits.train, data.splits.val))
        self.tuning = Split(self.X[train], self.y[train], self.X[val], self.y[val])
        self.folds = [
            tuple(torch.as_tensor(rows, device=device) for rows in fold) for fold in data.splits.folds
        ]
        self.stages: dict[str, rfm_grid.KernelStage] = {}
        self.fold_cache: dict = {}

    # -- selection -------------------------------------------------------------------------
    def options_for(self, entry: Entry) -> RFMOptions:
        return replace(
            self.options,
            method=entry.method if entry.kind == "rfm" else "laplace",
            form=entry.form,
            fact_power=entry.fact_power,
            nfa_power=entry.nfa_power,
            iters=entry.iters,
        )

    def stage(self, kernel: str) -> rfm_grid.KernelStage:
        if kernel not in self.stages:
            self.stages[kernel] = rfm_grid.kernel_stage(
                self.task, kernel, self.spec, self.options, self.tuning
            )
        return self.stages[kernel]

    def select(self, entry: Entry):
        spec = replace(self.spec, rule=entry.rule, search=entry.search, folds=entry.folds)
        if entry.kind == "svc":
            return svc_baseline.select_svc(spec, *astuple(self.tuning))
        if entry.kind in trees.TREE_KINDS:
            return trees.select_tree(entry.kind, self.data.n_classes, *astuple(self.tuning))
        stage_of = self.stage if entry.folds == 1 else None  # inner folds compute their own stages
        return rfm_grid.select(
            self.task, entry.kernel, spec, self.options_for(entry), self.tuning, stage_of=stage_of
        )

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, entry: Entry, selection, protocol: str) -> list[float]:
        scores = []
        for index, (train, test) in enumerate(self.folds):
            split = Split(self.X[train], self.y[train], self.X[test], self.y[test])
            if entry.kind == "svc":
                scores.append(svc_baseline.evaluate_svc(selection, *astuple(split)))
            elif entry.kind in trees.TREE_KINDS:  # no M: every protocol refits the same model
                key = (entry.label, index)
                if key not in self.fold_cache:
                    self.fold_cache[key] = trees.evaluate_tree(selection, *astuple(split))
                scores.append(self.fold_cache[key])
            else:
                chosen = selection.chosen
                key = (index, chosen.kernel, chosen.bandwidth, chosen.normalize, chosen.ridge, entry.bags)
                if chosen.iteration == 0 and key in self.fold_cache:
                    scores.append(self.fold_cache[key])
                    continue
                options = self.options_for(entry)
                score = rfm_grid.evaluate(
                    self.task, options, selection, protocol, split, bags=entry.bags
                ).score
                if chosen.iteration == 0:
                    self.fold_cache[key] = score
                scores.append(score)
        return scores

    # -- one row per protocol ----------------------------------------------------------------
    def run(self, entry: Entry, protocols) -> list[dict]:
        base = {
            "dataset": self.data.name,
            "n": self.data.n,
            "d": self.data.d,
            "classes": self.data.n_classes,
            **{k: v for k, v in asdict(entry).items() if k in ("label", "kind", "kernel", "method", "form")},
            "params": "",  # the tree rows' hyperparameters; every other row's are in the columns above
        }
        with timing_factorizations() as clock:
            started = time.perf_counter()
            try:
                selection = self.select(entry)
            except (InaccurateSolve, ArithmeticError) as error:
                return [self._failed(base, p, f"selection: {error}") for p in protocols]
            selected_at = time.perf_counter()
            rows = []
            for protocol in protocols:
                t0 = time.perf_counter()
                try:
                    scores = [100 * s for s in self.evaluate(entry, selection, protocol)]
                except (InaccurateSolve, ArithmeticError) as error:
                    rows.append(self._failed(base, protocol, f"evaluation: {error}"))
                    continue
                rows.append(
                    {
                        **base,
                        "protocol": protocol,
                        **self._chosen(entry, selection),
                        **{f"fold{i + 1}_accuracy": s for i, s in enumerate(scores)},
                        "test_accuracy": float(np.mean(scores)),
                        "selection_seconds": selected_at - started,
                        "eval_seconds": time.perf_counter() - t0,
                        "error": "",
                    }
                )
        for row in rows:
            row["cholesky_seconds"] = clock.seconds
        return rows

    def _chosen(self, entry: Entry, selection) -> dict:
        if entry.kind == "svc":
            c = selection.chosen
            return {
                "bandwidth": c.bandwidth,
                "ridge": 1.0 / c.C,  # SVC's C plays the inverse ridge
                "normalize_rows": c.normalize,
                "iteration": 0,
                "val_accuracy": 100 * c.val_accuracy,
                "failures": 0,
                "precision": "float64",
            }
        if entry.kind in trees.TREE_KINDS:
            c = selection.chosen
            return {
                "kernel": "",
                "form": "",
                "bandwidth": None,
                "ridge": None,
                "normalize_rows": False,
                "iteration": 0,
                "val_accuracy": 100 * c.val_accuracy,
                "failures": 0,
                "precision": "float64",
                "params": c.text(),
            }
        c = selection.chosen
        return {
            "kernel": c.kernel,  # the selected one, for kernel=auto
            "form": selection.form if entry.kind == "rfm" else "",
            "bandwidth": c.bandwidth,
            "ridge": c.ridge,
            "normalize_rows": c.normalize,
            "iteration": c.iteration,
            "val_accuracy": 100 * c.val_score,
            "failures": selection.failures,
            "precision": "+".join(sorted(selection.precisions)),
        }

    def _failed(self, base: dict, protocol: str, message: str) -> dict:
        row = {column: math.nan for column in TABLE_COLUMNS}
        return {**row, **base, "protocol": protocol, "error": message, "failures": 1}
