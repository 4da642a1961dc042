"""What a learned feature matrix M (d×d, PSD; WᵀW for a network) says about the parity's support.

- support mass: Σ_{j∈S} M_jj / tr M, the share of M's diagonal on the support (k/d when M = I, 1 when
  M only weighs the support);
- top-k exact: the k largest diagonal entries are exactly the support, *strictly* larger than every
  other entry (a tie with an outside coordinate is not a recovery);
- effective rank (Roy & Vetterli 2007): exp of the entropy of the normalized eigenvalues,
  exp(−Σ p_i log p_i) with p = λ / Σλ (negative rounding noise clipped at 0): d for M = I, r for a
  rank-r projector, and it falls from d towards k as M concentrates on the support.
"""

from __future__ import annotations

import math

import torch


def support_mass(M: torch.Tensor, support) -> float:
    diagonal = M.diagonal().double()
    return float(diagonal[list(support)].sum() / diagonal.sum())


def top_k_is_support(M: torch.Tensor, support) -> bool:
    diagonal = M.diagonal().double()
    inside = torch.zeros_like(diagonal, dtype=torch.bool)
    inside[list(support)] = True
    if inside.all():
        return True
    return bool(diagonal[inside].min() > diagonal[~inside].max())


def top_coordinates(M: torch.Tensor, k: int) -> list[int]:
    """The k coordinates with the largest diagonal entries, largest first."""
    return M.diagonal().double().topk(k).indices.tolist()


def effective_rank(M: torch.Tensor) -> float:
    eigenvalues = torch.linalg.eigvalsh((M.double() + M.double().T) / 2).clamp_min(0)
    total = eigenvalues.sum()
    if total <= 0:
        return 0.0
    p = eigenvalues[eigenvalues > 0] / total
    return math.exp(float(-(p * p.log()).sum()))


def feature_measures(M: torch.Tensor, support) -> dict:
    """The per-iteration columns of metrics.csv that describe M."""
    return {
        "support_mass": support_mass(M, support),
        "top_k_exact": top_k_is_support(M, support),
        "effective_rank": effective_rank(M),
        "top_k": " ".join(map(str, top_coordinates(M, len(support)))),
    }


def accuracy_and_mse(outputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Accuracy of argmax over the two outputs, and the MSE against one-hot targets (mean over n·2)."""
    one_hot = torch.nn.functional.one_hot(labels.long(), outputs.shape[1]).to(outputs.dtype)
    accuracy = (outputs.argmax(dim=1) == labels).double().mean()
    return float(accuracy), float((outputs - one_hot).double().pow(2).mean())
