"""JSON output: every expression both as a plain string and as LaTeX."""
from __future__ import annotations

import json
import math
from typing import Any

import sympy as sp

from boundcalc.bound import Bound
from boundcalc.bounds import STATUS_LABEL, STATUS_MEANING, entry_for_rules
from boundcalc.render import shared
from boundcalc.render.names import to_latex
from boundcalc.shared_form import MAX_WRITTEN_NODES


def finite(value: Any) -> Any:
    """JSON has no inf or NaN: such floats become null, inside dicts and lists too (a log10 is always given
    beside a value that can overflow)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def expression(expr: Any) -> dict[str, str] | None:
    if expr is None:
        return None
    expr = sp.sympify(expr)
    return {"text": sp.sstr(expr), "latex": to_latex(expr)}


def bound_dict(bound: Bound, spec_file: str | None = None) -> dict[str, Any]:
    """The bound as JSON data. In the shared form (``bound.shared``) ``complexity`` is the sum of the terms
    T[i], ``gap`` is written with Ĝ_S, and ``form`` and ``definitions`` (Γ[j], Ξ[j]) are added."""
    form = bound.shared
    entry = entry_for_rules(bound.rules)
    out = {
        "spec": {"name": bound.spec_name, "file": spec_file},
        "rules": {"name": bound.rules, "description": bound.rules_description},
        "complexity": expression(bound.complexity) if form is None else
        {"text": shared.complexity_text(len(bound.terms)), "latex": shared.complexity_latex(len(bound.terms))},
        "gap": expression(bound.printed_gap),
        "gap_form": bound.gap_form,
        "c1_power": expression(bound.c1_power),
        "status": entry.status,
        "status_label": STATUS_LABEL[entry.status],
        "status_meaning": STATUS_MEANING[entry.status],
        "registry_key": entry.key,
    }
    if form is not None:
        out["form"] = {"name": "shared", "written_size": form.written_size, "limit": MAX_WRITTEN_NODES,
                       "note": shared.form_note(bound)}
        out["definitions"] = [{"name": expression(name), "expr": expression(value)}
                              for name, value in form.definitions]
    out["terms"] = [{"index": t.index, "layer": t.layer, "kind": t.kind, "rule": t.rule,
                     "diameter_rule": t.diameter_rule, "expr": expression(expr)}
                    for t, expr in zip(bound.terms, bound.term_exprs)]
    out.update(assumptions=list(bound.assumptions), caveats=list(bound.caveats), symbols=bound.symbols)
    return out


def to_json(bound: Bound, spec_file: str | None = None) -> str:
    return json.dumps(bound_dict(bound, spec_file), indent=2, ensure_ascii=False)
