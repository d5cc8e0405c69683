"""Soundness of the bias rule (:func:`boundcalc.calculus.rules.affine_tight`) on a residual ReLU network with
biases: the derived bound (tight rules, C1 = C2 = 1, see tests/soundness/bounds.py for why that is an
assumption) stays above a lower estimate of the true empirical Gaussian complexity (tests/soundness/affine.py),
and the same network declared bias-free gives a bound that the estimate exceeds (so the test can fail: the bias
terms are what keep the bound above)."""
import numpy as np
import pytest

import boundcalc
from tests.soundness.affine import Affine, residual_lower, residual_spec

CASES = [
    (0, (Affine(3, 1.0, 2.0), Affine(3, 0.8, 1.5), Affine(2, 1.2, 2.5))),
    (1, (Affine(4, 1.5, 0.5), Affine(4, 0.5, 3.0), Affine(3, 1.0, 1.0))),
    (2, (Affine(2, 0.7, 4.0), Affine(2, 1.3, 0.3), Affine(2, 0.9, 0.2))),
]


def _bias_norms(layers) -> dict[str, float]:
    return {f"c_{name}": layer.bias for name, layer in zip(("fc1", "fc2", "head"), layers)}


def _bound(X: np.ndarray, layers, biases: bool) -> float:
    spec = boundcalc.parse_spec(residual_spec(X.shape[1], X.shape[0], layers, biases=biases))
    values = {"X_F": float(np.linalg.norm(X)), "C1": 1.0, "C2": 1.0, **_bias_norms(layers)}
    return float(boundcalc.compose_numeric(spec, values, rules="tight"))


@pytest.mark.parametrize("seed,layers", CASES)
def test_bias_bound_above_projected_ascent(seed, layers):
    rng = np.random.default_rng(seed)
    X = 0.1 * rng.normal(size=(6, 3))
    estimate = residual_lower(X, layers, draws=20, restarts=3, steps=100, seed=seed)
    assert _bound(X, layers, biases=True) >= estimate.upper, (layers, estimate)
    assert _bound(X, layers, biases=False) < estimate.mean - 3 * estimate.stderr


def test_bias_bound_symbolic_equals_numeric():
    """compose_numeric (used above) and the printed sympy bound agree on a biased residual network."""
    import sympy as sp

    layers = CASES[0][1]
    X = np.random.default_rng(4).normal(size=(6, 3))
    spec = boundcalc.parse_spec(residual_spec(3, 6, layers))
    symbolic = boundcalc.derive(spec, rules="tight").complexity
    value = symbolic.subs({sp.Symbol("X_F", positive=True): np.linalg.norm(X),
                           sp.Symbol("C1", positive=True): 1, sp.Symbol("C2", positive=True): 1,
                           **{sp.Symbol(k, positive=True): v for k, v in _bias_norms(layers).items()}})
    assert float(value) == pytest.approx(_bound(X, layers, True), rel=1e-12)
