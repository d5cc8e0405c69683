"""The table from aten op names to converters (:mod:`boundcalc.trace.mapping`, :mod:`.mapping_maps`), and the
op kinds each one may emit (docs/spec.md's "From a PyTorch model" lists them). A missing op is reported."""
from __future__ import annotations

from boundcalc.trace import mapping as m
from boundcalc.trace import mapping_maps as s
from boundcalc.trace import mapping_seq as q
from boundcalc.trace.attention import MHA_OP

CONVERTERS = {
    "linear": m.linear,
    "conv2d": m.conv2d,
    "batch_norm": m.batch_norm,
    "relu": m._activation("relu"),
    "tanh": m._activation("tanh"),
    "sigmoid": m._activation("sigmoid"),
    "silu": m._activation("silu"),
    "hardswish": m._activation("hardswish"),
    "leaky_relu": m._activation("leaky_relu", lambda n: {"slope": m._default(float(n.args.get("negative_slope",
                                                                                              0.01)), 0.01)}),
    "gelu": m._activation("gelu", lambda n: {"approximate": m._default(n.args.get("approximate", "none"), "none")}),
    "elu": m._activation("elu", m._elu_fields),
    "softplus": m._activation("softplus", m._softplus_fields),
    "dropout": m.dropout,
    "max_pool2d": s.max_pool2d,
    "avg_pool2d": s.avg_pool2d,
    "adaptive_avg_pool2d": s.adaptive_avg_pool2d,
    "mean": s.mean,
    "add": s.add,
    "cat": s.cat,
    "concat": s.cat,
    "flatten": s.flatten,
    "view": s.view,
    "reshape": s.view,
    "_unsafe_view": s.view,
    "alias": s.passthrough,
    "contiguous": s.passthrough,
    "clone": s.passthrough,
    "detach": s.passthrough,
    "layer_norm": q.layer_norm,
    "softmax_mix": q.softmax_mix,
    MHA_OP: q.multi_head_attention,
}

#: every kind a converter may emit (a test checks this against the converters and the docs)
KINDS = ("linear", "conv2d", "batchnorm", "relu", "tanh", "sigmoid", "silu", "hardswish", "leaky_relu", "gelu", "elu",
         "softplus", "dropout", "identity", "maxpool", "avgpool", "adaptive_avgpool", "add", "concat", "flatten",
         "layernorm", "token_mean", "softmax_mix", "attention")
