"""Soundness for depth 2–4: the derived bound (both rule sets, C1 = C2 = 1, see tests/soundness/bounds.py for
why that is an assumption and what a violation would mean) must stay above a lower estimate of the true
empirical Gaussian complexity, found by projected gradient ascent over the constrained class."""
import numpy as np
import pytest
import sympy as sp

import boundcalc
from tests.soundness.bounds import derived_complexity
from tests.soundness.cases import DEEP, deep_case
from tests.soundness.estimators import deep_lower, random_network, spec_text

#: projected-ascent effort: Γ draws, restarts per draw, steps per restart (doubling either changes the
#: estimate by under 5% on these networks)
EFFORT = dict(draws=40, restarts=8, steps=300)


@pytest.mark.parametrize("seed,depth", DEEP)
def test_derived_bound_above_projected_ascent(seed, depth):
    X, layers = deep_case(seed, depth)
    estimate = deep_lower(X, layers, seed=seed, **EFFORT)
    for rules in ("tight", "as_printed"):
        bound = derived_complexity(X, layers, rules)
        assert bound >= estimate.upper, (rules, layers, bound, estimate)


def test_numeric_helper_agrees_with_the_symbolic_bound():
    """derived_complexity goes through compose_numeric; check it against the sympy expression once, so
    the soundness tests above test the bound boundcalc prints."""
    rng = np.random.default_rng(7)
    d, layers = random_network(rng, 3)
    X = rng.normal(size=(9, d))
    spec = boundcalc.parse_spec(spec_text(d, 9, layers))
    for rules in ("tight", "as_printed"):
        symbolic = boundcalc.derive(spec, rules=rules).complexity
        value = symbolic.subs({sp.Symbol("X_F", positive=True): np.linalg.norm(X),
                               sp.Symbol("C1", positive=True): 1, sp.Symbol("C2", positive=True): 1})
        assert float(value) == pytest.approx(derived_complexity(X, layers, rules), rel=1e-12)
