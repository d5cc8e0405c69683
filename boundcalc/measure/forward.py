"""Run a spec's graph on data with bound weights: no user model class needed.

Each node runs its op kind's forward pass (:mod:`boundcalc.ops`), with the semantics the chain-rule rules
assume (bias-free linear maps unless biases are given, elementwise activations, sums at ``add``). A kind that
names only a constant, not a function (the generic ``lipschitz``), says why it cannot be run.
"""
from __future__ import annotations

import math

import networkx as nx
import torch

from boundcalc.errors import BoundcalcError
from boundcalc.graph.build import INPUT, inputs_of
from boundcalc.limits import MAX_FEATURE_VALUES, MAX_FORWARD_VALUES
from boundcalc.ops import OPS


def forward(graph: nx.DiGraph, x: torch.Tensor, weights: dict[str, torch.Tensor],
            biases: dict[str, torch.Tensor] | None = None, batch: int | None = None) -> torch.Tensor:
    """Outputs (m, k) of the graph on inputs ``x`` (m, *input shape), in float64, in batches small enough that
    one batch's activations stay within MAX_FORWARD_VALUES (:func:`batch_size`)."""
    biases = biases or {}
    _check_runnable(graph)
    order = list(nx.topological_sort(graph))
    size = batch or batch_size(graph)
    outputs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], size):
            outputs.append(_run(graph, order, x[start:start + size].to(torch.float64), weights, biases))
    return torch.cat(outputs).reshape(x.shape[0], -1)


def forward_with_grad(graph: nx.DiGraph, x: torch.Tensor, weights: dict[str, torch.Tensor],
                      biases: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Outputs (m, k) of the graph on ``x`` in one batch, float64, with gradients flowing to the weight and bias
    tensors (for optimising a posterior over them; :func:`forward` is the measuring path, without gradients)."""
    _check_runnable(graph)
    order = list(nx.topological_sort(graph))
    return _run(graph, order, x.to(torch.float64), weights, biases or {}).reshape(x.shape[0], -1)


def layer_inputs(graph: nx.DiGraph, x: torch.Tensor, weights: dict[str, torch.Tensor],
                 biases: dict[str, torch.Tensor] | None = None, batch: int | None = None) -> dict[str, torch.Tensor]:
    """The input of every weight layer (a node with a weight), flattened per sample: (m, features), float64.
    Run in batches (as :func:`forward`); only these inputs are kept, at most MAX_FEATURE_VALUES in all."""
    _check_runnable(graph)
    order = list(nx.topological_sort(graph))
    sources = {}
    for node in weights:
        (sources[node],) = graph.predecessors(node)
    kept = x.shape[0] * sum(_values(graph.nodes[source]["shape"]) for source in sources.values())
    if kept > MAX_FEATURE_VALUES:
        raise BoundcalcError(f"the inputs of the {len(sources)} weight layers on {x.shape[0]} samples are {kept:,} "
                             f"values, more than the limit of {MAX_FEATURE_VALUES:,} (MAX_FEATURE_VALUES); "
                             "subsample the data")
    size = batch or batch_size(graph)
    parts: dict[str, list[torch.Tensor]] = {node: [] for node in sources}
    with torch.no_grad():
        for start in range(0, x.shape[0], size):
            chunk = x[start:start + size].to(torch.float64)
            values = _run_all(graph, order, chunk, weights, biases or {})
            for node, source in sources.items():
                parts[node].append(values[source].reshape(chunk.shape[0], -1))
    return {node: torch.cat(pieces) for node, pieces in parts.items()}


def batch_size(graph: nx.DiGraph, largest: int = 4096) -> int:
    """Samples per batch: at most ``largest``, and few enough that the activations of every node for one batch
    (all are held until the batch ends) stay within MAX_FORWARD_VALUES; BoundcalcError if one sample's do not."""
    per_sample = sum(_values(attrs["shape"]) for _, attrs in graph.nodes(data=True))
    if per_sample > MAX_FORWARD_VALUES:
        raise BoundcalcError(f"one sample's activations are {per_sample:,} values, more than the limit of "
                             f"{MAX_FORWARD_VALUES:,} for a forward pass (MAX_FORWARD_VALUES)")
    return max(1, min(largest, MAX_FORWARD_VALUES // max(per_sample, 1)))


def _values(shape) -> int:
    """Values per sample of a node's (concrete) shape."""
    return math.prod(int(d) for d in shape)


def _check_runnable(graph: nx.DiGraph) -> None:
    for name, attrs in graph.nodes(data=True):
        reason = OPS[attrs["op"]].not_runnable if attrs["op"] in OPS else None
        if reason is not None:
            raise BoundcalcError(f"layer {name}: {reason}")


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
        kind = OPS[attrs["op"]]
        inputs = [values[u] for u in inputs_of(graph, name)]
        values[name] = kind.forward(name, attrs["layer"].params, inputs, weights.get(name), biases.get(name))
        if kind.flags.weights or kind.flags.multi_input:
            _check_finite(name, values[name])
    return values


def _check_finite(name: str, value: torch.Tensor) -> None:
    """Weights large enough to overflow float64 make ±inf/NaN activations; say so instead of measuring them."""
    bad = ~torch.isfinite(value.reshape(value.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        raise BoundcalcError(f"the forward pass overflows float64 at layer {name}: its output is ±inf or NaN on "
                             f"{int(bad.sum())} of {value.shape[0]} samples, so nothing can be measured on the data")
