"""Measure the layers a spec binds to a checkpoint (with biases handled and conv geometry known);
``on_tensor(done, total, name)`` reports progress (the CLI draws a bar with it). Every weight matrix on its own,
streamed without torch: :mod:`.stream` (re-exported here).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from boundcalc.errors import BoundcalcError
from boundcalc.measure.batchnorm import bias_norms, biased_layer_names, bound_tensors
from boundcalc.measure.binding import Binding, BindingError, bind, concrete_graph
from boundcalc.measure.checkpoint import Checkpoint
from boundcalc.measure.quantities import ConvGeometry, MeasureOptions, WeightMeasurement, measure_weight
from boundcalc.measure.stream import (UNINDEXED, Progress, checked_init, measure_checkpoint, noop,  # noqa: F401
                                     skipped_tensors)
from boundcalc.ops import FOLDABLE_OPS, OPS
from boundcalc.spec.load import Spec

BIAS_MODES = {
    "fold": "biases folded into the weights as an extra constant input coordinate: hidden layers use "
            "[[W, b], [0, 1]], the last layer [W, b], the data gets a coordinate 1 (an exact rewrite of the "
            "trained network as a bias-free one; widths grow by one). Shapes and norms are of the folded matrices: "
            "a stored out×in weight is measured as (out+1)×(in+1), the last layer's as out×(in+1)",
    "drop": "biases set to zero: every number (norms, margins, errors) is for the bias-free network, not the "
            "trained one",
    "keep": "biases used in the forward pass and kept in the bounds: a layer with a bias is affine for the tight "
            "chain rule, with c_<layer> = ‖b‖₂ of the bias over the layer's outputs (a conv2d's per-channel bias "
            "counted at every output position); bounds that cover only bias-free networks do not apply. Norms and "
            "ranks are of the weights alone",
}


@dataclass
class BoundModel:
    """A spec bound to a checkpoint: the tensors for the forward pass and the measured layers."""

    spec: Spec
    binding: Binding
    weights: dict[str, torch.Tensor]          # node -> weight as trained (forward pass)
    biases: dict[str, torch.Tensor]           # node -> bias (forward pass); empty with --biases drop
    measurements: dict[str, WeightMeasurement]
    folded: bool
    notes: list[str] = field(default_factory=list)
    graph: object = None                      # the graph the forward pass runs (folded batchnorms: identity)
    extra_values: dict[str, float] = field(default_factory=dict)   # c_<layer>, and s/f/c of unfolded batchnorms
    biased_layers: frozenset[str] = frozenset()   # spec layers that are affine in the bounds (--biases keep)
    affine_nodes: frozenset[str] = frozenset()    # unfolded batchnorms (measured by their s, f, c alone)

    @property
    def forward_graph(self):
        return self.graph if self.graph is not None else self.binding.graph


def bind_and_measure(spec: Spec, checkpoint: Checkpoint, options: MeasureOptions, *, init: Checkpoint | None = None,
                     biases: str = "fold", allow_unused: bool = False, on_tensor: Progress = noop) -> BoundModel:
    """Bind ``spec`` to ``checkpoint`` (BindingError with the full report on a mismatch) and measure each bound
    layer as the bounds see it: folded with its bias for ``biases='fold'``; the weight alone for 'drop' (biases
    left out of the forward pass too) and 'keep' (biases in the forward pass and, as c_<layer>, in the bounds).
    Batchnorms are folded into their weight layer or kept as affine layers first
    (:func:`boundcalc.measure.batchnorm.apply_batchnorms`)."""
    if biases not in BIAS_MODES:
        raise BoundcalcError(f"unknown bias mode {biases!r} (known: {', '.join(BIAS_MODES)})")
    binding = checked_binding(spec, checkpoint, allow_unused)
    model, bias_tensors, dtypes = _bound_model(spec, checkpoint, binding, biases, init)
    slots = [slot for slot in binding.slots if slot.node in model.weights and slot.node not in model.affine_nodes]
    last = slots[-1].node
    for done, slot in enumerate(slots):
        on_tensor(done, len(slots), slot.node)
        weight = model.weights[slot.node]
        matrix = _folded(weight, bias_tensors.get(slot.node), slot.node == last) if model.folded else weight
        reference = init_tensor(init, binding.weights[slot.node], weight)
        if reference is not None and model.folded:
            init_bias = init_tensor(init, binding.biases.get(slot.node), bias_tensors.get(slot.node))
            reference = _folded(reference, init_bias, slot.node == last)
        where = OPS[slot.layer.op].geometry(slot.layer.params, slot.input_shape)
        geometry = ConvGeometry(**where) if where is not None else None
        model.measurements[slot.node] = measure_weight(matrix, options, tensor=binding.weights[slot.node],
                                                       layer=slot.node, init=reference, geometry=geometry,
                                                       stored_dtype=dtypes[slot.node])
    on_tensor(len(slots), len(slots), "")
    return model


def checked_binding(spec: Spec, checkpoint: Checkpoint, allow_unused: bool = False) -> Binding:
    """``spec`` bound to ``checkpoint``; BindingError with the full report when a layer has no fitting tensor
    (or a tensor is left unused, unless ``allow_unused``)."""
    binding = bind(spec, checkpoint, concrete_graph(spec))
    if not binding.ok(allow_unused):
        what = (f"{len(binding.problems)} layer problem(s) (" +
                "; ".join(f"{row.node}: {row.detail or row.status}" for row in binding.problems) + ")"
                if binding.problems else
                f"{len(binding.unused)} unused tensor(s) (pass --allow-unused to ignore them)")
        raise BindingError(f"{checkpoint.path} does not fit {spec.file}: {what}", binding)
    return binding


def _bound_model(spec: Spec, checkpoint: Checkpoint, binding: Binding, biases: str, init: Checkpoint | None):
    """The model before measuring: tensors read, batchnorms folded or made affine, the bias mode applied;
    (model, the biases as read or folded, each weight's stored dtype)."""
    plan, weights, bias_tensors = bound_tensors(spec, binding.graph, binding, checkpoint)
    dtypes = {node: checkpoint.infos[name].dtype for node, name in binding.weights.items()}
    if init is not None and plan.folded:
        raise BoundcalcError(f"--init: batchnorm {', '.join(plan.folded)} is folded into "
                             f"{', '.join(plan.folded.values())}, and distances of folded weights to an unfolded "
                             "reference are not defined; set fold: false on the batchnorm layers")
    fold = biases == "fold" and bool(bias_tensors)
    if fold:
        _check_foldable(plan.graph, bias_tensors)
    kept = bias_tensors if biases in ("fold", "keep") else {}
    model = BoundModel(plan.spec, binding, weights, kept, {}, fold, graph=plan.graph,
                       affine_nodes=frozenset(plan.affine))
    model.extra_values = bias_norms(plan.graph, kept if biases == "keep" else {}, plan.affine)
    if biases == "keep":
        model.biased_layers = frozenset(biased_layer_names(plan.spec, plan.graph, kept))
    if bias_tensors:
        model.notes.append(BIAS_MODES[biases])
    model.notes += plan.notes
    return model, bias_tensors, dtypes


def _check_foldable(graph, bias_tensors: dict) -> None:
    """Folding keeps a constant 1 through the network: dense layers in a chain, activations with φ(1) = 1."""
    ops = {attrs["op"] for _, attrs in graph.nodes(data=True)} - {"input"}
    if any(len(attrs["shape"] or ()) == 2 for _, attrs in graph.nodes(data=True)):
        raise BoundcalcError("cannot fold biases into a network on sequences (the constant coordinate would be "
                             "one per token); pass --biases keep (the tight chain rule bounds the network with its "
                             "biases) or --biases drop to evaluate the bias-free network (stated in the output)")
    bad = ops - FOLDABLE_OPS
    if bad or any(graph.out_degree(n) > 1 for n in graph.nodes):
        raise BoundcalcError(f"cannot fold biases into a network with {', '.join(sorted(bad)) or 'a residual branch'}; "
                             "folding needs a chain of dense layers with relu/leaky_relu/identity. Pass --biases keep "
                             "(the tight chain rule bounds the network with its biases) or --biases drop to evaluate "
                             "the bias-free network (stated in the output)")


def _folded(weight: torch.Tensor, bias: torch.Tensor | None, last: bool) -> torch.Tensor:
    """[[W, b], [0, 1]] (or [W, b] for the output layer): the bias as a weight on a constant-1 coordinate.
    Every layer after the first also reads the constant coordinate its predecessor carries."""
    out_dim, in_dim = weight.shape
    w = weight.to(torch.float64)
    b = torch.zeros(out_dim, dtype=torch.float64) if bias is None else bias.to(torch.float64)
    top = torch.cat([w, b[:, None]], dim=1)
    if last:
        return top
    carry = torch.zeros(1, in_dim + 1, dtype=torch.float64)
    carry[0, -1] = 1.0
    return torch.cat([top, carry], dim=0)


def init_tensor(init: Checkpoint | None, name: str | None, like: torch.Tensor | None) -> torch.Tensor | None:
    """Tensor ``name`` of the reference checkpoint ``init``, checked to have the shape of ``like``."""
    if init is None or name is None or like is None:
        return None
    return checked_init(init, name, tuple(like.shape), as_tensor=True)


__all__ = ["measure_checkpoint", "skipped_tensors", "UNINDEXED", "bind_and_measure", "checked_binding", "init_tensor", "BoundModel", "BindingError", "BIAS_MODES"]
