"""Parameter-free maps that combine or rearrange coordinates: ``add`` (a sum of branches: residual skips),
``flatten`` (channels × height × width → a vector) and ``avgpool`` (mean over k × k windows with a stride).

Sources: ‖avgpool‖₂ ≤ √(‖P‖₁·‖P‖∞) = ⌈k/s⌉/k, since each input lies in at most ⌈k/s⌉² windows of weight 1/k²
(docs/references.md §3).
"""
from __future__ import annotations

from typing import Literal

import sympy as sp
from pydantic import StrictInt

from boundcalc.ops.base import Fail, Flags, OpKind, format_shape, same_shape, window_count
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields

#: largest pooling window and stride a spec may declare
MAX_POOL_SIZE = 1024


class AddFields(LayerFields):
    op: Literal["add"]


class FlattenFields(LayerFields):
    op: Literal["flatten"]


class AvgPoolFields(LayerFields):
    op: Literal["avgpool"]
    kernel: StrictInt
    stride: StrictInt | None = None


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
        first = shapes[0]
        for shape, source in zip(shapes[1:], list(sources)[1:]):
            if not same_shape(first, shape):
                raise fail(f"width mismatch at add: {sources[0]!r} gives {format_shape(first)} but {source!r} "
                           f"gives {format_shape(shape)}")
        return first

    def forward(self, name, params, inputs, weight=None, bias=None):
        total = inputs[0]
        for other in inputs[1:]:
            total = total + other
        return total

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)    # edges of weight 1


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
    summary = "mean over kernel × kernel windows moved by stride (default: the kernel), no padding"
    input_rank = 3
    example = ((2, 5, 5), ({"op": "avgpool", "kernel": 3, "stride": 2},))
    path_role = "edges"      # identity neurons with incoming edges of weight 1/kernel², no bias

    def params(self, reader, model, path):
        stride = model.stride if model.stride is not None else model.kernel
        if not 1 <= model.kernel <= MAX_POOL_SIZE or not 1 <= stride <= MAX_POOL_SIZE:
            raise reader.fail(path, "avgpool kernel and stride must be between 1 and 1024")
        return {"kernel": model.kernel, "stride": stride}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        first = shapes[0]
        if len(first) != 3:
            raise fail(f"avgpool needs a [channels, height, width] input, gets {format_shape(first)}")
        k, s = params["kernel"], params["stride"]
        return (first[0], window_count(first[1], k, s, 0, fail), window_count(first[2], k, s, 0, fail))

    def lipschitz(self, name, params, value):
        k, s = params["kernel"], params["stride"]
        return value(sp.Rational(-(-k // s), k))

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.avg_pool2d(inputs[0], params["kernel"], params["stride"])

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)    # its edge weights 1/kernel² are positive already


ADD = register(Add())
FLATTEN = register(Flatten())
AVGPOOL = register(AvgPool())
