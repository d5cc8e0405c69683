"""A symbolic-count repeat must agree with the unrolled derivation for every concrete count."""
import math

import pytest
import sympy as sp

import boundcalc
from boundcalc.numerics import log_value
from tests.conftest import evaluate, random_values

MLP_BODY = """        - {op: linear, out: h, name: mid, rank: r}
        - relu"""
RESIDUAL_BODY = """        - {op: linear, out: h, name: a}
        - {op: relu, name: act}
        - {op: linear, out: h, name: b}
        - {op: add, inputs: [b, input], name: res}"""
UNIFORM_BODY = """        - {op: linear, out: h, name: mid, spectral: B, frobenius: sqrt(r)*B}
        - relu"""

TEMPLATE = """
data: {samples: m, dim: d}
layers:
  - {op: linear, out: h, name: first, rank: r0}
  - relu
  - repeat:
      count: %s
      index: t
      body:
%s
  - {op: linear, out: k, name: head}
"""
FROM_INPUT = """
data: {samples: m, dim: d}
layers:
  - repeat:
      count: L
      index: t
      body:
        - {op: linear, out: h, name: mid, rank: r}
        - relu
"""


def L_symbol():
    return sp.Symbol("L", positive=True, integer=True)


PER_INDEX_BODY = """        - relu
        - {op: linear, out: h, name: blk}"""

CASES = [
    ("mlp-tight", TEMPLATE % ("L", MLP_BODY), "tight"),
    ("mlp-as-printed", TEMPLATE % ("L", MLP_BODY), "as_printed"),
    ("residual", TEMPLATE % ("L", RESIDUAL_BODY), "tight"),
    ("uniform", TEMPLATE % ("L", UNIFORM_BODY), "tight"),
    ("first-is-repeat", FROM_INPUT, "tight"),
    ("first-is-repeat-as-printed", FROM_INPUT, "as_printed"),
    ("per-index-norms", TEMPLATE % ("L", PER_INDEX_BODY), "tight"),
]


@pytest.mark.parametrize("text,rules", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("count", range(1, 7))
def test_closed_form_equals_unrolled(text, rules, count):
    closed = boundcalc.derive(boundcalc.parse_spec(text), rules=rules)
    unrolled = boundcalc.derive(boundcalc.parse_spec(text, values={"L": count}), rules=rules)
    assert closed.complexity.has(L_symbol())
    at_count = closed.complexity.xreplace({L_symbol(): count}).doit()
    values = random_values(at_count, unrolled.complexity, seed=count)
    want = evaluate(unrolled.complexity, values)
    assert evaluate(at_count, values) == pytest.approx(want, rel=1e-9)
    # and as a reader evaluates the printed closed form: an empty Π is 1 (sympy's doit uses Karr's
    # convention, Π_{2..0} = 1/Π_{1..1}, under which a wrong-looking form can still pass the check above)
    sign, log = log_value(closed.complexity, {**{str(k): v for k, v in values.items()}, "L": count})
    assert sign == 1 and math.exp(log) == pytest.approx(want, rel=1e-9)


def test_shifted_count_equals_unrolled():
    text = TEMPLATE % ("L - 2", MLP_BODY)
    closed = boundcalc.derive(boundcalc.parse_spec(text))
    for depth in (3, 5):
        unrolled = boundcalc.derive(boundcalc.parse_spec(text, values={"L": depth}))
        at = closed.complexity.xreplace({L_symbol(): depth}).doit()
        values = random_values(at, unrolled.complexity, seed=depth)
        assert evaluate(at, values) == pytest.approx(evaluate(unrolled.complexity, values), rel=1e-9)


def test_uniform_repeat_gives_powers_not_products():
    bound = boundcalc.derive(boundcalc.parse_spec(TEMPLATE % ("L", UNIFORM_BODY)))
    assert not bound.complexity.has(sp.Product)


def test_index_dependent_rank_is_refused_by_as_printed():
    text = TEMPLATE % ("L", "        - {op: linear, out: h, name: mid}\n        - relu")
    with pytest.raises(boundcalc.DeriveError, match="running minimum rank"):
        boundcalc.derive(boundcalc.parse_spec(text), rules="as_printed")
