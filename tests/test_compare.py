"""compare: the Table 1 reproduction, leading orders, crossovers, the registry sweep and log-space evaluation."""
import math
import random

import pytest
import sympy as sp

from boundcalc.bounds import REGISTRY, Applied, NetworkView
from boundcalc.compare.orders import Orders
from boundcalc.compare.table import compare
from boundcalc.numerics import log10_of, log_value, value_of
from boundcalc.spec.load import parse_spec

h, r, m, C1 = (sp.Symbol(n, positive=True) for n in ("h", "r", "m", "C1"))
L = sp.Symbol("L", positive=True, integer=True)   # repeat counts are integer symbols
BUNDLED = ["lowrank_mlp", "mlp3", "pinto_table1", "resnet_block", "small_cnn"]


def test_table1_of_pinto_et_al_is_reproduced(spec_path):
    """Right-hand column of Table 1 (factors after Π‖W_i‖₂/√m, input norm and margin dropped):
    Pinto C1^L·L·r·√h; Golowich √(L·r^L); Neyshabur 2018 and Bartlett 2017 √(L³·r·h) up to logs;
    and the tight rule set's improvement C1^L·L·√(r·h)."""
    result = compare(spec_path("pinto_table1"), regime="uniform", orders_only=True)
    orders = {row.key: row.order for row in result.rows if row.applies}
    expected = {
        "pinto2024": C1 ** L * L * r * sp.sqrt(h),
        "pinto2024_tight": C1 ** L * L * sp.sqrt(r * h),
        "golowich2018": sp.sqrt(L * r ** L),
        "neyshabur2018": sp.sqrt(L ** 3 * r * h),
        "bartlett2017": sp.sqrt(L ** 3 * r * h),
    }
    for key, want in expected.items():
        (got,) = orders[key]
        assert sp.simplify(sp.powsimp(got / want, force=True)) == 1, (key, got)
    assert result.normaliser == sp.Symbol("B", positive=True) ** L * sp.Symbol("R", positive=True) / (
        sp.Symbol("gamma", positive=True) * sp.sqrt(m))


def test_crossover_golowich_vs_tight_is_solved_for_r(spec_path):
    result = compare(spec_path("pinto_table1"), regime="uniform", orders_only=True, vs="pinto2024_tight")
    row = next(r_ for r_ in result.rows if r_.key == "golowich2018")
    # √L·r^(L/2) < C1^L·L·√(rh)  ⟺  r^((L−1)/2) < C1^L·√(L h)  ⟺  r < (C1^(2L)·L·h)^(1/(L−1))
    assert row.crossover == "golowich2018 < pinto2024_tight (up to constants) iff r < (C1**(2*L)*L*h)**(1/(L - 1))"


def test_regime_substitutions_are_listed(spec_path):
    result = compare(spec_path("lowrank_mlp"), regime="uniform")
    text = " ".join(result.substitutions)
    for phrase in ("s_i → B", "r_i → r", "h_i → h", "f_i → √r·B", "b_i → √(h_out·r)·B", "‖X‖_F → √m·R"):
        assert phrase in text


def test_orders_rules():
    o = Orders([L, h, r, m])
    # a sum keeps only non-dominated terms; constants go
    assert set(o.order(3 * L ** 2 + 5 * L * h + 7)) == {L ** 2, L * h}
    assert o.order(L + 2 * L ** 2) == [L ** 2]
    # constant bases keep only the growing part of the exponent
    assert o.order(C1 ** (L - 3) * 17) == [C1 ** L]
    # Σ_{i=2..L} C1^(L−i) ≤ (L−1)·(C1^(L−2) + 1) ≍ L·C1^L
    i = sp.Symbol("i", positive=True, integer=True)
    assert o.order(sp.Sum(C1 ** (L - i), (i, 2, L))) == [L * C1 ** L]
    # log of a product of growing symbols
    assert set(o.order(sp.log(L * h))) == {sp.log(L), sp.log(h)}
    assert not o.dominates(L, sp.sqrt(r)) and not o.dominates(sp.sqrt(r), L)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bound_on_every_bundled_spec_is_finite_or_says_why(name, spec_path):
    spec = spec_path(name, values={"L": 5}) if name in ("lowrank_mlp", "pinto_table1", "resnet_block") else spec_path(name)
    view = NetworkView(spec)
    rng = random.Random(1)
    for key, entry in REGISTRY.items():
        result = entry.apply(view)
        if not isinstance(result, Applied):
            assert result.reason
            continue
        expr = result.formula.gap
        names = {str(a) for a in expr.atoms(sp.Indexed)} | {s.name for s in expr.free_symbols}
        values = {n: rng.uniform(1.1, 3.0) for n in names}
        values.update({"m": 500.0, "delta": 0.05})
        if "gamma" in values:
            values["gamma"] = 1.0
        number = value_of(expr, values)
        assert math.isfinite(number) and number > 0, (name, key)


def test_compare_finishes_on_every_bundled_spec(spec_path):
    for name in BUNDLED:
        for regime in ("none", "uniform"):
            result = compare(spec_path(name), regime=regime)
            assert any(row.applies for row in result.rows)


def test_log_space_product_of_1000_layers_is_finite_where_floats_overflow():
    layers = "\n".join("  - {op: linear, out: 4}\n  - relu" for _ in range(999)) + "\n  - {op: linear, out: 2}"
    spec = parse_spec(f"data: {{samples: m, dim: 4}}\nlayers:\n{layers}\nloss: {{margin: gamma}}\n")
    result = REGISTRY["golowich2018"].apply(NetworkView(spec))
    values = {f"f_fc{i}": 3.0 for i in range(1, 1001)} | {"X_F": 10.0, "m": 100.0, "gamma": 1.0, "delta": 0.1}
    assert math.prod([3.0] * 1000) == math.inf
    log10 = log10_of(result.formula.complexity, values)
    # 2·√2·(√2/γ)·k·Π f·(√(2 ln2·1000) + 1)·‖X‖_F/m with k = 2: log10 = 1000·log10 3 + log10(8·38.23·10/100)
    expected = 1000 * math.log10(3) + math.log10(8 * (math.sqrt(2 * math.log(2) * 1000) + 1) * 10 / 100)
    assert log10 == pytest.approx(expected, rel=1e-12)
    assert value_of(result.formula.complexity, values) == math.inf


def test_log_space_symbolic_product_and_sum():
    i = sp.Symbol("i", positive=True, integer=True)
    s = sp.IndexedBase("s_V", positive=True)
    values = {f"s_V[{k}]": 5.0 for k in range(1, 1001)} | {"L": 1000}
    sign, logabs = log_value(sp.Product(s[i], (i, 1, L)), values)
    assert sign == 1 and logabs == pytest.approx(1000 * math.log(5))
    sign, logabs = log_value(sp.Sum(sp.Product(s[i], (i, 1, L)), (L, 1, 3)) - 5, {**values})
    assert sign == 1 and math.exp(logabs) == pytest.approx(25 + 125)   # 5 + 25 + 125 − 5
