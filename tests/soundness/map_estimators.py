"""Lower estimates of Ĝ_S for two-layer networks with a parameter-free map between the layers: a map with
φ(0) ≠ 0 (sigmoid, softplus), or a concatenation of the hidden features with the input (a DenseNet-style skip).

    f(X) = W2·g(W1·X),   g(Y) = φ(Y)   or   g(Y) = [relu(Y); X],   ‖W_l‖₂ ≤ s_l, rank W_l ≤ r_l.

Plain torch, nothing from boundcalc. For each draw of Γ: projected gradient ascent on ⟨Γ, f(X)⟩ over W1 and W2
from random feasible starts, then W2 replaced by its exact maximiser for the features reached (s2·the top r2
singular values of Γ·Zᵀ); the best value over restarts is a feasible value, hence ≤ the supremum for that Γ.
The zero start W1 = 0 is always one of the restarts: with φ(0) ≠ 0 its features φ(0)·1 alone give a value the
anchor term must cover.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from tests.soundness.estimators import Estimate, Layer, _best_last_layer, _summary, project

Features = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def activation_features(phi: Callable[[torch.Tensor], torch.Tensor]) -> Features:
    """g(W1·X) = φ(W1·X), shape (batch, h, m)."""
    return lambda Xt, W1: phi(W1 @ Xt.T)


def concat_features(Xt: torch.Tensor, W1: torch.Tensor) -> torch.Tensor:
    """g = [relu(W1·X); X], shape (batch, h + d, m)."""
    hidden = torch.relu(W1 @ Xt.T)
    return torch.cat([hidden, Xt.T.expand(hidden.shape[0], *Xt.T.shape)], dim=1)


def two_layer_lower(X, first: Layer, last: Layer, features: Features, width: int, draws: int, restarts: int,
                    steps: int, seed: int, lr: float = 0.2) -> Estimate:
    """A lower estimate of Ĝ_S of {W2·g(W1·X)}; ``width`` is the number of rows of g's output."""
    gen = torch.Generator().manual_seed(seed)
    m, d = X.shape
    Xt = torch.tensor(X, dtype=torch.float64)
    batch = draws * restarts
    gamma = torch.randn(draws, last.out, m, generator=gen, dtype=torch.float64).repeat_interleave(restarts, dim=0)
    W1 = project(10 * torch.randn(batch, first.out, d, generator=gen, dtype=torch.float64), first.spectral,
                 first.rank)
    W1[::restarts] = 0                                           # the zero network is one start per draw
    W2 = project(10 * torch.randn(batch, last.out, width, generator=gen, dtype=torch.float64), last.spectral,
                 last.rank)
    weights = [W1.requires_grad_(True), W2.requires_grad_(True)]
    optimiser = torch.optim.Adam(weights, lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        (-(gamma * (weights[1] @ features(Xt, weights[0]))).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            for W, layer in zip(weights, (first, last)):
                W.copy_(project(W, layer.spectral, layer.rank))
    with torch.no_grad():
        values = _best_last_layer(features(Xt, weights[0]), gamma, last)
        at_zero = _best_last_layer(features(Xt, torch.zeros_like(weights[0])), gamma, last)
    best = torch.maximum(values, at_zero).reshape(draws, restarts).max(dim=1).values.numpy()
    return _summary(best, m)
