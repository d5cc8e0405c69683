"""The element types of a safetensors file, and their decoding into numpy without torch.

numpy has no bfloat16 or float8 types; their bits are read as unsigned integers and decoded exactly into
float32 (every bfloat16, float8_e4m3fn and float8_e5m2 value is a float32 value):

* bfloat16 is the upper half of a float32: the 16 bits shifted left by 16;
* float8_e5m2 is the upper byte of a float16 (same exponent width and bias 15, IEEE Inf and NaN): the 8 bits
  shifted left by 8, read as float16, then widened;
* float8_e4m3fn (1 sign, 4 exponent bits of bias 7, 3 mantissa bits, no infinities, NaN only at S.1111.111;
  OCP 8-bit floating point, 2023) goes through a 256-entry table built from that definition.

Names are torch's (``float32``, ``bfloat16``, ``float8_e4m3fn`` …), so a tensor reads the same whether it came
from a safetensors or a torch file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ElementType:
    """One safetensors dtype: its torch-style name, bytes per element and numpy storage type (the bits, for
    types numpy lacks)."""

    name: str
    itemsize: int
    storage: str          # numpy dtype of the stored bits, little-endian
    floating: bool

    @property
    def native(self) -> bool:
        """Whether numpy reads the values themselves (no decoding)."""
        return self.name not in DECODERS


#: safetensors dtype code -> element type (huggingface/safetensors, ``Dtype``)
SAFETENSORS_TYPES = {
    "BOOL": ElementType("bool", 1, "|b1", False),
    "U8": ElementType("uint8", 1, "|u1", False),
    "I8": ElementType("int8", 1, "|i1", False),
    "U16": ElementType("uint16", 2, "<u2", False),
    "I16": ElementType("int16", 2, "<i2", False),
    "U32": ElementType("uint32", 4, "<u4", False),
    "I32": ElementType("int32", 4, "<i4", False),
    "U64": ElementType("uint64", 8, "<u8", False),
    "I64": ElementType("int64", 8, "<i8", False),
    "F16": ElementType("float16", 2, "<f2", True),
    "BF16": ElementType("bfloat16", 2, "<u2", True),
    "F32": ElementType("float32", 4, "<f4", True),
    "F64": ElementType("float64", 8, "<f8", True),
    "F8_E4M3": ElementType("float8_e4m3fn", 1, "|u1", True),
    "F8_E5M2": ElementType("float8_e5m2", 1, "|u1", True),
}


def _e4m3fn_table() -> np.ndarray:
    """float32 value of each of the 256 float8_e4m3fn bit patterns."""
    bits = np.arange(256)
    sign = np.where(bits & 0x80, -1.0, 1.0)
    exponent, mantissa = (bits >> 3) & 0xF, bits & 0x7
    magnitude = np.where(exponent == 0, mantissa / 8.0 * 2.0 ** -6,               # subnormal: 0.m · 2^(1−7)
                         (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7.0))
    values = sign * magnitude
    values[(exponent == 0xF) & (mantissa == 0x7)] = np.nan
    return values.astype(np.float32)


_E4M3FN = _e4m3fn_table()


def _bfloat16(bits: np.ndarray, out: np.ndarray) -> None:
    np.left_shift(bits, 16, out=out.view(np.uint32), dtype=np.uint32)


def _float8_e5m2(bits: np.ndarray, out: np.ndarray) -> None:
    out[...] = np.left_shift(bits, 8, dtype=np.uint16).view(np.float16)


def _float8_e4m3fn(bits: np.ndarray, out: np.ndarray) -> None:
    np.take(_E4M3FN, bits, out=out)


#: torch-style name -> function writing the float32 values of stored bits into ``out`` (same shape)
DECODERS = {"bfloat16": _bfloat16, "float8_e5m2": _float8_e5m2, "float8_e4m3fn": _float8_e4m3fn}


def decode_into(bits: np.ndarray, name: str, out: np.ndarray) -> None:
    """Write the float32 values of ``bits`` (stored as type ``name``) into the float32 array ``out``."""
    DECODERS[name](bits, out)


def decoded(bits: np.ndarray, name: str) -> np.ndarray:
    """The values of ``bits`` stored as type ``name``: float32 for bfloat16/float8, else ``bits`` itself."""
    if name not in DECODERS:
        return bits
    out = np.empty(bits.shape, dtype=np.float32)
    decode_into(bits, name, out)
    return out


def value_dtype(name: str) -> np.dtype:
    """The numpy type a tensor of type ``name`` is measured in (float32 for types numpy lacks)."""
    if name in DECODERS:
        return np.dtype(np.float32)
    return np.dtype(next(t.storage for t in SAFETENSORS_TYPES.values() if t.name == name))
