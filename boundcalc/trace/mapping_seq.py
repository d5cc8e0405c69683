"""Converters for sequence models (each sample (T, d)): ``layer_norm`` → layernorm, the collapsed attention nodes
(:mod:`boundcalc.trace.attention`) → ``softmax_mix`` and the ``attention`` composite; see
:mod:`boundcalc.trace.mapping` for the contract. Token-wise linear layers, ``add`` and the token mean are in the
converters for those ops."""
from __future__ import annotations

from boundcalc.trace.mapping import Context, Draft, _default, _tensor, _what
from boundcalc.trace.nodes import OpNode, Param
from boundcalc.trace.report import Refusal


def layer_norm(node: OpNode, ctx: Context) -> list[Draft]:
    x = _tensor(node)
    shape = ctx.shape(x)
    normalized = list(node.args.get("normalized_shape") or [])
    if len(shape) not in (1, 2) or normalized != [shape[-1]]:
        raise Refusal(f"it normalises over {normalized} of a {shape} input; the spec's layernorm normalises each "
                      "token over its last axis")
    weight, bias = node.args.get("weight"), node.args.get("bias")
    eps = float(node.args.get("eps", 1e-5))
    if weight is None and bias is None:
        return [Draft("layernorm", {"affine": False, "eps": _default(eps, 1e-5)}, [x])]
    if not (isinstance(weight, Param) and isinstance(bias, Param)):
        raise Refusal(f"its weight is {_what(weight) if weight is not None else 'missing'} and its bias "
                      f"{_what(bias) if bias is not None else 'missing'}; the spec's layernorm binds both "
                      "<param>.weight and <param>.bias (or neither)")
    prefix = weight.key.removesuffix(".weight")
    if bias.key != f"{prefix}.bias":
        raise Refusal(f"its tensors {weight.key}, {bias.key} do not share the prefix {prefix}")
    return [Draft("layernorm", {"param": prefix, "eps": _default(eps, 1e-5)}, [x], [weight.key, bias.key], prefix)]


def softmax_mix(node: OpNode, ctx: Context) -> list[Draft]:
    inputs = [_tensor(node, role) for role in ("q", "k", "v")]
    return [Draft("softmax_mix", {"heads": node.args["heads"], "scale": node.args.get("scale")}, inputs)]


def multi_head_attention(node: OpNode, ctx: Context) -> list[Draft]:
    if node.args.get("refused"):
        raise Refusal(node.args["refused"])
    x = _tensor(node)
    if len(ctx.shape(x)) != 2:
        raise Refusal(f"its input has shape {ctx.shape(x)}, not (tokens, dim)")
    args = node.args
    return [Draft("attention", {"heads": args["heads"], "dim": args["dim"], "causal": args["causal"] or None,
                                "bias": None if args["bias"] else False, "param": args["param"]},
                  [x], list(args["tensors"]))]
