"""Pooling windows along one axis, and the ℓ2 constants of the pooling maps built from them.

A 2-D pooling map acts on each channel as the same map along height and along width, so its constants are
products of one-axis constants (for a linear pooling, P = P_h ⊗ P_w and ‖P‖ = ‖P_h‖·‖P_w‖ in every norm used
here). Exact rationals, enumerated; docs/references.md §3.2.2.

- Max-pooling: ‖maxpool(x) − maxpool(y)‖² = Σ_w (max_w x − max_w y)² ≤ Σ_w max_{i∈w} (x_i − y_i)²
  ≤ Σ_i n_i·(x_i − y_i)², n_i = the number of windows that contain input i, so ρ = √(max_i n_i); attained
  by x = ε·e_i, y = 0 at an input in the most windows (every window containing i then changes by ε).
- Linear pooling P (averages): ‖P‖₂ ≤ √(‖P‖₁·‖P‖∞) (Schur's test), ‖P‖₁ the largest column sum, ‖P‖∞ the
  largest row sum; equality when the windows are disjoint and of one size (P·Pᵀ is then a multiple of I).
"""
from __future__ import annotations

from fractions import Fraction
from math import gcd

import sympy as sp

#: largest input size along one axis that constants are enumerated for (beyond it: the size-free bound)
MAX_ENUMERATED = 100_000


def sliding(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> list[list[int]]:
    """The real (unpadded) inputs of each window of a sliding pooling along one axis (torch's positions:
    window t covers t·stride − padding + dilation·u, u = 0..kernel−1; no ceil mode)."""
    span = dilation * (kernel - 1) + 1
    count = (size + 2 * padding - span) // stride + 1
    out = []
    for t in range(count):
        start = t * stride - padding
        out.append([start + dilation * u for u in range(kernel) if 0 <= start + dilation * u < size])
    return out


def adaptive(size: int, output: int) -> list[list[int]]:
    """The inputs of each window of torch's adaptive pooling: [⌊i·n/o⌋, ⌈(i+1)·n/o⌉)."""
    return [list(range((i * size) // output, -(-((i + 1) * size) // output))) for i in range(output)]


def most_windows(windows: list[list[int]]) -> int:
    """The largest number of windows that contain one input."""
    counts: dict[int, int] = {}
    for window in windows:
        for i in window:
            counts[i] = counts.get(i, 0) + 1
    return max(counts.values(), default=0)


def sliding_cover_bound(kernel: int, stride: int, dilation: int = 1) -> int:
    """A size-free upper bound on :func:`most_windows` of a sliding pooling, attained away from the borders:
    input i is in window t iff i + padding − t·stride = dilation·u for some u < kernel; with g = gcd(dilation,
    stride) the solutions u form a progression of step stride/g, so there are at most ⌈kernel·g/stride⌉."""
    g = gcd(dilation, stride)
    return -(-kernel * g // stride)


def average_norms(windows: list[list[int]], divisors: list[int]) -> tuple[Fraction, Fraction]:
    """(‖P‖₁, ‖P‖∞) of the averaging matrix whose row t has 1/divisors[t] at the inputs of window t."""
    columns: dict[int, Fraction] = {}
    rows = Fraction(0)
    for window, divisor in zip(windows, divisors):
        weight = Fraction(1, divisor)
        rows = max(rows, weight * len(window))
        for i in window:
            columns[i] = columns.get(i, Fraction(0)) + weight
    return max(columns.values(), default=Fraction(0)), rows


def schur_bound(axes: list[tuple]) -> sp.Expr:
    """√(Π ‖P_a‖₁·‖P_a‖∞) over the axes (Fractions or sympy values), as an exact sympy number or expression."""
    def exact(x):
        return sp.Rational(x.numerator, x.denominator) if isinstance(x, Fraction) else sp.sympify(x)

    return sp.sqrt(sp.Mul(*(exact(one) * exact(inf) for one, inf in axes)))


def numeric_size(size: sp.Expr) -> int | None:
    """The axis size as an int when it is a number small enough to enumerate, else None."""
    size = sp.sympify(size)
    if size.is_Integer and 1 <= int(size) <= MAX_ENUMERATED:
        return int(size)
    return None
