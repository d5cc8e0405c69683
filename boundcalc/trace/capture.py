"""Run the model once and capture its graph: ``torch.export`` first, ``torch.fx.symbolic_trace`` where export
fails (the result says which was used, and why). Neither capture can follow a data-dependent branch; when both
fail, the one row says where (the innermost module whose ``forward`` was running) and what each method said.

torch prints warnings and graph dumps through ``logging`` while it captures; they are silenced here, since the
command's own output must stay one table or one error line.
"""
from __future__ import annotations

import io
import logging
import traceback
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from boundcalc.trace.nodes import INPUT, Captured, Opaque, OpNode, Param, Ref, tensor_shape
from boundcalc.trace.report import Refusal, TraceError, Unsupported, UnsupportedError
from boundcalc.trace.target import first_line

#: samples in the example batch: 2, so that no size-1 axis is mistaken for the batch (export specialises on 1)
BATCH = 2


def run_model(model, example):
    """The model's eval-mode output on ``example`` (no gradients); TraceError if the model raises or does not
    return one tensor with the batch first."""
    import torch

    try:
        with torch.no_grad(), quiet():
            out = model(example)
    except (Exception, SystemExit) as err:
        shape = tuple(example.shape[1:])
        raise TraceError(f"the model fails on an input of shape {shape} (batch of {example.shape[0]}): "
                         f"{type(err).__name__}: {first_line(err)}; check --input-shape") from None
    if not isinstance(out, torch.Tensor):
        raise TraceError(f"the model returns a {type(out).__name__}, not one tensor; a spec has one output")
    if out.dim() < 1 or out.shape[0] != example.shape[0]:
        raise TraceError(f"the model's output has shape {tuple(out.shape)}, not the batch of {example.shape[0]} "
                         "first")
    return out


def capture(model, example) -> Captured:
    """The graph of ``model`` (in eval mode) on ``example``; UnsupportedError with one row if neither method can
    capture it."""
    from boundcalc.trace.fx_capture import capture_fx

    try:
        return capture_export(model, example)
    except Exception as err:     # export refuses many things; each reason is reported below if fx fails too
        export_err = err
    try:
        captured = capture_fx(model, example)
    except Exception as err:
        where = _failing_module(model, err) or _failing_module(model, export_err)
        why = (f"torch.export: {type(export_err).__name__}: {first_line(export_err)}; torch.fx: "
               f"{type(err).__name__}: {first_line(err)} (a branch or loop that depends on the data, or Python "
               "that neither capture can follow)")
        raise UnsupportedError([Unsupported(where, "(capture)", why)], "neither torch.export nor torch.fx") from None
    captured.note = f"torch.export failed ({type(export_err).__name__}: {first_line(export_err)})"
    return captured


def capture_export(model, example) -> Captured:
    import torch

    with quiet():
        program = torch.export.export(model, (example,), strict=False)
    sig = program.graph_signature
    named = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
    lifted = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}))
    values: dict[str, object] = {}
    nodes: list[OpNode] = []
    for node in program.graph.nodes:
        if node.op == "placeholder":
            if node.name in named:
                values[node.name] = Param(named[node.name], tensor_shape(node.meta.get("val")) or ())
            elif node.name in lifted:
                values[node.name] = Opaque(f"a tensor constant built in forward ({lifted[node.name]})")
            else:
                values[node.name] = Ref(INPUT)
        elif node.op == "call_function":
            nodes.append(_export_node(node, values))
            values[node.name] = Ref(node.name)
        elif node.op == "output":
            outputs = node.args[0]
            if len(outputs) != 1:
                raise Refusal(f"the model returns {len(outputs)} tensors; a spec has one output")
            out = values[outputs[0].name]
            return Captured(nodes, out.name if isinstance(out, Ref) else "", "torch.export", batch=example.shape[0])
    raise TraceError("torch.export gave a graph without an output")


def _export_node(node, values: dict) -> OpNode:
    from torch.fx.operator_schemas import normalize_function

    target = node.target
    schema = getattr(target, "_schema", None)
    name = getattr(target, "_opname", None) or getattr(target, "__name__", str(target))
    in_place = bool(schema is not None and schema.is_mutable and name.endswith("_") and not name.startswith("_"))
    pair = normalize_function(target, node.args, node.kwargs, normalize_to_only_use_kwargs=True) \
        if schema is not None else None
    raw = dict(pair.kwargs) if pair is not None else {f"arg{i}": a for i, a in enumerate(node.args)}
    stack = node.meta.get("nn_module_stack") or {}
    path, kind = list(stack.values())[-1] if stack else ("", "")
    op = name[:-1] if in_place else name
    return OpNode(node.name, op, {k: _value(v, values) for k, v in raw.items()}, module=path,
                  module_type=str(kind).rsplit(".", 1)[-1], shape=tensor_shape(node.meta.get("val")),
                  in_place=in_place, own_module=str(kind).startswith("torch.nn.modules.") and
                  not str(kind).endswith(("Sequential", "ModuleList", "ModuleDict")))


def _value(value, values: dict):
    """A node argument as Ref/Param/Opaque (tensors) or the Python constant it is; lists element-wise."""
    import torch.fx

    if isinstance(value, torch.fx.Node):
        return values.get(value.name, Opaque(f"the value {value.name}"))
    if isinstance(value, (list, tuple)):
        return [_value(v, values) for v in value]
    return value


def _failing_module(model, err: BaseException) -> str:
    """The path of the innermost module of ``model`` whose ``forward`` was running when ``err`` was raised."""
    paths = {id(module): path for path, module in model.named_modules()}
    found = ""
    for frame, _ in traceback.walk_tb(err.__traceback__):
        owner = frame.f_locals.get("self")
        if id(owner) in paths and frame.f_code.co_name == "forward":
            found = paths[id(owner)]
    return found


@contextmanager
def quiet():
    """torch's capture-time warnings, log lines and graph dumps (printed on sys.stderr) silenced, and so is
    anything the model prints while it runs; restored after."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)
