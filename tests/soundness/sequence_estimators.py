"""A lower estimate of the empirical Gaussian complexity of a small network on sequences with a layernorm,

    f(x) = W2·mean_t(LN(W1·x_t + b1) + x_t),   LN(z) = γ ⊙ (z − mean z)/√(var z + ε) + β (per token),

over the class {‖W1‖₂ ≤ s1, ‖b1‖₂ ≤ c1, ‖γ‖∞ ≤ g, ‖β‖₂ ≤ c_β, ‖W2‖₂ ≤ s2} (with ``affine=False``: γ = 1, β = 0
fixed; with ``residual=False``: without the skip + x_t). Plain torch only (nothing from boundcalc): for each draw of Γ, Adam steps on ⟨Γ, f(X)⟩ from random feasible
starts, each followed by the exact projection (W1's singular values clipped at s1, the biases scaled into their
balls, γ clipped to [−g, g]); W2 is then replaced by its exact maximiser for the features reached, s2·‖Γ Pᵀ‖_*.
Every value is that of a feasible network, hence ≤ the supremum for that Γ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tests.soundness.estimators import Estimate, _summary


@dataclass(frozen=True)
class SequenceClass:
    s1: float          # ‖W1‖₂ (W1 is d × d: the residual adds x_t)
    c1: float          # ‖b1‖₂
    eps: float         # the layernorm's ε
    g: float           # ‖γ‖∞
    c_beta: float      # ‖β‖₂
    s2: float          # ‖W2‖₂
    out: int           # rows of W2
    affine: bool = True
    residual: bool = True


def layer_norm(z: torch.Tensor, eps: float) -> torch.Tensor:
    """(z − mean)/√(var + ε) over the last axis, biased variance (written out, not torch's layer_norm)."""
    centred = z - z.mean(dim=-1, keepdim=True)
    return centred / torch.sqrt((centred ** 2).mean(dim=-1, keepdim=True) + eps)


def pooled(X: torch.Tensor, W1, b1, gamma_ln, beta, c: SequenceClass) -> torch.Tensor:
    """mean_t(LN(W1 x_t + b1) + x_t) for X of shape (m, T, d) and a batch of parameters: (batch, d, m)."""
    z = torch.einsum("bij,mtj->bmti", W1, X) + b1[:, None, None, :]
    u = gamma_ln[:, None, None, :] * layer_norm(z, c.eps) + beta[:, None, None, :]
    return (u + X[None] if c.residual else u).mean(dim=2).transpose(1, 2)


def _project(W1, b1, gamma_ln, beta, c: SequenceClass):
    U, S, Vh = torch.linalg.svd(W1, full_matrices=False)
    W1 = (U * S.clamp(max=c.s1).unsqueeze(-2)) @ Vh

    def ball(v, radius):
        return v * (radius / v.norm(dim=-1, keepdim=True).clamp(min=1e-300)).clamp(max=1.0)

    return W1, ball(b1, c.c1), gamma_ln.clamp(-c.g, c.g), ball(beta, c.c_beta)


def sequence_lower(X: np.ndarray, c: SequenceClass, draws: int, restarts: int, steps: int, seed: int,
                   lr: float = 0.1) -> Estimate:
    """A lower estimate of Ĝ_S = (1/m)·E sup ⟨Γ, f(X)⟩ for X of shape (m, T, d)."""
    gen = torch.Generator().manual_seed(seed)
    m, _, d = X.shape
    Xt = torch.tensor(X, dtype=torch.float64)
    batch = draws * restarts
    gamma = torch.randn(draws, c.out, m, generator=gen, dtype=torch.float64).repeat_interleave(restarts, 0)

    def start(*shape, scale=10.0):
        return scale * torch.randn(batch, *shape, generator=gen, dtype=torch.float64)

    params = _project(start(d, d), start(d), start(d), start(d), c)
    if not c.affine:
        params = (params[0], params[1], torch.ones(batch, d, dtype=torch.float64),
                  torch.zeros(batch, d, dtype=torch.float64))
    trained = [p.clone().requires_grad_(True) for p in (params if c.affine else params[:2])]
    optimiser = torch.optim.Adam(trained, lr=lr)

    def current():
        return tuple(trained) if c.affine else (trained[0], trained[1], params[2], params[3])

    for _ in range(steps):
        optimiser.zero_grad()
        P = pooled(Xt, *current(), c)
        nuclear = torch.linalg.svdvals(gamma @ P.transpose(-1, -2)).sum(-1)   # the best W2 for these features
        (-nuclear.sum()).backward()
        optimiser.step()
        with torch.no_grad():
            projected = _project(*current(), c)
            for p, new in zip(trained, projected):
                p.copy_(new)
    with torch.no_grad():
        P = pooled(Xt, *current(), c)
        values = c.s2 * torch.linalg.svdvals(gamma @ P.transpose(-1, -2)).sum(-1)
    return _summary(values.reshape(draws, restarts).max(dim=1).values.numpy(), m)
