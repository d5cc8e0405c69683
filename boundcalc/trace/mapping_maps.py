"""Converters for pooling and for the ops that combine or reshape tensors (add, cat, flatten, view, mean);
see :mod:`boundcalc.trace.mapping` for the contract. Shapes are per sample (the batch axis removed)."""
from __future__ import annotations

import math

from boundcalc.trace.mapping import PASS, Context, Draft, _default, _pair, _tensor, arg
from boundcalc.trace.nodes import OpNode, Ref
from boundcalc.trace.report import Refusal


def _pool_geometry(node: OpNode, ctx: Context) -> tuple[str, int | list, int | list, int | list]:
    x = _tensor(node)
    if len(ctx.shape(x)) != 3:
        raise Refusal(f"its input has shape {ctx.shape(x)}, not (channels, height, width)")
    kernel = _pair(node.args.get("kernel_size"), "kernel_size")
    stride = node.args.get("stride")
    stride = kernel if stride in (None, [], ()) else _pair(stride, "stride")
    return x, kernel, stride, _pair(node.args.get("padding", 0), "padding")


def _floor_shape(in_shape, kernel, stride, padding, dilation=1) -> tuple[int, ...]:
    """The pooled shape without ceil_mode: ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1 per side."""
    sides = [_both(v) for v in (kernel, stride, padding, dilation)]
    return (in_shape[0],) + tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                                  for n, k, s, p, d in zip(in_shape[1:], *sides))


def _both(value) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _no_ceil(node: OpNode, ctx: Context, x: str, *geometry) -> None:
    """ceil_mode is accepted only where it changes nothing (the floor-mode shape is the captured one)."""
    if node.args.get("ceil_mode") and _floor_shape(ctx.shape(x), *geometry) != ctx.shape(node.name):
        raise Refusal("ceil_mode=True adds partial windows at the border; the spec's pooling has no ceil mode")


def max_pool2d(node: OpNode, ctx: Context) -> list[Draft]:
    x, kernel, stride, padding = _pool_geometry(node, ctx)
    dilation = _pair(node.args.get("dilation", 1), "dilation")
    if node.args.get("return_indices"):
        raise Refusal("return_indices=True returns two tensors")
    _no_ceil(node, ctx, x, kernel, stride, padding, dilation)
    return [Draft("maxpool", {"kernel": kernel, "stride": _default(stride, kernel), "padding": _default(padding, 0),
                              "dilation": _default(dilation, 1)}, [x])]


def avg_pool2d(node: OpNode, ctx: Context) -> list[Draft]:
    x, kernel, stride, padding = _pool_geometry(node, ctx)
    if node.args.get("divisor_override") is not None:
        raise Refusal(f"divisor_override={node.args['divisor_override']}: the spec's avgpool divides by the window")
    _no_ceil(node, ctx, x, kernel, stride, padding)
    include = node.args.get("count_include_pad", True)
    return [Draft("avgpool", {"kernel": kernel, "stride": _default(stride, kernel), "padding": _default(padding, 0),
                              "count_include_pad": None if include or padding == 0 else False}, [x])]


def adaptive_avg_pool2d(node: OpNode, ctx: Context) -> list[Draft]:
    x = _tensor(node)
    if len(ctx.shape(x)) != 3:
        raise Refusal(f"its input has shape {ctx.shape(x)}, not (channels, height, width)")
    return [Draft("adaptive_avgpool", {"output": _pair(list(ctx.shape(node.name)[1:]), "output size")}, [x])]


def mean(node: OpNode, ctx: Context) -> list[Draft]:
    """``x.mean((2, 3))`` (global average pooling), kept as (C, 1, 1) or flattened to (C); ``x.mean(1)`` of a
    (T, d) sequence (the token mean)."""
    x = _tensor(node)
    shape = ctx.shape(x)
    dims = arg(node, "dim", 1)
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    if len(shape) == 2 and [d % 3 for d in dims] == [1]:
        if node.args.get("keepdim"):
            raise Refusal("keepdim=True keeps a (1, d) token; the spec's token_mean gives (d)")
        return [Draft("token_mean", {}, [x])]
    if len(shape) != 3 or sorted(d % 4 for d in dims) != [2, 3]:
        raise Refusal(f"a mean over axes {dims} of a {shape} input; only the global mean over height and width "
                      "(axes 2, 3) is a spec layer")
    pool = Draft("adaptive_avgpool", {"output": 1}, [x])
    return [pool] if node.args.get("keepdim") else [pool, Draft("flatten", {}, [])]


def add(node: OpNode, ctx: Context) -> list[Draft]:
    other = arg(node, "other", 1)
    if not isinstance(other, Ref):
        raise Refusal(f"it adds {getattr(other, 'key', None) or repr(other)}, which is not the output of a layer "
                      "(a learned or constant offset has no spec layer)")
    if node.args.get("alpha", 1) != 1:
        raise Refusal(f"alpha={node.args['alpha']}: the spec's add is a plain sum")
    x = _tensor(node)
    if ctx.shape(x) != ctx.shape(other.name):
        raise Refusal(f"it broadcasts {ctx.shape(x)} with {ctx.shape(other.name)}; the spec's add sums equal shapes")
    return [Draft("add", {}, [x, other.name])]


def cat(node: OpNode, ctx: Context) -> list[Draft]:
    tensors = node.args.get("tensors") or []
    if not all(isinstance(t, Ref) for t in tensors):
        raise Refusal("it concatenates a tensor that is not the output of a layer")
    rank = len(ctx.shape(tensors[0].name)) + 1
    if node.args.get("dim", 0) % rank != 1:
        raise Refusal(f"it concatenates along axis {node.args.get('dim', 0)}; the spec's concat joins channels "
                      "(axis 1, the first per-sample axis)")
    if len(tensors) < 2:
        return PASS
    return [Draft("concat", {}, [t.name for t in tensors])]


def flatten(node: OpNode, ctx: Context) -> list[Draft] | str:
    x = _tensor(node)
    rank = len(ctx.shape(x)) + 1
    start, end = arg(node, "start_dim", 1, 0), arg(node, "end_dim", 2, -1)
    if start % rank != 1 or end % rank != rank - 1:
        raise Refusal(f"flatten(start_dim={start}, end_dim={end}) of a rank-{rank} tensor; the spec's flatten "
                      "joins every axis after the batch")
    return PASS if rank == 2 else [Draft("flatten", {}, [x])]


def view(node: OpNode, ctx: Context) -> list[Draft] | str:
    """A reshape, judged by shapes: to the same shape (no-op) or to one vector per sample (flatten)."""
    x = _tensor(node)
    before, after = ctx.shape(x), ctx.shape(node.name)
    if after == before:
        return PASS
    if after == (math.prod(before),) and len(before) == 3:
        return [Draft("flatten", {}, [x])]
    raise Refusal(f"it reshapes {before} to {after}; the spec can only flatten (C, H, W) into one vector")


def passthrough(node: OpNode, ctx: Context) -> str:
    _tensor(node)
    return PASS
