"""Run a spec's graph on data with bound weights: no user model class needed.

Each op has the semantics the chain-rule rules assume (bias-free linear maps unless biases are given,
elementwise activations, sums at ``add``). The generic ``lipschitz`` activation names only a constant, not a
function, so a graph containing it cannot be run.
"""
from __future__ import annotations

import networkx as nx
import torch
import torch.nn.functional as F

from boundcalc.errors import BoundcalcError
from boundcalc.graph.build import INPUT, inputs_of


def forward(graph: nx.DiGraph, x: torch.Tensor, weights: dict[str, torch.Tensor],
            biases: dict[str, torch.Tensor] | None = None, batch: int = 4096) -> torch.Tensor:
    """Outputs (m, k) of the graph on inputs ``x`` (m, *input shape), in float64, in batches."""
    biases = biases or {}
    _check_runnable(graph)
    order = list(nx.topological_sort(graph))
    outputs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            outputs.append(_run(graph, order, x[start:start + batch].to(torch.float64), weights, biases))
    return torch.cat(outputs).reshape(x.shape[0], -1)


def layer_inputs(graph: nx.DiGraph, x: torch.Tensor, weights: dict[str, torch.Tensor],
                 biases: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The input of every weight layer (a node with a weight), flattened per sample: (m, features), float64."""
    _check_runnable(graph)
    order = list(nx.topological_sort(graph))
    with torch.no_grad():
        values = _run_all(graph, order, x.to(torch.float64), weights, biases or {})
    out = {}
    for node in weights:
        (source,) = graph.predecessors(node)
        out[node] = values[source].reshape(x.shape[0], -1)
    return out


def _check_runnable(graph: nx.DiGraph) -> None:
    for name, attrs in graph.nodes(data=True):
        if attrs["op"] == "lipschitz":
            raise BoundcalcError(f"layer {name}: op 'lipschitz' gives only a Lipschitz constant, so the network "
                                 "cannot be run on data; use relu/leaky_relu/tanh/identity for a forward pass")


def _run(graph: nx.DiGraph, order: list[str], x: torch.Tensor, weights: dict, biases: dict) -> torch.Tensor:
    return _run_all(graph, order, x, weights, biases)[graph.graph["output"]]


def _run_all(graph: nx.DiGraph, order: list[str], x: torch.Tensor, weights: dict,
             biases: dict) -> dict[str, torch.Tensor]:
    values: dict[str, torch.Tensor] = {}
    for name in order:
        attrs = graph.nodes[name]
        if name == INPUT:
            values[name] = x
            continue
        inputs = [values[u] for u in inputs_of(graph, name)]
        values[name] = _apply(name, attrs, inputs, weights, biases)
        if attrs["op"] in ("linear", "conv2d", "add"):
            _check_finite(name, values[name])
    return values


def _check_finite(name: str, value: torch.Tensor) -> None:
    """Weights large enough to overflow float64 make ±inf/NaN activations; say so instead of measuring them."""
    bad = ~torch.isfinite(value.reshape(value.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        raise BoundcalcError(f"the forward pass overflows float64 at layer {name}: its output is ±inf or NaN on "
                             f"{int(bad.sum())} of {value.shape[0]} samples, so nothing can be measured on the data")


def _apply(name: str, attrs: dict, inputs: list[torch.Tensor], weights: dict, biases: dict) -> torch.Tensor:
    op, p = attrs["op"], attrs["layer"].params
    x = inputs[0]
    if op == "linear":
        bias = biases.get(name)
        return F.linear(x, weights[name].to(torch.float64), None if bias is None else bias.to(torch.float64))
    if op == "conv2d":
        bias = biases.get(name)
        return F.conv2d(x, weights[name].to(torch.float64), None if bias is None else bias.to(torch.float64),
                        stride=p["stride"], padding=p["padding"])
    if op == "relu":
        return F.relu(x)
    if op == "identity":
        return x
    if op == "tanh":
        return torch.tanh(x)
    if op == "leaky_relu":
        if not p["slope"].is_number:
            raise BoundcalcError(f"layer {name}: leaky_relu slope {p['slope']} needs a value (--set)")
        return F.leaky_relu(x, float(p["slope"]))
    if op == "flatten":
        return x.reshape(x.shape[0], -1)
    if op == "avgpool":
        return F.avg_pool2d(x, p["kernel"], p["stride"])
    if op == "add":
        total = inputs[0]
        for other in inputs[1:]:
            total = total + other
        return total
    raise BoundcalcError(f"layer {name}: no forward semantics for op {op!r}")
