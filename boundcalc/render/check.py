"""Rendering of ``boundcalc check``: the layer graph of a spec, in the order the data flows through it.

Rows are in topological order, ties broken by the order the spec lists the layers (so an unrolled repeat's
layers come where the repeat stands, before the layers after it). A repeat with a symbolic count is one row
with its count and index, followed by its body, one indented row per layer named ``layer[index]``.
"""
from __future__ import annotations

import networkx as nx
from rich.table import Table
from rich.text import Text

from boundcalc.graph.build import INPUT, inputs_of
from boundcalc.render.escape import plain


def spec_order(graph: nx.DiGraph) -> list[str]:
    """The nodes in topological order; among nodes that are ready at the same time, spec order first."""
    position = {node: i for i, node in enumerate(graph.nodes)}
    return list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))


def graph_table(spec_name: str, graph: nx.DiGraph) -> Table:
    layers = graph.number_of_nodes() - 1
    repeats = sum(1 for _, a in graph.nodes(data=True) if a["op"] == "repeat")
    title = f"{spec_name}: {layers} layers" + (" (a symbolic repeat counts as one)" if repeats else "") + \
        f", output {graph.graph['output']}"
    table = Table(title=plain(title))
    for col in ("layer", "op", "inputs", "output shape"):
        table.add_column(col)
    for name in spec_order(graph):
        attrs = graph.nodes[name]
        if attrs["op"] == "repeat" and "body" in attrs:
            _repeat_rows(table, graph, name)
        else:
            table.add_row(*_cells(name, attrs["op"], _inputs(graph, name), attrs["shape"]))
    return table


def _repeat_rows(table: Table, graph: nx.DiGraph, name: str) -> None:
    attrs = graph.nodes[name]
    repeat, body = attrs["layer"], attrs["body"]
    index, count = repeat.index, repeat.count
    times = f"×{count}" if count.is_Symbol else f"×({count})"
    table.add_row(*_cells(name, f"repeat {times}, {index} = 1..{count}", _inputs(graph, name), attrs["shape"]))
    first = _inputs(graph, name)
    last = f"{body.graph['output']}[{index} - 1]"
    for node in spec_order(body):
        if node == INPUT:
            continue
        sources = [(f"{last} ({first} at {index} = 1)" if u == INPUT else f"{u}[{index}]") for u in _preds(body, node)]
        table.add_row(*_cells(f"  ↳ {node}[{index}]", body.nodes[node]["op"], ", ".join(sources),
                              body.nodes[node]["shape"]))


def _preds(graph: nx.DiGraph, node: str) -> list[str]:
    return list(inputs_of(graph, node))


def _inputs(graph: nx.DiGraph, node: str) -> str:
    return ", ".join(_preds(graph, node))


def _cells(name: str, op: str, inputs: str, shape) -> list[Text]:
    """Text cells: names like fc[t] must not be read as rich markup."""
    shape_text = "(" + ", ".join(map(str, shape)) + ")" if shape is not None else "—"
    return [plain(name), plain(op), plain(inputs), plain(shape_text)]
