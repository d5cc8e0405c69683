"""The mapping table: aten op → spec layer(s). One converter per op reads the node's arguments and returns
:class:`Draft` layers (kind name and fields, per the spec field contract in docs/spec.md), :data:`PASS` (the op
does not change its input: ``contiguous``, an eval-mode no-op) or raises :class:`Refusal` saying why the spec
cannot say it. Whether the kind exists is not decided here: the assembler emits a draft only if its kind is
registered in :data:`boundcalc.ops.OPS` when it runs, so a kind added later is picked up without an edit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from boundcalc.trace.nodes import INPUT, OpNode, Param, Ref
from boundcalc.trace.report import Refusal


@dataclass
class Draft:
    """One spec layer to emit: ``kind`` and its ``fields`` (None values are left out), the nodes it reads, the
    state-dict keys it binds, the tensor that names it (a weight layer: its parameter) and an exact equivalent
    kind to use when ``kind`` is not registered (eval-mode dropout is the identity)."""

    kind: str
    fields: dict[str, Any]
    inputs: list[str]
    params: list[str] = field(default_factory=list)
    name_from: str | None = None
    fallback: str | None = None


#: the node's output is its input (the op is a no-op in eval mode or a copy)
PASS = "pass"
#: ops that compute sizes or check metadata, not tensors the network passes on
IGNORED = frozenset({"sym_size", "getattr", "_assert_tensor_metadata", "_assert_scalar", "sym_numel",
                     "sym_constrain_range_for_size", "size"})
#: ops whose output shares its input's storage (an in-place op on one changes the other)
VIEWS = frozenset({"view", "reshape", "_unsafe_view", "flatten", "alias", "contiguous", "detach", "select", "slice",
                   "expand", "t", "transpose", "permute", "squeeze", "unsqueeze", "as_strided", "getitem",
                   "dropout"})


class Context:
    """What a converter may ask about the graph: per-sample shapes of nodes (batch axis removed)."""

    def __init__(self, shapes: dict[str, tuple[int, ...] | None]) -> None:
        self.shapes = shapes

    def shape(self, name: str) -> tuple[int, ...]:
        shape = self.shapes.get(name)
        if shape is None:
            raise Refusal("its input has no known tensor shape")
        return shape


def _tensor(node: OpNode, key: str = "input") -> str:
    value = node.args.get(key)
    if not isinstance(value, Ref):
        raise Refusal(f"its {key!r} argument is {_what(value)}, not the output of a layer")
    return value.name


def arg(node: OpNode, name: str, position: int, default=None):
    """An argument by name, or by position for a tensor method or operator that fx could not normalise."""
    return node.args.get(name, node.args.get(f"arg{position}", default))


def _what(value) -> str:
    if isinstance(value, Ref):
        return f"the output of {value.name} (computed in forward)"
    if isinstance(value, Param):
        return f"the parameter {value.key}"
    return getattr(value, "what", None) or f"the constant {value!r}"


def _weight(node: OpNode, rank: int) -> Param:
    weight = node.args.get("weight")
    if not isinstance(weight, Param):
        raise Refusal(f"its weight is {_what(weight) if weight is not None else 'missing'}, not a parameter of the "
                      "model (a weight computed in forward cannot be bound by name)")
    if len(weight.shape) != rank:
        raise Refusal(f"its weight {weight.key} has shape {weight.shape}, not {rank}-D")
    return weight


def _bias(node: OpNode, weight: Param) -> str | None:
    """The bias key, which must be the weight's key with 'weight' → 'bias' (how binding finds it)."""
    bias = node.args.get("bias")
    if bias is None:
        return None
    if not isinstance(bias, Param):
        raise Refusal(f"its bias is {_what(bias)}, not a parameter of the model")
    head, sep, tail = weight.key.rpartition("weight")
    expected = head + "bias" + tail if sep else weight.key + ".bias"
    if bias.key != expected:
        raise Refusal(f"its bias {bias.key} is not named like its weight ({expected}), so binding cannot find it")
    return bias.key


def _pair(value, what: str) -> int | list[int]:
    """An int or [h, w] as the spec writes it: one number when both sides agree."""
    items = [value] if isinstance(value, int) else list(value)
    if not items or not all(isinstance(v, int) for v in items) or len(items) > 2:
        raise Refusal(f"{what} {value!r} is not one or two integers")
    items = items * 2 if len(items) == 1 else items
    return items[0] if items[0] == items[1] else items


def _default(value, default):
    """None when ``value`` is the field's default (so the spec stays short), else ``value``."""
    return None if value == default else value


def linear(node: OpNode, ctx: Context) -> list[Draft]:
    x = _tensor(node)
    weight = _weight(node, 2)
    bias = _bias(node, weight)
    if len(ctx.shape(x)) not in (1, 2):
        raise Refusal(f"it acts on the last axis of a {ctx.shape(x)} input; the spec's linear reads vectors or "
                      "(tokens, dim) sequences, token-wise (flatten first)")
    return [Draft("linear", {"out": weight.shape[0], "bias": True if bias else None, "param": weight.key}, [x],
                  [weight.key] + ([bias] if bias else []), weight.key)]


def conv2d(node: OpNode, ctx: Context) -> list[Draft]:
    x = _tensor(node)
    weight = _weight(node, 4)
    bias = _bias(node, weight)
    if node.args.get("padding_mode", "zeros") != "zeros":
        raise Refusal(f"padding_mode {node.args['padding_mode']!r}: the spec's conv2d pads with zeros")
    stride, dilation = _pair(node.args.get("stride", 1), "stride"), _pair(node.args.get("dilation", 1), "dilation")
    padding = _conv_padding(node.args.get("padding", 0), weight.shape[2:], stride, dilation)
    groups = node.args.get("groups", 1)
    if len(ctx.shape(x)) != 3:
        raise Refusal(f"its input has shape {ctx.shape(x)}, not (channels, height, width)")
    return [Draft("conv2d", {"channels": weight.shape[0], "kernel": _pair(list(weight.shape[2:]), "kernel"),
                             "stride": _default(stride, 1), "padding": _default(padding, 0),
                             "dilation": _default(dilation, 1), "groups": _default(groups, 1),
                             "bias": True if bias else None, "param": weight.key},
                  [x], [weight.key] + ([bias] if bias else []), weight.key)]


def _conv_padding(padding, kernel, stride, dilation) -> int | list[int]:
    """Explicit padding; 'valid' is 0 and 'same' (stride 1) is d·(k−1)/2 per side when that is a whole number."""
    if padding == "valid":
        return 0
    if padding != "same":
        return _pair(padding, "padding")
    dil = [dilation] * 2 if isinstance(dilation, int) else dilation
    totals = [d * (k - 1) for d, k in zip(dil, kernel)]
    if stride != 1 or any(t % 2 for t in totals):
        raise Refusal("padding='same' with an even kernel pads one side more than the other; the spec's conv2d "
                      "pads both sides equally")
    return _pair([t // 2 for t in totals], "padding")


def batch_norm(node: OpNode, ctx: Context) -> list[Draft]:
    x = _tensor(node)
    if node.args.get("training"):
        raise Refusal("it normalises with batch statistics (training mode, or track_running_stats=False); the "
                      "spec's batchnorm is the eval-mode affine map with running statistics")
    tensors = {key: node.args.get(key) for key in ("weight", "bias", "running_mean", "running_var")}
    if not all(isinstance(t, Param) for t in tensors.values()):
        missing = [key for key, t in tensors.items() if not isinstance(t, Param)]
        raise Refusal(f"it has no {', '.join(missing)} tensor(s) (affine=False?); the spec's batchnorm binds "
                      "<param>.weight, .bias, .running_mean and .running_var")
    prefix = tensors["weight"].key.removesuffix(".weight")
    if any(t.key != f"{prefix}.{key}" for key, t in tensors.items()):
        raise Refusal(f"its tensors {', '.join(t.key for t in tensors.values())} do not share the prefix {prefix}")
    if len(ctx.shape(x)) not in (1, 3):
        raise Refusal(f"its input has shape {ctx.shape(x)}; the spec's batchnorm reads (C) or (C, H, W)")
    eps = float(node.args.get("eps", 1e-5))
    return [Draft("batchnorm", {"param": prefix, "eps": _default(eps, 1e-5)}, [x],
                  [t.key for t in tensors.values()], prefix)]


def _activation(kind: str, fields: Callable[[OpNode], dict] = lambda node: {}):
    def convert(node: OpNode, ctx: Context) -> list[Draft]:
        return [Draft(kind, fields(node), [_tensor(node)])]
    return convert


def _require(node: OpNode, key: str, expected, why: str):
    value = node.args.get(key, expected)
    if value != expected:
        raise Refusal(f"{key}={value!r}: {why}")
    return value


def _elu_fields(node: OpNode) -> dict:
    _require(node, "scale", 1, "the spec's elu has scale 1 (use alpha)")
    _require(node, "input_scale", 1, "the spec's elu has input_scale 1")
    return {"alpha": _default(float(node.args.get("alpha", 1.0)), 1.0)}


def _softplus_fields(node: OpNode) -> dict:
    _require(node, "threshold", 20, "torch's softplus is x above the threshold; only its default (20, within "
                                    "2.1e-9 of log(1 + e^x)) is the spec's softplus")
    return {"beta": _default(float(node.args.get("beta", 1.0)), 1.0)}


def dropout(node: OpNode, ctx: Context) -> list[Draft]:
    if node.args.get("train", node.args.get("training", False)):
        raise Refusal("dropout in training mode is random; the spec's dropout is the eval-mode identity")
    return [Draft("dropout", {"p": float(node.args.get("p", 0.5))}, [_tensor(node)], fallback="identity")]
