"""LaTeX output: a display for Jupyter and a small standalone fragment for papers."""
from __future__ import annotations

from boundcalc.bound import Bound
from boundcalc.render import shared
from boundcalc.render.escape import tex_text
from boundcalc.render.names import to_latex


def heads_latex(bound: Bound) -> tuple[str, str]:
    """The Ĝ_S and gap bounds in LaTeX (in the shared form: Ĝ_S as the sum of the terms T_i)."""
    complexity = to_latex(bound.complexity) if bound.shared is None else shared.complexity_latex(len(bound.terms))
    return complexity, to_latex(bound.printed_gap)


def bound_latex(bound: Bound) -> str:
    """The two inequalities, for ``_repr_latex_``."""
    complexity, gap = heads_latex(bound)
    return (r"\begin{aligned}\hat{\mathcal G}_S &\le " + complexity + r"\\"
            r"\text{gap} &\le " + gap + r"\end{aligned}")


def latex_document(bound: Bound) -> str:
    """A LaTeX fragment (align environment plus the term account and assumptions as comments/items)."""
    complexity, gap = heads_latex(bound)
    form = bound.shared
    lines = [
        f"% boundcalc: spec {tex_text(bound.spec_name)}, rule set {bound.rules}, gap constant {bound.gap_form}",
        r"\begin{align}",
        r"  \hat{\mathcal G}_S(\mathcal F) &\le " + complexity + r" \\",
        r"  \mathbb E[\ell] - \hat{\mathbb E}[\ell] &\le " + gap,
        r"\end{align}",
    ]
    if form is not None:
        lines += [shared.form_note(bound, latex=True), r"\begin{itemize}"]
        lines += [rf"  \item ${to_latex(name)} = {to_latex(value)}$" for name, value in form.definitions]
        lines += [r"\end{itemize}", r"Terms ($T_i$ is item $i$):"]
    else:
        lines.append("Terms:")
    lines.append(r"\begin{enumerate}")
    for term, expr in zip(bound.terms, bound.term_exprs):
        lines.append(r"  \item $" + to_latex(expr) + rf"$ --- {tex_text(term.kind)} at layer "
                     rf"\texttt{{{tex_text(term.layer)}}}: {tex_text(term.rule)}"
                     + (rf"; diameter: {tex_text(term.diameter_rule)}" if term.diameter_rule else ""))
    lines.append(r"\end{enumerate}")
    lines.append("Assumptions:")
    lines.append(r"\begin{itemize}")
    lines.extend(rf"  \item {tex_text(a)}" for a in bound.assumptions + bound.caveats)
    lines.append(r"\end{itemize}")
    return "\n".join(lines) + "\n"
