"""Spec fields shared by the pooling kinds (avgpool, maxpool): sizes as an int or [height, width], checked
against torch's rules, each bad field one located SpecError."""
from __future__ import annotations

from typing import Any

from pydantic import StrictInt

from boundcalc.ops.base import Fail, format_shape, window_count

#: largest pooling window, stride, padding or dilation a spec may declare
MAX_POOL_SIZE = 1024
#: a pooling size field as written: an int, or [height, width]
Pair = StrictInt | list[StrictInt]


def pair(value: Any) -> tuple[int, int]:
    """(height, width) of an int or a two-entry list (already checked by :func:`read_pair`)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def read_pair(reader, value: Any, path: tuple, what: str, least: int) -> tuple[int, int]:
    """``value`` as (height, width), each in [least, MAX_POOL_SIZE]; a located SpecError otherwise."""
    if isinstance(value, list) and len(value) != 2:
        raise reader.fail(path, f"{what} must be an int or [height, width], got {len(value)} entries")
    h, w = pair(value)
    for size in (h, w):
        if not least <= size <= MAX_POOL_SIZE:
            raise reader.fail(path, f"{what} must be between {least} and {MAX_POOL_SIZE}, got {size}")
    return h, w


def read_pool(reader, model: Any, path: tuple, dilation: bool = False) -> dict[str, Any]:
    """kernel, stride (default: the kernel), padding (default 0, at most half the kernel, as torch requires)
    and, for ``dilation``, the dilation (default 1) of a pooling layer."""
    kernel = read_pair(reader, model.kernel, path + ("kernel",), "kernel", 1)
    stride = kernel if model.stride is None else read_pair(reader, model.stride, path + ("stride",), "stride", 1)
    padding = read_pair(reader, model.padding, path + ("padding",), "padding", 0)
    for k, p in zip(kernel, padding):
        if 2 * p > k:
            raise reader.fail(path + ("padding",), f"padding {p} is more than half the kernel {k} (torch "
                              "refuses it: a window would hold padding only)")
    written = model.kernel if model.stride is None else model.stride
    out = {"kernel": model.kernel if isinstance(model.kernel, int) else kernel,
           "stride": written if isinstance(written, int) else stride, "padding": padding}
    if dilation:
        out["dilation"] = read_pair(reader, model.dilation, path + ("dilation",), "dilation", 1)
    return out


def pooled_shape(op: str, params: dict[str, Any], shapes: list[tuple], fail: Fail) -> tuple:
    """(channels, height, width) after a sliding pooling of ``params`` (torch's output size, no ceil mode)."""
    first = shapes[0]
    if len(first) != 3:
        raise fail(f"{op} needs a [channels, height, width] input, gets {format_shape(first)}")
    kernel, stride = pair(params["kernel"]), pair(params["stride"])
    padding, dilation = params.get("padding", (0, 0)), params.get("dilation", (1, 1))
    sizes = [window_count(first[1 + a], dilation[a] * (kernel[a] - 1) + 1, stride[a], padding[a], fail)
             for a in (0, 1)]
    return (first[0], *sizes)
