"""``softmax_mix``: the parameter-free core of dot-product attention, reading three layers q, k, v (each (T, width)).

Per head j (the j-th block of head_dim columns): S = scale·Q_j K_jᵀ (T × T; with ``causal``, S_ts = −∞ for s > t),
A = the row softmax of S, out_j = A V_j; the heads' outputs side by side give (T, heads·d_v). ``scale`` defaults to
1/√d_k (d_k = q's width / heads), torch's ``nn.MultiheadAttention``. The spec's ``attention`` composite
(:mod:`boundcalc.spec.attention`) expands into q, k, v token-wise linear layers, this kind and an output linear.
Its chain-rule rule (a Lipschitz constant on the bounded set it sees) is
:func:`boundcalc.calculus.attention_rule.softmax_mix_tight` (docs/references.md §3.10); the registry's bounds
refuse it.
"""
from __future__ import annotations

from typing import Literal

import sympy as sp
from pydantic import StrictBool

from boundcalc.ops.base import Fail, Flags, OpKind, format_shape
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields, Value


class SoftmaxMixFields(LayerFields):
    op: Literal["softmax_mix"]
    heads: Value
    causal: StrictBool = False
    scale: Value | None = None      # a number > 0; default 1/√head_dim


def head_width(width: sp.Expr, heads: sp.Expr) -> sp.Expr | None:
    """width / heads when it is a whole number (an integer, or an integer-valued expression); None if not."""
    ratio = sp.simplify(sp.sympify(width) / heads)
    if ratio.is_number:
        return ratio if ratio.is_integer and ratio > 0 else None
    return ratio if ratio.is_polynomial(*ratio.free_symbols) and all(
        c.is_integer for c in sp.Poly(ratio, *ratio.free_symbols).coeffs()) else None


def mix_scale(params: dict, q_width: sp.Expr) -> sp.Expr:
    """The score scale: the spec's ``scale``, else 1/√d_k with d_k = q's width / heads."""
    if params.get("scale") is not None:
        return params["scale"]
    return 1 / sp.sqrt(sp.sympify(q_width) / params["heads"])


class SoftmaxMix(OpKind):
    name = "softmax_mix"
    fields = SoftmaxMixFields
    flags = Flags(multi_input=True, reads_token_bound=True)
    summary = ("attention's mixing of v by softmax(scale·q kᵀ) per head, inputs: [q, k, v] of (tokens, width); "
               "causal masks s > t")
    name_prefix = "mix"
    assumption = ("softmax_mix layers (derived, docs/references.md §3.10): on inputs whose tokens have norms ≤ B_q, "
                  "B_k, B_v (bounds carried from the data's B_X = max ‖x_it‖₂ through each layer), the mix is "
                  "L-Lipschitz with L = √T·√(1 + scale²·B_v²·(B_q² + B_k²)/2) (A row-stochastic: ‖A‖₂ ≤ √T; the "
                  "softmax's Jacobian has ‖J δ‖₁ ≤ ‖δ‖₂/√2); gain L per input (Sudakov–Fernique on the product "
                  "set of q, k, v), image tokens of norm ≤ √heads·B_v; refused where a token bound depends on a "
                  "symbolic repeat's entering state")
    example = ((3, 4), ({"op": "linear", "name": "a", "out": 4},
                        {"op": "softmax_mix", "heads": 2, "inputs": ["a", "a", "input"]}))

    def params(self, reader, model, path):
        if model.inputs is None or len(model.inputs) != 3:
            raise reader.fail(path + ("inputs",), "softmax_mix needs inputs: [q, k, v] (three layer names)")
        heads = reader.size(model.heads, path + ("heads",), "heads")
        scale = None
        if model.scale is not None:
            scale = reader.expr(model.scale, path + ("scale",))
            if not (scale.is_number and scale.is_positive):
                raise reader.fail(path + ("scale",), f"scale must be a number > 0, got {model.scale}")
        return {"heads": heads, "causal": model.causal, "scale": scale}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        """(T, v's width); q, k, v must be (T, ·) with one T, q and k of one width, heads dividing both widths."""
        names = list(sources) or ["q", "k", "v"]
        for shape, source in zip(shapes, names):
            if len(shape) != 2:
                raise fail(f"softmax_mix reads (tokens, width) inputs, but {source!r} gives {format_shape(shape)}")
        (q, k, v) = shapes
        if sp.simplify(k[0] - v[0]) != 0:
            raise fail(f"softmax_mix: the keys {names[1]!r} have {k[0]} tokens but the values {names[2]!r} {v[0]}")
        if sp.simplify(q[0] - k[0]) != 0:
            what = "a causal mask needs a square score matrix: " if params["causal"] else ""
            raise fail(f"softmax_mix: {what}the queries {names[0]!r} have {q[0]} tokens but the keys "
                       f"{names[1]!r} {k[0]} (self-attention reads one sequence)")
        if sp.simplify(q[1] - k[1]) != 0:
            raise fail(f"softmax_mix: queries {names[0]!r} (width {q[1]}) and keys {names[1]!r} (width {k[1]}) "
                       "need one width")
        for width, source in ((q[1], names[0]), (v[1], names[2])):
            if head_width(width, params["heads"]) is None:
                raise fail(f"softmax_mix: heads {params['heads']} does not divide the width {width} of {source!r}")
        return v

    def forward(self, name, params, inputs, weight=None, bias=None):
        """The mix on (batch, T, width) tensors, float64 (the formula of the module docstring)."""
        import torch

        q, k, v = (t.to(torch.float64) for t in inputs)
        h = int(params["heads"])
        batch, tokens, _ = q.shape

        def split(t):
            return t.reshape(batch, t.shape[1], h, t.shape[2] // h).transpose(1, 2)

        scores = float(mix_scale(params, q.shape[2])) * split(q) @ split(k).transpose(-1, -2)
        if params["causal"]:
            mask = torch.ones(tokens, k.shape[1], dtype=torch.bool).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ split(v)
        return out.transpose(1, 2).reshape(batch, tokens, v.shape[2])


SOFTMAX_MIX = register(SoftmaxMix())
