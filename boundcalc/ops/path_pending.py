"""The path-norm semantics of kinds declared on other branches (issue 16), ready to attach at merge.

Each entry of :data:`PENDING` is ``kind name → (path_role, path_forward)``; attaching one means setting the
kind's ``path_role`` and making its ``path_forward`` call the function here (``kind`` is the OpKind, so the
function can use the kind's own forward pass). Until then the kinds do not exist in this branch and the
path-norm refuses them like any kind without a ``path_role``. Sources: Gonon et al. 2024 (the DAG ReLU model
and its Theorem A.1 recipe) and their code ``pathnorm.py`` (max-pooling → depthwise convolution with weights 1
and zero padding; BatchNorm → its own affine neurons with |a| and |t|; average pooling kept, its weights being
positive); docs/references.md §12.
"""
from __future__ import annotations

from boundcalc.ops.base import absolute


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def maxpool_path_forward(kind, name, params, inputs, weight=None, bias=None):
    """The sum over each window of its real inputs (zero padding): a max-pooling neuron's incoming edges have
    weight 1, so every path through it is counted."""
    import torch
    import torch.nn.functional as F

    x = inputs[0]
    channels = x.shape[1]
    ones = torch.ones((channels, 1, *_pair(params["kernel"])), dtype=x.dtype)
    stride = params.get("stride") or params["kernel"]
    return F.conv2d(x, ones, stride=_pair(stride), padding=_pair(params.get("padding", 0)),
                    dilation=_pair(params.get("dilation", 1)), groups=channels)


def affine_path_forward(kind, name, params, inputs, weight=None, bias=None):
    """A batchnorm that is not folded: per-channel neurons x ↦ |a|·x + |t| (a = γ/√(σ²+ε), t = β − a·μ, as binding
    computes them). Folded into the layer before it, it is that layer's |W′|, |b′| instead (never larger)."""
    return kind.forward(name, params, inputs, absolute(weight), absolute(bias))


def nonnegative_path_forward(kind, name, params, inputs, weight=None, bias=None):
    """A map with nonnegative weights and no bias (averages, concatenation, dropout in eval mode): its forward
    pass is already the pass of |θ|."""
    return kind.forward(name, params, inputs, weight, bias)


#: kind name → (path_role, path_forward) for the kinds of branches helper-ops-maps and helper-ops-weights
PENDING = {
    "maxpool": ("max", maxpool_path_forward),
    "batchnorm": ("edges", affine_path_forward),
    "adaptive_avgpool": ("edges", nonnegative_path_forward),
    "concat": ("same", nonnegative_path_forward),
    "dropout": ("same", nonnegative_path_forward),
}
