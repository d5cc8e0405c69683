"""Property tests over random valid specs (hypothesis): derivation succeeds, the float composer equals the
symbolic bound substituted, the tight rules are never above the rules as printed, and the bound never
decreases when any norm, width, rank, constant or input norm grows."""
from __future__ import annotations

import random

import pytest
import sympy as sp
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import boundcalc
from boundcalc.numerics import log_value

ACTIVATIONS = ["relu", "identity", {"op": "leaky_relu", "slope": 0.1}]
TIGHT_ONLY_ACTIVATIONS = ["tanh", {"op": "lipschitz", "constant": 2}, "sigmoid",
                          {"op": "lipschitz", "constant": 0.5, "at_zero": 0.5}]   # φ(0) ≠ 0: the anchor term


@st.composite
def linear_layers(draw, name: str, out, rank_given: bool = False):
    """A linear layer; ``rank_given`` avoids the per-iteration rank symbol r_<name>[t] (inside a symbolic
    repeat the as-printed rules refuse it: their running minimum rank would change with the index)."""
    layer = {"op": "linear", "name": name, "out": out}
    layer["spectral"] = draw(st.sampled_from([None, 1.5, "B", f"B_{name}"]))
    layer["rank"] = draw(st.sampled_from(([] if rank_given else [None]) + [1, 2, "r"]))
    layer["frobenius"] = draw(st.sampled_from([None, "F"] + (["sqrt(r)*B"] if layer["spectral"] == "B"
                                                               and layer["rank"] == "r" else [])))
    return {k: v for k, v in layer.items() if v is not None}


@st.composite
def specs(draw, chain_only: bool):
    """A spec dict: linear layers with activations between them, optionally a repeated block (numeric or
    symbolic count) and, unless ``chain_only``, residual blocks and activations outside the as-printed class."""
    activations = ACTIVATIONS if chain_only else ACTIVATIONS + TIGHT_ONLY_ACTIVATIONS
    width = draw(st.sampled_from([3, 8, "h"]))
    layers = [draw(linear_layers("fc0", width))]
    last = "fc0"                     # the name of the latest block's output
    for i in range(1, draw(st.integers(1, 3)) + 1):
        kind = draw(st.sampled_from(["linear", "repeat"] + ([] if chain_only else ["residual"])))
        act = draw(st.sampled_from(activations))
        if kind == "linear":
            width = draw(st.sampled_from([2, 5, "h", "k"]))
            layers += [act, draw(linear_layers(f"fc{i}", width))]
            last = f"fc{i}"
        elif kind == "repeat":
            body = [act, draw(linear_layers(f"blk{i}", width, rank_given=chain_only))]
            count = draw(st.sampled_from([2, "L"]))
            layers.append({"repeat": {"name": f"rep{i}", "count": count, "index": "t", "body": body}})
            last = f"rep{i}"
        else:
            layers += [act, draw(linear_layers(f"res{i}", width)),
                       {"op": "add", "name": f"add{i}", "inputs": [f"res{i}", last]}]
            last = f"add{i}"
    return {"data": {"samples": "m", "dim": draw(st.sampled_from([4, "d"])), "norm": "frobenius"},
            "layers": layers, "loss": {"margin": "gamma"}}


COUNT = 3   # the value given to a symbolic repeat count L


def parse(spec: dict, unroll: bool = False) -> boundcalc.Spec:
    """The spec; with ``unroll``, L = COUNT is substituted at load time so every repeat is unrolled and the
    float composer runs layer by layer, while the symbolic bound keeps L and its closed-form Π/Σ."""
    return boundcalc.parse_spec(yaml.safe_dump(spec, sort_keys=False), values={"L": COUNT} if unroll else None)


def value_table(exprs, seed: int, count: int = COUNT) -> dict[str, float]:
    """Random values for every symbol of ``exprs``: ranks ≥ 1 (a rank is at least 1), repeat counts set to
    ``count`` (integers), and one value per index of every indexed symbol."""
    rng = random.Random(seed)
    values: dict[str, float] = {"L": count}
    for expr in exprs:
        for atom in expr.atoms(sp.Indexed):
            for t in range(1, count + 1):
                values.setdefault(f"{atom.base}[{t}]", rng.uniform(1.0, 4.0))
        for atom in expr.free_symbols:
            values.setdefault(str(atom), rng.uniform(1.0, 4.0))
    values.pop("t", None)
    return values


def monotone_keys(values: dict[str, float]) -> list[str]:
    """Every quantity the bound should not decrease in: all but the sample count and the repeat count."""
    return [k for k in values if k not in ("m", "L")]


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(specs(chain_only=False), st.integers(0, 10**6))
def test_tight_rules_derive_and_compose_like_the_symbolic_bound(spec_dict, seed):
    bound = boundcalc.derive(parse(spec_dict), rules="tight")
    spec = parse(spec_dict, unroll=True)
    values = value_table([bound.complexity], seed)
    numeric = boundcalc.compose_numeric(spec, values, rules="tight")
    sign, log_symbolic = log_value(bound.complexity, values)
    assert sign == 1 and numeric.log == pytest.approx(log_symbolic, rel=1e-10, abs=1e-10)
    for key in monotone_keys(values):
        grown = boundcalc.compose_numeric(spec, {**values, key: values[key] * 1.5}, rules="tight")
        assert grown.log >= numeric.log - 1e-12, key


@SETTINGS
@given(specs(chain_only=True), st.integers(0, 10**6))
def test_tight_is_never_above_as_printed_and_both_are_monotone(spec_dict, seed):
    symbolic = parse(spec_dict)
    tight = boundcalc.derive(symbolic, rules="tight").complexity
    printed = boundcalc.derive(symbolic, rules="as_printed").complexity
    spec = parse(spec_dict, unroll=True)
    values = value_table([tight, printed], seed)
    for key in [None] + monotone_keys(values):
        at = values if key is None else {**values, key: values[key] * 1.5}
        t, p = (boundcalc.compose_numeric(spec, at, rules=r) for r in ("tight", "as_printed"))
        assert t.log <= p.log + 1e-12, key
        sign, log_symbolic = log_value(printed, at)
        assert p.log == pytest.approx(log_symbolic, rel=1e-10, abs=1e-10)
        if key is not None:
            assert p.log >= boundcalc.compose_numeric(spec, values, rules="as_printed").log - 1e-12, key


def test_the_generator_covers_what_it_claims():
    """The strategies must produce symbolic repeats, residual blocks and tight-only activations, or the
    properties above would silently test less."""
    seen = set()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(specs(chain_only=False))
    def collect(spec_dict):
        text = yaml.safe_dump(spec_dict)
        seen.update(k for k in ("count: L", "op: add", "tanh", "lipschitz", "sqrt(r)*B", "sigmoid", "at_zero")
                    if k in text)

    collect()
    assert seen == {"count: L", "op: add", "tanh", "lipschitz", "sqrt(r)*B", "sigmoid", "at_zero"}
