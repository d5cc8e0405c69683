"""Pydantic validation of raw spec blocks, its first problem turned into one located :class:`SpecError`
(an unknown key before a missing one, so that ``otu: 64`` suggests ``out``)."""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import ValidationError

from boundcalc.errors import SpecError
from boundcalc.spec.yaml_source import Path, YamlDocument, format_path


def validate(model: type, data: Any, document: YamlDocument, base: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise _pydantic_error(err, model, data, document, base) from None


def _pydantic_error(err: ValidationError, model: type, data: Any, document: YamlDocument,
                    base: Path) -> SpecError:
    # an unknown key first: 'otu: 64' is a misspelt 'out', which is more useful than "missing 'out'"
    first = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(first["loc"])
    path = base + loc
    more = err.error_count() - 1
    hint = f"(+{more} more problem{'s' if more > 1 else ''} in this block)" if more else None
    kind = first["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = sorted(model.model_fields) if len(loc) == 1 else []
        not_given = [f for f in allowed if not (isinstance(data, dict) and f in data)]
        message = f"unknown field {name!r}"
        # a near miss among the fields not given yet first ('otu' beside a missing 'out')
        close = difflib.get_close_matches(name, not_given, n=1) or difflib.get_close_matches(name, allowed, n=1)
        if allowed:
            message += f" (allowed: {', '.join(allowed)})"
        if close:
            message += f". Did you mean {close[0]!r}?"
    elif kind == "missing":
        message = f"missing required field {loc[-1]!r}"
        path = path[:-1]
    elif kind == "too_short":
        message = "must not be empty"
    else:
        message = f"{first['msg']} (found {first.get('input')!r})" if not isinstance(
            first.get("input"), (dict, list)) else first["msg"]
    return SpecError(message, file=document.file, line=document.line_of(path),
                     path=format_path(path) or None, hint=hint)
