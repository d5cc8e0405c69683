"""Soundness of the softmax_mix rule (docs/references.md §3.10) with the sequence rules around it: token-wise
linear with a bias → layernorm (γ, β) → q, k, v token-wise linears → softmax_mix (1 or 2 heads, causal or not) →
output linear → token_mean → linear head. The derived bound (tight rules, C1 = C2 = 1, see tests/soundness/bounds.py
for why that is an assumption) must stay above a lower estimate of the true empirical Gaussian complexity by
projected ascent (tests/soundness/attention_estimators.py, no boundcalc code). The companion shows the check can
fail: on a class where only the attention pattern is learnt (q = W_q x_t, keys and values the data), the bound with
the softmax part of the constant left out (L = √T) falls below the estimate, while the rule's L stays above it."""
from __future__ import annotations

import math

import numpy as np
import pytest

import boundcalc
import boundcalc.calculus.attention_rule as attention_rule
from tests.soundness.attention_estimators import AttentionClass, attention_lower, query_only_lower

EFFORT = dict(draws=20, restarts=3, steps=100)


def _linear(name: str, out: int, s: float, source: str, fan_in: int, bias: bool = False) -> str:
    """A token-wise linear of the class ‖W‖₂ ≤ s (so ‖W‖_F ≤ √min(out, in)·s)."""
    return (f"  - {{op: linear, name: {name}, out: {out}, spectral: {s!r}, frobenius: sqrt({min(out, fan_in)})*{s!r}, "
            f"bias: {'true' if bias else 'false'}, inputs: [{source}]}}\n")


def _spec(X: np.ndarray, c: AttentionClass) -> str:
    m, T, d = X.shape
    w = c.width
    return (f"data: {{samples: {m}, tokens: {T}, dim: {d}}}\nlayers:\n" + _linear("fc1", d, c.s1, "input", d, c.c1 > 0)
            + f"  - {{op: layernorm, name: ln, eps: {c.eps!r}}}\n"
            + "".join(_linear(n, w, s, "ln", d) for n, s in (("q", c.sq), ("k", c.sk), ("v", c.sv)))
            + f"  - {{op: softmax_mix, name: mix, heads: {c.heads}, causal: {str(c.causal).lower()}, inputs: [q, k, v]}}\n"
            + _linear("o", d, c.so, "mix", w) + "  - {op: token_mean, name: pool}\n" + _linear("head", c.out, c.s2, "pool", d))


def _data_values(X: np.ndarray) -> dict[str, float]:
    return {"X_F": float(np.linalg.norm(X)), "B_X": float(np.linalg.norm(X, axis=2).max()), "C1": 1.0, "C2": 1.0}


def _bound(X: np.ndarray, c: AttentionClass) -> float:
    """‖γ‖₂ ≤ √d·g is implied by ‖γ‖∞ ≤ g."""
    d = X.shape[2]
    values = {**_data_values(X), "c_fc1": c.c1, "s_ln": c.g, "f_ln": math.sqrt(d) * c.g, "c_ln": c.c_beta}
    return float(boundcalc.compose_numeric(boundcalc.parse_spec(_spec(X, c)), values, rules="tight"))


CASES = [  # (seed, (m, T, d), class)
    (0, (6, 4, 3), AttentionClass(1.0, 0.5, 0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, width=3, heads=1, out=2)),
    (1, (6, 8, 3), AttentionClass(1.0, 0.0, 1e-2, 1.0, 0.0, 3.0, 3.0, 1.0, 1.0, 1.0, width=4, heads=2, out=2,
                                  causal=True)),
    (2, (5, 3, 2), AttentionClass(0.3, 0.2, 0.1, 2.0, 1.0, 2.0, 0.5, 2.0, 0.7, 1.5, width=2, heads=1, out=3)),
]


@pytest.mark.parametrize("seed,shape,c", CASES)
def test_attention_bound_is_above_projected_ascent(seed, shape, c):
    X = np.random.default_rng(seed).normal(size=shape)
    estimate = attention_lower(X, c, seed=seed, **EFFORT)
    assert _bound(X, c) >= estimate.upper, (c, estimate)


def _query_only_bound(X: np.ndarray, s_q: float) -> float:
    m, T, d = X.shape
    spec = boundcalc.parse_spec(f"data: {{samples: {m}, tokens: {T}, dim: {d}}}\nlayers:\n" + _linear("q", d, s_q, "input", d)
                                + "  - {op: softmax_mix, name: mix, heads: 1, inputs: [q, input, input]}\n  - token_mean\n")
    return float(boundcalc.compose_numeric(spec, _data_values(X), rules="tight"))


def test_without_the_softmax_part_of_the_constant_the_bound_would_fail(monkeypatch):
    """Tokens of norm ≈ 17, ‖W_q‖₂ ≤ 0.01: the scores stay small, the output moves by ≈ scale·B_v·B_k times the
    change of q, and L = √T alone (the mix treated as A·V with A fixed) is an order of magnitude too small."""
    X = 10.0 * np.random.default_rng(3).normal(size=(6, 4, 3))
    estimate = query_only_lower(X, 0.01, seed=3, **EFFORT)
    assert _query_only_bound(X, 0.01) >= estimate.upper, estimate
    full = attention_rule.mix_lipschitz
    monkeypatch.setattr(attention_rule, "mix_lipschitz", lambda T, scale, b_q, b_k, b_v: full(T, scale, 0 * b_q, 0 * b_k, b_v))
    assert _query_only_bound(X, 0.01) < estimate.mean - 5 * estimate.stderr, estimate
