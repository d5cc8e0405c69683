"""Smooth and modern activations applied coordinate by coordinate: gelu, silu, sigmoid, softplus, elu, hardswish,
and dropout (the identity in eval mode). Each declares its exact Lipschitz constant ρ = sup |φ'| and φ(0).

Sources (docs/references.md §3.2.1; the derivative of each is elementary, the maximisers are found here):

- gelu (Hendrycks & Gimpel 2016): φ = x·Φ(x), φ' = Φ + x·ϕ, φ'' = ϕ·(2 − x²), so φ' is extreme at ±√2 and
  ρ = Φ(√2) + √2·ϕ(√2) = (1 + erf 1)/2 + 1/(e·√π) ≈ 1.1289041 (the minimum, −0.1289, is smaller in size).
  ``approximate: tanh`` (torch's 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))): φ'' = 0 at x ≈ ±1.4185, found by
  mpmath at 40 digits; ρ ≈ 1.1289931 (rounded up at the 18th decimal).
- silu (Elfwing et al. 2018): φ = x·σ(x), φ' = σ·(1 + x(1 − σ)), φ'' = 0 ⇔ x·tanh(x/2) = 2, x* ≈ 2.3993573,
  where σ = (x* + 2)/(2x*), so ρ = (x* + 2)/4 ≈ 1.0998393 (the minimum −0.0998 at −x*).
- sigmoid: σ' = σ(1 − σ) ≤ 1/4, attained at 0; φ(0) = 1/2.
- softplus (β > 0; torch: (1/β)·log(1 + e^(βx)), the identity for βx > 20): φ' = σ(βx) ∈ (0, 1], so ρ = 1 for
  every β; φ(0) = log(2)/β.
- elu (Clevert et al. 2016, α ≥ 0): φ' = 1 for x > 0 and α·eˣ ≤ α for x ≤ 0, so ρ = max(1, α).
- hardswish (Howard et al. 2019): x·ReLU6(x + 3)/6, φ' = (2x + 3)/6 on (−3, 3), 0 below, 1 above: ρ = 3/2
  (the supremum at x → 3⁻).
- dropout: the identity at evaluation (torch's eval mode), ρ = 1.
"""
from __future__ import annotations

from typing import ClassVar, Literal

import sympy as sp

from boundcalc.calculus import arith
from boundcalc.errors import BoundcalcError
from boundcalc.ops.base import Flags, OpKind
from boundcalc.ops.elementwise import RELU_LIKE
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields, Value

#: smooth maps with φ(0) = 0 (neither homogeneous nor piecewise linear)
SMOOTH = Flags(pointwise=True)
#: 1-Lipschitz smooth maps with φ(0) ≠ 0
SHIFTED = Flags(pointwise=True, one_lipschitz=True, zero_at_zero=False)

#: sup |φ'| of GELU: Φ(√2) + √2·ϕ(√2), exact
GELU_RHO = (1 + sp.erf(1)) / 2 + sp.exp(-1) / sp.sqrt(sp.pi)
#: sup |φ'| of the tanh-approximated GELU at its maximiser x ≈ 1.4185040087908 (mpmath, 40 digits), rounded up
GELU_TANH_RHO = sp.Float("1.128993068658771766", 19)
#: sup |φ'| of SiLU, (x* + 2)/4 with x*·tanh(x*/2) = 2, x* ≈ 2.3993572805154677 (mpmath, 40 digits), rounded up
SILU_RHO = sp.Float("1.099839320128866917", 19)


class GeluFields(LayerFields):
    op: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"


class PlainSmoothFields(LayerFields):
    op: Literal["silu", "sigmoid", "hardswish"]


class SoftplusFields(LayerFields):
    op: Literal["softplus"]
    beta: Value = 1


class EluFields(LayerFields):
    op: Literal["elu"]
    alpha: Value = 1


class DropoutFields(LayerFields):
    op: Literal["dropout"]
    p: Value = 0.5


def _number(name: str, value: sp.Expr, field: str, op: str) -> float:
    """A parameter as a float for the forward pass (a symbol needs a value first)."""
    if not value.is_number:
        raise BoundcalcError(f"layer {name}: {op} {field} {value} needs a value (--set)")
    return float(value)


class Gelu(OpKind):
    name = "gelu"
    fields = GeluFields
    flags = SMOOTH
    summary = "x·Φ(x) (approximate: tanh for torch's tanh form); ρ ≈ 1.1289, φ(0) = 0"
    example = ((4,), ({"op": "gelu"},))

    def params(self, reader, model, path):
        return {"approximate": model.approximate}

    def lipschitz(self, name, params, value):
        return value(GELU_TANH_RHO if params["approximate"] == "tanh" else GELU_RHO)

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.gelu(inputs[0], approximate=params["approximate"])


class _Fixed(OpKind):
    """A parameter-free activation with a fixed ρ, computed by ``torch.nn.functional.<function>``."""

    fields = PlainSmoothFields
    flags = SMOOTH
    rho: ClassVar[sp.Expr]
    function: ClassVar[str]

    def lipschitz(self, name, params, value):
        return value(self.rho)

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return getattr(F, self.function)(inputs[0])


class Silu(_Fixed):
    name = "silu"
    rho, function = SILU_RHO, "silu"
    summary = "x·σ(x) (swish); ρ ≈ 1.0998, φ(0) = 0"
    example = ((4,), ("silu",))


class Sigmoid(_Fixed):
    name = "sigmoid"
    flags = SHIFTED
    rho, function = sp.Rational(1, 4), "sigmoid"
    summary = "1/(1 + e^(−x)); ρ = 1/4, φ(0) = 1/2 (enters the chain rule's anchor term)"
    example = ((4,), ("sigmoid",))

    def at_zero(self, params):
        return sp.S.Half


class Softplus(OpKind):
    name = "softplus"
    fields = SoftplusFields
    flags = SHIFTED
    summary = "log(1 + e^(βx))/β; ρ = 1, φ(0) = log(2)/β (enters the chain rule's anchor term)"
    example = ((4,), ({"op": "softplus", "beta": 2},))

    def params(self, reader, model, path):
        return {"beta": reader.positive(model.beta, path + ("beta",), "beta")}

    def lipschitz(self, name, params, value):
        return value(sp.S.One)

    def at_zero(self, params):
        return sp.log(2) / params["beta"]

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.softplus(inputs[0], beta=_number(name, params["beta"], "beta", self.name))


class Elu(OpKind):
    name = "elu"
    fields = EluFields
    flags = SMOOTH
    summary = "x for x > 0, α(eˣ − 1) below (α ≥ 0); ρ = max(1, α), φ(0) = 0"
    example = ((4,), ({"op": "elu", "alpha": 1.5},))

    def params(self, reader, model, path):
        alpha = reader.expr(model.alpha, path + ("alpha",))
        if alpha.is_number and alpha < 0 or alpha.is_negative:
            raise reader.fail(path + ("alpha",), f"alpha must be ≥ 0, got {alpha}")
        return {"alpha": alpha}

    def lipschitz(self, name, params, value):
        return arith.maximum(1, value(params["alpha"]))

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.elu(inputs[0], alpha=_number(name, params["alpha"], "alpha", self.name))


class Hardswish(_Fixed):
    name = "hardswish"
    rho, function = sp.Rational(3, 2), "hardswish"
    summary = "x·ReLU6(x + 3)/6; ρ = 3/2, φ(0) = 0"
    example = ((4,), ("hardswish",))


class Dropout(OpKind):
    name = "dropout"
    fields = DropoutFields
    flags = RELU_LIKE
    summary = "the identity at evaluation (p, the training drop rate, in [0, 1))"
    example = ((4,), ({"op": "dropout", "p": 0.25},))
    path_role = "same"

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)     # the identity at evaluation

    def params(self, reader, model, path):
        p = reader.expr(model.p, path + ("p",))
        if not p.is_number or not 0 <= p < 1:
            raise reader.fail(path + ("p",), f"dropout p must be a number in [0, 1), got {p}")
        return {"p": p}

    def lipschitz(self, name, params, value):
        return 1

    def forward(self, name, params, inputs, weight=None, bias=None):
        return inputs[0]


GELU = register(Gelu())
SILU = register(Silu())
SIGMOID = register(Sigmoid())
SOFTPLUS = register(Softplus())
ELU = register(Elu())
HARDSWISH = register(Hardswish())
DROPOUT = register(Dropout())
