"""Plain-text and rich (terminal) output."""
from __future__ import annotations

import sympy as sp
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boundcalc.bound import Bound
from boundcalc.bounds import STATUS_LABEL, STATUS_MEANING, entry_for_rules
from boundcalc.render import shared
from boundcalc.render.escape import one_line, plain

#: terms shown in the terminal before eliding (all of them are in --format json)
MAX_TERMS = 40


def _expr(expr: sp.Basic) -> str:
    return sp.sstr(expr)


def status_line(bound: Bound) -> str:
    """The bound's status, taken from the registry entry its rule set derives (one label everywhere)."""
    entry = entry_for_rules(bound.rules)
    return f"status: {STATUS_LABEL[entry.status]} (registry entry {entry.key}: {STATUS_MEANING[entry.status]})"


def _heads(bound: Bound) -> tuple[str, str]:
    """The Ĝ_S and gap bounds as text (in the shared form: Ĝ_S as the sum of the terms T[i])."""
    complexity = _expr(bound.complexity) if bound.shared is None else shared.complexity_text(len(bound.terms))
    return complexity, _expr(bound.printed_gap)


def plain_text(bound: Bound) -> str:
    complexity, gap = _heads(bound)
    lines = [f"{one_line(bound.spec_name)} [{bound.rules}]",
             f"  Ĝ_S ≤ {complexity}",
             f"  gap ≤ {gap}   (prob. ≥ 1 − δ, gap constant: {bound.gap_form})",
             f"  {status_line(bound)}"]
    if bound.c1_power is not None:
        lines.append(f"  highest power of C1: {_expr(bound.c1_power)}")
    if bound.shared is not None:
        lines.append(f"  {shared.form_note(bound)}")
        lines.extend(f"  {_expr(name)} = {_expr(value)}" for name, value in bound.shared.definitions)
    for t, expr in zip(bound.terms, bound.term_exprs):
        lines.append(f"  term {t.index}: {t.kind} at layer {one_line(t.layer)}: {_expr(expr)}; {t.rule}"
                     + (f"; diameter rule: {t.diameter_rule}" if t.diameter_rule else ""))
    return "\n".join(lines)


def rich_view(bound: Bound, spec_file: str | None = None, max_terms: int = MAX_TERMS) -> Group:
    """A renderable with the bound, the term-by-term account, assumptions and caveats."""
    complexity, gap = _heads(bound)
    head = Text()
    head.append("Ĝ_S ≤ ", style="bold")
    head.append(complexity + "\n")
    head.append("gap ≤ ", style="bold")
    head.append(gap + "\n")
    head.append(f"with probability ≥ 1 − δ; gap constant: {bound.gap_form}; {status_line(bound)}", style="dim")
    if bound.c1_power is not None:
        head.append(f"\nhighest power of C1: {_expr(bound.c1_power)}", style="yellow")
    if bound.shared is not None:
        head.append(f"\n{shared.form_note(bound)}", style="dim")
    title = Text.assemble(one_line(bound.spec_name), " — rule set ", (bound.rules, "bold"),
                          f" — {one_line(spec_file)}" if spec_file else "")
    table = Table(title="Term-by-term account", show_lines=False, expand=False)
    for col in ("#", "layer", "kind", "term of Ĝ_S", "rule"):
        table.add_column(col, overflow="fold")
    for t, expr in zip(bound.terms[:max_terms], bound.term_exprs):
        rule = t.rule + (f"\ndiameter: {t.diameter_rule}" if t.diameter_rule else "")
        # plain Text cells: rich would read "[t']" in s_a[t'] (or Γ[j]) as a markup tag and drop it
        table.add_row(*map(plain, (str(t.index), t.layer, t.kind, _expr(expr))), Text(rule))
    parts = [Panel(head, title=title, expand=False)]
    if bound.shared is not None:
        parts.extend(_definitions_view(bound.shared.definitions, max_terms))
    parts.append(table)
    if len(bound.terms) > max_terms:
        parts.append(Text(f"… {len(bound.terms) - max_terms} more terms (all of them with --format json)",
                          style="dim"))
    parts.append(Text("Assumptions", style="bold"))
    parts.extend(Text(f"  • {a}") for a in bound.assumptions)
    parts.append(Text("Caveats", style="bold yellow"))
    parts.extend(Text(f"  • {c}", style="yellow") for c in bound.caveats)
    return Group(*parts)


def _definitions_view(definitions, shown: int) -> list:
    table = Table(title="Named sub-expressions", show_lines=False, expand=False)
    for col in ("name", "expression"):
        table.add_column(col, overflow="fold")
    for name, value in definitions[:shown]:
        table.add_row(Text(_expr(name)), Text(_expr(value)))
    if len(definitions) <= shown:
        return [table]
    return [table, Text(f"… {len(definitions) - shown} more named sub-expressions (all of them with --format "
                        "json, latex or markdown)", style="dim")]


def print_bound(bound: Bound, console: Console, spec_file: str | None = None) -> None:
    console.print(rich_view(bound, spec_file))
