"""Regimes: spec transformations under which bounds are compared (docs/references.md §5.10, Table 1 of Pinto et al.).

``uniform`` rewrites every layer of the spec: ‖W_i‖₂ ≤ B, rank ≤ r, hidden widths and the input dimension
h, and the standard inequalities that follow from them, ‖W‖_F ≤ √r·‖W‖₂ and
‖Wᵀ‖₂,₁ ≤ √h·‖W‖_F ≤ √(h·r)·‖W‖₂, plus ‖X‖_F ≤ √m·R. Every bound is then built from the rewritten spec, so
the prior bounds and the derived one see exactly the same substitutions, and each is listed in the output.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from boundcalc.errors import BoundcalcError
from boundcalc.ops import OPS
from boundcalc.spec.load import Layer, Repeat, Spec

REGIMES = ("none", "uniform")


@dataclass(frozen=True)
class Regime:
    name: str
    spec: Spec
    substitutions: tuple[str, ...]


def apply_regime(spec: Spec, name: str) -> Regime:
    if name == "none":
        return Regime("none", spec, ())
    if name == "uniform":
        return uniform(spec)
    raise BoundcalcError(f"unknown regime {name!r} (known: {', '.join(REGIMES)})")


def uniform(spec: Spec) -> Regime:
    """The uniform regime of Table 1: every layer ‖W‖₂ ≤ B, rank ≤ r, width h (the output keeps its k)."""
    table = spec.symbols
    big_b, r, h, big_r = table("B"), table("r"), table("h"), table("R")
    frobenius = sp.sqrt(r) * big_b
    last = output_layer(spec.layers)

    def layer(item: Layer) -> Layer:
        kind = OPS[item.op]
        if kind.width_field is None:      # parameter-free, or a batchnorm (its norms stay its own symbols)
            return item
        params = dict(item.params, spectral=big_b, rank=r, frobenius=frobenius)
        if kind.dense_matrix:
            if item is not last:
                params["out"] = h
            params["row_norm"] = sp.sqrt(params["out"]) * frobenius
        return replace(item, params=params)

    def items(seq):
        return tuple(replace(it, body=items(it.body)) if isinstance(it, Repeat) else layer(it) for it in seq)

    data = spec.data
    shape = (h,) if len(data.shape) == 1 else (data.shape[0], h) if len(data.shape) == 2 else data.shape
    new_data = replace(data, shape=shape, norm=sp.sqrt(data.samples) * big_r,
                       norm_note="input norm: ‖X‖_F ≤ sqrt(m)·R with R = max_i ‖x_i‖ (uniform regime)")
    new_spec = replace(spec, layers=items(spec.layers), data=new_data)
    subs = (
        "s_i → B: every layer's spectral norm ‖W_i‖₂ ≤ B",
        "r_i → r: every layer's rank ≤ r",
        "h_i → h: hidden widths and the input dimension d; the output width keeps its symbol"
        + (" (conv2d channels and spatial sizes are kept)" if _has_conv(spec.layers) else "")
        + (" (the number of tokens is kept)" if len(data.shape) == 2 else ""),
        "f_i → √r·B, from ‖W‖_F ≤ √rank·‖W‖₂ (so srank(W_i) = f_i²/s_i² ≤ r)",
        "b_i → √(h_out·r)·B, from ‖Wᵀ‖₂,₁ ≤ √h_out·‖W‖_F ≤ √(h_out·r)·‖W‖₂ (dense layers)",
        "‖X‖_F → √m·R, from ‖x_i‖ ≤ R",
    )
    return Regime("uniform", new_spec, subs)


def output_layer(items) -> Layer | None:
    """The dense layer that produces the network's output (its width is the class count k), if the spec
    ends with one at the top level."""
    for item in reversed(items):
        if isinstance(item, Layer) and OPS[item.op].dense_matrix:
            return item
        if isinstance(item, Layer) and OPS[item.op].flags.weights:
            return None
        if isinstance(item, Repeat):
            return None
    return None


def _has_conv(items) -> bool:
    """Some weight layer is not a plain matrix (a convolution: its channels and spatial sizes stay)."""
    return any(_has_conv(item.body) if isinstance(item, Repeat) else
               OPS[item.op].kernel_area(item.params) is not None for item in items)
