"""Batchnorm layers of a bound checkpoint: their per-channel affine maps, folding into the preceding weight
layer, and the norms of those not folded (the op kind: :mod:`boundcalc.ops.normalization`).

In eval mode a batchnorm is x_c ↦ a_c·x_c + t_c with a = γ/√(σ² + ε), t = β − a·μ. Folded into the layer
before it (x ↦ W x + b): W′ = diag(a)·W (row c of a dense weight, output channel c of a conv kernel, scaled by
a_c) and b′ = a·b + t; the composition is the same map, so nothing about the bounds is approximated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import networkx as nx
import torch

from boundcalc.measure.binding import Binding, concrete_graph, row_part
from boundcalc.measure.checkpoint import Checkpoint
from boundcalc.measure.layernorm import layernorm_affine
from boundcalc.ops import OPS
from boundcalc.ops.normalization import BATCHNORM, fold_targets
from boundcalc.spec.load import Repeat, Spec


def affine_of(gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
              eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, t) in float64: the scale γ/√(σ² + ε) and the shift β − a·μ of the eval-mode batchnorm."""
    f64 = [v.to(torch.float64) for v in (gamma, beta, mean, var)]
    a = f64[0] / torch.sqrt(f64[3] + eps)
    return a, f64[1] - a * f64[2]


def fold_into(weight: torch.Tensor, bias: torch.Tensor | None, a: torch.Tensor,
              t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(diag(a)·W, a·b + t): the weight layer followed by the batchnorm, as one affine layer (float64)."""
    w = weight.to(torch.float64)
    scaled = w * a.reshape((-1,) + (1,) * (w.dim() - 1))
    b = torch.zeros_like(a) if bias is None else bias.to(torch.float64)
    return scaled, a * b + t


def affine_norms(a: torch.Tensor, t: torch.Tensor | None, positions: int) -> dict[str, float]:
    """The per-layer symbol values of an affine batchnorm over ``positions`` positions per channel:
    s = max|a_c| (operator norm of diag(a) repeated), f = √P·‖a‖₂ (its Frobenius norm), c = √P·‖t‖₂."""
    root = math.sqrt(positions)
    out = {"s": float(a.abs().max()), "f": root * float(a.norm())}
    if t is not None:
        out["c"] = root * float(t.norm())
    return out


@dataclass
class BatchNormPlan:
    """What binding did with the batchnorms: the spec and graph the bounds and the forward pass see (folded
    batchnorms replaced by identity layers), which went where, and the norms of the others."""

    spec: Spec
    graph: nx.DiGraph
    folded: dict[str, str] = field(default_factory=dict)       # batchnorm node -> weight node
    affine: dict[str, dict[str, float]] = field(default_factory=dict)   # unfolded node -> s, f, c
    notes: list[str] = field(default_factory=list)


def apply_batchnorms(spec: Spec, graph: nx.DiGraph, binding: Binding, checkpoint: Checkpoint,
                     weights: dict, biases: dict) -> BatchNormPlan:
    """Turn every bound batchnorm's four tensors into (a, t); fold those :func:`fold_targets` allows into their
    weight layer (``weights``/``biases`` updated in place), keep the others as affine layers (their a, t put in
    ``weights``/``biases`` for the forward pass)."""
    nodes = [n for n in binding.weights if graph.nodes[n]["op"] == BATCHNORM.name]
    if not nodes:
        return BatchNormPlan(spec, graph)
    targets = fold_targets(graph)
    plan = BatchNormPlan(spec, graph)
    for node in nodes:
        extras = binding.extras[node]
        params = graph.nodes[node]["layer"].params
        a, t = affine_of(weights[node], checkpoint.tensor(extras["bias"]), checkpoint.tensor(extras["running_mean"]),
                         checkpoint.tensor(extras["running_var"]), params["eps"])
        into = targets.get(node)
        if into is not None:
            weights[into], biases[into] = fold_into(weights[into], biases.get(into), a, t)
            del weights[node]
            plan.folded[node] = into
            continue
        weights[node], biases[node] = a, t
        shape = graph.nodes[node]["shape"]
        plan.affine[node] = affine_norms(a, t, math.prod(int(d) for d in shape[1:]))
        why = "fold: false" if not params["fold"] else "its input is not a linear or conv2d layer that feeds only it"
        plan.notes.append(f"batchnorm {node} not folded ({why}): an affine layer x ↦ a·x + t per channel with "
                          f"s_{node} = max|a_c|, f_{node} = √P·‖a‖₂, c_{node} = √P·‖t‖₂ (P = positions per channel)")
    if plan.folded:
        plan.notes += [f"batchnorm {bn} folded into {into}: W′ = diag(a)·W, b′ = a·b + t with a = γ/√(σ² + ε), "
                       "t = β − a·μ (exact; the bounds see one affine layer)" for bn, into in plan.folded.items()]
        layers = {graph.nodes[bn]["layer"].name for bn in plan.folded}
        plan.spec = replace(spec, layers=_identity_for(spec.layers, layers))
        plan.graph = concrete_graph(plan.spec)
    return plan


def _identity_for(items: tuple, names: set[str]) -> tuple:
    """``items`` with the layers named in ``names`` replaced by identity layers of the same name."""
    out = []
    for item in items:
        if isinstance(item, Repeat):
            out.append(replace(item, body=_identity_for(item.body, names)))
        elif item.name in names:
            out.append(replace(item, op=OPS["identity"].name, params={}))
        else:
            out.append(item)
    return tuple(out)


def biased_layer_names(spec: Spec, graph: nx.DiGraph, biases: dict) -> set[str]:
    """Spec layer names with a bias on some node (keep mode: those layers are affine in the bounds)."""
    return {graph.nodes[node]["layer"].name for node in biases if node in graph}


def bias_norms(graph: nx.DiGraph, biases: dict, affine: dict[str, dict[str, float]]) -> dict[str, float]:
    """c_<node> for every biased node: ‖b‖₂ of the bias as added to the node's outputs (a per-channel bias of a
    conv2d counted at each of its output positions), and the s, f, c of unfolded batchnorms."""
    values: dict[str, float] = {}
    for node, bias in biases.items():
        shape = graph.nodes[node]["shape"]
        positions = math.prod(int(d) for d in shape[1:]) if len(shape) == 3 else 1
        values[f"c_{node}"] = math.sqrt(positions) * float(bias.to(torch.float64).norm())
    for node, norms in affine.items():
        values.update({f"{kind}_{node}": value for kind, value in norms.items()})
    return values


__all__ = ["affine_of", "fold_into", "affine_norms", "apply_batchnorms", "BatchNormPlan", "bias_norms",
           "biased_layer_names"]


def bound_tensors(spec: Spec, graph: nx.DiGraph, binding: Binding, checkpoint: Checkpoint):
    """The tensors a bound spec runs with: (the batchnorm plan, weights by node, biases by node), batchnorms folded
    or made affine by :func:`apply_batchnorms` (their own four tensors are not biases)."""
    weights = {node: row_part(checkpoint.tensor(name), graph.nodes[node]["layer"])
               for node, name in binding.weights.items()}
    biases = {node: row_part(checkpoint.tensor(name), graph.nodes[node]["layer"])
              for node, name in binding.biases.items() if not OPS[graph.nodes[node]["op"]].prefix_tensors}
    plan = apply_batchnorms(spec, graph, binding, checkpoint, weights, biases)
    norms, notes = layernorm_affine(graph, binding, checkpoint, biases)
    plan.affine.update(norms)
    plan.notes += notes
    return plan, weights, biases
