"""Captured nodes → spec layers: in-place ops resolved, dead nodes dropped, each node mapped by the table, kinds
checked against the registry, weight sharing found, names given and ``inputs:`` edges written where a layer
does not read the one before it. Every node that cannot be expressed adds a row; nothing is emitted then.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from boundcalc.trace.mapping import IGNORED, PASS, VIEWS, Context, Draft
from boundcalc.trace.nodes import INPUT, Captured, OpNode, Param, Ref
from boundcalc.trace.report import Refusal, Unsupported
from boundcalc.trace.table import CONVERTERS

#: longest layer name the tracer writes (the spec allows 48; room for a uniqueness suffix)
MAX_NAME = 40


@dataclass
class TracedLayer:
    """One spec layer: its kind, fields and inputs (layer names, or ``input``), and where it came from."""

    name: str
    kind: str
    fields: dict[str, Any]
    inputs: list[str]
    node: str
    module: str
    op: str
    shape: tuple[int, ...] | None       # the captured per-sample output shape (None: an intermediate layer)
    params: list[str] = field(default_factory=list)


def display(node: OpNode) -> str:
    """``relu_ (ReLU)``: the op as captured, and the module class when the op is that module's own."""
    op = node.op + ("_" if node.in_place else "")
    return f"{op} ({node.module_type})" if node.own_module and node.module_type else op


def assemble(captured: Captured, input_shape: tuple[int, ...]) -> tuple[list[TracedLayer], str, list[Unsupported]]:
    """(layers in execution order, the output layer's name, rows of what cannot be expressed); ``input_shape``:
    one sample's."""
    rows: list[Unsupported] = []
    nodes, output = resolve_in_place(captured.nodes, captured.output, rows)
    shapes = {INPUT: tuple(input_shape), **{n.name: _per_sample(n, captured.batch) for n in nodes}}
    live = _live(nodes, output)
    ctx = Context(shapes)
    alias: dict[str, str] = {INPUT: INPUT}
    drafts: list[tuple[OpNode, Draft, int, int]] = []
    for node in nodes:
        if node.name not in live or node.op in IGNORED:
            continue
        try:
            result = _convert(node, ctx, captured.batch)
        except Refusal as refusal:
            rows.append(Unsupported(node.module, display(node), refusal.why))
            alias[node.name] = node.name
            continue
        if result == PASS:
            alias[node.name] = alias.get(node.refs()[0], node.refs()[0])
            continue
        for i, draft in enumerate(result):
            drafts.append((node, draft, i, len(result)))
        alias[node.name] = node.name
    rows.extend(_shared_weights([(n, d) for n, d, _, _ in drafts]))
    layers, names = _layers(drafts, alias, rows)
    final = _resolve(alias, output)
    return layers, names.get(final, final), rows


def _per_sample(node: OpNode, batch: int) -> tuple[int, ...] | None:
    return node.shape[1:] if node.shape and node.shape[0] == batch else None


def _convert(node: OpNode, ctx: Context, batch: int):
    converter = CONVERTERS.get(node.op)
    if converter is None:
        raise Refusal(f"no spec op kind does what {display(node)} does")
    if not node.shape or node.shape[0] != batch:
        raise Refusal(f"its output has shape {node.shape}, which does not keep the batch of {batch} first "
                      "(it mixes samples, or is not a tensor)")
    return converter(node, ctx)


def _resolve(alias: dict[str, str], name: str) -> str:
    while alias.get(name, name) != name:
        name = alias[name]
    return name


def _live(nodes: list[OpNode], output: str) -> set[str]:
    """Nodes the output depends on, and every in-place node (an in-place write matters even with no reader)."""
    reads = {n.name: n.refs() for n in nodes}
    live, todo = set(), [output] + [n.name for n in nodes if n.in_place]
    while todo:
        name = todo.pop()
        if name not in live:
            live.add(name)
            todo.extend(reads.get(name, []))
    return live


def resolve_in_place(nodes: list[OpNode], output: str, rows: list[Unsupported]) -> tuple[list[OpNode], str]:
    """In-place ops read as their functional form: later readers of the changed tensor read the op's output
    instead. A change that the network could see some other way (through a view taken earlier, or of the
    model's input or a parameter) cannot be said in a spec and adds a row."""
    group = _view_groups(nodes)
    position = {n.name: i for i, n in enumerate(nodes)}
    renamed: dict[str, str] = {}
    for i, node in enumerate(nodes):
        node.args = _renamed(node.args, renamed)
        if not node.in_place:
            continue
        target = node.args.get("input", node.args.get("self"))
        if not isinstance(target, Ref):
            rows.append(Unsupported(node.module, display(node), "it changes a parameter or constant in place"))
            continue
        members = {m for m in group.get(target.name, {target.name}) if position.get(m, -1) < i}
        if INPUT in members or target.name == INPUT:
            rows.append(Unsupported(node.module, display(node), "it changes the model's input in place"))
            continue
        earlier_views = members - {target.name}
        seen = [later.name for later in nodes[i + 1:] if set(later.refs()) & earlier_views]
        seen += ["the model's output"] if output in earlier_views else []
        if seen:
            rows.append(Unsupported(node.module, display(node), f"it changes {target.name} in place, which "
                                    f"{seen[0]} then reads through a view taken before the change"))
        renamed[target.name] = node.name
    return nodes, renamed.get(output, output)


def _renamed(value, renamed: dict[str, str]):
    if isinstance(value, Ref):
        return Ref(renamed.get(value.name, value.name))
    if isinstance(value, dict):
        return {k: _renamed(v, renamed) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, renamed) for v in value]
    return value


def _view_groups(nodes: list[OpNode]) -> dict[str, set[str]]:
    """Names that share storage, through view-like ops (and in-place ops, which return their input)."""
    group: dict[str, set[str]] = {}
    for node in nodes:
        refs = node.refs()
        if refs and (node.op in VIEWS or node.in_place):
            joined = group.get(refs[0], {refs[0]}) | group.get(node.name, {node.name})
            for name in joined:
                group[name] = joined
    return group


def _shared_weights(drafts: list[tuple[OpNode, Draft]]) -> list[Unsupported]:
    """Parameters read by two or more layers (weight sharing): each spec layer has a weight of its own."""
    uses = Counter(key for _, d in drafts for key in d.params)
    rows, reported = [], set()
    for node, draft in drafts:
        shared = [key for key in draft.params if uses[key] > 1 and key not in reported]
        if shared:
            reported.update(shared)
            rows.append(Unsupported(node.module, display(node), f"{', '.join(shared)} used by {uses[shared[0]]} "
                                    "operations (weight sharing); each spec layer has its own weight"))
    return rows


def _layers(drafts: list[tuple[OpNode, Draft, int, int]], alias: dict[str, str],
            rows: list[Unsupported]) -> tuple[list[TracedLayer], dict[str, str]]:
    from boundcalc.trace.kinds import emit

    names: dict[str, str] = {INPUT: INPUT}
    taken: set[str] = {INPUT}
    layers: list[TracedLayer] = []
    previous = INPUT
    for node, draft, index, count in drafts:
        kind, fields, why = emit(draft)
        last = index == count - 1
        if why is not None:
            rows.append(Unsupported(node.module, display(node), why))
        name = _unique(layer_name(node, draft, kind, index == 0), taken)
        inputs = [names.get(_resolve(alias, r), _resolve(alias, r)) for r in draft.inputs] or [previous]
        layers.append(TracedLayer(name, kind, fields, inputs, node.name, node.module, display(node),
                                  node.shape[1:] if last and node.shape else None, draft.params))
        previous = name
        if last:
            names[node.name] = name
    return layers, names


def layer_name(node: OpNode, draft: Draft, kind: str, first: bool = True) -> str:
    """A weight layer after its parameter (``layer1.0.conv1.weight`` → ``layer1_0_conv1``); another layer after
    its module (``layer1.0.relu``), or its module and kind for an op inside a bigger module's forward."""
    from boundcalc.ops import OPS

    prefix = OPS[kind].prefix if kind in OPS else kind.replace("_", "")
    if draft.name_from:
        base = draft.name_from.removesuffix(".weight")
    elif node.module and node.own_module and first:
        base = node.module
    elif node.module:
        base = f"{node.module}.{prefix}"
    else:
        base = prefix
    base = re.sub(r"[^A-Za-z0-9_]", "_", base)
    if not base[:1].isalpha():
        base = f"{prefix}_{base}"
    return base[:MAX_NAME]


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name
