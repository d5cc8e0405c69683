"""Rank correlation between a complexity measure and the generalization gap (Jiang et al., ICLR 2020, §4;
bounds.md §5)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def kendall_tau(measure: Sequence[float], gap: Sequence[float]) -> float | None:
    """τ = (1/(n(n−1))) Σ_{a≠b} sign(μ_a − μ_b)·sign(g_a − g_b); ties count 0. None for fewer than 2 models."""
    mu, g = np.asarray(measure, dtype=float), np.asarray(gap, dtype=float)
    n = len(mu)
    if n < 2:
        return None
    signs = np.sign(mu[:, None] - mu[None, :]) * np.sign(g[:, None] - g[None, :])
    return float(signs.sum() / (n * (n - 1)))


def granulated_psi(measure: Sequence[float], gap: Sequence[float],
                   hyperparameters: Sequence[dict]) -> tuple[float | None, dict[str, float]]:
    """Jiang et al.'s granulated Kendall coefficient: for each hyperparameter i, τ over every group of models
    that share all other hyperparameters (so only i varies), averaged over the groups with ≥ 2 models: ψ_i.
    Ψ is the mean of ψ_i over the hyperparameters that vary. Returns (Ψ, {i: ψ_i})."""
    names = sorted({k for h in hyperparameters for k in h})
    per_name: dict[str, float] = {}
    for name in names:
        if len({repr(h.get(name)) for h in hyperparameters}) < 2:
            continue
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, h in enumerate(hyperparameters):
            groups[tuple(repr(h.get(other)) for other in names if other != name)].append(index)
        taus = [kendall_tau([measure[i] for i in idx], [gap[i] for i in idx])
                for idx in groups.values() if len(idx) >= 2]
        taus = [t for t in taus if t is not None]
        if taus:
            per_name[name] = float(np.mean(taus))
    psi = float(np.mean(list(per_name.values()))) if per_name else None
    return psi, per_name
