"""Spec YAML from traced layers (one flow mapping per layer, in execution order), and the check that the spec
says what the model does: it is parsed back by the spec loader, and every layer's inferred shape must be the
shape captured from the model (a row for each that is not)."""
from __future__ import annotations

from collections.abc import Sequence

import yaml

from boundcalc.errors import SpecError
from boundcalc.trace.assemble import TracedLayer
from boundcalc.trace.nodes import INPUT
from boundcalc.trace.report import Unsupported


def spec_text(layers: Sequence[TracedLayer], output: str, input_shape: tuple[int, ...], name: str,
              header: str) -> str:
    """The spec: ``data`` from the input shape ((T, d) is sequence data: ``tokens`` and ``dim``), one line per
    layer, ``output`` when it is not the last layer."""
    if len(input_shape) == 1:
        data = {"samples": "m", "dim": input_shape[0]}
    elif len(input_shape) == 2:
        data = {"samples": "m", "tokens": input_shape[0], "dim": input_shape[1]}
    else:
        data = {"samples": "m", "shape": list(input_shape)}
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"name: {_flow(name)}", f"data: {_flow(data)}", "layers:"]
    previous = INPUT
    for layer in layers:
        item: dict = {"op": layer.kind, "name": layer.name, **layer.fields}
        if layer.inputs != [previous] or layer.kind in ("add", "concat"):
            item["inputs"] = list(layer.inputs)
        lines.append(f"  - {_flow(item)}")
        previous = layer.name
    if layers and output != layers[-1].name:
        lines.append(f"output: {_flow(output)}")
    lines.append("loss: {margin: gamma, delta: delta}")
    return "\n".join(lines) + "\n"


def _flow(value) -> str:
    """``value`` as one line of YAML (strings quoted where YAML would read them as something else)."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000, allow_unicode=False).strip() \
        .removesuffix("\n...").removesuffix("...").strip()


def check_shapes(text: str, layers: Sequence[TracedLayer]) -> list[Unsupported]:
    """Parse ``text`` with the spec loader and compare each layer's shape with the captured one."""
    from boundcalc.graph.build import build_graph
    from boundcalc.spec.load import parse_spec

    by_name = {layer.name: layer for layer in layers}
    try:
        graph = build_graph(parse_spec(text, file="<traced spec>"))
    except SpecError as err:
        layer = _layer_of(err, layers)
        return [Unsupported(layer.module if layer else "", layer.op if layer else "(spec)",
                            f"the spec loader refuses the traced layer: {err.message}")]
    rows = []
    for name, attrs in graph.nodes(data=True):
        layer = by_name.get(name)
        if layer is None or layer.shape is None:
            continue
        shape = tuple(int(d) for d in attrs["shape"])
        if shape != tuple(layer.shape):
            rows.append(Unsupported(layer.module, layer.op, f"the spec's {layer.kind} gives shape {shape}, the model "
                                    f"gives {tuple(layer.shape)}"))
    return rows


def _layer_of(err: SpecError, layers: Sequence[TracedLayer]) -> TracedLayer | None:
    """The layer a spec error's path points at (``layers[3]…``)."""
    path = err.path or ""
    if path.startswith("layers["):
        index = int(path[len("layers["):path.index("]")])
        return layers[index] if 0 <= index < len(layers) else None
    return None
