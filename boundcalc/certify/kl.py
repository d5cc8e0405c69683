"""The binary kl divergence, its inverse, and the bounds built on it (docs/references.md §11).

- :func:`kl_inverse` is the upper inverse sup{p ∈ [q, 1] : kl(q‖p) ≤ c}, by bisection that returns the upper
  end of its bracket, so the value is never below the true inverse (a certificate is never optimistic);
- :func:`mc_error_bound` is the sample-convergence bound of Langford & Caruana (2001);
- :func:`pac_bayes_kl` is the PAC-Bayes-kl bound (Seeger 2002; Maurer 2004);
- :func:`occam_kl` is the kl form of the Occam bound for a prefix-free code (point-mass posterior);
- :func:`catoni` is Catoni's (2007) bound at one value of its parameter C.
"""
from __future__ import annotations

import math

#: bisection stops when the bracket is two adjacent floats; 2,200 halvings reach that from [0, 1] even at 1e-308
_STEPS = 2200


def binary_kl(q: float, p: float) -> float:
    """kl(q‖p) = q ln(q/p) + (1−q) ln((1−q)/(1−p)), with 0 ln 0 = 0 and +inf where p ∈ {0, 1} excludes q.
    Written with log1p so that kl near 0 (p close to q) keeps its digits."""
    _check_unit("q", q)
    _check_unit("p", p)
    if p == q:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return math.inf
    out = 0.0
    if q > 0.0:
        # ln(q/p) = −log1p((p − q)/q): no rounded ratio q/p, whose error (1e-16 absolute in the log) would swamp
        # a divergence of 1e-8
        out -= q * math.log1p((p - q) / q)
    if q < 1.0:
        # ln((1−q)/(1−p)) = log1p((p − q)/(1 − p))
        out += (1.0 - q) * math.log1p((p - q) / (1.0 - p))
    return max(out, 0.0)


def kl_inverse(q: float, c: float) -> float:
    """sup{p ∈ [q, 1] : kl(q‖p) ≤ c}: the largest true risk consistent with empirical risk q at budget c.
    c = 0 gives q; q = 1 gives 1; otherwise bisection on [q, 1] down to adjacent floats, returning the upper end
    of the bracket (kl(q‖·) is increasing on [q, 1], so every point above the root is a valid bound)."""
    _check_unit("q", q)
    if not (c >= 0.0) or math.isnan(c):
        raise ValueError(f"kl_inverse: the budget c must be ≥ 0, got {c}")
    if c == 0.0 or q >= 1.0:
        return q
    if math.isinf(c):
        return 1.0
    lo, hi = q, 1.0
    for _ in range(_STEPS):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if binary_kl(q, mid) > c:
            hi = mid
        else:
            lo = mid
    return hi


def mc_error_bound(mc_error: float, samples: int, delta: float) -> float:
    """Langford & Caruana (2001): with N classifiers drawn from Q and their mean empirical error ê_MC,
    ê_Q ≤ kl⁻¹(ê_MC, ln(2/δ′)/N) with probability ≥ 1 − δ′."""
    _check_count("Monte-Carlo samples", samples)
    _check_delta(delta)
    return kl_inverse(mc_error, math.log(2.0 / delta) / samples)


def pac_bayes_kl_budget(kl_nats: float, n: int, delta: float) -> float:
    """(KL + ln(2√n/δ))/n, the right-hand side of the PAC-Bayes-kl bound."""
    _check_count("samples", n)
    _check_delta(delta)
    if kl_nats < 0:
        raise ValueError(f"KL must be ≥ 0, got {kl_nats}")
    return (kl_nats + math.log(2.0 * math.sqrt(n) / delta)) / n


def pac_bayes_kl(empirical: float, kl_nats: float, n: int, delta: float) -> float:
    """Seeger (2002), Maurer (2004): e(Q) ≤ kl⁻¹(ê(Q), (KL(Q‖P) + ln(2√n/δ))/n) w.p. ≥ 1 − δ, for all Q."""
    return kl_inverse(empirical, pac_bayes_kl_budget(kl_nats, n, delta))


def occam_kl_budget(code_nats: float, n: int, delta: float) -> float:
    """(L ln 2 + ln(1/δ))/n for a classifier with a prefix-free code of L ln 2 = ``code_nats`` nats."""
    _check_count("samples", n)
    _check_delta(delta)
    return (code_nats + math.log(1.0 / delta)) / n


def occam_kl(empirical: float, code_nats: float, n: int, delta: float) -> float:
    """e(h) ≤ kl⁻¹(ê(h), (ln(1/P(h)) + ln(1/δ))/n) for every h at once, P(h) = 2^(−L(h)) from a prefix-free code
    (Kraft: Σ P(h) ≤ 1); the Chernoff bound P(kl(ê‖e) ≥ ε, ê < e) ≤ e^(−nε) and a union bound weighted by P."""
    return kl_inverse(empirical, occam_kl_budget(code_nats, n, delta))


def catoni(empirical: float, kl_nats: float, n: int, delta: float, c: float) -> float:
    """Catoni (2007), at a fixed C > 0: e(Q) ≤ (1 − exp(−C ê(Q) − (KL + ln(1/δ))/n)) / (1 − e^(−C)),
    w.p. ≥ 1 − δ for all Q. A grid of C values costs a union bound (δ split over the grid)."""
    _check_unit("empirical error", empirical)
    _check_count("samples", n)
    _check_delta(delta)
    if not c > 0:
        raise ValueError(f"Catoni's C must be > 0, got {c}")
    exponent = -c * empirical - (kl_nats + math.log(1.0 / delta)) / n
    return min(1.0, -math.expm1(exponent) / -math.expm1(-c))


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_count(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"the number of {name} must be a positive integer, got {value}")


def _check_delta(delta: float) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError(f"δ must be in (0, 1), got {delta}")
