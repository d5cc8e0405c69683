"""Layernorm layers of a bound checkpoint: γ (``<param>.weight``) and β (``<param>.bias``) for the forward pass,
and the per-token norms the ``tight`` rule reads (the op kind: :mod:`boundcalc.ops.sequence`)."""
from __future__ import annotations

import networkx as nx
import torch

from boundcalc.measure.binding import Binding
from boundcalc.measure.checkpoint import Checkpoint
from boundcalc.ops.sequence import LAYERNORM


def layernorm_affine(graph: nx.DiGraph, binding: Binding, checkpoint: Checkpoint,
                     biases: dict) -> tuple[dict[str, dict[str, float]], list[str]]:
    """For every bound layernorm: β put in ``biases`` (γ is its bound weight already), and its values
    s = ‖γ‖∞, f = ‖γ‖₂, c = ‖β‖₂ (of the (d,) vectors shared by the tokens); with the note saying so."""
    norms: dict[str, dict[str, float]] = {}
    for node, name in binding.weights.items():
        if graph.nodes[node]["op"] != LAYERNORM.name:
            continue
        gamma = checkpoint.tensor(name).to(torch.float64)
        beta = checkpoint.tensor(binding.extras[node]["bias"]).to(torch.float64)
        biases[node] = beta
        norms[node] = {"s": float(gamma.abs().max()), "f": float(gamma.norm()), "c": float(beta.norm())}
    notes = [f"layernorm {node}: γ ⊙ N(x) + β per token with s_{node} = ‖γ‖∞, f_{node} = ‖γ‖₂, c_{node} = ‖β‖₂ "
             "(trained parameters of the class; docs/references.md §3.9)" for node in norms]
    return norms, notes
