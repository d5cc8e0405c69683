"""Soundness of the rules for parameter-free maps beyond ReLU: a map with φ(0) ≠ 0 between two layers (the
anchor term) and a concatenation skip. The derived bound (tight rules, C1 = C2 = 1, see tests/soundness/bounds.py
for why that is an assumption and what a violation would mean) must stay above a lower estimate of the true
empirical Gaussian complexity by projected ascent (tests/soundness/map_estimators.py, no boundcalc code)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import boundcalc
from tests.soundness.estimators import Layer
from tests.soundness.map_estimators import activation_features, concat_features, two_layer_lower

#: projected-ascent effort: Γ draws, restarts per draw, steps (small networks; the zero start is exact for the
#: anchor regime, and the bounds here exceed the estimates by a wide margin)
EFFORT = dict(draws=30, restarts=4, steps=150)


def _linear(name: str, layer: Layer) -> str:
    return (f"  - {{op: linear, name: {name}, out: {layer.out}, spectral: {layer.spectral!r}, rank: {layer.rank}, "
            f"frobenius: sqrt({layer.rank})*{layer.spectral!r}}}\n")


def _bound(X: np.ndarray, middle: str, first: Layer, last: Layer, without_anchor: bool = False) -> float:
    text = (f"data: {{samples: {X.shape[0]}, dim: {X.shape[1]}}}\nlayers:\n" + _linear("fc1", first) + middle
            + _linear("fc2", last))
    spec = boundcalc.parse_spec(text)
    values = {"X_F": float(np.linalg.norm(X)), "C1": 1.0, "C2": 1.0}
    total = float(boundcalc.compose_numeric(spec, values, rules="tight"))
    if without_anchor:       # the same bound with the anchor terms taken out (what a φ(0) = 0 rule would give)
        bound = boundcalc.derive(spec, rules="tight")
        subs = {s: values[str(s)] for s in bound.complexity.free_symbols if str(s) in values}
        anchor = sum(float(t.expr.subs(subs)) for t in bound.terms if t.kind == "anchor")
        total -= anchor
    return total


CASES = [  # (seed, map in the spec, the map in torch, first layer, last layer)
    (0, "  - sigmoid\n", torch.sigmoid, Layer(4, 0.2, 2), Layer(3, 1.0, 2)),
    (2, "  - {op: softplus, beta: 1}\n", F.softplus, Layer(4, 0.3, 2), Layer(3, 1.2, 3)),
    (3, "  - {op: softplus, beta: 2}\n", lambda y: F.softplus(y, beta=2), Layer(6, 1.0, 2), Layer(2, 1.0, 2)),
]


@pytest.mark.parametrize("seed,middle,phi,first,last", CASES)
def test_bound_with_a_shifted_map_is_above_projected_ascent(seed, middle, phi, first, last):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(10, 4))
    estimate = two_layer_lower(X, first, last, activation_features(phi), first.out, seed=seed, **EFFORT)
    assert _bound(X, middle, first, last) >= estimate.upper, estimate


def test_without_the_anchor_term_the_bound_would_fail():
    """The test above can fail: for small first-layer weights the features are ≈ φ(0)·1, and the bound with its
    anchor term removed is below the true complexity (the lower estimate, by many standard errors)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 4))
    first, last = Layer(4, 0.05, 2), Layer(3, 1.0, 3)
    estimate = two_layer_lower(X, first, last, activation_features(torch.sigmoid), 4, seed=0, **EFFORT)
    assert _bound(X, "  - sigmoid\n", first, last, without_anchor=True) < estimate.mean - 5 * estimate.stderr
    assert _bound(X, "  - sigmoid\n", first, last) >= estimate.upper


@pytest.mark.parametrize("seed,first,last", [(0, Layer(4, 1.0, 2), Layer(3, 1.0, 2)),
                                             (2, Layer(5, 0.7, 1), Layer(4, 1.5, 3))])
def test_bound_with_a_concat_skip_is_above_projected_ascent(seed, first, last):
    """x → fc2([relu(fc1 x); x]): the concat rule (G ≤ G_a + G_b; D, N, anchor, L summed)."""
    rng = np.random.default_rng(10 + seed)
    X = rng.normal(size=(10, 3))
    estimate = two_layer_lower(X, first, last, concat_features, first.out + X.shape[1], seed=seed, **EFFORT)
    bound = _bound(X, "  - relu\n  - {op: concat, inputs: [relu1, input]}\n", first, last)
    assert bound >= estimate.upper, (bound, estimate)
    assert math.isfinite(bound)
