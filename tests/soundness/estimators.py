"""Lower and exact estimates of the empirical Gaussian complexity Ĝ_S(F) = (1/m)·E_Γ sup_{f∈F} ⟨Γ, f(X)⟩
for small bias-free ReLU networks whose layers satisfy ‖W_l‖₂ ≤ s_l and rank W_l ≤ r_l.

Written with plain numpy/torch only (nothing from boundcalc), so the soundness tests compare the derived
bounds against an independent computation. ``tests/soundness/report.py`` prints the same numbers as a table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Layer:
    out: int
    spectral: float
    rank: int


@dataclass(frozen=True)
class Estimate:
    """Monte-Carlo mean over Γ of the per-draw value, divided by m, and its standard error."""

    mean: float
    stderr: float
    draws: int

    @property
    def upper(self) -> float:
        """mean + 3 standard errors: the estimate's one-sided 99.9% confidence limit."""
        return self.mean + 3 * self.stderr


def spec_text(d: int, m: int, layers: list[Layer]) -> str:
    """The boundcalc spec of the class: linear layers with concrete norms and ranks, ReLU between them.
    The Frobenius bound written is the one the rank and spectral bounds imply, ‖W‖_F ≤ √r·‖W‖₂, so the
    class the spec describes is exactly {‖W_l‖₂ ≤ s_l, rank W_l ≤ r_l}."""
    lines = [f"data: {{samples: {m}, dim: {d}}}", "layers:"]
    for i, layer in enumerate(layers):
        if i:
            lines.append("  - relu")
        lines.append(f"  - {{op: linear, name: fc{i + 1}, out: {layer.out}, spectral: {layer.spectral!r}, "
                     f"rank: {layer.rank}, frobenius: sqrt({layer.rank})*{layer.spectral!r}}}")
    return "\n".join(lines) + "\n"


def _summary(per_draw: np.ndarray, m: int) -> Estimate:
    values = per_draw / m
    return Estimate(float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))), len(values))


def one_layer_exact(X: np.ndarray, layer: Layer, draws: int, rng: np.random.Generator) -> Estimate:
    """Exact per draw: sup over {‖W‖₂ ≤ s, rank ≤ r} of ⟨W, ΓX⟩ is s·(sum of the top r singular values
    of ΓX) (von Neumann's trace inequality, attained by W = s·U_r V_rᵀ)."""
    m = X.shape[0]
    sups = np.empty(draws)
    for k in range(draws):
        gamma = rng.normal(size=(layer.out, m))
        sups[k] = layer.spectral * np.linalg.svd(gamma @ X, compute_uv=False)[: layer.rank].sum()
    return _summary(sups, m)


def project(W: torch.Tensor, spectral: float, rank: int) -> torch.Tensor:
    """Euclidean projection of a batch of matrices onto {‖W‖₂ ≤ s, rank W ≤ r}: the set is unitarily
    invariant, so project the singular values (keep the r largest, clip them at s)."""
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    S = S.clamp(max=spectral)
    S[..., rank:] = 0
    return (U * S.unsqueeze(-2)) @ Vh


def _features(X: torch.Tensor, weights: list[torch.Tensor], batch: int) -> torch.Tensor:
    """ReLU features entering the last layer, (batch, h, m)."""
    Z = X.T.expand(batch, *X.T.shape)
    for W in weights:
        Z = torch.relu(W @ Z)
    return Z


def _best_last_layer(Z: torch.Tensor, gamma: torch.Tensor, layer: Layer) -> torch.Tensor:
    """For fixed features Z the last layer's supremum is exact: s·(top-r singular values of ΓZᵀ)."""
    return layer.spectral * torch.linalg.svdvals(gamma @ Z.transpose(-1, -2))[..., : layer.rank].sum(-1)


def deep_lower(X: np.ndarray, layers: list[Layer], draws: int, restarts: int, steps: int, seed: int,
               lr: float = 0.2) -> Estimate:
    """A lower estimate of Ĝ_S: for each draw of Γ, projected gradient ascent (Adam steps, then the exact
    projection) on ⟨Γ, f(X)⟩ from ``restarts`` random feasible starts, the last layer then replaced by its
    exact maximiser; the best value over restarts is a feasible value, hence ≤ the supremum for that Γ."""
    gen = torch.Generator().manual_seed(seed)
    m = X.shape[0]
    Xt = torch.tensor(X, dtype=torch.float64)
    batch = draws * restarts
    gamma = torch.randn(draws, layers[-1].out, m, generator=gen, dtype=torch.float64)
    gamma = gamma.repeat_interleave(restarts, dim=0)
    widths = [X.shape[1]] + [layer.out for layer in layers]
    weights = []
    for i, layer in enumerate(layers):
        W = torch.randn(batch, layer.out, widths[i], generator=gen, dtype=torch.float64)
        W = project(W * 10, layer.spectral, layer.rank)        # start on the boundary: σ_1..σ_r = s
        weights.append(W.requires_grad_(True))
    optimiser = torch.optim.Adam(weights, lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        out = weights[-1] @ _features(Xt, weights[:-1], batch)
        (-(gamma * out).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            for W, layer in zip(weights, layers):
                W.copy_(project(W, layer.spectral, layer.rank))
    with torch.no_grad():
        values = _best_last_layer(_features(Xt, weights[:-1], batch), gamma, layers[-1])
    best = values.reshape(draws, restarts).max(dim=1).values.numpy()
    return _summary(best, m)


def random_network(rng: np.random.Generator, depth: int, max_width: int = 8) -> tuple[int, list[Layer]]:
    """Input dimension and layers of a random small network: widths 1..max_width, ranks 1..min(in, out),
    spectral bounds in [0.5, 2]."""
    d = int(rng.integers(2, max_width + 1))
    dims = [d] + [int(rng.integers(2, max_width + 1)) for _ in range(depth)]
    layers = [Layer(out=dims[i + 1], spectral=round(float(rng.uniform(0.5, 2.0)), 3),
                    rank=int(rng.integers(1, min(dims[i], dims[i + 1]) + 1)))
              for i in range(depth)]
    return d, layers
