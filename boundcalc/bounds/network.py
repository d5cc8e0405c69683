"""The layers view of a spec that prior bounds are written against.

Published bounds speak of "layer i" with ``W_i``, ``s_i``, ``f_i``, ``ρ_i``. :class:`NetworkView` turns the
spec's graph into that list: weight layers in order, grouped into segments (a segment inside a symbolic
``repeat`` stands for ``count`` copies indexed by the repeat's index). Products and sums over layers are
built as sympy ``Product``/``Sum`` over segments, never expanded, so a 1000-layer product stays one node
and :mod:`boundcalc.numerics` evaluates it in log space. Quantity symbols come from the composer's own
:class:`SymbolicQuantities`, so every bound names ``s_fc1`` exactly as the derived bound does.

Not checked here: whether a given bound accepts the ops (each entry's requirements do that).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import networkx as nx
import sympy as sp

from boundcalc.calculus.compose import node_context
from boundcalc.calculus.quantities import SymbolicQuantities, output_width
from boundcalc.calculus.rules import activation_lipschitz
from boundcalc.graph.build import INPUT, build_graph
from boundcalc.ops import OPS, WEIGHT_OPS
from boundcalc.spec.load import Spec



@dataclass(frozen=True)
class WeightLayer:
    """One weight layer as the papers see it: its norm symbols, widths and the ρ of the maps before it."""

    name: str
    op: str
    s: sp.Expr            # spectral norm ‖W‖₂ (operator norm for conv2d)
    f: sp.Expr            # Frobenius norm of the (full) operator
    b: sp.Expr            # (2,1)-norm ‖Wᵀ − Mᵀ‖₂,₁
    r: sp.Expr            # rank
    w: sp.Expr            # filter norm (kernel tensor Frobenius norm); f for dense layers
    h_in: sp.Expr
    h_out: sp.Expr
    degree: sp.Expr       # inputs per neuron (kernel area for conv2d; input positions for dense)


@dataclass(frozen=True)
class Segment:
    """Weight layers applied once (``count`` None) or ``count`` times with index ``index`` = 1..count."""

    layers: tuple[WeightLayer, ...]
    count: sp.Expr | None = None
    index: sp.Symbol | None = None


class NetworkView:
    """Layer-level facts about a spec: topology, weight layers, data and loss quantities."""

    def __init__(self, spec: Spec, graph: nx.DiGraph | None = None,
                 quantities: SymbolicQuantities | None = None) -> None:
        """``quantities`` gives each layer's s, f, b, r, w (default: the spec's value, else its symbol)."""
        self.spec = spec
        self.graph = graph if graph is not None else build_graph(spec)
        self.quantities = quantities if quantities is not None else SymbolicQuantities(spec.symbols)
        self.ops = frozenset(_all_ops(self.graph))
        self.dag_reason = _dag_reason(self.graph)
        self.segments: tuple[Segment, ...] = ()
        if self.dag_reason is None:
            self.segments = self._chain_segments()
        self.rho_product = _rho_product(self.graph, self.quantities)

    # -- data and loss -------------------------------------------------------------------------
    @property
    def is_chain(self) -> bool:
        return self.dag_reason is None

    @property
    def m(self) -> sp.Expr:
        return self.spec.data.samples

    @property
    def data_norm(self) -> sp.Expr:
        """‖X‖_F (or the spec's bound on it)."""
        return self.spec.data.norm

    @property
    def max_input_norm(self) -> sp.Expr:
        """R = max_i ‖x_i‖ (the data symbol R)."""
        return self.spec.symbols("R")

    @property
    def input_dim(self) -> sp.Expr:
        return sp.Mul(*self.spec.data.shape)

    @property
    def output_dim(self) -> sp.Expr:
        return sp.Mul(*self.graph.nodes[self.graph.graph["output"]]["shape"])

    @property
    def margin(self) -> sp.Expr | None:
        return self.spec.loss.margin

    @property
    def loss_lipschitz(self) -> sp.Expr:
        return self.spec.loss.lipschitz

    @property
    def delta(self) -> sp.Expr:
        return self.spec.loss.delta

    # -- products, sums and counts over the weight layers --------------------------------------
    def product(self, fn: Callable[[WeightLayer], sp.Expr]) -> sp.Expr:
        """Π over weight layers of ``fn(layer)``; a Product (or a power) per repeated segment."""
        return sp.Mul(*(self._segment_reduce(seg, fn, sp.Mul, sp.Product, _power) for seg in self.segments))

    def total(self, fn: Callable[[WeightLayer], sp.Expr]) -> sp.Expr:
        """Σ over weight layers of ``fn(layer)``; a Sum (or a multiple) per repeated segment."""
        return sp.Add(*(self._segment_reduce(seg, fn, sp.Add, sp.Sum, _times) for seg in self.segments))

    @cached_property
    def depth(self) -> sp.Expr:
        """Number of weight layers on the longest input-output path."""
        return _longest_path(self.graph)

    @cached_property
    def parameter_count(self) -> sp.Expr:
        return _parameter_count(self.graph, self.quantities)

    @cached_property
    def max_width(self) -> sp.Expr:
        """W: the largest number of units in any layer, input included."""
        return sp.Max(self.input_dim, *_widths(self.graph))

    @staticmethod
    def _segment_reduce(seg: Segment, fn, combine, big, repeat_flat) -> sp.Expr:
        inner = combine(*(fn(layer) for layer in seg.layers))
        if seg.count is None:
            return inner
        if not inner.has(seg.index):
            return repeat_flat(inner, seg.count)
        return big(inner, (seg.index, 1, seg.count))

    # -- building the chain ---------------------------------------------------------------------
    def _chain_segments(self) -> tuple[Segment, ...]:
        segments: list[Segment] = []
        once: list[WeightLayer] = []
        walker = _ChainWalker(self.quantities)
        for name in _path(self.graph):
            attrs = self.graph.nodes[name]
            if attrs["op"] == "repeat":
                if once:
                    segments.append(Segment(tuple(once)))
                    once = []
                # iterations after the first read the body's own output and the body keeps its shape, so
                # the steady body describes every copy (only the first copy's input width can differ,
                # which parameter_count accounts for)
                layers = walker.walk(attrs["body_steady"], attrs["layer"].index)
                segments.append(Segment(tuple(layers), count=attrs["layer"].count, index=attrs["layer"].index))
            else:
                layer = walker.step(self.graph, name, None)
                if layer is not None:
                    once.append(layer)
        if once:
            segments.append(Segment(tuple(once)))
        return tuple(segments)


class _ChainWalker:
    """Walks chain nodes in order and describes each weight layer."""

    def __init__(self, quantities: SymbolicQuantities) -> None:
        self.q = quantities
        self.positions: sp.Expr = sp.S.One   # spatial positions of the last flattened feature map

    def walk(self, graph: nx.DiGraph, index: Any) -> list[WeightLayer]:
        out = []
        for name in _path(graph):
            layer = self.step(graph, name, index)
            if layer is not None:
                out.append(layer)
        return out

    def step(self, graph: nx.DiGraph, name: str, index: Any) -> WeightLayer | None:
        node = node_context(graph, name, index)
        pred = next(iter(graph.predecessors(name)))
        in_shape = graph.nodes[pred]["shape"]
        kind = OPS[node.op]
        if not kind.flags.weights:
            if kind.flags.reshape and len(in_shape) == 3:
                self.positions = in_shape[1] * in_shape[2]
            return None
        q = self.q
        f = q.layer("f", node)
        area = kind.kernel_area(node.params)
        if area is not None:      # a convolution: the filter norm is its own quantity
            degree = sp.Integer(area)
            w = q.layer("w", node)
        else:
            degree = self.positions
            w = f
        return WeightLayer(name=node.name, op=node.op, s=q.layer("s", node), f=f, b=q.layer("b", node),
                           r=q.layer("r", node), w=w, h_in=sp.Mul(*in_shape), h_out=output_width(node),
                           degree=degree)


def _power(base: sp.Expr, count: sp.Expr) -> sp.Expr:
    return base ** count


def _times(value: sp.Expr, count: sp.Expr) -> sp.Expr:
    return value * count


def _path(graph: nx.DiGraph) -> list[str]:
    """The nodes of a chain graph from the input to the output, input excluded."""
    order = [n for n in nx.topological_sort(graph) if n != INPUT]
    return order


def _all_ops(graph: nx.DiGraph):
    for _, attrs in graph.nodes(data=True):
        yield attrs["op"]
        if "body" in attrs:
            yield from _all_ops(attrs["body"])


def _dag_reason(graph: nx.DiGraph) -> str | None:
    """Why the graph is not a plain chain (None when it is one)."""
    for name, attrs in graph.nodes(data=True):
        if attrs["op"] in OPS and OPS[attrs["op"]].flags.multi_input:
            return f"layer {name!r} adds branches (residual/DAG topology)"
    for name, attrs in graph.nodes(data=True):
        if graph.out_degree(name) > 1:
            return f"the output of {name!r} feeds {graph.out_degree(name)} layers (DAG topology)"
    for name, attrs in graph.nodes(data=True):
        if "body" in attrs:
            inner = _dag_reason(attrs["body"])
            if inner is not None:
                return f"inside repeat {name!r}: {inner}"
    return None


def _node_depth(graph: nx.DiGraph, name: str) -> sp.Expr:
    attrs = graph.nodes[name]
    if attrs["op"] == "repeat":
        first = _longest_path(attrs["body"])
        steady = _longest_path(attrs["body_steady"])
        return first + (attrs["layer"].count - 1) * steady
    return sp.S.One if attrs["op"] in WEIGHT_OPS else sp.S.Zero


def _longest_path(graph: nx.DiGraph) -> sp.Expr:
    """Weight layers on the longest path from the input to the output (dynamic programming over the DAG)."""
    best: dict[str, sp.Expr] = {}
    for name in nx.topological_sort(graph):
        preds = list(graph.predecessors(name))
        before = best[preds[0]] if len(preds) == 1 else sp.Max(*(best[p] for p in preds)) if preds else sp.S.Zero
        best[name] = before + (_node_depth(graph, name) if name != INPUT else 0)
    return best[graph.graph["output"]]


def _parameter_count(graph: nx.DiGraph, q: SymbolicQuantities) -> sp.Expr:
    total = sp.S.Zero
    for name, attrs in graph.nodes(data=True):
        if attrs["op"] == "repeat":
            total += _parameter_count(attrs["body"], q) + (attrs["layer"].count - 1) * _parameter_count(
                attrs["body_steady"], q)
        elif attrs["op"] in WEIGHT_OPS:
            pred = next(iter(graph.predecessors(name)))
            total += _weight_count(attrs["op"], attrs["layer"].params, graph.nodes[pred]["shape"])
    return total


def _weight_count(op: str, params: dict, in_shape: tuple) -> sp.Expr:
    """Trainable weights of one layer (bias-free): the entries of its weight tensor."""
    return sp.Mul(*OPS[op].weight_shape(params, in_shape))


def _rho_product(graph: nx.DiGraph, q: SymbolicQuantities, index: Any = None) -> sp.Expr:
    """Π of the Lipschitz constants ρ of every parameter-free map (activations, pooling, flatten)."""
    total = sp.S.One
    for name, attrs in graph.nodes(data=True):
        if name == INPUT or (attrs["op"] != "repeat" and not OPS[attrs["op"]].lipschitz_map):
            continue
        if attrs["op"] == "repeat":
            rep = attrs["layer"]
            total *= _rho_product(attrs["body"], q, rep.index).xreplace({rep.index: 1})
            steady = _rho_product(attrs["body_steady"], q, rep.index)
            total *= steady ** (rep.count - 1) if not steady.has(rep.index) else sp.Product(
                steady, (rep.index, 2, rep.count))
        else:
            total *= sp.sympify(activation_lipschitz(node_context(graph, name, index), q))
    return total


def _widths(graph: nx.DiGraph):
    for name, attrs in graph.nodes(data=True):
        if name == INPUT:
            continue
        if attrs["op"] == "repeat":
            yield from _widths(attrs["body_steady"])
        elif attrs["op"] in WEIGHT_OPS:
            yield sp.Mul(*attrs["shape"])
