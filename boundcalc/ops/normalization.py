"""``batchnorm`` in eval mode: x ↦ γ·(x − μ)/√(σ² + ε) + β per channel, with the running statistics μ, σ².

In eval mode it is the per-channel affine map x_c ↦ a_c·x_c + t_c with a = γ/√(σ² + ε) and t = β − a·μ
(torch's ``batch_norm(training=False)``). Binding reads the four tensors ``<param>.weight``, ``.bias``,
``.running_mean`` and ``.running_var`` (``.num_batches_tracked`` is not a weight) and hands the forward pass
(a, t) as the layer's weight and bias (:mod:`boundcalc.measure.batchnorm`).

- ``fold: true`` (default): a batchnorm whose only input is a linear or conv2d layer that feeds nothing else is
  folded into it when a checkpoint is bound, W′ = diag(a)·W, b′ = a·b + t, so the bounds see one affine layer;
  the output says which batchnorm went into which layer (:func:`fold_targets`).
- Otherwise it is a weight layer of its own: an affine map with the diagonal weight diag(a) repeated over the
  positions and a bias. Its parameters are trained parameters of the class (γ, β and the running statistics
  are all chosen from the training data), so its norms are per-layer symbols measured like any weight's:
  s_<bn> = max_c |a_c| (the operator norm, and the Lipschitz constant), f_<bn> = √P·‖a‖₂ and c_<bn> = √P·‖t‖₂
  over the P positions of a (C, H, W) input (P = 1 for (C)). The ``tight`` rule is the affine one
  (:func:`boundcalc.calculus.rules.affine_tight`): the diagonal class lies inside the Frobenius ball it assumes.
"""
from __future__ import annotations

from typing import Literal

import networkx as nx
from pydantic import StrictBool, StrictStr

from boundcalc.ops.base import Fail, Flags, OpKind, absolute, format_shape
from boundcalc.ops.registry import OPS, register
from boundcalc.spec.model import LayerFields, Value



class BatchNormFields(LayerFields):
    op: Literal["batchnorm"]
    param: StrictStr | None = None       # the state-dict prefix of the module
    eps: Value = 1e-5                    # a number; YAML reads 1e-5 (no dot) as a string, parsed here
    fold: StrictBool = True


class BatchNorm(OpKind):
    name = "batchnorm"
    fields = BatchNormFields
    flags = Flags(weights=True)
    summary = "batch normalisation in eval mode (running statistics): a per-channel affine map"
    name_prefix = "bn"
    prefix_tensors = ("weight", "bias", "running_mean", "running_var")
    ignored_tensors = ("num_batches_tracked",)
    example = ((3, 4, 4), ({"op": "batchnorm", "fold": False},))
    path_role = "edges"

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        """Not folded: per-channel neurons x ↦ |a|·x + |t| (a = γ/√(σ²+ε), t = β − a·μ, as binding computes them).
        Folded into the layer before it, it is that layer's |W′|, |b′| instead (never larger)."""
        return self.forward(name, params, inputs, absolute(weight), absolute(bias))
    assumption = ("batchnorm layers not folded are affine layers x ↦ a·x + t per channel, a = γ/√(σ²+ε), "
                  "t = β − a·μ: s_<bn> = max|a_c|, f_<bn> = √P·‖a‖₂, c_<bn> = √P·‖t‖₂ over the P positions; "
                  "their parameters (γ, β, running statistics) are trained parameters of the class")

    def params(self, reader, model, path):
        eps = reader.expr(model.eps, path + ("eps",))
        if not (eps.is_number and 0 < eps < 1):
            raise reader.fail(path + ("eps",), f"eps must be a number in (0, 1), got {model.eps}")
        return {"param": model.param, "eps": float(eps), "fold": model.fold, "bias": True}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        if len(shapes[0]) not in (1, 3):
            raise fail(f"batchnorm needs a (channels) or (channels, height, width) input, gets "
                       f"{format_shape(shapes[0])}")
        return shapes[0]

    def weight_shape(self, params, in_shape):
        return (in_shape[0],)

    def forward(self, name, params, inputs, weight=None, bias=None):
        """a·x + t per channel, with (a, t) as binding computes them from the four tensors."""
        import torch

        x = inputs[0]
        view = (1, -1) + (1,) * (x.dim() - 2)
        a = weight.to(torch.float64).reshape(view)
        return x * a if bias is None else x * a + bias.to(torch.float64).reshape(view)


def fold_targets(graph: nx.DiGraph) -> dict[str, str]:
    """batchnorm node → the weight node it folds into: ``fold: true``, its one input is a linear or conv2d layer
    whose output feeds only this batchnorm, for every node of the same spec layer (a repeat's iterations fold
    all or none, since the bounds see one spec layer)."""
    found: dict[str, str] = {}
    refused: set[str] = set()
    for node, attrs in graph.nodes(data=True):
        if attrs["op"] != "batchnorm":
            continue
        layer = attrs["layer"]
        preds = list(graph.predecessors(node))
        source = preds[0] if len(preds) == 1 else None
        ok = (layer.params["fold"] and source is not None and graph.nodes[source]["op"] in OPS
              and OPS[graph.nodes[source]["op"]].flags.weights and graph.nodes[source]["op"] != "batchnorm"
              and graph.out_degree(source) == 1)
        if ok:
            found[node] = source
        else:
            refused.add(layer.name)
    return {bn: into for bn, into in found.items() if graph.nodes[bn]["layer"].name not in refused}


BATCHNORM = register(BatchNorm())
