"""The Bound object: readable printing, LaTeX in Jupyter, deep networks render without recursion errors."""
import sympy as sp

import boundcalc

CHAIN = "data: {samples: m, dim: d}\nlayers:\n%s  - {op: linear, out: k, name: last}\n"


def chain(depth: int) -> str:
    return CHAIN % "".join(f"  - {{op: linear, out: h, name: l{i}}}\n  - relu\n" for i in range(1, depth))


def test_str_and_repr_latex():
    bound = boundcalc.derive(boundcalc.parse_spec(chain(3)))
    text = str(bound)
    assert "Ĝ_S ≤" in text and "term 3: disturbance at layer last" in text
    latex = bound._repr_latex_()
    assert latex.startswith("$$") and r"\hat{\mathcal G}_S" in latex and r"s_{\mathrm{l1}}" in latex


def test_deep_chain_terms_render():
    depth = 400
    bound = boundcalc.derive(boundcalc.parse_spec(chain(depth)))
    assert len(bound.terms) == depth
    last = bound.terms[-1].expr  # a product of depth-1 spectral norms
    assert len(last.atoms(sp.Symbol)) >= depth
    assert bound.c1_power == depth - 1
