"""Linear maps with trained weights: ``linear`` (x → W x) and ``conv2d`` (a convolution, as a linear operator).

Both are bias-free in the bounds; a checkpoint's biases are folded or dropped by the evaluate pipeline
(``boundcalc.measure.run``). Their rules (Lipschitz constant ‖W‖₂, the Gaussian average of Pinto et al.
Lemma 6) live in :mod:`boundcalc.calculus.rules`.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictInt, StrictStr

from boundcalc.ops.base import Fail, FieldReader, Flags, OpKind, absolute, format_shape, window_count
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields, Value

LINEAR_FLAGS = Flags(weights=True, homogeneous=True, piecewise_linear=True, foldable_bias=True)
#: most taps per side, stride and padding a conv2d may declare
MAX_CONV_SIZE = 1024


class LinearFields(LayerFields):
    """Dense layer x -> W x (bias-free), W of shape (out, in)."""

    op: Literal["linear"]
    out: Value
    spectral: Value | None = None
    frobenius: Value | None = None
    rank: Value | None = None
    param: StrictStr | None = None


class Conv2dFields(LayerFields):
    """2-D convolution treated as a linear operator with its own norm symbols."""

    op: Literal["conv2d"]
    channels: Value
    kernel: StrictInt | list[StrictInt]
    stride: StrictInt = 1
    padding: StrictInt = 0
    spectral: Value | None = None
    frobenius: Value | None = None
    rank: Value | None = None
    param: StrictStr | None = None


def weight_params(kind: OpKind, reader: FieldReader, model: Any, path: tuple) -> dict[str, Any]:
    """The width (``out`` or ``channels``), the declared constraint values and ``param`` of a weight layer."""
    key = kind.width_field
    p: dict[str, Any] = {key: reader.size(getattr(model, key), path + (key,), key)}
    for field in ("spectral", "frobenius", "rank"):
        value = getattr(model, field)
        if value is not None:
            check = reader.size if field == "rank" else reader.positive
            p[field] = check(value, path + (field,), field)
    p["param"] = model.param
    return p


def _float64(tensor):
    import torch

    return None if tensor is None else tensor.to(torch.float64)


class Linear(OpKind):
    name = "linear"
    fields = LinearFields
    flags = LINEAR_FLAGS
    summary = "dense layer x → W x, W of shape (out, in)"
    name_prefix = "fc"
    input_rank = 1
    width_field = "out"
    example = ((4,), ({"op": "linear", "out": 3},))
    path_role = "edges"

    def params(self, reader, model, path):
        return weight_params(self, reader, model, path)

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        if len(shapes[0]) != 1:
            raise fail(f"linear needs a vector input but gets shape {format_shape(shapes[0])}; add a 'flatten' "
                       "layer before it")
        return (params["out"],)

    def weight_shape(self, params, in_shape):
        return (params["out"], in_shape[0])

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.linear(inputs[0], _float64(weight), _float64(bias))

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs, absolute(weight), absolute(bias))


class Conv2d(OpKind):
    name = "conv2d"
    fields = Conv2dFields
    flags = Flags(weights=True, homogeneous=True, piecewise_linear=True)
    summary = "2-D convolution (zero padding, stride), as a linear operator on its input size"
    name_prefix = "conv"
    input_rank = 3
    width_field = "channels"
    example = ((2, 5, 5), ({"op": "conv2d", "channels": 3, "kernel": 3, "stride": 2, "padding": 1},))
    path_role = "edges"
    assumption = ("conv2d layers are linear operators: s_<conv> is the operator norm on the given input size, "
                  "f_<conv> the Frobenius norm of the full (Toeplitz) operator (and b_<conv> its (2,1) norm), "
                  "h_out = channels·height·width")

    def params(self, reader, model, path):
        p = weight_params(self, reader, model, path)
        kernel = model.kernel if isinstance(model.kernel, list) else [model.kernel, model.kernel]
        if len(kernel) != 2 or min(kernel) < 1 or max(kernel) > MAX_CONV_SIZE:
            raise reader.fail(path + ("kernel",), "kernel must be a positive size or [height, width]")
        if not 1 <= model.stride <= MAX_CONV_SIZE or not 0 <= model.padding <= MAX_CONV_SIZE:
            raise reader.fail(path, "stride must be ≥ 1 and padding ≥ 0")
        p.update(kernel=tuple(kernel), stride=model.stride, padding=model.padding)
        return p

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        first = shapes[0]
        if len(first) != 3:
            raise fail(f"conv2d needs a [channels, height, width] input, gets {format_shape(first)}")
        (kh, kw), stride, pad = params["kernel"], params["stride"], params["padding"]
        return (params["channels"], window_count(first[1], kh, stride, pad, fail),
                window_count(first[2], kw, stride, pad, fail))

    def kernel_area(self, params):
        kh, kw = params["kernel"]
        return kh * kw

    def weight_shape(self, params, in_shape):
        return (params["channels"], in_shape[0], *params["kernel"])

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.conv2d(inputs[0], _float64(weight), _float64(bias), stride=params["stride"],
                        padding=params["padding"])

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs, absolute(weight), absolute(bias))

    def geometry(self, params, in_shape):
        return {"input_hw": tuple(int(d) for d in in_shape[1:]), "stride": params["stride"],
                "padding": params["padding"]}


LINEAR = register(Linear())
CONV2D = register(Conv2d())
