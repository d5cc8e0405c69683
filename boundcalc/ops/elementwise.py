"""Parameter-free activations applied coordinate by coordinate: relu, identity, tanh, leaky_relu and the generic
``lipschitz`` (a constant only, no function). Each declares its Lipschitz constant ρ and φ(0).

Sources: ρ(relu) = ρ(identity) = 1 and ρ(tanh) = sup |1 − tanh²| = 1 (attained at 0); ρ(leaky_relu with slope a)
= max(1, |a|) (its derivative is 1 or a); docs/references.md §3.
"""
from __future__ import annotations

from typing import Any, Literal

import sympy as sp

from boundcalc.calculus import arith
from boundcalc.errors import BoundcalcError
from boundcalc.ops.base import Flags, OpKind
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields, Value

#: relu-like maps: 1-Lipschitz, positively homogeneous, piecewise linear, φ(0) = 0, φ(1) = 1
RELU_LIKE = Flags(homogeneous=True, piecewise_linear=True, pointwise=True, one_lipschitz=True, foldable_bias=True)


class PlainFields(LayerFields):
    """Parameter-free 1-Lipschitz activations with phi(0) = 0."""

    op: Literal["relu", "identity", "tanh"]


class LeakyReluFields(LayerFields):
    op: Literal["leaky_relu"]
    slope: Value = 0.01


class LipschitzFields(LayerFields):
    """A generic elementwise activation with Lipschitz constant ``constant`` and value ``at_zero`` at 0."""

    op: Literal["lipschitz"]
    constant: Value
    at_zero: Value = 0


class _Unit(OpKind):
    """An activation with ρ = 1 and no parameters."""

    fields = PlainFields

    def lipschitz(self, name, params, value):
        return 1


class Relu(_Unit):
    name = "relu"
    flags = RELU_LIKE
    path_role = "activation"
    example = ((4,), ("relu",))
    summary = "max(x, 0) per coordinate"

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.relu(inputs[0])

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return inputs[0]      # the pass's values are ≥ 0, where ReLU is the identity


class Identity(_Unit):
    name = "identity"
    flags = RELU_LIKE
    path_role = "same"
    example = ((4,), ("identity",))
    summary = "x (no activation)"

    def forward(self, name, params, inputs, weight=None, bias=None):
        return inputs[0]

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return inputs[0]


class Tanh(_Unit):
    name = "tanh"
    flags = Flags(pointwise=True, one_lipschitz=True)
    example = ((4,), ("tanh",))
    summary = "tanh per coordinate (ρ = 1, φ(0) = 0)"

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch

        return torch.tanh(inputs[0])


class LeakyRelu(OpKind):
    name = "leaky_relu"
    fields = LeakyReluFields
    flags = RELU_LIKE    # 1-Lipschitz for a numeric slope (params() refuses |slope| > 1); rules use max(1, |slope|)
    summary = "x for x ≥ 0, slope·x below (|slope| ≤ 1)"
    example = ((4,), ({"op": "leaky_relu", "slope": 0.1},))

    def params(self, reader, model, path):
        slope = reader.expr(model.slope, path + ("slope",))
        if slope.is_number and abs(slope) > 1:
            raise reader.fail(path + ("slope",), f"slope {slope} has |slope| > 1; use 'lipschitz' for that")
        return {"slope": slope}

    def lipschitz(self, name, params, value):
        return arith.maximum(1, abs(value(params["slope"])))

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        if not params["slope"].is_number:
            raise BoundcalcError(f"layer {name}: leaky_relu slope {params['slope']} needs a value (--set)")
        return F.leaky_relu(inputs[0], float(params["slope"]))


class GenericLipschitz(OpKind):
    name = "lipschitz"
    fields = LipschitzFields
    flags = Flags(pointwise=True, zero_at_zero=False)   # φ(0) = at_zero (at_zero()); the rules use it
    summary = "any elementwise map with Lipschitz constant 'constant' and φ(0) = 'at_zero'"
    example = ((4,), ({"op": "lipschitz", "constant": 2},))
    not_runnable = ("op 'lipschitz' gives only a Lipschitz constant, so the network cannot be run on data; use "
                    "relu/leaky_relu/tanh/identity for a forward pass")

    def params(self, reader, model, path):
        return {"constant": reader.positive(model.constant, path + ("constant",), "constant"),
                "at_zero": reader.expr(model.at_zero, path + ("at_zero",))}

    def lipschitz(self, name: str, params: dict[str, Any], value):
        return value(params["constant"])

    def at_zero(self, params):
        return sp.sympify(params["at_zero"])


RELU = register(Relu())
IDENTITY = register(Identity())
TANH = register(Tanh())
LEAKY_RELU = register(LeakyRelu())
LIPSCHITZ = register(GenericLipschitz())
