"""Attention in a captured graph, brought to one node each before the mapping table reads it.

- :func:`collapse_mha`: the ops ``torch.export`` records inside an ``nn.MultiheadAttention`` (in torch 2.13 the
  decomposed path: a packed in_proj ``linear``, views, ``scaled_dot_product_attention``, ``out_proj``) become one
  ``multi_head_attention`` node read from the module itself (heads, packed in_proj, biases), mapped to the spec's
  ``attention`` composite whose ``param`` is the module's state-dict prefix. Only self-attention is said: a module
  that reads a second tensor (cross-attention, a key_padding_mask, an attn_mask) becomes one node that the
  mapping refuses with the reason (one row, not one per inner op).
- :func:`collapse_softmax_mix`: a hand-written softmax(q @ kᵀ · scale) @ v, single-head on (T, w) tensors or
  multi-head through ``view(B, T, h, w/h).transpose(1, 2)`` and back by ``transpose(1, 2).reshape(B, T, w)``,
  becomes one ``softmax_mix`` node reading the three (T, w) tensors.

Both passes keep a node's name for the node that replaces the pattern's output, so later readers are unchanged;
the pattern's inner nodes are left in place and dropped as dead by the assembler.
"""
from __future__ import annotations

import math

from boundcalc.trace.nodes import INPUT, Captured, OpNode, Ref

#: the captured op that stands for a whole nn.MultiheadAttention
MHA_OP = "multi_head_attention"


def collapse(captured: Captured, model) -> None:
    """Both passes on ``captured`` (its nodes replaced in place)."""
    collapse_mha(captured, model)
    collapse_softmax_mix(captured)


def collapse_mha(captured: Captured, model) -> None:
    """Each nn.MultiheadAttention's ops → one MHA_OP node (``refused``: why the spec cannot say it)."""
    import torch.nn as nn

    if captured.method != "torch.export":      # torch.fx keeps the module as one call: its arguments are not known
        return
    groups: dict[str, list[OpNode]] = {}
    for node in captured.nodes:
        if node.module_type == "MultiheadAttention" and node.module:
            groups.setdefault(node.module, []).append(node)
    for path, group in groups.items():
        module = model.get_submodule(path)
        if not isinstance(module, nn.MultiheadAttention):
            continue
        one = _mha_node(path, module, group, captured)
        inside = {n.name for n in group} - {one.name}
        captured.nodes = [one if n.name == one.name else n for n in captured.nodes if n.name not in inside]


def _mha_node(path: str, module, group: list[OpNode], captured: Captured) -> OpNode:
    """The one node for ``group`` (the ops of ``module``), named after the op whose output leaves the module."""
    inside = {n.name for n in group}
    external = sorted({r for n in group for r in n.refs() if r not in inside})
    readers = {r for n in captured.nodes if n.name not in inside for r in n.refs()} | {captured.output}
    outputs = [n for n in group if n.name in readers]
    out = outputs[0] if outputs else group[-1]
    keys = sorted({p.key for n in group for p in n.params()})
    prefix = next((k.removesuffix(".in_proj_weight") for k in keys if k.endswith(".in_proj_weight")), None)
    why = _mha_refusal(module, group, external, outputs, keys, prefix)
    args = {"refused": why} if why else {"input": Ref(external[0]), "heads": module.num_heads,
                                         "dim": module.embed_dim, "bias": module.in_proj_bias is not None,
                                         "param": prefix, "tensors": keys,
                                         "causal": any(bool(n.args.get("is_causal")) for n in group
                                                       if n.op == "scaled_dot_product_attention")}
    return OpNode(out.name, MHA_OP, args, module=path, module_type="MultiheadAttention", shape=out.shape,
                  own_module=True)


def _mha_refusal(module, group, external, outputs, keys, prefix) -> str | None:
    """Why the module's ops are not the spec's attention on its one input, or None."""
    from boundcalc.trace.nodes import Opaque, _flat

    if len(external) != 1:
        return (f"it reads {len(external)} tensors ({', '.join(external)}): query, key and value differ "
                "(cross-attention) or a key_padding_mask / attn_mask is given; the spec's attention is "
                "self-attention, causal or not")
    masked = any(n.op == "scaled_dot_product_attention" and n.args.get("attn_mask") is not None for n in group)
    if masked or any(isinstance(v, Opaque) for n in group for v in _flat(n.args.values())):
        return "it applies an attn_mask (a tensor not computed from its input); the spec's attention has only the " \
               "causal mask"
    if len(outputs) != 1:
        return "the model reads its attention weights (need_weights=True); a spec layer has one output"
    if not module.batch_first:
        return "batch_first=False: its input is (T, batch, dim); the spec reads the batch first"
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        return ("separate q/k/v projections (kdim/vdim), add_bias_kv or add_zero_attn: the spec's attention binds "
                "a packed in_proj of one width")
    if prefix is None or any(not k.startswith(prefix + ".") for k in keys):
        return f"it reads the parameters {', '.join(keys)}, not only its own in_proj and out_proj"
    return None


def collapse_softmax_mix(captured: Captured) -> None:
    by_name = {n.name: n for n in captured.nodes}
    readers: dict[str, list[OpNode]] = {}
    for node in captured.nodes:
        for ref in node.refs():
            readers.setdefault(ref, []).append(node)
    replaced: dict[str, OpNode] = {}
    for node in captured.nodes:
        if node.op in ("softmax", "_softmax"):
            found = _mix(node, by_name, readers)
            if found is not None:
                replaced[found.name] = found
    captured.nodes = [replaced.get(n.name, n) for n in captured.nodes]


def _only_reader(name: str, readers: dict[str, list[OpNode]], op: tuple[str, ...]) -> OpNode | None:
    users = readers.get(name, [])
    return users[0] if len(users) == 1 and users[0].op in op else None


def _ref(node: OpNode | None, key: str = "input") -> str | None:
    value = None if node is None else node.args.get(key, node.args.get("self"))
    return value.name if isinstance(value, Ref) else None


def _mix(softmax: OpNode, by_name: dict[str, OpNode], readers: dict[str, list[OpNode]]) -> OpNode | None:
    """The softmax_mix node that replaces the pattern around ``softmax``, or None (the ops then stay as they are,
    and the table reports the ones it cannot map)."""
    rank = len(softmax.shape or ())
    if rank not in (3, 4) or _dims(softmax, rank, "dim") != [rank - 1]:
        return None
    scores = by_name.get(_ref(softmax) or "")
    scale = 1.0
    if scores is not None and scores.op in ("mul", "div") and isinstance(scores.args.get("other"), (int, float)):
        other = float(scores.args["other"])
        scale = other if scores.op == "mul" else (1 / other if other else math.nan)
        scores = by_name.get(_ref(scores) or "")
    if scores is None or scores.op != "matmul" or not (scale > 0):
        return None
    transposed = by_name.get(_ref(scores, "other") or "")
    if transposed is None or transposed.op != "transpose" or _dims(transposed, rank) != [rank - 2, rank - 1]:
        return None
    mixed = _only_reader(softmax.name, readers, ("matmul",))
    if mixed is None or _ref(mixed) != softmax.name:
        return None
    heads = [_split_heads(name, by_name, rank) for name in (_ref(scores), _ref(transposed), _ref(mixed, "other"))]
    if any(h is None for h in heads) or len({h[1] for h in heads}) != 1:
        return None
    out = _merge_heads(mixed, readers, rank)
    if out is None:
        return None
    (q, h), (k, _), (v, _) = heads
    width = (by_name[q].shape if q in by_name else None)
    if width is None:
        return None
    d_k = width[-1] // h
    field = None if math.isclose(scale, 1 / math.sqrt(d_k), rel_tol=1e-12) else scale
    return OpNode(out.name, "softmax_mix", {"q": Ref(q), "k": Ref(k), "v": Ref(v), "heads": h, "scale": field},
                  module=softmax.module, module_type=softmax.module_type, shape=out.shape)


def _dims(node: OpNode, rank: int, *keys: str) -> list[int] | None:
    """The node's axis arguments (``dim0``, ``dim1`` by default) made non-negative and sorted; None if one is not
    an integer."""
    values = [node.args.get(key) for key in (keys or ("dim0", "dim1"))]
    if not all(isinstance(v, int) for v in values):
        return None
    return sorted(v % rank for v in values)


def _split_heads(name: str | None, by_name: dict[str, OpNode], rank: int) -> tuple[str, int] | None:
    """(the (B, T, w) tensor, heads) behind one operand: itself (rank 3, one head) or transpose(view(t, B, T, h,
    w/h), 1, 2)."""
    node = by_name.get(name or "")
    if rank == 3:
        return (name, 1) if name is not None and name != INPUT and node is not None else None
    if node is None or node.op != "transpose" or _dims(node, rank) != [1, 2]:
        return None
    view = by_name.get(_ref(node) or "")
    base = by_name.get(_ref(view) or "") if view is not None and view.op in ("view", "reshape") else None
    if base is None or not base.shape or not view.shape or len(base.shape) != 3 or len(view.shape) != 4 or \
            view.shape[:2] != base.shape[:2] or view.shape[2] * view.shape[3] != base.shape[2]:
        return None
    return base.name, view.shape[2]


def _merge_heads(mixed: OpNode, readers: dict[str, list[OpNode]], rank: int) -> OpNode | None:
    """The node whose output is the heads side by side (B, T, h·d_v): ``mixed`` itself for one head, else the
    reshape after transpose(1, 2) (a contiguous between them allowed)."""
    if rank == 3:
        return mixed
    turn = _only_reader(mixed.name, readers, ("transpose",))
    if turn is None or _dims(turn, rank) != [1, 2]:
        return None
    node = _only_reader(turn.name, readers, ("contiguous", "view", "reshape", "_unsafe_view"))
    if node is not None and node.op == "contiguous":
        node = _only_reader(node.name, readers, ("view", "reshape", "_unsafe_view"))
    if node is None or not node.shape or len(node.shape) != 3 or not mixed.shape or \
            node.shape[2] != mixed.shape[1] * mixed.shape[3]:
        return None
    return node
