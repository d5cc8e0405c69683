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
    from pydantic import ValidationError

    from boundcalc.ops import OPS

    kind = draft.kind if draft.kind in OPS else draft.fallback
    if kind not in OPS:
        return draft.kind, {}, (f"op kind {draft.kind!r} is not registered in this boundcalc (its registry has "
                                f"{', '.join(OPS)})")
    fields = {k: v for k, v in draft.fields.items() if v is not None} if kind == draft.kind else {}
    declared = OPS[kind].fields.model_fields
    fields = {k: v for k, v in fields.items() if k in declared or k not in IMPLICIT}
    try:
        OPS[kind].fields.model_validate({"op": kind, **fields, **({"inputs": ["a", "b"]} if _multi(kind) else {})})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or kind
        return kind, fields, f"{kind} {where}={fields.get(str(first['loc'][0]), '…')!r}: {first['msg']} " \
                             "(this boundcalc's spec cannot say it)"
    return kind, fields, None


def _multi(kind: str) -> bool:
    from boundcalc.ops import OPS

    return OPS[kind].flags.multi_input
