"""Pieces every format prints for a bound in the shared form (``Bound.shared``; see boundcalc.shared_form)."""
from __future__ import annotations

from boundcalc.bound import Bound
from boundcalc.shared_form import MAX_WRITTEN_NODES

#: terms listed one by one in the Ĝ_S line when there are no more than this many
SPELLED_OUT = 3


def complexity_text(count: int) -> str:
    """``T[1] + T[2] + … + T[n]``: Ĝ_S as the sum of the term account."""
    if count <= SPELLED_OUT:
        return " + ".join(f"T[{i}]" for i in range(1, count + 1))
    return f"T[1] + T[2] + … + T[{count}]"


def complexity_latex(count: int) -> str:
    if count <= SPELLED_OUT:
        return " + ".join(f"T_{{{i}}}" for i in range(1, count + 1))
    return rf"T_{{1}} + T_{{2}} + \dots + T_{{{count}}}"


def form_note(bound: Bound, latex: bool = False) -> str:
    """What the shared form is and why it is used (with the names in LaTeX math for LaTeX and Markdown)."""
    form = bound.shared
    names = (r"$T_i$ is term $i$; $\Gamma_j$", r"$\Xi_j$", r"$\prod_{j=a}^{b} \Gamma_j = \Gamma_a \cdots \Gamma_b$") \
        if latex else ("T[i] is term i; Γ[j]", "Ξ[j]", "Product(Γ[j], (j, a, b)) = Γ[a]⋯Γ[b]")
    return (f"Written with shared sub-expressions: the {len(bound.terms)} terms take {form.written_size} "
            f"expression nodes written out in full, above the limit of {MAX_WRITTEN_NODES}. {names[0]} (a gain "
            f"several terms carry) and {names[1]} (a sub-expression used more than once) are the "
            f"{len(form.definitions)} names defined below, each in names defined before it; {names[2]}. "
            "Substituting the names gives every term exactly.")
