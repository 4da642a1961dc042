"""Exact stationarity for the docs/SPEC.md §9 network f(x) = Σ_j a_j (w_jᵀx)², after first-order training.

The §9 data are ill-conditioned on purpose (inputs of norm 1 and τ ≫ 1): the loss curvature spans
τ⁴/λ, so SGD, Adam or L-BFGS fit the data but creep towards the critical point of L_λ for ever.
The network's stationarity conditions solve it instead. f depends on θ only through
A = Σ_j a_j w_j w_jᵀ, and at every critical point each active neuron is balanced (a_j² = ‖w_j‖²/2)
and lies along an eigenvector of ∇_A L. A neuron carrying eigenvalue α of A then costs
(λ/2)(a² + ‖w‖²) = (3λ/2^{5/3}) |α|^{2/3}, so the critical points are those of the d(d+1)/2-variable
problem  min_A L(A) + (3λ/2^{5/3}) Σ_k |α_k(A)|^{2/3}.  Newton's method is invariant to the scale of
the variables, so it solves that problem to machine precision from the trained A in a few steps;
the network's weights are then rebuilt from A (one neuron per eigenvector, the others zero), which is
a critical point of the network's own L_λ (checked by its stationarity residual).
"""

from __future__ import annotations

import torch
from torch.autograd.functional import hessian

from factcli.errors import FactError


def is_quadratic_net(model) -> bool:
    arch = getattr(model, "architecture", {})
    return (
        arch.get("kind") == "mlp"
        and arch.get("activation") == "quadratic"
        and len(arch.get("hidden", [])) == 1
        and arch.get("out_dim") == 1
        and not arch.get("bias")
    )


def polish_quadratic_net(model, X: torch.Tensor, y: torch.Tensor, lam: float, steps: int = 100) -> dict:
    """Move ``model`` (trained) to the critical point of mean (f(x) − y)² + (λ/2)‖θ‖² near its fit."""
    if not is_quadratic_net(model):
        raise FactError(
            "train.polish_quadratic needs the docs/SPEC.md §9 network (model=quadratic: one quadratic hidden "
            "layer, one output, no biases)"
        )
    first, second = model.layers[0], model.layers[2]
    X, y = X.double(), y.double().reshape(-1)
    with torch.no_grad():
        W, a = first.weight.double(), second.weight.double()[0]
        A = W.T @ (a[:, None] * W)
    d = A.shape[0]
    rows, cols = torch.triu_indices(d, d, device=A.device)
    penalty = 3 * lam / 2 ** (5 / 3)

    def matrix(u):
        M = torch.zeros(d, d, dtype=u.dtype, device=u.device)
        M = M.index_put((rows, cols), u)
        return M + M.T - torch.diag(M.diagonal())

    def objective(u):
        M = matrix(u)
        fit = ((X @ M * X).sum(1) - y).pow(2).mean()
        return fit + penalty * torch.linalg.eigvalsh(M).abs().pow(2 / 3).sum()

    u = A[rows, cols].clone()
    value = objective(u).item()
    for _ in range(steps):
        g = torch.autograd.functional.jacobian(objective, u)
        H = hessian(objective, u)
        step = _descent_step(H, g)
        t = 1.0
        while t > 1e-12 and not objective(u + t * step).item() < value:
            t /= 2
        if t <= 1e-12:
            break  # no decrease left at float64 precision: stationary
        u, value = u + t * step, objective(u + t * step).item()
    _set_weights(model, matrix(u).detach())
    gradient = torch.autograd.functional.jacobian(objective, u)
    return {"reduced_objective": value, "reduced_gradient_norm": gradient.norm().item()}


def _descent_step(H: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Newton's step where H is positive definite; otherwise its eigenvalues made positive."""
    values, vectors = torch.linalg.eigh((H + H.T) / 2)
    floor = 1e-12 * values.abs().max().clamp(min=1e-300)
    return -vectors @ ((vectors.T @ g) / values.abs().clamp(min=floor))


def _set_weights(model, A: torch.Tensor) -> None:
    """Balanced neurons along A's eigenvectors: a = sign(α)(|α|/2)^{1/3}, w = 2^{1/6}|α|^{1/3} v."""
    first, second = model.layers[0], model.layers[2]
    width = first.weight.shape[0]
    alphas, vectors = torch.linalg.eigh(A)
    keep = [k for k in torch.argsort(alphas.abs(), descending=True).tolist() if alphas[k] != 0][:width]
    W = torch.zeros_like(first.weight, dtype=torch.float64)
    a = torch.zeros(width, dtype=torch.float64, device=first.weight.device)
    for j, k in enumerate(keep):
        magnitude = alphas[k].abs()
        a[j] = torch.sign(alphas[k]) * (magnitude / 2) ** (1 / 3)
        W[j] = 2 ** (1 / 6) * magnitude ** (1 / 3) * vectors[:, k]
    with torch.no_grad():
        first.weight.copy_(W.to(first.weight.dtype))
        second.weight.copy_(a[None, :].to(second.weight.dtype))
