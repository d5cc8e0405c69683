"""Pydantic models of the raw spec, one per layer kind, with unknown keys rejected.

These check structure and types only; expressions stay strings/numbers here and are parsed by
``spec/load.py`` with the restricted parser once the symbol table is known.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

Value = Union[StrictInt, StrictFloat, StrictStr]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RawData(_Strict):
    samples: Value = "m"
    dim: Value | None = None
    shape: list[Value] | None = Field(default=None, min_length=1, max_length=3)
    norm: Value = "frobenius"


class RawLoss(_Strict):
    lipschitz: Value | None = None
    margin: Value | None = None
    delta: Value = "delta"


class RawSpec(_Strict):
    name: StrictStr | None = None
    description: StrictStr | None = None
    symbols: list[StrictStr] | None = None
    data: RawData
    layers: list[Any] = Field(min_length=1)
    output: StrictStr | None = None
    loss: RawLoss = RawLoss()


class _Layer(_Strict):
    name: StrictStr | None = None
    inputs: list[StrictStr] | None = Field(default=None, min_length=1)


class LinearLayer(_Layer):
    """Dense layer x -> W x (bias-free), W of shape (out, in)."""

    op: Literal["linear"]
    out: Value
    spectral: Value | None = None
    frobenius: Value | None = None
    rank: Value | None = None
    param: StrictStr | None = None


class Conv2dLayer(_Layer):
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


class PlainActivation(_Layer):
    """Parameter-free 1-Lipschitz activations with phi(0) = 0."""

    op: Literal["relu", "identity", "tanh"]


class LeakyReluLayer(_Layer):
    op: Literal["leaky_relu"]
    slope: Value = 0.01


class LipschitzLayer(_Layer):
    """A generic elementwise activation with Lipschitz constant ``constant`` and value ``at_zero`` at 0."""

    op: Literal["lipschitz"]
    constant: Value
    at_zero: Value = 0


class AddLayer(_Layer):
    op: Literal["add"]


class FlattenLayer(_Layer):
    op: Literal["flatten"]


class AvgPoolLayer(_Layer):
    op: Literal["avgpool"]
    kernel: StrictInt
    stride: StrictInt | None = None


class RawRepeat(_Strict):
    name: StrictStr | None = None
    count: Value
    index: StrictStr | None = None
    body: list[Any] = Field(min_length=1)
    inputs: list[StrictStr] | None = Field(default=None, min_length=1, max_length=1)


LAYER_MODELS: dict[str, type[_Layer]] = {
    "linear": LinearLayer,
    "conv2d": Conv2dLayer,
    "relu": PlainActivation,
    "identity": PlainActivation,
    "tanh": PlainActivation,
    "leaky_relu": LeakyReluLayer,
    "lipschitz": LipschitzLayer,
    "add": AddLayer,
    "flatten": FlattenLayer,
    "avgpool": AvgPoolLayer,
}
#: auto-name prefixes: the n-th unnamed linear layer is fc<n>
NAME_PREFIX = {"linear": "fc", "conv2d": "conv"}
