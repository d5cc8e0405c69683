"""Build the computation graph of a spec as a ``networkx.DiGraph``.

Nodes are layer names plus ``"input"``; an edge ``u -> v`` means v reads u's output. The node attribute
``sources`` keeps v's inputs in order *with repeats* (``add: [a, a]`` is 2a; a DiGraph has one edge a -> v),
and :func:`inputs_of` is how every consumer reads them. Node attributes: ``op``, ``layer`` (the spec item),
``index`` (the repeat iteration: None, an int once unrolled, or the index symbol inside a symbolic
repeat), ``shape`` (tuple of sympy expressions). A repeat with a numeric count is unrolled (its layers
become ``name[t]``); one with a symbolic count becomes a single ``repeat`` node whose ``body`` attribute
is the body's own graph.

Checked here: names resolve, no cycles, exactly one output, shapes agree (linear after a flatten,
equal widths at an add, a repeat body that keeps its shape). Not checked here: anything about norms
or rule sets (see ``calculus``).
"""
from __future__ import annotations

import difflib
from dataclasses import replace

import networkx as nx
import sympy as sp

from boundcalc.ops import OPS
from boundcalc.ops.base import format_shape, same_shape
from boundcalc.spec.load import Item, Layer, Repeat, Spec

INPUT = "input"


def build_graph(spec: Spec) -> nx.DiGraph:
    """The DAG of ``spec``; raises :class:`SpecError` naming the offending line."""
    builder = _Builder(spec)
    graph = builder.scope(spec.layers, spec.data.shape, index=None, output=spec.output)
    return graph


class _Builder:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def scope(self, items: tuple[Item, ...], input_shape: tuple, index,
              output: str | None, in_repeat: bool = False) -> nx.DiGraph:
        """Graph of one scope (top level or a repeat body) whose first item reads ``input``."""
        graph = nx.DiGraph()
        graph.add_node(INPUT, op="input", layer=None, index=None, shape=None, sources=())
        names = {item.name: item for item in items}
        previous = INPUT
        for item in items:
            sources = item.inputs or (previous,)
            for source in sources:
                if source != INPUT and source not in names:
                    hint = difflib.get_close_matches(source, list(names) + [INPUT], n=1)
                    raise self.spec.error(item.path + ("inputs",), f"input {source!r} is not a layer in this scope",
                                          hint=f"Did you mean {hint[0]!r}?" if hint else None)
            attrs = dict(op="repeat" if isinstance(item, Repeat) else item.op, layer=item, index=index, shape=None,
                         sources=tuple(sources))
            graph.add_node(item.name, **attrs)
            for source in sources:
                graph.add_edge(source, item.name)
            previous = item.name
        self._check_acyclic(graph)
        out = output or items[-1].name
        graph.graph["output"] = out
        self._check_single_output(graph, out)
        graph.nodes[INPUT]["shape"] = input_shape
        for node in list(nx.topological_sort(graph)):
            if node != INPUT:
                self._shape(graph, node, in_repeat)
        return graph

    # -- checks --------------------------------------------------------------------------------
    def _check_acyclic(self, graph: nx.DiGraph) -> None:
        if nx.is_directed_acyclic_graph(graph):   # linear; find_cycle's edge search is O(n²) on a long chain
            return
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return
        names = [u for u, _ in cycle]
        layer = graph.nodes[names[0]]["layer"]
        raise self.spec.error(layer.path + ("inputs",), "cycle in the layer graph: " + " -> ".join(names + names[:1]))

    def _check_single_output(self, graph: nx.DiGraph, out: str) -> None:
        sinks = [n for n in graph.nodes if graph.out_degree(n) == 0 and n != out]
        if sinks:
            layer = graph.nodes[sinks[0]]["layer"]
            path = layer.path if layer is not None else ()
            raise self.spec.error(path, f"two outputs: {sinks[0]!r} and {out!r}; every layer except the output "
                                  "must feed another (or name the output with 'output:')")

    # -- shapes --------------------------------------------------------------------------------
    def _shape(self, graph: nx.DiGraph, node: str, in_repeat: bool) -> None:
        attrs = graph.nodes[node]
        item = attrs["layer"]
        preds = inputs_of(graph, node)
        shapes = [graph.nodes[u]["shape"] for u in preds]
        if isinstance(item, Repeat):
            if in_repeat:
                raise self.spec.error(item.path, "nested repeat blocks are not supported; write the inner "
                                      "block's layers out in the outer body")
            attrs["shape"] = self._repeat(graph, node, item, shapes[0], in_repeat)
            return
        attrs["shape"] = layer_output_shape(self.spec, item, shapes, preds)

    def _repeat(self, graph: nx.DiGraph, node: str, item: Repeat, shape: tuple, in_repeat: bool) -> tuple:
        if item.count.is_number:
            return self._unroll(graph, node, item, shape)
        body = self.scope(item.body, shape, index=item.index, output=None, in_repeat=True)
        after_one = body.nodes[body.graph["output"]]["shape"]
        again = self.scope(item.body, after_one, index=item.index, output=None,
                           in_repeat=True)
        after_two = again.nodes[again.graph["output"]]["shape"]
        if not same_shape(after_one, after_two):
            raise self.spec.error(item.path, f"repeat body changes the shape each iteration ({format_shape(shape)} -> "
                                  f"{format_shape(after_one)} -> {format_shape(after_two)}); a symbolic count needs a body that "
                                  "keeps its shape after the first iteration")
        graph.nodes[node]["body"] = body
        graph.nodes[node]["body_steady"] = again
        return after_one

    def _unroll(self, graph: nx.DiGraph, node: str, item: Repeat, shape: tuple) -> tuple:
        """Replace the repeat node by ``count`` copies of its body, named ``layer[t]``."""
        (pred,) = inputs_of(graph, node)
        successors = list(graph.successors(node))
        graph.remove_node(node)
        current, current_shape = pred, shape
        for t in range(1, int(item.count) + 1):
            body = self.scope(_at_iteration(item, t), current_shape, index=sp.Integer(t), output=None,
                              in_repeat=True)
            rename = {n: f"{n}[{t}]" for n in body.nodes if n != INPUT}
            rename[INPUT] = current
            for n, attrs in body.nodes(data=True):
                if n != INPUT:
                    graph.add_node(rename[n], **{**attrs, "index": sp.Integer(t) if attrs["index"] is None
                                                 else attrs["index"],
                                                 "sources": tuple(rename[u] for u in attrs["sources"])})
            graph.add_edges_from((rename[u], rename[v]) for u, v in body.edges)
            current = rename[body.graph["output"]]
            current_shape = graph.nodes[current]["shape"]
        # the repeat's name now stands for its last layer
        for v in successors:
            graph.add_edge(current, v)
            graph.nodes[v]["sources"] = tuple(current if u == node else u for u in graph.nodes[v]["sources"])
        graph.graph.setdefault("aliases", {})[node] = current
        if graph.graph.get("output") == node:
            graph.graph["output"] = current
        return current_shape


def inputs_of(graph: nx.DiGraph, node: str) -> tuple[str, ...]:
    """The inputs ``node`` reads, in order and with repeats (``add: [a, a]`` gives ``("a", "a")``)."""
    return graph.nodes[node]["sources"]


def token_wise_layers(graph) -> list[str]:
    """Names of the weight layers (repeat bodies included) that read a (tokens, dim) input: one map applied to every
    token, whose per-layer symbols are those of the shared matrix, not of the whole operator."""
    out = []
    for name, attrs in graph.nodes(data=True):
        kind = OPS.get(attrs["op"])
        if kind is not None and kind.flags.weights:
            sources = attrs.get("sources") or ()
            if any(len(graph.nodes[u]["shape"] or ()) == 2 for u in sources):
                out.append(name)
        if "body" in attrs:
            out += token_wise_layers(attrs["body"])
    return out


def _at_iteration(repeat: Repeat, t: int) -> tuple[Item, ...]:
    """The body of ``repeat`` with its index replaced by the iteration number (``out: 4*t`` is 8 at t = 2)."""
    at = {repeat.index: sp.Integer(t)}

    def fix(value):
        return value.xreplace(at) if isinstance(value, sp.Basic) else value

    return tuple(replace(item, params={k: fix(v) for k, v in item.params.items()}) if isinstance(item, Layer)
                 else item for item in repeat.body)


def layer_output_shape(spec: Spec, layer: Layer, shapes: list[tuple], sources: list[str]) -> tuple:
    """Output shape of ``layer`` given its input shapes (its op kind's rule); raises SpecError on a mismatch."""
    kind = OPS[layer.op]
    if not kind.flags.multi_input and len(shapes) != 1:
        raise spec.error(layer.path + ("inputs",), f"{layer.op} takes one input, got {len(shapes)} "
                         f"({', '.join(sources)})")
    return kind.output_shape(layer.params, shapes, lambda message: spec.error(layer.path, message), sources)
