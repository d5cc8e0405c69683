"""The spec's network with its parameters as one flat vector: what the certificates put distributions on.

The spec is bound to the checkpoint by :func:`boundcalc.measure.run.checked_binding` (the same binding as
``evaluate``); every bound weight and bias becomes a slice of the vector, in binding order, and
:meth:`Network.outputs` runs the spec's graph on a vector (``forward_with_grad``), so gradients reach it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import torch

from boundcalc.errors import BoundcalcError
from boundcalc.measure.checkpoint import Checkpoint
from boundcalc.measure.forward import forward_with_grad
from boundcalc.measure.run import checked_binding, init_tensor
from boundcalc.spec.load import Spec


@dataclass(frozen=True)
class Slot:
    """One tensor of the vector: graph node, 'weight' or 'bias', checkpoint tensor name, shape, offset."""

    node: str
    role: str
    tensor: str
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Network:
    """A spec bound to a checkpoint: its graph, the slots of the parameter vector and the trained vector."""

    spec: Spec
    graph: nx.DiGraph
    slots: tuple[Slot, ...]
    trained: torch.Tensor          # (d,) float64, the checkpoint's parameters
    outputs_count: int

    @property
    def dim(self) -> int:
        return int(self.trained.numel())

    def tensors(self, theta: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(weights, biases) by graph node, as views of ``theta`` (gradients flow back to it)."""
        weights, biases = {}, {}
        for slot in self.slots:
            part = theta[slot.start:slot.start + slot.size].reshape(slot.shape)
            (weights if slot.role == "weight" else biases)[slot.node] = part
        return weights, biases

    def outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Network outputs (m, k) at parameters ``theta`` on inputs ``x``, differentiable in ``theta``."""
        weights, biases = self.tensors(theta)
        return forward_with_grad(self.graph, x, weights, biases)

    def errors(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> int:
        """Misclassified samples (argmax ≠ label; a tie counts as an error) at ``theta``."""
        wrong = 0
        with torch.no_grad():
            for start in range(0, x.shape[0], batch):
                wrong += misclassified(self.outputs(theta, x[start:start + batch]), y[start:start + batch])
        return wrong

    def vector_from(self, checkpoint: Checkpoint, what: str) -> torch.Tensor:
        """The parameter vector read from another checkpoint (``--init``) by the same tensor names."""
        parts = []
        for slot in self.slots:
            tensor = init_tensor(checkpoint, slot.tensor, self._like(slot))
            parts.append(_finite(tensor, f"{what} {checkpoint.path}", slot.tensor).reshape(-1))
        return torch.cat(parts)

    def _like(self, slot: Slot) -> torch.Tensor:
        return self.trained[slot.start:slot.start + slot.size].reshape(slot.shape)


def misclassified(outputs: torch.Tensor, labels: torch.Tensor) -> int:
    """Samples whose label's output is not strictly the largest (ties are errors, as in ``measure.data``)."""
    correct = outputs.gather(1, labels[:, None]).squeeze(1)
    others = outputs.scatter(1, labels[:, None], -math.inf).max(dim=1).values
    return int((correct <= others).sum())


def bind_network(spec: Spec, checkpoint: Checkpoint, allow_unused: bool = False) -> Network:
    """Bind ``spec`` to ``checkpoint`` (BindingError on a mismatch) and gather its weights and biases."""
    binding = checked_binding(spec, checkpoint, allow_unused)
    derived = [slot.node for slot in binding.slots if slot.layer.op == "batchnorm"]
    if derived:
        raise BoundcalcError(f"certify does not handle batchnorm layers ({', '.join(derived)}): their forward pass "
                             "reads a = γ/√(σ² + ε) and t = β − a·μ, not the stored tensors")
    slots, parts, start = [], [], 0
    for slot in binding.slots:
        bias = binding.biases.get(slot.node) or binding.extras.get(slot.node, {}).get("bias")   # a layernorm's β
        for role, name in (("weight", binding.weights[slot.node]), ("bias", bias)):
            if name is None:
                continue
            tensor = _finite(checkpoint.tensor(name), f"checkpoint {checkpoint.path}", name).to(torch.float64)
            slots.append(Slot(slot.node, role, name, tuple(tensor.shape), start))
            parts.append(tensor.reshape(-1))
            start += tensor.numel()
    graph = binding.graph
    out_shape = graph.nodes[graph.graph["output"]]["shape"]
    return Network(spec, graph, tuple(slots), torch.cat(parts), int(math.prod(int(d) for d in out_shape)))


def _finite(tensor: torch.Tensor, where: str, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(tensor).all()):
        raise BoundcalcError(f"{where}: tensor {name} holds NaN or Inf; a certificate needs finite weights")
    return tensor.to(torch.float64)
