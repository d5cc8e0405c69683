"""Which drafts the registry can take: a draft's kind must be registered in :data:`boundcalc.ops.OPS` when the
tracer runs (its exact fallback otherwise: eval-mode dropout is the identity), and its fields must pass that
kind's own field model, so a field a kind does not declare yet (``dilation`` before dilated convolutions) is
reported, never written. ``bias: true`` is the one field left out when a kind does not declare it: binding
then finds the bias by its name, as for a hand-written spec.
"""
from __future__ import annotations

from typing import Any

from boundcalc.trace.mapping import Draft

#: fields that binding infers by name when the kind does not declare them
IMPLICIT = frozenset({"bias"})


def emit(draft: Draft) -> tuple[str, dict[str, Any], str | None]:
    """(kind, fields to write, None) or (kind, fields, why it cannot be written)."""
    from boundcalc.ops import OPS

    if draft.kind in COMPOSITES:
        return _validated(draft.kind, {k: v for k, v in draft.fields.items() if v is not None},
                          COMPOSITES[draft.kind]())
    kind = draft.kind if draft.kind in OPS else draft.fallback
    if kind not in OPS:
        return draft.kind, {}, (f"op kind {draft.kind!r} is not registered in this boundcalc (its registry has "
                                f"{', '.join(OPS)})")
    fields = {k: v for k, v in draft.fields.items() if v is not None} if kind == draft.kind else {}
    declared = OPS[kind].fields.model_fields
    fields = {k: v for k, v in fields.items() if k in declared or k not in IMPLICIT}
    return _validated(kind, fields, OPS[kind].fields, ["a", "b"] if _multi(kind) else None)


def _validated(kind: str, fields: dict[str, Any], model, inputs: list[str] | None = None):
    """(kind, fields, None) if ``model`` (a field model) accepts them, else the first complaint as the reason."""
    from pydantic import ValidationError

    try:
        model.model_validate({"op": kind, **fields, **({"inputs": inputs} if inputs else {})})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or kind
        return kind, fields, f"{kind} {where}={fields.get(str(first['loc'][0]), '…')!r}: {first['msg']} " \
                             "(this boundcalc's spec cannot say it)"
    return kind, fields, None


def _attention_fields():
    from boundcalc.spec.attention import AttentionFields

    return AttentionFields


#: kinds the spec loader expands into registered kinds (not in the registry themselves) → their field model
COMPOSITES = {"attention": _attention_fields}


def _multi(kind: str) -> bool:
    from boundcalc.ops import OPS

    return OPS[kind].flags.multi_input
