"""Fuzzing the spec loader and the expression parser (hypothesis): arbitrary text, arbitrary YAML trees and
mutated valid specs give a valid result or the tool's own error type (BoundcalcError), never another
exception. Each test runs 2,000 examples."""
from __future__ import annotations

import copy
from pathlib import Path

import sympy as sp
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import boundcalc
from boundcalc.errors import BoundcalcError, ExpressionError
from boundcalc.graph import build_graph
from boundcalc.spec.expr import parse_expression

FUZZ = settings(max_examples=2000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SPECS = Path(__file__).resolve().parents[2] / "specs"
BUNDLED = [yaml.safe_load(p.read_text()) for p in sorted(SPECS.glob("*.yaml"))]

#: the spec vocabulary, so generated trees reach past the first "unknown field" check
KEYS = ["data", "layers", "loss", "symbols", "name", "description", "samples", "dim", "shape", "norm", "op",
        "out", "spectral", "frobenius", "rank", "param", "inputs", "repeat", "count", "index", "body",
        "channels", "kernel", "stride", "padding", "slope", "constant", "at_zero", "margin", "lipschitz",
        "delta", "dilation", "count_include_pad", "output", "approximate", "beta", "alpha", "p", "tokens", "eps",
        "affine"]
WORDS = ["linear", "relu", "conv2d", "add", "repeat", "flatten", "avgpool", "tanh", "identity", "leaky_relu",
         "lipschitz", "frobenius", "max_row", "m", "h", "L", "t", "B", "r", "gamma", "input", "sqrt(h)", "L - 2",
         "2*B", "fc1", "1/gamma", "-1", "0", "1e999", "nan", "__import__('os')", "a.b", "x[0]", "maxpool",
         "adaptive_avgpool", "concat", "gelu", "silu", "sigmoid", "softplus", "elu", "hardswish", "dropout", "tanh",
         "layernorm", "token_mean", "batchnorm"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.sampled_from(WORDS), st.text(max_size=8))
#: small trees: hypothesis spends its time generating, not in boundcalc, so size buys little coverage
trees = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), children, max_size=4)), max_leaves=12)


def load_and_build(text: str) -> None:
    """The CLI's spec path: load, validate and build the graph; only BoundcalcError may escape."""
    try:
        spec = boundcalc.parse_spec(text, file="fuzz.yaml")
        build_graph(spec)
    except BoundcalcError as err:
        assert str(err) and "\n" not in str(err)


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(text):
    load_and_build(text)


@FUZZ
@given(st.fixed_dictionaries({"data": trees, "layers": trees}, optional={"loss": trees, "symbols": trees}))
def test_arbitrary_yaml_trees(tree):
    load_and_build(yaml.safe_dump(tree, allow_unicode=True))


@st.composite
def mutated_specs(draw):
    """A bundled spec with one value somewhere replaced by a random tree: deep in the valid part."""
    spec = copy.deepcopy(draw(st.sampled_from(BUNDLED)))
    node, key = spec, None
    for _ in range(draw(st.integers(1, 4))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        if not children:
            break
        key, child = draw(st.sampled_from(children))
        if isinstance(child, (dict, list)) and draw(st.booleans()):
            node = child
            key = None
        else:
            break
    if key is not None:
        node[key] = draw(trees)
    return spec


@FUZZ
@given(mutated_specs())
def test_mutated_bundled_specs(spec):
    load_and_build(yaml.safe_dump(spec, allow_unicode=True))


EXPRESSION_ALPHABET = "0123456789.eE+-*/()% ,BhLrm_xsqrtlogexpminabsp'\"[]:;=<>!&|^~@"


def resolve(name: str) -> sp.Expr:
    if name.startswith("_"):
        raise ExpressionError(f"unknown symbol {name!r}")
    return sp.Symbol(name, positive=True)


@FUZZ
@given(st.one_of(st.text(max_size=60), st.text(EXPRESSION_ALPHABET, max_size=60), st.integers(), st.floats()))
def test_expression_parser(text):
    try:
        expr = parse_expression(text, resolve)
    except ExpressionError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert isinstance(expr, sp.Expr)
