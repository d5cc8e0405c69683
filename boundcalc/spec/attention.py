"""The ``attention`` composite of a spec, expanded when the spec is loaded into plain layers (torch's
``nn.MultiheadAttention`` with batch_first, self-attention):

    <name>.q, <name>.k, <name>.v   token-wise linear layers reading the attention's input (out: heads·head_dim)
    <name>.mix                     softmax_mix of them (heads, causal)
    <name>                         the output token-wise linear (out: dim), what later layers read

Weights: ``param: p`` binds torch's names, the packed ``p.in_proj_weight`` (3·dim × dim; q, k, v take its row
blocks through the linear field ``rows``, the bias ``p.in_proj_bias`` sliced the same way) and
``p.out_proj.weight`` / ``.bias``; or ``q``, ``k``, ``v``, ``o`` name four Linear weights. Names with a dot
cannot be written by a spec, so they never collide with its own layers.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictBool, StrictStr

from boundcalc.spec.model import LayerFields, Value


class AttentionFields(LayerFields):
    op: Literal["attention"]
    heads: Value
    dim: Value                       # model width (required: the loader does not know the input's shape)
    head_dim: Value | None = None    # default dim / heads
    causal: StrictBool = False
    bias: StrictBool = True          # torch's default
    param: StrictStr | None = None   # state-dict prefix of an nn.MultiheadAttention
    q: StrictStr | None = None
    k: StrictStr | None = None
    v: StrictStr | None = None
    o: StrictStr | None = None


ROLES = ("q", "k", "v")


def expand(reader: Any, model: AttentionFields, name: str, source: str, path: tuple) -> list[dict[str, Any]]:
    """The raw items (op, name, inputs and fields; ``name`` already checked) the composite stands for, reading
    layer ``source``; SpecError via ``reader`` for a bad combination of fields."""
    explicit = [getattr(model, r) for r in ROLES + ("o",)]
    if model.param is not None and any(explicit):
        raise reader.fail(path, "give either param: (an nn.MultiheadAttention prefix) or q, k, v, o, not both")
    if model.param is None and not all(explicit) and any(explicit):
        missing = [r for r, given in zip(ROLES + ("o",), explicit) if not given]
        raise reader.fail(path, f"attention with explicit weights needs all of q, k, v, o (missing {', '.join(missing)})")
    heads = reader.size(model.heads, path + ("heads",), "heads")
    dim = reader.size(model.dim, path + ("dim",), "dim")
    if model.head_dim is not None:
        width = heads * reader.size(model.head_dim, path + ("head_dim",), "head_dim")
    else:
        width = dim       # head_dim = dim / heads; softmax_mix checks that heads divides it
    if model.param is not None and not width.is_number:
        raise reader.fail(path + ("dim",), f"a packed in_proj (param:) needs a numeric dim (its row blocks "
                                           f"[0, dim], [dim, 2·dim], [2·dim, 3·dim]), got {width}")
    if model.param is not None and (width - dim) != 0:
        raise reader.fail(path + ("head_dim",), f"torch's packed in_proj has heads·head_dim = dim; got "
                                                f"{heads}·head_dim = {width} and dim {dim}")
    common = {"op": "linear", "inputs": [source], "bias": model.bias}
    items = []
    for i, role in enumerate(ROLES):
        item = {**common, "name": f"{name}.{role}", "out": _raw(width)}
        if model.param is not None:
            item.update(param=f"{model.param}.in_proj_weight", rows=[int(i * width), int((i + 1) * width)])
        elif getattr(model, role):
            item["param"] = getattr(model, role)
        items.append(item)
    items.append({"op": "softmax_mix", "name": f"{name}.mix", "heads": model.heads, "causal": model.causal,
                  "inputs": [f"{name}.{r}" for r in ROLES]})
    out = {"op": "linear", "name": name, "out": _raw(dim), "bias": model.bias, "inputs": [f"{name}.mix"]}
    if model.param is not None or model.o:
        out["param"] = model.o or f"{model.param}.out_proj.weight"
    items.append(out)
    return items


def _raw(value: Any) -> str:
    """A parsed size back as spec text (the linear parses it again)."""
    return str(value)
