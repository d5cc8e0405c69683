"""Markdown output: headings, the bound in $$…$$, a term table, the assumptions."""
from __future__ import annotations

from boundcalc.bound import Bound
from boundcalc.render import shared
from boundcalc.render.escape import md_code, one_line
from boundcalc.render.latex import heads_latex
from boundcalc.render.names import to_latex
from boundcalc.render.text import status_line


def to_markdown(bound: Bound) -> str:
    complexity, gap = heads_latex(bound)
    form = bound.shared
    out = [
        f"# Bound for {md_code(bound.spec_name)} (rule set `{bound.rules}`)",
        "",
        "$$\\hat{\\mathcal G}_S \\le " + complexity + "$$",
        "",
        f"Generalization gap, with probability ≥ 1 − δ (gap constant: {bound.gap_form}):",
        "",
        "$$\\text{gap} \\le " + gap + "$$",
        "",
        "S" + status_line(bound)[1:] + ".",
        "",
        f"Highest power of C1: ${to_latex(bound.c1_power)}$" if bound.c1_power is not None else "",
        "",
    ]
    if form is not None:
        out += [shared.form_note(bound, latex=True), "", "## Named sub-expressions", "", "| name | expression |",
                "|---|---|"]
        out += [f"| ${to_latex(name)}$ | ${to_latex(value)}$ |" for name, value in form.definitions]
        out.append("")
    out += [
        "## Terms",
        "",
        "| # | layer | kind | term | rule | diameter rule |",
        "|---|---|---|---|---|---|",
    ]
    for t, expr in zip(bound.terms, bound.term_exprs):
        out.append(f"| {t.index} | {md_code(t.layer, in_table=True)} | {t.kind} | ${to_latex(expr)}$ | "
                   f"{_cell(t.rule)} | {_cell(t.diameter_rule or '—')} |")
    out += ["", "## Assumptions", ""] + [f"- {one_line(a)}" for a in bound.assumptions]
    out += ["", "## Caveats", ""] + [f"- {one_line(c)}" for c in bound.caveats]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return one_line(text).replace("|", "\\|")
