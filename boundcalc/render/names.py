"""LaTeX names for boundcalc's ASCII symbol names (``s_fc1`` -> ``s_{\\mathrm{fc1}}``)."""
from __future__ import annotations

import sympy as sp

from boundcalc.render.escape import tex_math_name, tex_text

_FIXED = {"X_F": r"\lVert X\rVert_F", "C1": "C_1", "C2": "C_2", "gamma": r"\gamma", "delta": r"\delta",
          "R": "R", "B_X": "B_X", "m": "m", "Γ": r"\Gamma", "Ξ": r"\Xi", "Ĝ_S": r"\hat{\mathcal G}_S"}


def latex_name(name: str) -> str:
    """LaTeX for a symbol name; a name that is not a plain identifier is printed as text (escaped), so
    a name can never inject LaTeX into a formula."""
    if name in _FIXED:      # boundcalc's own names (Γ, Ξ, Ĝ_S are never spec identifiers: those are ASCII)
        return _FIXED[name]
    if tex_math_name(name) is None:
        return r"\text{" + tex_text(name) + "}"
    kind, sep, rest = name.partition("_")
    if sep and kind in ("s", "f", "r", "b", "w") and rest:
        return f"{kind}_{{\\mathrm{{{rest.replace('_', chr(92) + '_')}}}}}"
    if len(name) > 1 and "_" not in name and name not in ("pi",):
        greek = {"alpha", "beta", "rho", "kappa", "lambda", "sigma", "tau", "eta", "mu", "nu", "theta"}
        if name in greek:
            return "\\" + name
    return name.replace("_", r"\_") if "_" in name and not sep else name


def symbol_names(expr: sp.Basic) -> dict[sp.Symbol, str]:
    """The ``symbol_names`` mapping for ``sympy.latex`` covering every symbol in ``expr``."""
    symbols = set(expr.free_symbols) | {b.label for b in expr.atoms(sp.IndexedBase)}
    symbols |= {s for b in expr.atoms(sp.Sum, sp.Product) for (s, *_) in b.limits}
    return {s: latex_name(s.name) for s in symbols if isinstance(s, sp.Symbol)}


def to_latex(expr: sp.Basic) -> str:
    expr = sp.sympify(expr)
    return sp.latex(expr, symbol_names=symbol_names(expr))
