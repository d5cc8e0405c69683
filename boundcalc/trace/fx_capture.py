"""The fallback capture, ``torch.fx.symbolic_trace``: module calls and Python functions brought to the aten op's
name and argument names (as :mod:`boundcalc.trace.capture` gives them from ``torch.export``), with shapes from
one run of fx's ``ShapeProp`` on the example input.

A module call takes its arguments from the module's attributes (``nn.Conv2d(3, 8, 3, stride=2)`` becomes
``conv2d(input, weight=Param('conv.weight'), stride=2, …)``); a function or method call is normalised by its
signature. A module or function missing from the tables below keeps its own name, which the mapping reports.
"""
from __future__ import annotations

import operator
from typing import Any

from boundcalc.trace.nodes import INPUT, Captured, Opaque, OpNode, Param, Ref, tensor_shape


def _module_args(module) -> tuple[str, dict[str, Any]] | None:
    """(aten name, arguments other than the input) of a torch.nn module call; None for a module not listed."""
    import torch.nn as nn

    m = module
    table = {
        nn.Linear: lambda: ("linear", {}),
        nn.Conv2d: lambda: ("conv2d", {"stride": list(m.stride), "padding": m.padding if isinstance(m.padding, str)
                                       else list(m.padding), "dilation": list(m.dilation), "groups": m.groups,
                                       "padding_mode": m.padding_mode}),
        nn.BatchNorm2d: lambda: ("batch_norm", _bn(m)),
        nn.BatchNorm1d: lambda: ("batch_norm", _bn(m)),
        nn.ReLU: lambda: ("relu", {}), nn.Tanh: lambda: ("tanh", {}), nn.Sigmoid: lambda: ("sigmoid", {}),
        nn.SiLU: lambda: ("silu", {}), nn.Hardswish: lambda: ("hardswish", {}), nn.Identity: lambda: ("alias", {}),
        nn.LeakyReLU: lambda: ("leaky_relu", {"negative_slope": m.negative_slope}),
        nn.GELU: lambda: ("gelu", {"approximate": m.approximate}),
        nn.ELU: lambda: ("elu", {"alpha": m.alpha}),
        nn.Softplus: lambda: ("softplus", {"beta": m.beta, "threshold": m.threshold}),
        nn.Dropout: lambda: ("dropout", {"p": m.p, "train": m.training}),
        nn.Flatten: lambda: ("flatten", {"start_dim": m.start_dim, "end_dim": m.end_dim}),
        nn.MaxPool2d: lambda: ("max_pool2d", {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
                                              "dilation": m.dilation, "ceil_mode": m.ceil_mode,
                                              "return_indices": m.return_indices}),
        nn.AvgPool2d: lambda: ("avg_pool2d", {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
                                              "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad,
                                              "divisor_override": m.divisor_override}),
        nn.AdaptiveAvgPool2d: lambda: ("adaptive_avg_pool2d", {"output_size": m.output_size}),
    }
    make = table.get(type(module))
    return make() if make is not None else None


def _bn(m) -> dict[str, Any]:
    return {"training": m.training or not m.track_running_stats, "momentum": m.momentum, "eps": m.eps}


#: the weights a module call reads, by aten argument name → attribute of the module
_MODULE_TENSORS = {"linear": ("weight", "bias"), "conv2d": ("weight", "bias"),
                   "batch_norm": ("weight", "bias", "running_mean", "running_var")}
#: Python functions and tensor methods → aten names (F.relu, torch.relu and x.relu() are all 'relu')
_FUNCTION_NAMES = {operator.add: "add", operator.iadd: "add_", "add": "add", "add_": "add_", "cat": "cat",
                   "flatten": "flatten", "view": "view", "reshape": "reshape", "relu": "relu", "relu_": "relu_",
                   "mean": "mean", "contiguous": "contiguous", "size": "sym_size", getattr: "getattr",
                   operator.getitem: "getitem", operator.mul: "mul", "mul": "mul"}


def capture_fx(model, example) -> Captured:
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    from boundcalc.trace.capture import quiet

    with quiet():
        graph_module = torch.fx.symbolic_trace(model)
        ShapeProp(graph_module).propagate(example)
    parameters = dict(graph_module.named_parameters()) | dict(graph_module.named_buffers())
    values: dict[str, object] = {}
    nodes: list[OpNode] = []
    output = ""
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            values[node.name] = Ref(INPUT)
        elif node.op == "get_attr":
            tensor = parameters.get(node.target)
            values[node.name] = Param(node.target, tuple(tensor.shape)) if tensor is not None else \
                Opaque(f"the attribute {node.target}")
        elif node.op == "output":
            out = values.get(node.args[0].name) if isinstance(node.args[0], torch.fx.Node) else None
            output = out.name if isinstance(out, Ref) else ""
        else:
            nodes.append(_fx_node(node, graph_module, values))
            values[node.name] = Ref(node.name)
    return Captured(nodes, output, "torch.fx", batch=example.shape[0])


def _fx_node(node, graph_module, values: dict) -> OpNode:
    meta = node.meta.get("tensor_meta")
    shape = tuple(int(d) for d in meta.shape) if meta is not None and hasattr(meta, "shape") else None
    if node.op == "call_module":
        return _module_node(node, graph_module, values, shape)
    target = node.target
    name = _FUNCTION_NAMES.get(target) if not isinstance(target, str) else _FUNCTION_NAMES.get(target, target)
    name = name or getattr(target, "__name__", str(target))
    args = _normalised(node, values)
    in_place = name.endswith("_") and not name.startswith("_")
    return OpNode(node.name, name[:-1] if in_place else name, args, shape=shape, in_place=in_place)


def _module_node(node, graph_module, values: dict, shape) -> OpNode:
    from boundcalc.trace.capture import _value

    module = graph_module.get_submodule(node.target)
    found = _module_args(module)
    op, args = found if found is not None else (type(module).__name__, {})
    args = {"input": _value(node.args[0], values) if node.args else None, **args}
    for attribute in _MODULE_TENSORS.get(op, ()):
        tensor = getattr(module, attribute, None)
        args[attribute] = None if tensor is None else Param(f"{node.target}.{attribute}", tensor_shape(tensor) or ())
    in_place = bool(getattr(module, "inplace", False))
    return OpNode(node.name, op, args, module=node.target, module_type=type(module).__name__, shape=shape,
                  in_place=in_place, own_module=True)


def _normalised(node, values: dict) -> dict[str, Any]:
    """A function or method call's arguments by name where the signature is known, else ``input``, ``arg1``, …"""
    from torch.fx.operator_schemas import normalize_function

    from boundcalc.trace.capture import _value

    pair = None
    if callable(node.target):
        try:
            pair = normalize_function(node.target, tuple(node.args), dict(node.kwargs),
                                      normalize_to_only_use_kwargs=True)
        except Exception:       # a signature fx cannot match: keep the arguments in order
            pair = None
    if pair is not None:
        raw = dict(pair.kwargs)
        if "training" in raw and "p" in raw:          # F.dropout's 'training' is aten.dropout's 'train'
            raw["train"] = raw.pop("training")
    else:
        raw = {("input" if i == 0 else f"arg{i}"): a for i, a in enumerate(node.args)} | dict(node.kwargs)
    return {k: _value(v, values) for k, v in raw.items()}
