"""Numbers for a spec's symbolic sizes, read from a checkpoint's tensor shapes.

A spec such as ``specs/lowrank_mlp.yaml`` writes widths and depth as symbols (``out: h``, ``count: L - 2``,
``dim: d``). Before binding, :func:`concrete_spec` fixes them from the checkpoint:

1. a symbolic repeat count from the number of weight tensors — every 2-D/4-D floating tensor is taken to be a
   layer weight; the layers outside the repeat use theirs, the rest divide evenly into iterations;
2. each symbolic width from the weight bound to it (its ``param:`` tensor, else the next tensor in order):
   ``out``/``channels`` from the tensor's first dimension and the input width from its second.

An inferred repeat count is refused past MAX_INFERRED_COUNT (``boundcalc.limits``) before the spec is unrolled.
Values given by the user (``--set``) are applied first and never overridden; a checkpoint that disagrees
with them is reported by the binding as a shape mismatch. Sizes the weights cannot tell (a conv input's
height and width) still need ``--set``.
"""
from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from boundcalc.errors import BoundcalcError
from boundcalc.graph.build import build_graph
from boundcalc.limits import MAX_INFERRED_COUNT
from boundcalc.measure.binding import declaration_order, resolve_param, weight_candidates
from boundcalc.measure.checkpoint import Checkpoint
from boundcalc.ops import OPS, WEIGHT_OPS
from boundcalc.spec.load import Repeat, Spec


def concrete_spec(load: Callable[[dict], Spec], checkpoint: Checkpoint,
                  values: dict[str, float | int]) -> tuple[Spec, dict[str, int]]:
    """The spec loaded with ``values`` plus whatever the checkpoint's shapes determine, and what was inferred."""
    spec = load(values)
    inferred = _repeat_count(spec, checkpoint)
    if inferred:
        spec = load({**values, **inferred})
    sizes = _sizes(spec, checkpoint)
    if sizes:
        inferred.update(sizes)
        spec = load({**values, **inferred})
    return spec, inferred


def _weights_in(items) -> int:
    """Weight layers in ``items`` with numeric repeats expanded (symbolic repeats are counted by the caller)."""
    total = 0
    for item in items:
        if isinstance(item, Repeat):
            if sp.sympify(item.count).is_number:
                total += int(item.count) * _weights_in(item.body)
        elif item.op in WEIGHT_OPS and OPS[item.op].width_field is not None:
            total += 1
    return total


def _repeat_count(spec: Spec, checkpoint: Checkpoint) -> dict[str, int]:
    symbolic = [item for item in spec.layers if isinstance(item, Repeat) and not sp.sympify(item.count).is_number]
    if not symbolic:
        return {}
    if len(symbolic) > 1:
        raise BoundcalcError(f"{spec.file}: {len(symbolic)} repeats have symbolic counts; the checkpoint can determine "
                             "only one: give the others with --set")
    repeat = symbolic[0]
    per_iteration = _weights_in(repeat.body)
    outside = _weights_in(spec.layers)
    tensors = len(weight_candidates(checkpoint))
    iterations, rest = divmod(tensors - outside, per_iteration) if per_iteration else (0, 1)
    if rest or iterations < 1:
        raise BoundcalcError(f"{spec.file}: cannot infer the count of repeat {repeat.name!r} from {checkpoint.path}: "
                             f"{tensors} weight tensors, {outside} outside the repeat, {per_iteration} per iteration; "
                             f"give it with --set")
    if iterations > MAX_INFERRED_COUNT:     # checked before the spec is unrolled to that depth
        raise BoundcalcError(f"{spec.file}: {checkpoint.path} has {tensors} weight tensors, so repeat {repeat.name!r} "
                             f"would run {iterations} times, more than the limit of {MAX_INFERRED_COUNT} for a count "
                             "read from a checkpoint (MAX_INFERRED_COUNT); give it with --set if it is meant")
    return _solve(repeat.count, iterations, f"the count of repeat {repeat.name!r}", spec)


def _sizes(spec: Spec, checkpoint: Checkpoint) -> dict[str, int]:
    """Solve out/channels = dim 0 and input width = dim 1 of each bound weight for the unknown symbols."""
    graph = build_graph(spec)
    named = {}
    order = [n for n in declaration_order(spec.layers, graph)
             if graph.nodes[n]["op"] in WEIGHT_OPS and OPS[graph.nodes[n]["op"]].width_field is not None]
    for node in order:
        attrs = graph.nodes[node]
        param = resolve_param(attrs["layer"].params.get("param"), attrs["index"])
        if param is not None and param in checkpoint.infos:
            named[node] = checkpoint.infos[param]
    unnamed = iter(i for i in weight_candidates(checkpoint) if i not in named.values())
    equations = []
    for node in order:
        info = named.get(node) or next(unnamed, None)
        if info is None:
            break
        attrs = graph.nodes[node]
        (source,) = graph.predecessors(node)
        expected = OPS[attrs["op"]].weight_shape(attrs["layer"].params, graph.nodes[source]["shape"])
        equations += [(expected[0], info.shape[0], f"layer {node} ({info.name} is {info.shape[0]} wide)"),
                      (expected[1], info.shape[1], f"the input of layer {node} ({info.name} reads {info.shape[1]})")]
    known: dict[sp.Symbol, sp.Integer] = {}
    progress = True
    while progress:
        progress = False
        for expr, value, what in equations:
            expr = sp.sympify(expr).xreplace(known)
            if expr.is_number or len(expr.free_symbols) != 1:
                continue
            (symbol,) = expr.free_symbols
            solved = _solve(expr, value, what, spec)
            if solved:     # else sympy cannot solve this form (e.g. a floor from a conv); the binding will ask
                known[symbol] = sp.Integer(solved[str(symbol)])
                progress = True
    return {str(s): int(v) for s, v in known.items()}


def _solve(expr, value: int, what: str, spec: Spec) -> dict[str, int]:
    """The positive integer value of the single symbol in ``expr`` that makes it equal ``value``; empty when
    sympy has no method for the equation."""
    expr = sp.sympify(expr)
    (symbol,) = expr.free_symbols
    try:
        candidates = sp.solve(sp.Eq(expr, value), symbol)
    except NotImplementedError:
        return {}
    solutions = [s for s in candidates if s.is_integer and s > 0]
    if len(solutions) != 1:
        raise BoundcalcError(f"{spec.file}: cannot infer {symbol} from {what}: {expr} = {value} has no single "
                             "positive integer solution; give it with --set")
    return {str(symbol): int(solutions[0])}
