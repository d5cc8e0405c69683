"""The union bound over the margin γ, which ``evaluate`` chooses from the training margins.

A margin bound holds with probability ≥ 1 − δ for one γ fixed before the data is seen. ``evaluate`` picks
γ as a percentile of the training margins, so the bound is taken over a fixed grid instead:

    γ_j = 2^j for every integer j, listed in the order k = 2j (j ≥ 0), k = −2j − 1 (j < 0):
    γ = 1, 1/2, 2, 1/4, 4, …  with confidence δ_k = δ/((k + 1)(k + 2)),  Σ_k δ_k = δ.

Every bound then holds at every grid point at once with probability ≥ 1 − δ. The data-chosen γ̂ is rounded
down to the grid, γ = 2^⌊log₂ γ̂⌋ ≤ γ̂ (so the margin risk at γ is at most the one at γ̂ and 1/γ at most
2/γ̂), and the confidence terms use δ_k: the cost is ln((k + 1)(k + 2)) added to ln(1/δ). The grid needs no
scale chosen from the data (it covers every γ > 0); a γ given with ``--set gamma=`` is not chosen from the data
and needs no union bound.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

GRID = "{2^j : j ∈ ℤ}"


@dataclass(frozen=True)
class MarginGridPoint:
    """The grid point below a data-chosen margin and what the union bound over the grid costs there."""

    chosen: float     # γ̂, the margin the data chose
    gamma: float      # 2^exponent ≤ γ̂, the γ every bound is evaluated at
    exponent: int     # j
    index: int        # k, the point's position in the grid order
    weight: float     # δ_k / δ = 1/((k + 1)(k + 2))

    @property
    def log_cost(self) -> float:
        """ln((k + 1)(k + 2)) = ln(δ/δ_k): what the union bound adds to ln(1/δ)."""
        return math.log((self.index + 1) * (self.index + 2))

    def to_dict(self) -> dict:
        return {**asdict(self), "log_cost": self.log_cost}

    def describe(self, delta: float) -> str:
        share = (self.index + 1) * (self.index + 2)
        return (f"union bound over γ (γ is chosen from the training margins): γ̂ = {self.chosen:.6g} is rounded "
                f"down to the grid {GRID}, γ = 2^{self.exponent} = {self.gamma:.6g}; grid point k = {self.index} "
                f"(k = 2j for j ≥ 0, −2j − 1 for j < 0) gets δ_k = δ/((k+1)(k+2)) = δ/{share} = "
                f"{delta * self.weight:.6g} (Σ_k δ_k = δ), so every confidence term uses δ_k: a cost of "
                f"ln({share}) = {self.log_cost:.4g} added to ln(1/δ)")


def grid_index(exponent: int) -> int:
    """Position of γ = 2^exponent in the order 1, 1/2, 2, 1/4, 4, … (a bijection ℤ → ℕ)."""
    return 2 * exponent if exponent >= 0 else -2 * exponent - 1


def grid_point(chosen: float) -> MarginGridPoint:
    """The largest grid value 2^j ≤ ``chosen`` (> 0, finite) with its index and confidence share."""
    if not (math.isfinite(chosen) and chosen > 0):
        raise ValueError(f"a margin grid point needs a positive finite margin, got {chosen!r}")
    mantissa, exponent = math.frexp(chosen)        # chosen = mantissa·2^exponent, mantissa in [1/2, 1)
    j = exponent - 1                                # exact: no floating-point log2
    k = grid_index(j)
    return MarginGridPoint(chosen=chosen, gamma=math.ldexp(1.0, j), exponent=j, index=k,
                           weight=1.0 / ((k + 1) * (k + 2)))


__all__ = ["MarginGridPoint", "grid_point", "grid_index", "GRID"]
