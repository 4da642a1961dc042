"""The tuned SVC-RBF baseline (scikit-learn), under the same selection protocol as the kernel machines.

γ = 1/(2L²) with L = s × the median pairwise L2 distance of the tuning training rows (the bandwidths of
rfm_grid.GridSpec), C on a grid, row normalization off / on; selected on the validation part (equal
accuracies go to smaller C, then larger L, then no normalization), refit on each fold's training part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .grid import GridSpec, median_distance
from .protocol import normalize_rows

SVC_CS = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class SVCChoice:
    C: float
    bandwidth: float
    normalize: bool
    val_accuracy: float

    def simplicity(self) -> tuple:
        return (self.C, -self.bandwidth, self.normalize)


@dataclass
class SVCSelection:
    chosen: SVCChoice
    candidates: list[SVCChoice]
    seconds: float


def _fit_score(C, bandwidth, X_train, y_train, X_test, y_test) -> float:
    from sklearn.svm import SVC

    model = SVC(C=C, kernel="rbf", gamma=1.0 / (2.0 * bandwidth**2), cache_size=1000)
    model.fit(X_train, y_train)
    return float(np.mean(model.predict(X_test) == y_test))


def _arrays(X: torch.Tensor, y: torch.Tensor, normalize: bool):
    return normalize_rows(X, normalize).double().cpu().numpy(), y.cpu().numpy()


def select_svc(spec: GridSpec, X_train, y_train, X_val, y_val, Cs=SVC_CS) -> SVCSelection:
    started = time.perf_counter()
    candidates = []
    for normalize in spec.normalizations:
        A, ya = _arrays(X_train, y_train, normalize)
        B, yb = _arrays(X_val, y_val, normalize)
        scale = 1.0 if spec.bandwidth_unit == "absolute" else median_distance("laplace", torch.from_numpy(A))
        for s in spec.bandwidths:
            for C in Cs:
                if len(np.unique(ya)) < 2:  # one class: SVC refuses; predicting it is exact on train
                    accuracy = float(np.mean(yb == ya[0]))
                else:
                    accuracy = _fit_score(C, s * scale, A, ya, B, yb)
                candidates.append(SVCChoice(float(C), float(s * scale), normalize, accuracy))
    chosen = min(candidates, key=lambda c: (-c.val_accuracy, c.simplicity()))
    return SVCSelection(chosen, candidates, time.perf_counter() - started)


def evaluate_svc(selection: SVCSelection, X_train, y_train, X_test, y_test) -> float:
    chosen = selection.chosen
    A, ya = _arrays(X_train, y_train, chosen.normalize)
    B, yb = _arrays(X_test, y_test, chosen.normalize)
    if len(np.unique(ya)) < 2:
        return float(np.mean(yb == ya[0]))
    return _fit_score(chosen.C, chosen.bandwidth, A, ya, B, yb)
