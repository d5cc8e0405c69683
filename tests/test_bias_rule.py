"""The affine rule (biases) of the tight rules, against hand-worked formulas: one biased layer, a biased layer
followed by a second one, a symbolic repeat of biased layers against its unrolled derivation."""
from __future__ import annotations

import random

import pytest
import sympy as sp

import boundcalc
from boundcalc.errors import DeriveError

P = {n: sp.Symbol(n, positive=True) for n in ("X_F", "C1", "C2", "m", "f_fc", "c_fc", "s_fc", "f_out", "c_out")}


def test_one_biased_layer_is_lemma_10_plus_the_bias_part():
    """G(WX + b1ᵀ) ≤ f·√h·‖X‖_F + c·√(m·h), divided by m."""
    spec = boundcalc.parse_spec("data: {samples: m, dim: 5}\nlayers:\n  - {op: linear, name: fc, out: 3, bias: true}\n")
    want = (P["f_fc"] * sp.sqrt(3) * P["X_F"] + P["c_fc"] * sp.sqrt(P["m"] * 3)) / P["m"]
    assert sp.simplify(boundcalc.derive(spec).complexity - want) == 0


def test_two_biased_layers_by_hand():
    """Layer 2 sees N = s·X_F + √m·c and D = 2N: its disturbance is C2·2N·f_out·√k, its bias part c_out·√(m·k);
    layer 1's terms are multiplied by C1·s_out."""
    spec = boundcalc.parse_spec("data: {samples: m, dim: 5}\nlayers:\n  - {op: linear, name: fc, out: 3, bias: true}\n"
                                "  - relu\n  - {op: linear, name: out, out: 2, bias: true}\n")
    s_out = sp.Symbol("s_out", positive=True)
    m, k = P["m"], 2
    first = P["f_fc"] * sp.sqrt(3) * P["X_F"] + P["c_fc"] * sp.sqrt(3 * m)
    image = P["s_fc"] * P["X_F"] + sp.sqrt(m) * P["c_fc"]
    want = (P["C1"] * s_out * first + P["C2"] * 2 * image * P["f_out"] * sp.sqrt(k) + P["c_out"] * sp.sqrt(m * k)) / m
    assert sp.simplify(boundcalc.derive(spec).complexity - want) == 0


def test_as_printed_refuses_biases():
    spec = boundcalc.parse_spec("data: {samples: m, dim: 5}\nlayers:\n  - {op: linear, name: fc, out: 3, bias: true}\n")
    with pytest.raises(DeriveError) as err:
        boundcalc.derive(spec, rules="as_printed")
    assert "has a bias" in " ".join(err.value.problems)


REPEAT = """data: {samples: m, dim: d}
layers:
  - {op: linear, name: fc_in, out: h, bias: true}
  - repeat:
      count: L
      index: t
      body:
        - relu
        - {op: linear, name: fc, out: h, bias: true}
  - relu
  - {op: linear, name: head, out: k, bias: true}
"""


def _at_random_values(expr: sp.Expr) -> float:
    def value(atom):
        random.seed(str(atom))
        return random.uniform(0.5, 2.0)
    expr = expr.xreplace({a: value(a) for a in expr.atoms(sp.Indexed)})
    return float(expr.xreplace({a: value(a) for a in expr.free_symbols}))


@pytest.mark.parametrize("count", [1, 2, 4])
def test_symbolic_repeat_with_biases_equals_the_unrolled_derivation(count):
    closed = boundcalc.derive(boundcalc.parse_spec(REPEAT)).complexity
    closed = closed.subs(sp.Symbol("L", positive=True, integer=True), count).doit()
    unrolled = boundcalc.derive(boundcalc.parse_spec(REPEAT, values={"L": count})).complexity
    assert _at_random_values(closed) == pytest.approx(_at_random_values(unrolled), rel=1e-12)
