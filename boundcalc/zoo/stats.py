"""Rank correlation between a complexity measure and the generalization gap (Jiang et al., ICLR 2020, §4;
docs/references.md §7)."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

#: fewer models than this and a rank correlation says little (τ = ±1 is likely by chance; see the p-value)
MIN_MODELS = 10
#: up to this many models the p-value is exact (Mahonian numbers); beyond it, the normal approximation
EXACT_P_MAX = 60


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


def kendall_p_value(tau: float | None, n: int) -> float | None:
    """Two-sided p-value of ``tau`` over ``n`` models under independent rankings without ties: the chance that
    a random ordering gives |τ| at least as large. Exact (count of permutations by inversions) up to
    ``EXACT_P_MAX`` models, else the normal approximation with Var τ = 2(2n + 5)/(9n(n − 1)). With n = 2 every
    ordering gives |τ| = 1, so p = 1."""
    if tau is None or n < 2:
        return None
    pairs = n * (n - 1) // 2
    if n > EXACT_P_MAX:
        z = abs(tau) / math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
        return math.erfc(z / math.sqrt(2))
    counts = [1]                                   # permutations of 1..i by number of inversions
    for i in range(2, n + 1):
        row = [0] * (len(counts) + i - 1)
        for inversions, c in enumerate(counts):
            for extra in range(i):
                row[inversions + extra] += c
        counts = row
    # τ = 1 − 2·D/pairs for D discordant pairs; count the orderings at least as extreme (tolerance for rounding)
    extreme = sum(c for d, c in enumerate(counts) if abs(1 - 2 * d / pairs) >= abs(tau) - 1e-12)
    return min(1.0, extreme / math.factorial(n))
