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
from boundcalc.measure.batchnorm import bound_tensors
from boundcalc.measure.run import checked_binding
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
        """The parameter vector of another checkpoint (``--init``) with the same tensor names, bound and folded
        as the trained one (its own batchnorm statistics fold into its own weights)."""
        try:
            other = bind_network(self.spec, checkpoint, allow_unused=True)
        except BoundcalcError as err:
            raise BoundcalcError(f"{what} {checkpoint.path}: {err}") from None
        for mine, theirs in zip(self.slots, other.slots):
            if (mine.node, mine.role, mine.shape) != (theirs.node, theirs.role, theirs.shape):
                raise BoundcalcError(f"{what} {checkpoint.path}: {theirs.tensor} has shape {theirs.shape}, the "
                                     f"checkpoint's has {mine.shape}")
        if len(other.slots) != len(self.slots):
            raise BoundcalcError(f"{what} {checkpoint.path}: binds {len(other.slots)} tensors, the checkpoint "
                                 f"{len(self.slots)}")
        return other.trained



def misclassified(outputs: torch.Tensor, labels: torch.Tensor) -> int:
    """Samples whose label's output is not strictly the largest (ties are errors, as in ``measure.data``)."""
    correct = outputs.gather(1, labels[:, None]).squeeze(1)
    others = outputs.scatter(1, labels[:, None], -math.inf).max(dim=1).values
    return int((correct <= others).sum())


def bind_network(spec: Spec, checkpoint: Checkpoint, allow_unused: bool = False) -> Network:
    """Bind ``spec`` to ``checkpoint`` (BindingError on a mismatch) and gather its weights and biases as
    ``evaluate`` runs them: a batchnorm folded into the layer before it (W′ = diag(a)·W, b′ = a·b + t, and the
    batchnorm an identity layer in the graph), one not folded as its affine map (a, t), a layernorm's γ and β."""
    binding = checked_binding(spec, checkpoint, allow_unused)
    plan, weights, biases = bound_tensors(spec, binding.graph, binding, checkpoint)
    names = {**{(node, "weight"): name for node, name in binding.weights.items()},
             **{(node, "bias"): name for node, name in binding.biases.items()},
             **{(node, "bias"): extras["bias"] for node, extras in binding.extras.items() if "bias" in extras}}
    for bn, into in plan.folded.items():
        names[(into, "bias")] = f"{names[(into, 'weight')]} (bias, with {bn} folded in)"
    slots, parts, start = [], [], 0
    for node in binding.weights:
        for role, tensors in (("weight", weights), ("bias", biases)):
            if node not in tensors:
                continue
            name = names[(node, role)]
            tensor = _finite(tensors[node], f"checkpoint {checkpoint.path}", name)
            slots.append(Slot(node, role, name, tuple(tensor.shape), start))
            parts.append(tensor.reshape(-1))
            start += tensor.numel()
    out_shape = plan.graph.nodes[plan.graph.graph["output"]]["shape"]
    return Network(spec, plan.graph, tuple(slots), torch.cat(parts), int(math.prod(int(d) for d in out_shape)))


def _finite(tensor: torch.Tensor, where: str, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(tensor).all()):
        raise BoundcalcError(f"{where}: tensor {name} holds NaN or Inf; a certificate needs finite weights")
    return tensor.to(torch.float64)
