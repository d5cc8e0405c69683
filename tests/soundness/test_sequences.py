"""Soundness of the sequence rules (docs/references.md §3.9): a token-wise linear with a bias, a layernorm (its
1/√ε normalisation, the image-norm reset √(m·T·d) and the token-wise affine γ, β), a residual add over (T, d),
token_mean and a linear head. The derived bound (tight rules, C1 = C2 = 1, see tests/soundness/bounds.py for why
that is an assumption) must stay above a lower estimate of the true empirical Gaussian complexity by projected
ascent (tests/soundness/sequence_estimators.py, no boundcalc code). The companion test shows the check can fail:
with the layernorm taken out of the spec, the bound falls below the estimate, so the layernorm rule's terms are
what keep the bound above it."""
from __future__ import annotations

import math

import numpy as np
import pytest

import boundcalc
from tests.soundness.sequence_estimators import SequenceClass, sequence_lower

EFFORT = dict(draws=20, restarts=3, steps=100)


def _spec(X: np.ndarray, c: SequenceClass, layernorm: bool = True) -> str:
    m, T, d = X.shape
    ln = f"  - {{op: layernorm, name: ln, eps: {c.eps!r}{'' if c.affine else ', affine: false'}}}\n"
    skip = f"  - {{op: add, name: res, inputs: [{'ln' if layernorm else 'fc1'}, input]}}\n" if c.residual else ""
    return (f"data: {{samples: {m}, tokens: {T}, dim: {d}}}\nlayers:\n"
            f"  - {{op: linear, name: fc1, out: {d}, spectral: {c.s1!r}, frobenius: sqrt({d})*{c.s1!r}, "
            f"bias: {'true' if c.c1 else 'false'}}}\n" + (ln if layernorm else "") + skip + "  - token_mean\n"
            f"  - {{op: linear, name: head, out: {c.out}, spectral: {c.s2!r}, "
            f"frobenius: sqrt({min(c.out, d)})*{c.s2!r}}}\n")


def _bound(X: np.ndarray, c: SequenceClass, layernorm: bool = True) -> float:
    """The class's bound: ‖W‖_F ≤ √min(out, in)·s is implied by ‖W‖₂ ≤ s, and ‖γ‖₂ ≤ √d·g by ‖γ‖∞ ≤ g."""
    spec = boundcalc.parse_spec(_spec(X, c, layernorm))
    d = X.shape[2]
    values = {"X_F": float(np.linalg.norm(X)), "C1": 1.0, "C2": 1.0, "c_fc1": c.c1, "s_ln": c.g,
              "f_ln": math.sqrt(d) * c.g, "c_ln": c.c_beta}
    return float(boundcalc.compose_numeric(spec, values, rules="tight"))


CASES = [  # (seed, (m, T, d), class, equal tokens)
    (0, (6, 3, 3), SequenceClass(1.0, 0.5, 0.5, 1.0, 0.5, 1.0, 2), False),
    (1, (6, 4, 3), SequenceClass(0.3, 0.2, 0.05, 2.0, 1.0, 1.5, 3), False),
    (2, (5, 2, 4), SequenceClass(1.5, 0.0, 1.0, 0.7, 2.0, 0.8, 2), True),
    (3, (6, 3, 3), SequenceClass(0.2, 1.0, 0.01, 1.0, 0.0, 1.0, 2, affine=False), False),
    (4, (6, 5, 2), SequenceClass(0.05, 0.0, 1e-3, 1.0, 0.0, 1.0, 2, affine=False, residual=False), True),
]


def _data(seed: int, shape: tuple[int, int, int], equal_tokens: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m, T, d = shape
    if equal_tokens:       # where token_mean's 1/√T is attained
        return np.repeat(rng.normal(size=(m, 1, d)), T, axis=1)
    return rng.normal(size=shape)


@pytest.mark.parametrize("seed,shape,c,equal", CASES)
def test_sequence_bound_is_above_projected_ascent(seed, shape, c, equal):
    X = _data(seed, shape, equal)
    estimate = sequence_lower(X, c, seed=seed, **EFFORT)
    assert _bound(X, c) >= estimate.upper, (c, estimate)


def test_without_the_layernorm_rule_the_bound_would_fail():
    """Tiny first-layer weights: the layernorm scales its inputs back to norm ≈ √d per token, so the class stays
    rich; the same spec with the layernorm left out scales with s1 and is far below the estimate."""
    seed, shape, c, equal = CASES[4]
    X = _data(seed, shape, equal)
    estimate = sequence_lower(X, c, seed=seed, **EFFORT)
    assert _bound(X, c, layernorm=False) < estimate.mean - 5 * estimate.stderr, estimate
    assert _bound(X, c) >= estimate.upper
