"""Pydantic models of the raw spec (top level, data, loss, repeat), with unknown keys rejected; each op kind's
own model is declared with the kind (:mod:`boundcalc.ops`).

These check structure and types only; expressions stay strings/numbers here and are parsed by
``spec/load.py`` with the restricted parser once the symbol table is known.
"""
from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

Value = Union[StrictInt, StrictFloat, StrictStr]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RawData(_Strict):
    samples: Value = "m"
    tokens: Value | None = None        # sequence data: each sample is (tokens, dim)
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


class LayerFields(_Strict):
    """Fields every layer has; each op kind's model (:mod:`boundcalc.ops`) adds ``op`` and its own."""

    name: StrictStr | None = None
    inputs: list[StrictStr] | None = Field(default=None, min_length=1)


class RawRepeat(_Strict):
    name: StrictStr | None = None
    count: Value
    index: StrictStr | None = None
    body: list[Any] = Field(min_length=1)
    inputs: list[StrictStr] | None = Field(default=None, min_length=1, max_length=1)
