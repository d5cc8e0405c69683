"""Derived bounds against formulas written out by hand from the paper (not from the code's output)."""
import random

import pytest
import sympy as sp

import boundcalc
from tests.conftest import evaluate, random_values

THREE_LAYERS = """
data: {samples: m, dim: d}
layers:
  - {op: linear, name: fc1, out: h1}
  - relu
  - {op: linear, name: fc2, out: h2}
  - relu
  - {op: linear, name: fc3, out: h3}
"""


def P(name):
    return sp.Symbol(name, positive=True)


def eq4_by_hand():
    """Pinto et al. eq. (4) for L = 3, with 𝔯_i = min_{j≤i} rank W_j and κ_i = Π_{j≠i} ‖W_j‖₂:
    (‖X‖_F/m)·{ f1√h1·C1 s2·C1 s3
               + C1^(3-2)·C2·2√(2𝔯_2)·(s1 s3)·f2√h2
               + C1^(3-3)·C2·2√(2𝔯_3)·(s1 s2)·f3√h3 }"""
    X, m, C1, C2 = P("X_F"), P("m"), P("C1"), P("C2")
    s1, s2, s3 = P("s_fc1"), P("s_fc2"), P("s_fc3")
    f1, f2, f3 = P("f_fc1"), P("f_fc2"), P("f_fc3")
    r1, r2, r3 = P("r_fc1"), P("r_fc2"), P("r_fc3")
    h1, h2, h3 = P("h1"), P("h2"), P("h3")
    rr2, rr3 = sp.Min(r1, r2), sp.Min(r1, r2, r3)
    return (X / m) * (f1 * sp.sqrt(h1) * C1 * s2 * C1 * s3
                      + C1 * C2 * 2 * sp.sqrt(2 * rr2) * (s1 * s3) * f2 * sp.sqrt(h2)
                      + C2 * 2 * sp.sqrt(2 * rr3) * (s1 * s2) * f3 * sp.sqrt(h3))


def tight_by_hand():
    """Same recursion with D(Z_{i-1}) ≤ 2·Π_{j<i} s_j·‖X‖_F (no rank factor)."""
    X, m, C1, C2 = P("X_F"), P("m"), P("C1"), P("C2")
    s1, s2, s3 = P("s_fc1"), P("s_fc2"), P("s_fc3")
    f1, f2, f3 = P("f_fc1"), P("f_fc2"), P("f_fc3")
    h1, h2, h3 = P("h1"), P("h2"), P("h3")
    return (X / m) * (f1 * sp.sqrt(h1) * C1**2 * s2 * s3
                      + C1 * C2 * 2 * s1 * s3 * f2 * sp.sqrt(h2)
                      + C2 * 2 * s1 * s2 * f3 * sp.sqrt(h3))


@pytest.mark.parametrize("seed", range(5))
def test_as_printed_equals_eq4(seed):
    bound = boundcalc.derive(boundcalc.parse_spec(THREE_LAYERS), rules="as_printed")
    values = random_values(bound.complexity, eq4_by_hand(), seed=seed, low=0.5, high=20)
    assert evaluate(bound.complexity, values) == pytest.approx(evaluate(eq4_by_hand(), values), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_tight_equals_hand_formula(seed):
    bound = boundcalc.derive(boundcalc.parse_spec(THREE_LAYERS), rules="tight")
    values = random_values(bound.complexity, tight_by_hand(), seed=seed)
    assert evaluate(bound.complexity, values) == pytest.approx(evaluate(tight_by_hand(), values), rel=1e-12)


def test_tight_never_above_as_printed():
    spec = boundcalc.parse_spec(THREE_LAYERS)
    tight = boundcalc.derive(spec, rules="tight").complexity
    printed = boundcalc.derive(spec, rules="as_printed").complexity
    rng = random.Random(1)
    for seed in range(200):
        values = random_values(tight, printed, seed=seed, low=0.1, high=10)
        for name in ("r_fc1", "r_fc2", "r_fc3"):  # ranks are integers ≥ 1
            values[P(name)] = rng.randint(1, 50)
        assert evaluate(tight, values) <= evaluate(printed, values) * (1 + 1e-12)


def test_terms_sum_to_the_composed_bound():
    for rules in ("tight", "as_printed"):
        bound = boundcalc.derive(boundcalc.parse_spec(THREE_LAYERS), rules=rules)
        from boundcalc.calculus.arith import canonical
        values = random_values(bound.complexity, seed=3)
        assert evaluate(canonical(bound.compact), values) == pytest.approx(evaluate(bound.complexity, values))
        assert [t.layer for t in bound.terms] == ["fc1", "fc2", "fc3"]
        assert [t.kind for t in bound.terms] == ["first layer", "disturbance", "disturbance"]


def test_c1_power_is_reported():
    bound = boundcalc.derive(boundcalc.parse_spec(THREE_LAYERS))
    assert bound.c1_power == 2


def test_gap_forms():
    spec = boundcalc.parse_spec(THREE_LAYERS + "loss: {lipschitz: 1/gamma, delta: delta}\n")
    derived = boundcalc.derive(spec, gap="derived")
    printed = boundcalc.derive(spec, gap="printed")
    G, gamma, delta, m = derived.complexity, P("gamma"), P("delta"), P("m")
    assert sp.simplify(derived.gap - (2 * sp.sqrt(sp.pi) / gamma * G + 3 * sp.sqrt(sp.log(2 / delta) / (2 * m)))) == 0
    assert sp.simplify(printed.gap - (sp.sqrt(sp.pi / gamma) * G + sp.sqrt(9 * sp.log(2 / delta) / (2 * m)))) == 0
    assert any("typo" in c for c in derived.caveats)


def test_residual_block_by_hand():
    """x -> W1 x (stem), then y = z + W3 relu(W2 z). By hand (tight rules):
    G(z) = f1√h·X; D(z) = 2 s1 X; N(z) = s1 X.
    branch: G(W2 z) = C1 s2 G(z) + C2 D(z) f2√h; N(relu(W2 z)) = s2 s1 X
            G(W3 ·) = C1 s3 G(W2 z) + C2 (2 s2 N(z)) f3 √h
    G(y) = G(z) + G(branch)."""
    spec = boundcalc.parse_spec("""
data: {samples: m, dim: d}
layers:
  - {op: linear, name: w1, out: h}
  - {op: linear, name: w2, out: h}
  - relu
  - {op: linear, name: w3, out: h}
  - {op: add, inputs: [w3, w1]}
""")
    X, m, C1, C2, h = P("X_F"), P("m"), P("C1"), P("C2"), P("h")
    s1, s2, s3 = P("s_w1"), P("s_w2"), P("s_w3")
    f1, f2, f3 = P("f_w1"), P("f_w2"), P("f_w3")
    Gz, Dz, Nz = f1 * sp.sqrt(h) * X, 2 * s1 * X, s1 * X
    G2 = C1 * s2 * Gz + C2 * Dz * f2 * sp.sqrt(h)
    G3 = C1 * s3 * G2 + C2 * (2 * s2 * Nz) * f3 * sp.sqrt(h)
    expected = (Gz + G3) / m
    bound = boundcalc.derive(spec)
    values = random_values(bound.complexity, expected, seed=7)
    assert evaluate(bound.complexity, values) == pytest.approx(evaluate(expected, values), rel=1e-12)


def test_numeric_composition_matches_symbolic():
    spec = boundcalc.parse_spec(THREE_LAYERS)
    for rules in ("tight", "as_printed"):
        bound = boundcalc.derive(spec, rules=rules)
        values = random_values(bound.complexity, seed=11)
        by_name = {str(k): v for k, v in values.items()}
        numeric = boundcalc.compose_numeric(spec, by_name, rules=rules)
        assert float(numeric) == pytest.approx(evaluate(bound.complexity, values), rel=1e-12)
