"""Linear maps with trained weights: ``linear`` (x → W x + b; on a (T, d) input token-wise, the same W and b for
every token) and ``conv2d`` (a convolution with stride, zero padding, dilation and groups, as a linear operator,
plus a bias).

``bias: true`` makes a layer affine in the bounds (the ``tight`` rules add its bias norm c_<layer>,
:func:`boundcalc.calculus.rules.affine_tight`) and makes binding require the bias tensor; without the field a
checkpoint's bias named like the weight is still attached, and the evaluate pipeline folds, drops or keeps it
(``boundcalc.measure.run``). Shapes follow torch's ``nn.Conv2d``: each side has
⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1 positions, and the weight is (channels, c_in/groups, k_h, k_w).
"""
from __future__ import annotations

from typing import Any, Literal

import sympy as sp

from pydantic import Field, StrictBool, StrictInt, StrictStr

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
    bias: StrictBool | None = None     # None: attach a bias named like the weight if there is one
    rows: list[StrictInt] | None = Field(default=None, min_length=2, max_length=2)   # [start, stop] of param


class Conv2dFields(LayerFields):
    """2-D convolution treated as a linear operator with its own norm symbols."""

    op: Literal["conv2d"]
    channels: Value
    kernel: StrictInt | list[StrictInt]
    stride: StrictInt | list[StrictInt] = 1
    padding: StrictInt | list[StrictInt] = 0
    dilation: StrictInt | list[StrictInt] = 1
    groups: StrictInt = 1
    spectral: Value | None = None
    frobenius: Value | None = None
    rank: Value | None = None
    param: StrictStr | None = None
    bias: StrictBool | None = None


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
    if model.bias is not None:
        p["bias"] = model.bias
    return p


def row_slice(reader: FieldReader, model: Any, out: Any, path: tuple) -> tuple[int, int]:
    """``rows: [start, stop]``: the layer's weight is rows start..stop−1 of the tensor ``param`` names (its bias
    the same entries of the bias), so stop − start must be ``out``; 0 ≤ start < stop."""
    start, stop = model.rows
    if model.param is None:
        raise reader.fail(path, "rows needs param: (the tensor whose rows the layer reads)")
    if not 0 <= start < stop:
        raise reader.fail(path, f"rows must be [start, stop] with 0 ≤ start < stop, got {model.rows}")
    if not (sp.sympify(out).is_number and stop - start == out):
        raise reader.fail(path, f"rows {model.rows} select {stop - start} rows but the layer has out: {out}")
    return (start, stop)


#: (field, smallest value) of the conv2d sizes given as an int or [height, width]
_CONV_PAIRS = (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1))


def size_pair(reader: FieldReader, value: int | list[int], path: tuple, what: str, least: int) -> tuple[int, int]:
    """``value`` (an int, or [height, width]) as (h, w), each between ``least`` and MAX_CONV_SIZE."""
    pair = value if isinstance(value, list) else [value, value]
    if len(pair) != 2 or min(pair) < least or max(pair) > MAX_CONV_SIZE:
        raise reader.fail(path, f"{what} must be an integer or [height, width] between {least} and {MAX_CONV_SIZE}, "
                                f"got {value}")
    return tuple(pair)


def square(pair: tuple[int, int]) -> int | tuple[int, int]:
    """One int for equal sides (what the conv-norm code of :mod:`boundcalc.measure.linalg` reads), else the pair."""
    return pair[0] if pair[0] == pair[1] else pair


def _float64(tensor):
    import torch

    return None if tensor is None else tensor.to(torch.float64)


class Linear(OpKind):
    name = "linear"
    fields = LinearFields
    flags = LINEAR_FLAGS
    summary = "dense layer x → W x, W of shape (out, in); on a (tokens, in) input, W applied to every token"
    name_prefix = "fc"
    input_rank = 1
    width_field = "out"
    example = ((4,), ({"op": "linear", "out": 3},))
    path_role = "edges"

    def params(self, reader, model, path):
        p = weight_params(self, reader, model, path)
        if model.rows is not None:
            p["rows"] = row_slice(reader, model, p["out"], path + ("rows",))
        return p

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        """(out) for a vector, (T, out) for T tokens: the operator I_T ⊗ W (one W shared by the tokens)."""
        if len(shapes[0]) not in (1, 2):
            raise fail(f"linear needs a vector or a (tokens, dim) input but gets shape {format_shape(shapes[0])}; "
                       "add a 'flatten' layer before it")
        return (*shapes[0][:-1], params["out"])

    def weight_shape(self, params, in_shape):
        return (params["out"], in_shape[-1])

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.linear(inputs[0], _float64(weight), _float64(bias))

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs, absolute(weight), absolute(bias))


class Conv2d(OpKind):
    name = "conv2d"
    fields = Conv2dFields
    flags = Flags(weights=True, homogeneous=True, piecewise_linear=True)
    summary = "2-D convolution (stride, zero padding, dilation, groups), as a linear operator on its input size"
    name_prefix = "conv"
    input_rank = 3
    width_field = "channels"
    example = ((2, 6, 7), ({"op": "conv2d", "channels": 4, "kernel": [3, 2], "stride": [2, 1], "padding": 1,
                            "dilation": [2, 1], "groups": 2},))
    path_role = "edges"
    assumption = ("conv2d layers are linear operators: s_<conv> is the operator norm on the given input size, "
                  "f_<conv> the Frobenius norm of the full (Toeplitz) operator (and b_<conv> its (2,1) norm), "
                  "h_out = channels·height·width")

    def params(self, reader, model, path):
        p = weight_params(self, reader, model, path)
        for key, least in _CONV_PAIRS:
            p[key] = size_pair(reader, getattr(model, key), path + (key,), key, least)
        if not 1 <= model.groups <= MAX_CONV_SIZE:
            raise reader.fail(path + ("groups",), f"groups must be an integer between 1 and {MAX_CONV_SIZE}, "
                                                  f"got {model.groups}")
        if _divides(model.groups, p["channels"]) is False:
            raise reader.fail(path + ("groups",), f"groups {model.groups} must divide channels {p['channels']}")
        p["groups"] = model.groups
        return p

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        first = shapes[0]
        if len(first) != 3:
            raise fail(f"conv2d needs a [channels, height, width] input, gets {format_shape(first)}")
        if _divides(params["groups"], first[0]) is False:
            raise fail(f"groups {params['groups']} must divide the input channels {first[0]}")
        sides = [window_count(n, d * (k - 1) + 1, s, pad, fail) for n, k, s, pad, d in
                 zip(first[1:], params["kernel"], params["stride"], params["padding"], params["dilation"])]
        return (params["channels"], *sides)

    def kernel_area(self, params):
        kh, kw = params["kernel"]
        return kh * kw

    def weight_shape(self, params, in_shape):
        return (params["channels"], in_shape[0] / params["groups"], *params["kernel"])

    def forward(self, name, params, inputs, weight=None, bias=None):
        import torch.nn.functional as F

        return F.conv2d(inputs[0], _float64(weight), _float64(bias), stride=params["stride"],
                        padding=params["padding"], dilation=params["dilation"], groups=params["groups"])

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return self.forward(name, params, inputs, absolute(weight), absolute(bias))

    def geometry(self, params, in_shape):
        """Keys of :class:`boundcalc.measure.quantities.ConvGeometry`; equal sides as one int (as before)."""
        return {"input_hw": tuple(int(d) for d in in_shape[1:]), "stride": square(params["stride"]),
                "padding": square(params["padding"]), "dilation": square(params["dilation"]),
                "groups": params["groups"]}


def _divides(groups: int, channels) -> bool | None:
    """Whether ``groups`` divides ``channels`` (None: undecided for a symbolic channel count)."""
    return (channels / groups).is_integer


LINEAR = register(Linear())
CONV2D = register(Conv2d())
