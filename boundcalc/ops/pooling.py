"""Pooling maps beyond the average of structural.py: ``maxpool`` (torch's max_pool2d: −∞ padding, dilation)
and ``adaptive_avgpool`` (torch's adaptive_avg_pool2d; ``output: 1`` is the global mean).

Sources (docs/references.md §3.2.2, derivations in :mod:`boundcalc.ops.windows`):

- maxpool: ρ = √(n_h·n_w), n_a the largest number of windows along axis a that contain one input (√ of the
  largest number of 2-D windows containing one input; exact, attained by a bump at that input). Enumerated on
  the input size; for a symbolic size, n_a ≤ ⌈k·gcd(d, s)/s⌉ (attained away from the borders). E.g. kernel 3,
  stride 2: ρ = 2; it is 1 only when no two windows overlap.
- adaptive_avgpool: ρ ≤ √(‖P_h‖₁·‖P_w‖₁) (rows average, so ‖P‖∞ = 1), enumerated on the input size; equal
  to ‖P‖₂ when the output divides the input (disjoint windows of one size), e.g. 1/√(h·w) for the global mean.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Literal

import sympy as sp

from boundcalc.errors import DeriveError
from boundcalc.ops import windows
from boundcalc.ops.base import Fail, Flags, OpKind, format_shape
from boundcalc.ops.pool_fields import Pair, pair, pooled_shape, read_pair, read_pool
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields

#: positively homogeneous piecewise-linear maps of (channels, height, width) with φ(0) = 0
POOLING = Flags(homogeneous=True, piecewise_linear=True)


class MaxPoolFields(LayerFields):
    op: Literal["maxpool"]
    kernel: Pair
    stride: Pair | None = None
    padding: Pair = 0
    dilation: Pair = 1


class AdaptiveAvgPoolFields(LayerFields):
    op: Literal["adaptive_avgpool"]
    output: Pair


def _axis_size(in_shape, axis: int) -> int | None:
    return None if in_shape is None else windows.numeric_size(in_shape[1 + axis])


class MaxPool(OpKind):
    name = "maxpool"
    fields = MaxPoolFields
    flags = POOLING
    summary = "max over kernel windows (stride default: the kernel; padding, dilation as torch's max_pool2d)"
    input_rank = 3
    example = ((2, 7, 7), ({"op": "maxpool", "kernel": 3, "stride": 2, "padding": 1},))
    path_role = "max"

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        """The sum over each window of its real inputs (zero padding): a max-pooling neuron's incoming edges have
        weight 1 in the path-lifting, so every path through it is counted (Gonon et al. 2024, and their code)."""
        return window_sum(inputs[0], params)

    def params(self, reader, model, path):
        return read_pool(reader, model, path, dilation=True)

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        return pooled_shape(self.name, params, shapes, fail)

    def lipschitz(self, name, params, value):
        return self.lipschitz_at(name, params, value)

    def lipschitz_at(self, name, params, value, in_shape=None):
        count = 1
        for axis, (k, s, p, d) in enumerate(zip(pair(params["kernel"]), pair(params["stride"]), params["padding"],
                                                params["dilation"])):
            size = _axis_size(in_shape, axis)
            count *= (windows.sliding_cover_bound(k, s, d) if size is None
                      else windows.most_windows(windows.sliding(size, k, s, p, d)))
        return value(sp.sqrt(sp.Integer(count)))

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.max_pool2d(inputs[0], params["kernel"], params["stride"], params["padding"], params["dilation"])


class AdaptiveAvgPool(OpKind):
    name = "adaptive_avgpool"
    fields = AdaptiveAvgPoolFields
    flags = Flags(homogeneous=True, piecewise_linear=True)
    summary = "mean over torch's adaptive windows to an output of [height, width] (output: 1, the global mean)"
    name_prefix = "adaptivepool"
    input_rank = 3
    example = ((2, 5, 5), ({"op": "adaptive_avgpool", "output": 2},))
    path_role = "edges"

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs)     # its weights are positive already

    def params(self, reader, model, path):
        return {"output": read_pair(reader, model.output, path + ("output",), "output", 1)}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        first = shapes[0]
        if len(first) != 3:
            raise fail(f"adaptive_avgpool needs a [channels, height, width] input, gets {format_shape(first)}")
        return (first[0], *(sp.Integer(o) for o in params["output"]))

    def lipschitz(self, name, params, value):
        return self.lipschitz_at(name, params, value)

    def lipschitz_at(self, name, params, value, in_shape=None):
        axes = []
        for axis, out in enumerate(params["output"]):
            size = _axis_size(in_shape, axis)
            if size is not None:
                found = windows.adaptive(size, out)
                axes.append(windows.average_norms(found, [len(w) for w in found]))
            elif out == 1 and in_shape is not None:      # the mean of a symbolic number of inputs
                axes.append((1 / sp.sympify(in_shape[1 + axis]), Fraction(1)))
            else:
                where = "no input size" if in_shape is None else f"input size {in_shape[1 + axis]}"
                raise DeriveError(f"layer {name}: adaptive_avgpool to {out} needs a numeric input size for its "
                                  f"constant ({where})")
        return value(windows.schur_bound(axes))

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.adaptive_avg_pool2d(inputs[0], params["output"])


MAXPOOL = register(MaxPool())
ADAPTIVE_AVGPOOL = register(AdaptiveAvgPool())


def window_sum(x, params):
    """Σ over each pooling window of ``x`` (batch, channels, h, w), zero padding: a depthwise convolution with
    weights 1 and the window's stride, padding and dilation."""
    import torch
    import torch.nn.functional as F

    channels = x.shape[1]
    kernel = pair(params["kernel"])
    ones = torch.ones((channels, 1, *kernel), dtype=x.dtype)
    stride = params.get("stride") or params["kernel"]
    return F.conv2d(x, ones, stride=pair(stride), padding=pair(params.get("padding", 0)),
                    dilation=pair(params.get("dilation", 1)), groups=channels)
