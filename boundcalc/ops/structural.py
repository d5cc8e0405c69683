"""Parameter-free maps that combine or rearrange coordinates: ``add`` (a sum of branches: residual skips),
``concat`` (branches stacked along channels), ``flatten`` (channels × height × width → a vector) and ``avgpool``
(mean over k × k windows with a stride and zero padding).

Sources: ‖avgpool‖₂ ≤ √(‖P‖₁·‖P‖∞) = ⌈k/s⌉/k, since each input lies in at most ⌈k/s⌉² windows of weight 1/k²
(with torch's count_include_pad); without it a border window's weight is 1/(its unpadded size), and the column
sums are enumerated on the input size (:mod:`boundcalc.ops.windows`; docs/references.md §3.2.2).
"""
from __future__ import annotations

from typing import Literal

from fractions import Fraction

import sympy as sp
from pydantic import StrictBool

from boundcalc.ops import windows
from boundcalc.ops.base import Fail, Flags, OpKind, format_shape, same_shape
from boundcalc.ops.pool_fields import MAX_POOL_SIZE, Pair, pair, pooled_shape, read_pool  # noqa: F401
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields


class AddFields(LayerFields):
    op: Literal["add"]


class FlattenFields(LayerFields):
    op: Literal["flatten"]


class ConcatFields(LayerFields):
    op: Literal["concat"]


class AvgPoolFields(LayerFields):
    op: Literal["avgpool"]
    kernel: Pair
    stride: Pair | None = None
    padding: Pair = 0
    count_include_pad: StrictBool = True


class Add(OpKind):
    name = "add"
    fields = AddFields
    flags = Flags(homogeneous=True, piecewise_linear=True, multi_input=True)
    summary = "sum of two or more layers of one shape (residual skips: inputs: [b, input])"
    example = ((4,), ({"op": "linear", "name": "a", "out": 4}, {"op": "add", "inputs": ["a", "input"]}))
    path_role = "sum"

    def params(self, reader, model, path):
        if model.inputs is None or len(model.inputs) < 2:
            raise reader.fail(path, "add needs 'inputs' with at least two layer names")
        return {}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        _check_branches(shapes, sources, fail, same_shape, "width mismatch at add")
        return shapes[0]

    def forward(self, name, params, inputs, weight=None, bias=None):
        total = inputs[0]
        for other in inputs[1:]:
            total = total + other
        return total

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)    # edges of weight 1


def _check_branches(shapes, sources, fail: Fail, agree, what: str, tail: str = "") -> None:
    """Each branch's shape against the first one's; ``fail`` with both when ``agree`` does not hold."""
    first = shapes[0]
    for shape, source in zip(shapes[1:], list(sources)[1:]):
        if not agree(first, shape):
            raise fail(f"{what}: {sources[0]!r} gives {format_shape(first)} but {source!r} gives "
                       f"{format_shape(shape)}{tail}")


class Flatten(OpKind):
    name = "flatten"
    fields = FlattenFields
    flags = Flags(homogeneous=True, piecewise_linear=True, pointwise=True, one_lipschitz=True, foldable_bias=True,
                  reshape=True)
    summary = "channels × height × width → one vector (a reordering: ρ = 1)"
    example = ((2, 3, 3), ("flatten",))
    path_role = "same"

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        return (sp.Mul(*shapes[0]),)

    def lipschitz(self, name, params, value):
        return 1

    def forward(self, name, params, inputs, weight=None, bias=None):
        x = inputs[0]
        return x.reshape(x.shape[0], -1)

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)


class AvgPool(OpKind):
    name = "avgpool"
    fields = AvgPoolFields
    flags = Flags(homogeneous=True, piecewise_linear=True, one_lipschitz=True)
    summary = ("mean over kernel × kernel windows moved by stride (default: the kernel), zero padding "
               "(count_include_pad: torch's divisor)")
    input_rank = 3
    example = ((2, 5, 5), ({"op": "avgpool", "kernel": 3, "stride": 2, "padding": 1,
                            "count_include_pad": False},))
    path_role = "edges"      # identity neurons with incoming edges of weight 1/kernel², no bias

    def params(self, reader, model, path):
        return {**read_pool(reader, model, path), "count_include_pad": model.count_include_pad}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        return pooled_shape(self.name, params, shapes, fail)

    def lipschitz(self, name, params, value):
        return self.lipschitz_at(name, params, value)

    def lipschitz_at(self, name, params, value, in_shape=None):
        (kh, kw), (sh, sw) = pair(params["kernel"]), pair(params["stride"])
        padding = params.get("padding", (0, 0))
        if params.get("count_include_pad", True) or padding == (0, 0):
            if (kh, sh) == (kw, sw):
                return value(sp.Rational(-(-kh // sh), kh))
            return value(sp.sqrt(sp.Rational(-(-kh // sh) * -(-kw // sw), kh * kw)))
        return value(windows.schur_bound([_excluded_pad_norms(k, s, p, in_shape, axis)
                                          for axis, (k, s, p) in enumerate(zip((kh, kw), (sh, sw), padding))]))

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)     # its weights are positive already

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.avg_pool2d(inputs[0], params["kernel"], params["stride"], params.get("padding", 0),
                            count_include_pad=params.get("count_include_pad", True))


def _excluded_pad_norms(kernel: int, stride: int, padding: int, in_shape, axis: int) -> tuple[Fraction, Fraction]:
    """(‖P‖₁, ‖P‖∞) along one axis of an average that divides by the unpadded size of each window: enumerated
    on the input size; for a symbolic size, each input is in ≤ ⌈k/s⌉ windows of weight ≤ 1 (rows sum to 1)."""
    size = windows.numeric_size(in_shape[1 + axis]) if in_shape is not None else None
    if size is None:
        return Fraction(windows.sliding_cover_bound(kernel, stride)), Fraction(1)
    found = windows.sliding(size, kernel, stride, padding)
    return windows.average_norms(found, [len(w) for w in found])


class Concat(OpKind):
    name = "concat"
    fields = ConcatFields
    flags = Flags(homogeneous=True, piecewise_linear=True, multi_input=True)
    summary = "two or more layers stacked along channels (the first per-sample axis); other sizes must match"
    example = ((2, 3, 3), ({"op": "conv2d", "name": "a", "channels": 3, "kernel": 1},
                           {"op": "concat", "inputs": ["a", "input"]}))
    path_role = "same"

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)     # edges of weight 1

    def params(self, reader, model, path):
        if model.inputs is None or len(model.inputs) < 2:
            raise reader.fail(path, "concat needs 'inputs' with at least two layer names")
        return {}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        _check_branches(shapes, sources, fail, lambda a, b: len(a) == len(b) and same_shape(a[1:], b[1:]),
                        "size mismatch at concat", " (all but the channels must match)")
        return (sp.Add(*(shape[0] for shape in shapes)), *shapes[0][1:])

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch

        return torch.cat(list(inputs), dim=1)


ADD = register(Add())
FLATTEN = register(Flatten())
AVGPOOL = register(AvgPool())
CONCAT = register(Concat())
