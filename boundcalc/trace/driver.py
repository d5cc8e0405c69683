"""Trace a model: run it, capture it, map it to layers, write the spec, and check that the spec is the model.

The last check is numeric: the spec, bound to the model's own state dict by name (as ``evaluate`` binds it),
is run by boundcalc's forward pass on the example input and must give the model's output to 1e-4 (relative
to the output's largest entry); a difference is reported, never written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from boundcalc.limits import MAX_TRACE_INPUT_VALUES
from boundcalc.trace.assemble import TracedLayer, assemble
from boundcalc.trace.attention import collapse
from boundcalc.trace.capture import BATCH, capture, run_model
from boundcalc.trace.report import TraceError, Unsupported, UnsupportedError
from boundcalc.trace.writer import check_shapes, spec_text

#: largest relative difference between the spec's forward pass and the model's output that the check accepts
FORWARD_RTOL = 1e-4


@dataclass(frozen=True)
class TracedSpec:
    """A traced model: the spec's YAML ``text``, the loaded ``spec``, how it was captured, and its layers."""

    text: str
    spec: object
    method: str
    note: str
    layers: tuple[TracedLayer, ...]
    input_shape: tuple[int, ...]
    forward_error: float

    def to_dict(self) -> dict:
        return {"method": self.method, "note": self.note, "input_shape": list(self.input_shape),
                "forward_relative_error": self.forward_error,
                "layers": [{"name": l.name, "op": l.kind, "module": l.module, "captured": l.op,
                            "params": list(l.params)} for l in self.layers], "spec": self.text}


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``C,H,W`` (images), ``T,D`` (sequences of T tokens) or ``D`` (vectors) as integers, checked by
    :func:`check_input_shape`."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise TraceError(f"--input-shape {text!r}: expected integers C,H,W (images), T,D (T tokens of D "
                         "features) or D (vectors)") from None
    return check_input_shape(shape)


def check_input_shape(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) not in (1, 2, 3):
        raise TraceError(f"--input-shape {','.join(map(str, shape))}: give C,H,W (3 numbers), T,D (2: tokens, "
                         f"features) or D (1 number) per sample, got {len(shape)}")
    if not all(isinstance(d, int) and d >= 1 for d in shape):
        raise TraceError(f"--input-shape {','.join(map(str, shape))}: every size must be a positive integer")
    if math.prod(shape) > MAX_TRACE_INPUT_VALUES:
        raise TraceError(f"--input-shape {','.join(map(str, shape))}: {math.prod(shape):,} values per sample, more "
                         f"than the limit of {MAX_TRACE_INPUT_VALUES:,} (MAX_TRACE_INPUT_VALUES)")
    return shape


def example_input(model, shape: tuple[int, ...]):
    """A fixed random batch of BATCH samples of ``shape``, in the dtype of the model's first floating parameter."""
    import torch

    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return torch.randn((BATCH, *shape), generator=torch.Generator().manual_seed(0), dtype=dtype)


def trace_model(model, example, name: str = "model", source: str = "") -> TracedSpec:
    """The spec of ``model`` (put in eval mode) on ``example`` (batch first); UnsupportedError with every row
    that cannot be expressed."""
    from boundcalc.spec.load import parse_spec

    model.eval()
    expected = run_model(model, example)
    captured = capture(model, example)
    collapse(captured, model)
    shape = tuple(int(d) for d in example.shape[1:])
    layers, output, rows = assemble(captured, shape)
    header = (f"traced by boundcalc trace from {source or 'a torch.nn.Module'} ({captured.method}"
              f"{'; ' + captured.note if captured.note else ''})")
    if not rows:
        rows = _output_rows(layers, output)
    if rows:
        raise UnsupportedError(rows, captured.method)
    text = spec_text(layers, output, shape, name, header)
    rows = check_shapes(text, layers)
    if rows:
        raise UnsupportedError(rows, captured.method)
    spec = parse_spec(text, file=f"<traced {name}>")
    error = forward_error(spec, model, example, expected)
    if not error <= FORWARD_RTOL:
        raise UnsupportedError([Unsupported("", "(forward check)", f"the spec's forward pass differs from the "
                                            f"model's output by {error:.2e} (relative; at most {FORWARD_RTOL:g} is "
                                            "accepted): an op does not do what its layer says")], captured.method)
    return TracedSpec(text, spec, captured.method, captured.note, tuple(layers), shape, error)


def _output_rows(layers, output: str) -> list[Unsupported]:
    if not layers:
        return [Unsupported("", "(model)", "the model has no operation that is a spec layer (it returns its input)")]
    if output not in {layer.name for layer in layers}:
        return [Unsupported("", "(output)", f"the model's output {output!r} is not the output of a spec layer")]
    return []


def forward_error(spec, model, example, expected) -> float:
    """max |spec(x) − model(x)| / max |model(x)| on ``example``, with the spec bound to the model's state dict."""
    import torch

    from boundcalc.measure.batchnorm import bound_tensors
    from boundcalc.measure.binding import bind, concrete_graph
    from boundcalc.measure.forward import forward
    from boundcalc.trace.memory import memory_checkpoint

    state = {k: v.detach() for k, v in model.state_dict().items()}
    checkpoint = memory_checkpoint(state)
    graph = concrete_graph(spec)
    binding = bind(spec, checkpoint, graph)
    if binding.problems:
        row = binding.problems[0]
        raise TraceError(f"the traced spec does not bind to the model's own state dict ({row.node}: "
                         f"{row.detail or row.status}); this is a bug in boundcalc's tracer")
    plan, weights, biases = bound_tensors(spec, graph, binding, checkpoint)   # as the evaluate path binds them
    out = forward(plan.graph, example.to(torch.float64), weights, biases)
    reference = expected.to(torch.float64).reshape(out.shape)
    scale = float(reference.abs().max())
    return float((out - reference).abs().max()) / max(scale, 1e-30)
