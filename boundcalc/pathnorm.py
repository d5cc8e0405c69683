"""The L1 path-norm ‖Φ(θ)‖₁ of a network and the shape constants of its DAG (Gonon et al., ICLR 2024).

Gonon, Brisebarre, Riccietti & Gribonval's model is a DAG of neurons, each with a bias and weighted incoming
edges, whose activation is the identity, ReLU or a k-max-pooling (order statistic) of its inputs; the incoming
edges of a max-pooling neuron have weight 1 in the path-lifting. Φ(θ) has one coordinate per path from an input
(or from a neuron's bias) to an output: the product of the weights along it (with the bias first). Since every
product is of absolute values, ‖Φ(θ)‖₁ is one forward pass of the network with every weight and bias replaced
by its absolute value, ReLU by the identity and max-pooling by the sum over its window, on the all-ones input,
summed over the outputs (their Theorem A.1; their code ``pathnorm.py`` replaces a max-pooling by a depthwise
convolution with weights 1 and zero padding, the sum over the window's real inputs). Each op kind states how
it runs in that pass (:meth:`boundcalc.ops.base.OpKind.path_forward`) and its place in the DAG
(``path_role``); a kind without one is refused, never guessed.

The shape constants of their Theorem 3.1 are read from the same DAG (:func:`path_structure`): D, the depth
(edges on the longest input → output path), K, the largest max-pooling window (1 without max-pooling), and
P, the number of distinct max-pooling types (1 for max-pooling: the only order statistic the registry has).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import sympy as sp

from boundcalc.errors import DeriveError
from boundcalc.graph.build import INPUT, inputs_of
from boundcalc.numerics import EvaluationError
from boundcalc.ops import OPS, names_where

#: the kinds the path-lifting covers (their path_role is set; every other kind is refused)
PATH_OPS = names_where(lambda kind: kind.path_role is not None)


@dataclass(frozen=True)
class PathStructure:
    """The DAG's constants in Gonon et al. Thm 3.1 (numbers, or expressions for a symbolic spec)."""

    depth: sp.Expr          # D: edges on the longest input → output path of the neuron DAG
    kernel: sp.Expr         # K: the largest max-pooling window (1 without max-pooling)
    pool_types: int         # P: distinct max-pooling types (0 or 1 here)
    input_dim: sp.Expr      # d_in (without the bias coordinate)
    output_dim: sp.Expr     # d_out

    def constant(self) -> sp.Expr:
        """C = √(D·ln((3+2P)·K) + ln((3+2P)/(1+P)·(d_in+1)·d_out))."""
        p = sp.Integer(self.pool_types)
        return sp.sqrt(self.depth * sp.log((3 + 2 * p) * self.kernel)
                       + sp.log((3 + 2 * p) / (1 + p) * (self.input_dim + 1) * self.output_dim))


def role(graph: nx.DiGraph, name: str) -> str:
    """The node's ``path_role``; DeriveError naming the layer when its kind is outside the model."""
    op = graph.nodes[name]["op"]
    kind = OPS.get(op)
    found = kind.path_role if kind is not None else None
    if found is None:
        raise DeriveError(f"layer {name}: op {op!r} is outside the DAG ReLU model of the path-norm (ReLU, identity "
                          "and max-pooling neurons with linear, convolution, pooling and sum layers)")
    return found


def path_structure(graph: nx.DiGraph, input_dim: sp.Expr) -> PathStructure:
    """D, K, P, d_in and d_out of ``graph`` (a spec's graph; symbolic repeats count body depth × count)."""
    depth, kernel, pools = _scan(graph)
    output_dim = sp.Mul(*graph.nodes[graph.graph["output"]]["shape"])
    return PathStructure(depth, kernel, 1 if pools else 0, input_dim, output_dim)


def _scan(graph: nx.DiGraph) -> tuple[sp.Expr, sp.Expr, bool]:
    """(depth, largest max-pooling window, any max-pooling) of one scope.

    Depth by dynamic programming over the neuron DAG: a layer with edges adds 1; a ReLU joins the neurons of
    the layer before it when that layer is still an identity-activation layer read by nothing else (else it is
    a layer of its own: an edge of weight 1); an add joins each such input's neurons (an extra edge of weight 1
    per other input, so it adds 1 only for inputs it cannot join). Joining never changes a path's product, so
    the path-norm is the same for either reading; a depth counted too high only enlarges C."""
    depth: dict[str, sp.Expr] = {}
    open_: dict[str, bool] = {}
    kernel, pools = sp.S.One, False
    for name in nx.topological_sort(graph):
        if name == INPUT:
            depth[name], open_[name] = sp.S.Zero, False
            continue
        attrs = graph.nodes[name]
        sources = inputs_of(graph, name)
        if attrs["op"] == "repeat":
            first, k1, p1 = _scan(attrs["body"])
            steady, _, _ = _scan(attrs["body_steady"])
            depth[name] = depth[sources[0]] + first + (attrs["layer"].count - 1) * steady
            open_[name], kernel, pools = False, sp.Max(kernel, k1), pools or p1
            continue
        joinable = {u: open_[u] and graph.out_degree(u) == 1 for u in sources}
        kind = role(graph, name)
        if kind == "sum":
            depth[name] = sp.Max(*(depth[u] + (0 if joinable[u] else 1) for u in sources))
            open_[name] = True
        elif kind == "same":
            depth[name] = sp.Max(*(depth[u] for u in sources))
            open_[name] = len(sources) == 1 and joinable[sources[0]]
        elif kind == "activation":
            depth[name] = depth[sources[0]] + (0 if joinable[sources[0]] else 1)
            open_[name] = False
        else:       # "edges" or "max": a new layer of neurons
            depth[name], open_[name] = depth[sources[0]] + 1, kind == "edges"
            if kind == "max":
                kernel, pools = sp.Max(kernel, window_size(attrs["layer"].params)), True
    return depth[graph.graph["output"]], kernel, pools


def window_size(params: dict) -> int:
    """Inputs per window of a pooling layer: kernel height × width (its most antecedents)."""
    kernel = params["kernel"]
    return math.prod(kernel) if isinstance(kernel, (tuple, list)) else int(kernel) ** 2


def path_norm(graph: nx.DiGraph, weights: dict, biases: dict | None = None) -> float:
    """‖Φ(θ)‖₁: one pass of each kind's ``path_forward`` on the all-ones input (float64), summed over the
    outputs; DeriveError for a kind outside the model, EvaluationError if the pass overflows float64."""
    import torch

    biases = biases or {}
    for name in graph.nodes:
        if name != INPUT:
            role(graph, name)
    values: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name in nx.topological_sort(graph):
            attrs = graph.nodes[name]
            if name == INPUT:
                values[name] = torch.ones((1, *(int(d) for d in attrs["shape"])), dtype=torch.float64)
                continue
            inputs = [values[u] for u in inputs_of(graph, name)]
            values[name] = OPS[attrs["op"]].path_forward(name, attrs["layer"].params, inputs, weights.get(name),
                                                         biases.get(name))
    total = float(values[graph.graph["output"]].sum())
    if not math.isfinite(total):
        raise EvaluationError("the path-norm overflows float64 (its forward pass of |weights| on ones is ±inf)")
    return total
