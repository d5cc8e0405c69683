"""Rendering of a Comparison (``boundcalc compare``) and of registry entries (``boundcalc bounds``).

Formats: rich terminal tables, JSON (every expression as text and LaTeX), Markdown and LaTeX tables.
Nothing here computes; every value comes from ``compare.table`` or the registry.
"""
from __future__ import annotations

import json
from typing import Any

import sympy as sp
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boundcalc.bounds.base import STATUS_LABEL, STATUS_MEANING, Applied, Inapplicable, PriorBound
from boundcalc.compare.table import Comparison, Row
from boundcalc.render.escape import md_text, one_line, plain, tex_text
from boundcalc.render.json_ import expression
from boundcalc.render.names import to_latex

FACTOR_WIDTH = 90


def grouped_caveats(pairs) -> list[tuple[list[str], str]]:
    """(bound key, caveat) pairs -> one entry per caveat text with every bound it belongs to, in first-seen
    order: a caveat shared by several bounds is printed once and names all of them."""
    groups: dict[str, list[str]] = {}
    for key, text in pairs:
        keys = groups.setdefault(text, [])
        if key not in keys:
            keys.append(key)
    return [(keys, text) for text, keys in groups.items()]


def caveat_lines(pairs) -> list[str]:
    """``[key1, key2] caveat`` lines for :func:`grouped_caveats`."""
    return [f"[{', '.join(keys)}] {text}" for keys, text in grouped_caveats(pairs)]


def _sum_text(monomials, latex: bool = False) -> str:
    if monomials is None:
        return "?"
    render = to_latex if latex else sp.sstr
    return " + ".join(render(m) for m in monomials)


def _short(text: str, width: int = FACTOR_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def factor_text(row: Row, orders_only: bool, latex: bool = False) -> str:
    if orders_only or row.factor is None:
        return _sum_text(row.order, latex)
    return to_latex(row.factor) if latex else sp.sstr(row.factor)


def _columns(comparison: Comparison) -> list[str]:
    return [g for g in ("L", "h", "r", "m") if g in comparison.growth] + \
        [g for g in comparison.growth if g not in ("L", "h", "r", "m")]


def rich_comparison(comparison: Comparison) -> Group:
    c = comparison
    factor_head = "order of factor" if c.orders_only else "factor"
    table = Table(title=plain(f"{c.spec_name}: bounds compared (regime: {c.regime})"), show_lines=True)
    table.add_column("bound", no_wrap=True)
    table.add_column("status")
    table.add_column(factor_head, overflow="fold")
    variables = _columns(c)
    for v in variables:
        table.add_column(f"in {v}", overflow="fold")
    table.add_column(f"ratio to {c.vs}" if c.vs else "ratio", overflow="fold")
    skipped = []
    for row in c.rows:
        if not row.applies:
            skipped.append(row)
            continue
        cells = [row.key, STATUS_LABEL[row.status], _short(factor_text(row, c.orders_only))]
        cells += [_sum_text(row.per_variable.get(v)) if row.per_variable else "?" for v in variables]
        cells.append("1 (reference)" if row.key == c.vs else (sp.sstr(row.ratio) if row.ratio is not None else "—"))
        table.add_row(*cells)
    parts: list[Any] = []
    head = Text()
    head.append("factor = complexity term / ", style="bold")
    head.append(sp.sstr(c.normaliser) + "\n")
    if c.substitutions:
        head.append("regime substitutions:\n", style="bold")
        for s in c.substitutions:
            head.append(f"  • {s}\n")
    head.append("status: exact/derived are bounds; order rows are up to an unknown constant factor", style="dim")
    parts.append(Panel(head, expand=False))
    parts.append(table)
    crossings = [r for r in c.rows if r.applies and r.crossover]
    if crossings:
        parts.append(Text(f"Crossovers against {c.vs} (leading orders, logs ignored)", style="bold"))
        parts.extend(Text(f"  • {r.crossover}") for r in crossings)
    notes = [r for r in c.rows if r.applies and r.order_note]
    parts.extend(Text(f"  • {r.key}: {r.order_note}", style="yellow") for r in notes)
    if skipped:
        parts.append(Text("Not applicable", style="bold"))
        parts.extend(Text(f"  • {r.key}: {r.reason}") for r in skipped)
    parts.append(Text("Assumptions", style="bold"))
    parts.extend(Text(f"  • {a}") for a in c.assumptions)
    caveats = caveat_lines((r.key, cav) for r in c.rows if r.applies for cav in r.caveats)
    if caveats:
        parts.append(Text("Caveats", style="bold yellow"))
        parts.extend(Text(f"  • {line}", style="yellow") for line in caveats)
    return Group(*parts)


def comparison_dict(c: Comparison) -> dict[str, Any]:
    def row_dict(row: Row) -> dict[str, Any]:
        base = {"key": row.key, "status": row.status, "citation": row.citation, "summary": row.summary,
                "applies": row.applies}
        if not row.applies:
            return {**base, "reason": row.reason}
        return {**base,
                "complexity": expression(row.complexity),
                "factor": expression(row.factor),
                "order": [expression(m) for m in row.order] if row.order is not None else None,
                "per_variable": {v: [expression(m) for m in ms] if ms is not None else None
                                 for v, ms in row.per_variable.items()},
                "ratio_to_vs": expression(row.ratio),
                "crossover": row.crossover,
                "order_note": row.order_note,
                "caveats": list(row.caveats)}

    return {"spec": c.spec_name, "regime": c.regime, "substitutions": list(c.substitutions),
            "normaliser": expression(c.normaliser), "growth_variables": list(c.growth), "vs": c.vs,
            "orders_only": c.orders_only, "bounds": [row_dict(r) for r in c.rows],
            "assumptions": list(c.assumptions)}


def comparison_json(c: Comparison) -> str:
    return json.dumps(comparison_dict(c), indent=2, ensure_ascii=False)


def comparison_markdown(c: Comparison) -> str:
    variables = _columns(c)
    head = ["bound", "status", "order of factor" if c.orders_only else "factor"] + [f"in {v}" for v in variables] \
        + [f"ratio to {c.vs}"]
    lines = [f"## {md_text(c.spec_name)}: bounds compared (regime: {c.regime})", "",
             f"factor = complexity term / `{sp.sstr(c.normaliser)}`", ""]
    lines += [f"- {s}" for s in c.substitutions] + [""] if c.substitutions else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in c.rows:
        if not row.applies:
            continue
        cells = [row.key, STATUS_LABEL[row.status], f"${factor_text(row, c.orders_only, latex=True)}$"]
        cells += [f"${_sum_text(row.per_variable.get(v), latex=True)}$" if row.per_variable else "?"
                  for v in variables]
        cells.append("1" if row.key == c.vs else (f"${to_latex(row.ratio)}$" if row.ratio is not None else "—"))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- crossover: {r.crossover}" for r in c.rows if r.applies and r.crossover]
    lines += [f"- not applicable: **{r.key}**: {r.reason}" for r in c.rows if not r.applies]
    lines += [f"- assumption: {a}" for a in c.assumptions]
    return "\n".join(lines) + "\n"


def comparison_latex(c: Comparison) -> str:
    variables = _columns(c)
    cols = "l l " + "l " * (1 + len(variables))
    lines = [r"\begin{tabular}{" + cols.strip() + "}", r"\hline",
             " & ".join(["bound", "status", "factor"] + [f"in ${v}$" for v in variables]) + r" \\", r"\hline"]
    for row in c.rows:
        if not row.applies:
            continue
        cells = [tex_text(row.key), STATUS_LABEL[row.status],
                 f"${factor_text(row, c.orders_only, latex=True)}$"]
        cells += [f"${_sum_text(row.per_variable.get(v), latex=True)}$" for v in variables]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}",
              f"% factor = complexity / ${to_latex(c.normaliser)}$; regime: {c.regime}"]
    lines += [f"% {s}" for s in c.substitutions]
    return "\n".join(lines) + "\n"


# -- registry -------------------------------------------------------------------------------------
def registry_table(entries: list[PriorBound]) -> Table:
    table = Table(title="Registered bounds")
    for col in ("key", "status", "theorem", "citation"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.key, STATUS_LABEL[e.status], e.theorem, e.citation.short())
    return table


def registry_dicts(entries: list[PriorBound]) -> list[dict[str, Any]]:
    return [{"key": e.key, "status": e.status, "theorem": e.theorem, "title": e.title,
             "authors": e.citation.authors, "year": e.citation.year, "venue": e.citation.venue,
             "arxiv": e.citation.arxiv, "summary": e.summary, "resnet": e.resnet} for e in entries]


def entry_view(entry: PriorBound, result: Applied | Inapplicable, spec_label: str) -> Group:
    head = Text()
    head.append(f"{entry.title}\n", style="bold")
    head.append(f"{entry.citation.short()}\n{entry.theorem}\n")
    head.append(f"status: {entry.status} — {STATUS_MEANING[entry.status]}", style="dim")
    parts: list[Any] = [Panel(head, title=entry.key, expand=False), Text("Assumptions", style="bold")]
    parts.extend(Text(f"  • {a}") for a in entry.requirements.describe())
    if entry.resnet:
        parts.append(Text(f"  • BN-folded ResNet: {entry.resnet}"))
    parts.append(Text(f"Formula (built on {one_line(spec_label)})", style="bold"))
    if isinstance(result, Applied) and result.formula.too_large is not None:
        parts.append(Text(f"  statement: {result.formula.statement}"))
        parts.append(Text(f"  complexity term and gap: not written out: {result.formula.too_large}"))
    elif isinstance(result, Applied):
        parts.append(Text(f"  statement: {result.formula.statement}"))
        parts.append(Text(f"  complexity term: {sp.sstr(result.formula.complexity)}"))
        parts.append(Text(f"  gap ≤ {sp.sstr(result.formula.gap)}"))
        parts.append(Text(f"  LaTeX: {to_latex(result.formula.gap)}", style="dim"))
    else:
        parts.append(Text(f"  does not apply: {result.reason}"))
    parts.append(Text("Derivation / source", style="bold"))
    parts.append(Text(entry.derivation))
    caveats = entry.caveats + (result.formula.notes if isinstance(result, Applied) else ())
    if caveats:
        parts.append(Text("Caveats", style="bold yellow"))
        parts.extend(Text(f"  • {c}", style="yellow") for c in caveats)
    return Group(*parts)


def entry_dict(entry: PriorBound, result: Applied | Inapplicable, spec_label: str) -> dict[str, Any]:
    out = registry_dicts([entry])[0]
    out.update(requirements=entry.requirements.describe(), derivation=entry.derivation,
               caveats=list(entry.caveats), built_on=spec_label)
    if isinstance(result, Applied) and result.formula.too_large is not None:
        out.update(statement=result.formula.statement, complexity=None, gap=None,
                   not_written_out=result.formula.too_large, notes=list(result.formula.notes),
                   status_for_spec=result.status)
    elif isinstance(result, Applied):
        out.update(statement=result.formula.statement, complexity=expression(result.formula.complexity),
                   gap=expression(result.formula.gap), notes=list(result.formula.notes),
                   status_for_spec=result.status)
    else:
        out["not_applicable"] = result.reason
    return out

