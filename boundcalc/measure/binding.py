"""Bind the weight layers of a spec to tensors of a checkpoint.

A layer with ``param:`` binds to that tensor by name (inside a repeat, ``{t}`` / ``{t-1}`` in the name are
replaced by the iteration number, so ``blocks.{t-1}.fc.weight`` names blocks.0 … blocks.n−1). Every other
layer takes, in spec order, the next unbound checkpoint tensor (natural name order) whose shape is the
layer's expected shape. A layer's bias is the tensor named like its weight with ``weight`` → ``bias``: required
with ``bias: true``, never attached with ``bias: false``, attached when present without the field.
Problems — a named tensor that is missing, a shape that differs, a layer with no tensor left, float
tensors left unused — are all collected into one report instead of stopping at the first.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import networkx as nx
import sympy as sp

from boundcalc.errors import BoundcalcError
from boundcalc.graph.build import build_graph, format_shape
from boundcalc.measure.checkpoint import Checkpoint, TensorInfo
from boundcalc.ops import OPS
from boundcalc.spec.load import Layer, Repeat, Spec


@dataclass(frozen=True)
class WeightSlot:
    """A spec layer that needs a tensor: its graph node name, op, expected shape and where it reads from."""

    node: str                      # graph node (and symbol suffix): "fc1", "mid[3]"
    layer: Layer
    shape: tuple[int, ...]
    input_shape: tuple[int, ...]   # the shape this layer reads (channels, h, w for conv2d)
    param: str | None              # explicit tensor name, placeholders resolved


@dataclass(frozen=True)
class BindingRow:
    node: str
    expected: tuple[int, ...] | None
    tensor: str | None
    found: tuple[int, ...] | None
    status: str   # "bound" | "missing" | "shape mismatch" | "wrong dtype" | "unused" | "no tensor left"
    detail: str = ""


@dataclass
class Binding:
    """Which tensor each weight layer uses (and its bias, if any), and every problem found."""

    graph: nx.DiGraph
    slots: list[WeightSlot]
    weights: dict[str, str] = field(default_factory=dict)     # node -> tensor name
    biases: dict[str, str] = field(default_factory=dict)      # node -> bias tensor name
    extras: dict[str, dict[str, str]] = field(default_factory=dict)   # node -> {role: tensor} (batchnorm statistics)
    rows: list[BindingRow] = field(default_factory=list)

    @property
    def problems(self) -> list[BindingRow]:
        return [r for r in self.rows if r.status not in ("bound", "unused")]

    @property
    def unused(self) -> list[BindingRow]:
        return [r for r in self.rows if r.status == "unused"]

    def ok(self, allow_unused: bool) -> bool:
        return not self.problems and (allow_unused or not self.unused)


class BindingError(BoundcalcError):
    """The checkpoint does not fit the spec; carries the full binding report."""

    def __init__(self, message: str, binding: Binding) -> None:
        super().__init__(message)
        self.binding = binding


def concrete_graph(spec: Spec) -> nx.DiGraph:
    """The spec's graph with every repeat unrolled and every shape a number (else a one-line error)."""
    graph = build_graph(spec)
    for name, attrs in graph.nodes(data=True):
        if attrs["op"] == "repeat":
            count = attrs["layer"].count
            raise BoundcalcError(f"{spec.file}: repeat {name!r} has the symbolic count {count}; a checkpoint needs a "
                                 f"number, e.g. --set {_first_symbol(count)}=4")
        shape = attrs["shape"]
        if shape is not None and not all(sp.sympify(d).is_number for d in shape):
            free = sorted({str(s) for d in shape for s in sp.sympify(d).free_symbols})
            raise BoundcalcError(f"{spec.file}: layer {name!r} has the symbolic shape ({', '.join(map(str, shape))}); "
                                 f"give numbers, e.g. --set {free[0]}=…")
    return graph


def weight_slots(spec: Spec, graph: nx.DiGraph) -> list[WeightSlot]:
    """The weight layers in declaration order with their expected tensor shapes."""
    slots = []
    for node in declaration_order(spec.layers, graph):
        attrs = graph.nodes[node]
        kind = OPS[attrs["op"]]
        layer: Layer = attrs["layer"]
        if not kind.binds_tensors(layer.params):
            continue
        (source,) = list(graph.predecessors(node))
        in_shape = tuple(int(d) for d in graph.nodes[source]["shape"])
        shape = tuple(int(d) for d in kind.weight_shape(layer.params, in_shape))
        param = resolve_param(layer.params.get("param"), attrs["index"])
        if kind.prefix_tensors and param is not None:
            param = f"{param}.{kind.prefix_tensors[0]}"
        slots.append(WeightSlot(node, layer, shape, in_shape, param))
    return slots


def weight_candidates(checkpoint: Checkpoint) -> list[TensorInfo]:
    """Tensors a layer without ``param:`` can bind to, in checkpoint order: floating, 2-D (dense) or 4-D (conv)."""
    return [i for i in checkpoint.infos.values() if i.is_float and len(i.shape) in (2, 4)]


def bind(spec: Spec, checkpoint: Checkpoint, graph: nx.DiGraph | None = None) -> Binding:
    """Bind every weight layer of ``spec`` to a tensor of ``checkpoint``; never raises on a mismatch (the
    rows say what is wrong), only on a spec that cannot be made concrete."""
    graph = graph if graph is not None else concrete_graph(spec)
    slots = weight_slots(spec, graph)
    binding = Binding(graph=graph, slots=slots)
    infos = checkpoint.infos
    taken: set[str] = set()
    outcome = {slot.node: _bind_named(slot, infos, taken) for slot in slots if slot.param is not None}
    candidates = [i for i in weight_candidates(checkpoint) if i.name not in taken]
    for slot in slots:
        if slot.param is None:
            outcome[slot.node] = (_needs_prefix(slot) if OPS[slot.layer.op].prefix_tensors else
                                  _bind_by_shape(slot, candidates, infos, taken))
    for slot in slots:
        row = outcome[slot.node]
        binding.rows.append(row)
        if row.status == "bound":
            binding.weights[slot.node] = row.tensor
            if OPS[slot.layer.op].prefix_tensors:
                _attach_prefixed(binding, slot, infos, taken)
            else:
                _attach_bias(binding, slot, infos, taken)
    for info in infos.values():
        if info.is_float and info.name not in taken:
            binding.rows.append(BindingRow("—", None, info.name, info.shape, "unused"))
    return binding


def _bind_named(slot: WeightSlot, infos: dict[str, TensorInfo], taken: set[str]) -> BindingRow:
    """The row of a layer with ``param:``: its tensor, or why it cannot be used (the name is taken either way)."""
    info = infos.get(slot.param)
    if info is None:
        close = difflib.get_close_matches(slot.param, list(infos), n=1)
        return BindingRow(slot.node, slot.shape, slot.param, None, "missing",
                          "no such tensor" + (f"; did you mean {close[0]!r}?" if close else ""))
    taken.add(slot.param)
    if not info.is_float:
        return BindingRow(slot.node, slot.shape, slot.param, info.shape, "wrong dtype", _dtype_detail(info))
    if _sliced(info.shape, slot.layer.params.get("rows")) != slot.shape:
        return BindingRow(slot.node, slot.shape, slot.param, info.shape, "shape mismatch", _shape_detail(slot, info))
    return BindingRow(slot.node, slot.shape, slot.param, info.shape, "bound")


def _sliced(shape: tuple[int, ...], rows: tuple[int, int] | None) -> tuple[int, ...] | None:
    """The shape of rows start..stop−1 of a tensor of ``shape`` (``rows`` None: the shape; None if they do
    not exist)."""
    if rows is None:
        return shape
    if not shape or rows[1] > shape[0]:
        return None
    return (rows[1] - rows[0], *shape[1:])


def row_part(tensor, layer: Layer):
    """The rows ``layer`` reads of its bound tensor (its weight or its bias): all, or its ``rows`` slice."""
    rows = layer.params.get("rows")
    return tensor if rows is None else tensor[rows[0]:rows[1]]


def _bind_by_shape(slot: WeightSlot, candidates: list[TensorInfo], infos: dict[str, TensorInfo],
                   taken: set[str]) -> BindingRow:
    """The row of a layer without ``param:``: the next unbound candidate of its shape, or why there is none."""
    match = next((i for i in candidates if i.name not in taken and i.shape == slot.shape), None)
    if match is not None:
        taken.add(match.name)
        return BindingRow(slot.node, slot.shape, match.name, match.shape, "bound")
    nxt = next((i for i in candidates if i.name not in taken and len(i.shape) == len(slot.shape)), None)
    not_float = next((i for i in infos.values() if not i.is_float and i.shape == slot.shape and i.name not in taken),
                     None)
    if not_float is not None:
        detail = _dtype_detail(not_float)
    else:
        detail = ("no unbound tensor has this shape" +
                  (f" (next candidate {nxt.name} has {format_shape(nxt.shape)})" if nxt else ""))
    return BindingRow(slot.node, slot.shape, None, None, "no tensor left", detail)


def _attach_bias(binding: Binding, slot: WeightSlot, infos: dict[str, TensorInfo], taken: set[str]) -> None:
    """The bias named like the bound weight (``weight`` → ``bias``), if the checkpoint has one of the right length;
    a "missing" row when the layer declares ``bias: true`` and there is none."""
    declared = slot.layer.params.get("bias")
    bias = _bias_name(binding.weights[slot.node])
    if declared is False:
        return
    if bias not in infos:
        if declared:
            binding.rows.append(BindingRow(slot.node, (slot.shape[0],), bias, None, "missing",
                                           "the layer declares bias: true but the checkpoint has no such tensor"))
        return
    taken.add(bias)
    if _sliced(infos[bias].shape, slot.layer.params.get("rows")) != (slot.shape[0],):
        binding.rows.append(BindingRow(slot.node, (slot.shape[0],), bias, infos[bias].shape, "shape mismatch",
                                       "bias length differs from the layer's width"))
    else:
        binding.biases[slot.node] = bias


def _needs_prefix(slot: WeightSlot) -> BindingRow:
    kind = OPS[slot.layer.op]
    return BindingRow(slot.node, slot.shape, None, None, "missing",
                      f"a {kind.name} layer needs param: (its state-dict prefix, holding "
                      + ", ".join(f".{t}" for t in kind.prefix_tensors) + ")")


def _attach_prefixed(binding: Binding, slot: WeightSlot, infos: dict[str, TensorInfo], taken: set[str]) -> None:
    """The tensors after the weight under the layer's prefix (each of the weight's shape; a row for each one
    missing or of another shape), and the prefix's non-weight tensors marked as used."""
    kind = OPS[slot.layer.op]
    prefix = binding.weights[slot.node].rpartition(".")[0]
    extras = {}
    for role in kind.prefix_tensors[1:]:
        name = f"{prefix}.{role}"
        info = infos.get(name)
        if info is None:
            binding.rows.append(BindingRow(slot.node, slot.shape, name, None, "missing", f"no tensor {name} "
                                           f"(a {kind.name} needs " + ", ".join(kind.prefix_tensors) + ")"))
            continue
        taken.add(name)
        if not info.is_float or info.shape != slot.shape:
            binding.rows.append(BindingRow(slot.node, slot.shape, name, info.shape, "shape mismatch",
                                           f"{name} has {format_shape(info.shape)} ({info.dtype}); "
                                           f"expected {format_shape(slot.shape)}, floating point"))
            continue
        extras[role] = name
    taken.update(f"{prefix}.{role}" for role in kind.ignored_tensors)
    if len(extras) == len(kind.prefix_tensors) - 1:
        binding.extras[slot.node] = extras


def declaration_order(items: tuple, graph: nx.DiGraph, suffix: str = "") -> list[str]:
    """Graph node names in the order the spec declares them (numeric repeats expanded as name[t])."""
    out: list[str] = []
    for item in items:
        if isinstance(item, Repeat):
            for t in range(1, int(item.count) + 1):
                out.extend(declaration_order(item.body, graph, f"[{t}]"))
        else:
            out.append(item.name + suffix)
    return [n for n in out if n in graph]


_PLACEHOLDER = re.compile(r"\{(\w+)([+-]\d+)?\}")


def resolve_param(param: str | None, index) -> str | None:
    """``param`` with ``{t}``/``{t-1}`` replaced by the iteration ``index`` (unchanged outside repeats)."""
    if param is None or index is None:
        return param
    return _PLACEHOLDER.sub(lambda m: str(int(index) + int(m.group(2) or 0)), param)


def _bias_name(weight: str) -> str:
    head, sep, tail = weight.rpartition("weight")
    return head + "bias" + tail if sep else weight + ".bias"


def _shape_detail(slot: WeightSlot, info: TensorInfo) -> str:
    rows = slot.layer.params.get("rows")
    part = "" if rows is None else f" as rows {rows[0]}..{rows[1] - 1} of"
    return (f"layer {slot.node} expects {format_shape(slot.shape)}{part} but {info.name} has "
            f"{format_shape(info.shape)}")


def _first_symbol(expr: sp.Expr) -> str:
    free = sorted(str(s) for s in sp.sympify(expr).free_symbols)
    return free[0] if free else "L"


def _dtype_detail(info: TensorInfo) -> str:
    return f"tensor {info.name} has dtype {info.dtype}; weights must be floating point"
