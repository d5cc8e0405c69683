"""Soundness, exact case: for {W : ‖W‖₂ ≤ s, rank W ≤ r} the supremum of ⟨W, ΓX⟩ is s·(sum of the top r
singular values of ΓX), so Ĝ_S is a plain Monte-Carlo mean. The derived bound must not be below it."""
import numpy as np
import pytest
import sympy as sp

import boundcalc

SPEC = """
data: {samples: %d, dim: %d}
layers:
  - {op: linear, out: %d, spectral: %g, rank: %d, frobenius: sqrt(%d)*%g}
"""


@pytest.mark.parametrize("m,d,h,r,s", [(20, 6, 4, 1, 1.5), (30, 8, 8, 3, 0.7), (10, 5, 3, 3, 2.0)])
def test_bound_above_exact_monte_carlo(m, d, h, r, s):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(m, d))
    draws = 4000
    sups = np.empty(draws)
    for k in range(draws):
        gamma = rng.normal(size=(h, m))
        sups[k] = s * np.linalg.svd(gamma @ X, compute_uv=False)[:r].sum() / m
    estimate = sups.mean()
    upper_ci = estimate + 3 * sups.std(ddof=1) / np.sqrt(draws)
    for rules in ("tight", "as_printed"):
        bound = boundcalc.derive(boundcalc.parse_spec(SPEC % (m, d, h, s, r, r, s)), rules=rules)
        value = float(bound.complexity.xreplace({sp.Symbol("X_F", positive=True): np.linalg.norm(X)}))
        assert value >= upper_ci, (rules, value, estimate)
        assert value / estimate < 3  # and it is not vacuous: within a small factor here
