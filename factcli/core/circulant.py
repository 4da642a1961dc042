"""Structure of feature matrices learned on modular arithmetic (docs/SPEC.md §7-8). Pure torch.

- Number theory: primality, the smallest generator g of Z_p^*, the discrete-log order (1, g, g², …).
- Circulant deviation of the bottom-left p×p block B of M (rows: the second operand b, columns: the
  first operand a), after putting both operands in the order in which the operation is addition;
  also the anti-circulant (Hankel) deviation, the structure networks learn.
- Alignment of two feature matrices (cosine of the flattened matrices).
- docs/SPEC.md §8: how proportional τ = K'K'/n is to K' (the R² of τ ≈ c·K').
"""

from __future__ import annotations

import math

import torch

from factcli.choices import OPERATIONS

# ---------------------------------------------------------------------------------- number theory


def is_prime(p: int) -> bool:
    if p < 2:
        return False
    return all(p % q for q in range(2, math.isqrt(p) + 1))


def prime_factors(n: int) -> list[int]:
    factors, q = [], 2
    while q * q <= n:
        if n % q == 0:
            factors.append(q)
            while n % q == 0:
                n //= q
        q += 1
    return factors + ([n] if n > 1 else [])


def smallest_generator(p: int) -> int:
    """The smallest g whose powers run through every residue 1..p−1 (p prime)."""
    if not is_prime(p):
        raise ValueError(f"Z_{p}^* has a generator for our purposes only when p is prime")
    if p == 2:
        return 1
    # g generates iff g^((p−1)/q) ≠ 1 for every prime q dividing p − 1.
    orders = [(p - 1) // q for q in prime_factors(p - 1)]
    return next(g for g in range(2, p) if all(pow(g, k, p) != 1 for k in orders))


def discrete_log_order(p: int) -> list[int]:
    """The nonzero residues in discrete-log order: position k holds g^k (k = 0..p−2)."""
    g = smallest_generator(p)
    return [pow(g, k, p) for k in range(p - 1)]


def additive_order(p: int, operation: str) -> tuple[list[int], list[int]]:
    """Orders (of a, of b) in which ``a ∘ b`` becomes addition of positions (mod p or mod p − 1).

    + : identity.  − : b ↦ −b, since a − b = a + (−b).  × : discrete log, a·b ↔ log a + log b.
    ÷ : discrete log with b's order reversed, a/b ↔ log a + (−log b). Residue 0 is dropped for × and ÷
    (it has no logarithm). Position k of the returned list holds the residue placed at k.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; choose one of {', '.join(OPERATIONS)}")
    if operation in ("add", "sub"):
        first = list(range(p))
        second = first if operation == "add" else [(-k) % p for k in range(p)]
        return first, second
    logs = discrete_log_order(p)
    second = logs if operation == "mul" else [logs[(-k) % (p - 1)] for k in range(p - 1)]
    return logs, second


# ----------------------------------------------------------------------------- circulant structure


def undo_circulant_shifts(B: torch.Tensor) -> torch.Tensor:
    """S[ℓ, j] = B[ℓ, (j + ℓ) mod q]: row ℓ shifted cyclically left by ℓ.

    A circulant matrix has each row equal to the previous one shifted right by one,
    C[ℓ, m] = c[(m − ℓ) mod q]; undoing row ℓ's shift of ℓ makes every column of S constant.
    """
    q = B.shape[1]
    rows = torch.arange(B.shape[0], device=B.device).unsqueeze(1)
    columns = torch.arange(q, device=B.device).unsqueeze(0)
    return B.gather(1, (columns + rows) % q)


def circulant_deviation(B: torch.Tensor) -> float:
    """Σ_j (squared deviations of column j of the aligned block) / ‖B‖_F²  (docs/SPEC.md §7).

    0 exactly when B is circulant, B[ℓ, m] = c(m − ℓ); between 0 and 1 (about 1 − 1/q for noise);
    nan for a zero block (M = I at iteration 0 has no cross structure to measure).
    """
    if B.ndim != 2 or B.shape[0] != B.shape[1]:
        raise ValueError(f"circulant_deviation needs a square block, got shape {tuple(B.shape)}")
    S = undo_circulant_shifts(B.double())
    total = S.square().sum()
    if total == 0:
        return math.nan
    return ((S - S.mean(0, keepdim=True)).square().sum() / total).item()


def anticirculant_deviation(B: torch.Tensor) -> float:
    """The same with row ℓ shifted *right* by ℓ (docs/SPEC.md §7's literal recipe): 0 when B[ℓ, m] = h(ℓ + m).

    Such a block (a Hankel matrix with cyclic indices) is a circulant with its rows in reverse order.
    With rows indexed by b and columns by a, RFMs on a + b learn B[b, a] = c(b − a) (circulant)
    while the quadratic network's W₁ᵀW₁ learns B[b, a] = h(a + b): both orientations are measured.
    """
    reversed_rows = (-torch.arange(B.shape[0], device=B.device)) % B.shape[0]
    return circulant_deviation(B[reversed_rows])


def cross_block(M: torch.Tensor, p: int, operation: str) -> torch.Tensor:
    """The bottom-left block B[b, a] = M[p + b, a], rows and columns in ``additive_order``."""
    if M.shape != (2 * p, 2 * p):
        raise ValueError(f"expected a {2 * p}×{2 * p} feature matrix for p = {p}, got {tuple(M.shape)}")
    first, second = additive_order(p, operation)
    rows = torch.tensor(second, device=M.device) + p
    columns = torch.tensor(first, device=M.device)
    return M[rows][:, columns]


def feature_deviations(M: torch.Tensor, p: int, operation: str) -> dict[str, float]:
    """Circulant and anti-circulant deviation of M's a–b block in the operation's additive order."""
    B = cross_block(M, p, operation)
    return {
        "circulant_deviation": circulant_deviation(B),
        "anticirculant_deviation": anticirculant_deviation(B),
    }


def reordered(M: torch.Tensor, p: int, operation: str) -> torch.Tensor:
    """M with both operands' coordinates in ``additive_order`` (for heatmaps that show the structure)."""
    first, second = additive_order(p, operation)
    order = torch.tensor(first + [p + k for k in second], device=M.device)
    return M[order][:, order]


# --------------------------------------------------------------------------------- comparisons


def alignment(A: torch.Tensor, B: torch.Tensor) -> float:
    """cos(vec A, vec B) = ⟨A, B⟩_F / (‖A‖_F ‖B‖_F); nan if either is zero."""
    a, b = A.flatten().double(), B.flatten().double()
    denominator = (a.norm() * b.norm()).item()
    return math.nan if denominator == 0 else (a @ b).item() / denominator


def tau_matrix(K_prime: torch.Tensor) -> torch.Tensor:
    """τ = K'K'/n (docs/SPEC.md §8): AGOP = Σ_ij τ_ij M x_i α_iᵀα_j x_jᵀ M, where F·M has k'_ij in place
    of τ_ij."""
    return K_prime @ K_prime / K_prime.shape[0]


def proportionality_r2(target: torch.Tensor, predictor: torch.Tensor) -> dict[str, float]:
    """How well ``target ≈ c · predictor`` holds, entry by entry.

    ``r2``: 1 − Σ(t − c·x)² / Σ(t − t̄)² with the least-squares c (a line through the origin);
    ``r2_linear``: the squared Pearson correlation (best line with an intercept); ``slope``: c.
    """
    t, x = target.flatten().double(), predictor.flatten().double()
    slope = (t @ x) / (x @ x)
    total = (t - t.mean()).square().sum()
    r2 = 1 - (t - slope * x).square().sum() / total
    tc, xc = t - t.mean(), x - x.mean()
    r2_linear = (tc @ xc) ** 2 / (tc.square().sum() * xc.square().sum())
    return {"r2": r2.item(), "r2_linear": r2_linear.item(), "slope": slope.item()}
