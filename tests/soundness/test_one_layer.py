"""Soundness, exact case: for {W : ‖W‖₂ ≤ s, rank W ≤ r} the supremum of ⟨W, ΓX⟩ is s·(sum of the top r
singular values of ΓX), so Ĝ_S is a plain Monte-Carlo mean. The derived bound must not be below it."""
import numpy as np
import pytest

from tests.soundness.bounds import derived_complexity
from tests.soundness.cases import ONE_LAYER, one_layer_data
from tests.soundness.estimators import Layer, deep_lower, one_layer_exact


@pytest.mark.parametrize("m,d,layer", ONE_LAYER)
def test_bound_above_exact_monte_carlo(m, d, layer):
    X = one_layer_data(m, d)
    estimate = one_layer_exact(X, layer, draws=4000, rng=np.random.default_rng(1))
    for rules in ("tight", "as_printed"):
        bound = derived_complexity(X, [layer], rules)
        assert bound >= estimate.upper, (rules, bound, estimate)
        # Lemma 10 is Jensen plus a Frobenius relaxation: close to exact when r = h, never far above
        assert bound / estimate.mean < 3


def test_projected_ascent_reaches_the_exact_supremum_of_one_layer():
    """The deep estimator's own check: with one layer its final step is exact, so it must agree with the
    closed form up to Monte-Carlo error (different draws of Γ)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(15, 5))
    layer = Layer(4, 1.2, 2)
    exact = one_layer_exact(X, layer, draws=2000, rng=rng)
    ascent = deep_lower(X, [layer], draws=2000, restarts=1, steps=1, seed=0)
    assert abs(exact.mean - ascent.mean) < 4 * np.hypot(exact.stderr, ascent.stderr)
