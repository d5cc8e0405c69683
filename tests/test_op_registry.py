"""The op registry: a sweep over every registered kind (shape, forward pass against torch's own modules, every
rule set giving a finite bound or a reason), Lipschitz constants against a numerical maximum of the slope, and
a kind defined in this test module alone working through spec, graph, rules and forward pass."""
from __future__ import annotations

import math
import random
from typing import Literal

import networkx as nx
import numpy as np
import pytest
import sympy as sp
import torch

import boundcalc
from boundcalc.calculus.rules import RULE_SETS
from boundcalc.errors import BoundcalcError, SpecError
from boundcalc.graph.build import INPUT, build_graph, inputs_of
from boundcalc.measure.forward import forward
from boundcalc.ops import OPS, Flags, OpKind, register, unregister
from boundcalc.spec.model import LayerFields, Value


def _reference(op: str, inputs: list[torch.Tensor], params: dict, weight: torch.Tensor | None) -> torch.Tensor:
    """Each kind's output computed by torch's own modules (nn.Conv2d, nn.AvgPool2d, …), not boundcalc's code."""
    x = inputs[0]
    if op == "linear":
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False).double()
        layer.weight.data = weight
        return layer(x)
    if op == "conv2d":
        groups = params["groups"]
        layer = torch.nn.Conv2d(weight.shape[1] * groups, weight.shape[0], weight.shape[2:], stride=params["stride"],
                                padding=params["padding"], dilation=params["dilation"], groups=groups,
                                bias=False).double()
        layer.weight.data = weight
        return layer(x)
    modules = {"relu": torch.nn.ReLU(), "identity": torch.nn.Identity(), "tanh": torch.nn.Tanh(),
               "flatten": torch.nn.Flatten(), "silu": torch.nn.SiLU(), "sigmoid": torch.nn.Sigmoid(),
               "hardswish": torch.nn.Hardswish()}
    if op in modules:
        return modules[op](x)
    if op == "leaky_relu":
        return torch.nn.LeakyReLU(float(params["slope"]))(x)
    if op == "gelu":
        return torch.nn.GELU(approximate=params["approximate"])(x)
    if op == "softplus":
        return torch.nn.Softplus(beta=float(params["beta"]))(x)
    if op == "elu":
        return torch.nn.ELU(alpha=float(params["alpha"]))(x)
    if op == "dropout":
        return torch.nn.Dropout(float(params["p"])).eval()(x)
    if op == "avgpool":
        return torch.nn.AvgPool2d(params["kernel"], params["stride"], params["padding"],
                                  count_include_pad=params["count_include_pad"])(x)
    if op == "maxpool":
        return torch.nn.MaxPool2d(params["kernel"], params["stride"], params["padding"], params["dilation"])(x)
    if op == "adaptive_avgpool":
        return torch.nn.AdaptiveAvgPool2d(params["output"])(x)
    if op == "add":
        return torch.stack(inputs).sum(dim=0)
    if op == "concat":
        return torch.cat(inputs, dim=1)
    if op == "batchnorm":      # the weight is the per-channel scale a: γ = a, β = 0, μ = 0, σ² + ε = 1
        module = (torch.nn.BatchNorm2d if x.dim() == 4 else torch.nn.BatchNorm1d)(len(weight), eps=params["eps"])
        module = module.double().eval()
        module.weight.data, module.running_var.data = weight, torch.full_like(weight, 1 - params["eps"])
        return module(x)
    if op == "layernorm":      # γ = the weight, β = 0 (forward passes get no bias here)
        module = torch.nn.LayerNorm(x.shape[-1], eps=float(params["eps"])).double()
        module.weight.data, module.bias.data = weight, torch.zeros_like(weight)
        return module(x)
    if op == "token_mean":
        return x.mean(dim=1)
    if op == "softmax_mix":    # torch's scaled_dot_product_attention on the heads' column blocks
        return _sdpa(inputs, int(params["heads"]), params["causal"], params["scale"])
    if op == "scale_test":
        return x * float(params["factor"])
    raise AssertionError(f"no reference for {op}")


def _sdpa(inputs: list[torch.Tensor], heads: int, causal: bool, scale) -> torch.Tensor:
    q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in inputs)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                           scale=None if scale is None else float(scale))
    return out.transpose(1, 2).reshape(inputs[2].shape)


def _spec_text(kind: OpKind) -> str:
    shape, items = kind.example
    data = f"dim: {shape[0]}" if len(shape) == 1 else f"shape: {list(shape)}"
    head = [] if len(shape) == 1 and kind.name not in ("conv2d", "avgpool") else ["flatten"]
    layers = "\n".join(f"  - {item}" for item in (*items, *head, {"op": "linear", "out": 2}))
    return f"name: sweep_{kind.name}\ndata:\n  samples: m\n  {data}\nlayers:\n{layers}\n"


def _random_weights(graph: nx.DiGraph, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in graph.nodes:
        if name != INPUT and OPS[graph.nodes[name]["op"]].flags.weights:
            (source,) = graph.predecessors(name)
            kind = OPS[graph.nodes[name]["op"]]
            shape = [int(d) for d in kind.weight_shape(graph.nodes[name]["layer"].params, graph.nodes[source]["shape"])]
            out[name] = torch.randn(shape, generator=gen, dtype=torch.float64)
    return out


def _reference_outputs(graph: nx.DiGraph, x: torch.Tensor, weights: dict) -> dict[str, torch.Tensor]:
    values = {INPUT: x}
    for name in nx.topological_sort(graph):
        if name != INPUT:
            attrs = graph.nodes[name]
            values[name] = _reference(attrs["op"], [values[u] for u in inputs_of(graph, name)], attrs["layer"].params,
                                      weights.get(name))
    return values


def _finite_at_random_values(expr: sp.Expr) -> float:
    rng = random.Random(0)
    expr = sp.sympify(expr).doit()
    atoms = sorted(expr.atoms(sp.Indexed) | expr.free_symbols, key=str)
    value = float(expr.xreplace({a: rng.uniform(0.5, 2.0) for a in atoms if not isinstance(a, sp.Idx)}))
    return value


@pytest.mark.parametrize("name", list(OPS))
def test_every_kind_shape_forward_and_rules(name):
    kind = OPS[name]
    spec = boundcalc.parse_spec(_spec_text(kind))
    graph = build_graph(spec)
    assert any(a["op"] == name for _, a in graph.nodes(data=True))
    concrete = build_graph(boundcalc.parse_spec(_spec_text(kind)))
    x = torch.randn((7, *kind.example[0]), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weights = _random_weights(concrete, seed=2)
    if kind.not_runnable:
        with pytest.raises(BoundcalcError, match=name):
            forward(concrete, x, weights)
    else:
        want = _reference_outputs(concrete, x, weights)
        for node, attrs in concrete.nodes(data=True):          # inferred shapes are the shapes torch produces
            assert tuple(want[node].shape[1:]) == tuple(int(d) for d in attrs["shape"]), node
        got = forward(concrete, x, weights)
        assert torch.allclose(got, want[concrete.graph["output"]].reshape(7, -1), rtol=1e-12, atol=1e-12)
    for rules, ruleset in RULE_SETS.items():
        if ruleset.rule_for(name) is None:
            with pytest.raises(BoundcalcError) as err:
                boundcalc.derive(spec, rules=rules)
            assert name in str(err.value) or name in " ".join(getattr(err.value, "problems", []))
        else:
            value = _finite_at_random_values(boundcalc.derive(spec, rules=rules).complexity)
            assert math.isfinite(value) and value > 0


def _max_slope(kind: OpKind, params: dict) -> float:
    """max |φ(x) − φ(y)| / |x − y| over nearby pairs of a grid on [−30, 30] (wide enough to hold every maximiser:
    ±√2 for gelu, ±2.4 for silu, 3 for hardswish, 0 for sigmoid and elu, βx > 20 for softplus), spacing 10⁻⁴,
    then on grids of spacing 10⁻⁶ and 10⁻⁷ around the best pair, so that a kink's one-sided slope (elu's α at
    0⁻) is approached within 10⁻⁷ (float64 rounding of the differences stays below 10⁻⁸ relative there)."""
    low, high, best = -30.0, 30.0, 0.0
    for points in (600_001, 2_001, 201):
        grid = torch.linspace(low, high, points, dtype=torch.float64)[:, None]
        out = kind.forward("t", params, [grid])[:, 0]
        slopes = (out[1:] - out[:-1]).abs() / (grid[1:, 0] - grid[:-1, 0])
        i = int(slopes.argmax())
        best = max(best, float(slopes[i]))
        step = float(grid[1, 0] - grid[0, 0])
        low, high = float(grid[i, 0]) - 10 * step, float(grid[i + 1, 0]) + 9 * step
    return best


@pytest.mark.parametrize("name", [n for n, k in OPS.items() if k.flags.pointwise and not k.flags.reshape
                                  and not k.not_runnable])
def test_declared_lipschitz_constant_is_the_largest_slope(name):
    kind = OPS[name]
    spec = boundcalc.parse_spec(_spec_text(kind))
    layer = next(a["layer"] for _, a in build_graph(spec).nodes(data=True) if a["op"] == name)
    declared = float(kind.lipschitz(name, layer.params, lambda v: v))
    slope = _max_slope(kind, layer.params)
    assert slope <= declared * (1 + 1e-8)
    assert slope >= declared * (1 - 1e-6)          # exact, not merely an upper bound
    zero = kind.forward("t", layer.params, [torch.zeros(1, 1, dtype=torch.float64)])
    assert (float(zero) == 0) == kind.flags.zero_at_zero
    assert float(zero) == pytest.approx(float(kind.at_zero(layer.params)), abs=1e-15)


def test_avgpool_constant_against_the_operator_norm():
    """⌈k/s⌉/k bounds ‖P‖₂ of the pooling matrix, computed densely by numpy."""
    kind = OPS["avgpool"]
    for k, s, n in ((2, 2, 6), (3, 2, 7), (3, 1, 6), (2, 3, 8)):
        rows = []
        out = (n - k) // s + 1
        for i in range(out):
            for j in range(out):
                row = np.zeros((n, n))
                row[i * s:i * s + k, j * s:j * s + k] = 1 / k**2
                rows.append(row.ravel())
        norm = np.linalg.norm(np.array(rows), 2)
        assert norm <= float(kind.lipschitz("p", {"kernel": k, "stride": s}, lambda v: v)) + 1e-12


# -- a kind declared here, nowhere else ----------------------------------------------------------------------
class ScaleFields(LayerFields):
    op: Literal["scale_test"]
    factor: Value


class Scale(OpKind):
    """x → factor·x: a parameter-free map of ρ = |factor|, declared only in this test module."""

    name = "scale_test"
    fields = ScaleFields
    flags = Flags(homogeneous=True, piecewise_linear=True, pointwise=True)
    example = ((4,), ({"op": "scale_test", "factor": 3},))

    def params(self, reader, model, path):
        return {"factor": reader.positive(model.factor, path + ("factor",), "factor")}

    def lipschitz(self, name, params, value):
        return value(params["factor"])

    def forward(self, name, params, inputs, weight=None, bias=None):
        return inputs[0] * float(params["factor"])


@pytest.fixture
def scale_kind():
    kind = register(Scale())
    yield kind
    unregister(kind.name)


def test_a_kind_declared_in_one_module_works_end_to_end(scale_kind):
    spec = boundcalc.parse_spec(_spec_text(scale_kind))
    tight = boundcalc.derive(spec, rules="tight")
    plain = boundcalc.derive(boundcalc.parse_spec(_spec_text(OPS["identity"])), rules="tight")
    assert sp.simplify(tight.complexity.doit() - 3 * plain.complexity.doit()) == 0     # ρ = 3 scales the bound
    graph = build_graph(spec)
    x = torch.randn(5, 4, dtype=torch.float64)
    weights = _random_weights(graph, seed=3)
    assert torch.allclose(forward(graph, x, weights), 3 * x @ weights["fc1"].T)
    with pytest.raises(BoundcalcError, match="scale_test"):
        boundcalc.derive(spec, rules="as_printed")
    with pytest.raises(SpecError, match="factor must be positive"):
        boundcalc.parse_spec(_spec_text(scale_kind).replace("'factor': 3", "'factor': -1"))


def test_a_second_kind_under_a_taken_name_fails():
    with pytest.raises(ValueError, match="duplicate op kind 'relu'"):
        register(type("Relu2", (OpKind,), {"name": "relu", "fields": ScaleFields})())
    assert type(OPS["relu"]).__module__ == "boundcalc.ops.elementwise"
