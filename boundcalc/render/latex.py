"""LaTeX output: a display for Jupyter and a small standalone fragment for papers."""
from __future__ import annotations

from boundcalc.bound import Bound
from boundcalc.render.escape import tex_text
from boundcalc.render.names import to_latex


def bound_latex(bound: Bound) -> str:
    """The two inequalities, for ``_repr_latex_``."""
    return (r"\begin{aligned}\hat{\mathcal G}_S &\le " + to_latex(bound.complexity) + r"\\"
            r"\text{gap} &\le " + to_latex(bound.gap) + r"\end{aligned}")


def latex_document(bound: Bound) -> str:
    """A LaTeX fragment (align environment plus the term account and assumptions as comments/items)."""
    lines = [
        f"% boundcalc: spec {tex_text(bound.spec_name)}, rule set {bound.rules}, gap constant {bound.gap_form}",
        r"\begin{align}",
        r"  \hat{\mathcal G}_S(\mathcal F) &\le " + to_latex(bound.complexity) + r" \\",
        r"  \mathbb E[\ell] - \hat{\mathbb E}[\ell] &\le " + to_latex(bound.gap),
        r"\end{align}",
        "Terms:",
        r"\begin{enumerate}",
    ]
    for term in bound.terms:
        lines.append(r"  \item $" + to_latex(term.expr) + rf"$ --- {tex_text(term.kind)} at layer "
                     rf"\texttt{{{tex_text(term.layer)}}}: {tex_text(term.rule)}"
                     + (rf"; diameter: {tex_text(term.diameter_rule)}" if term.diameter_rule else ""))
    lines.append(r"\end{enumerate}")
    lines.append("Assumptions:")
    lines.append(r"\begin{itemize}")
    lines.extend(rf"  \item {tex_text(a)}" for a in bound.assumptions + bound.caveats)
    lines.append(r"\end{itemize}")
    return "\n".join(lines) + "\n"
