"""The result of a derivation: a Bound with its terms, assumptions and caveats.

A Bound holds sympy expressions and plain strings; it never formats itself beyond delegating to
``boundcalc.render`` (``str(bound)`` is the plain-text rendering, ``_repr_latex_`` the LaTeX one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy as sp

from boundcalc.calculus import ops
from boundcalc.domain import Domain, simplify_extrema
from boundcalc.symbols import C1

GAP_FORMS = ("derived", "printed")


@dataclass(frozen=True)
class Term:
    """One additive term of Ĝ_S: created at ``layer`` by ``rule``, scaled by the gains after it."""

    index: int
    layer: str
    kind: str
    rule: str
    diameter_rule: str | None
    factors: tuple[Any, ...] = field(repr=False)
    local: Any = field(repr=False)
    samples: Any = field(repr=False, default=1)

    @cached_property
    def expr(self) -> sp.Expr:
        """The term's contribution to Ĝ_S (normalised by m), in sympy's evaluated form."""
        product = ops.canonical(sp.Mul(*self.factors, self.local, evaluate=False)) / self.samples
        if any(not p.exp.is_Number for p in product.atoms(sp.Pow)):
            product = sp.powsimp(product, deep=True)  # merges B**4*B**(L-4); only for symbolic exponents
        return product


@dataclass(frozen=True)
class Bound:
    """Ĝ_S bound of a spec under one rule set, and the generalization-gap bound built on it."""

    spec_name: str
    rules: str
    rules_description: str
    compact: sp.Expr = field(repr=False)       # Ĝ_S as composed (nested, unevaluated, O(depth) size)
    samples: sp.Expr = field(repr=False)
    loss_lipschitz: sp.Expr = field(repr=False)
    delta: sp.Expr = field(repr=False)
    gap_form: str = "derived"
    terms: tuple[Term, ...] = field(default=(), repr=False)
    assumptions: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    symbols: dict[str, str] = field(default_factory=dict, repr=False)
    domain: Domain = field(default_factory=Domain, repr=False)   # what the spec's symbols satisfy (L ≥ 3 …)

    @cached_property
    def complexity(self) -> sp.Expr:
        """Ĝ_S ≤ this, written as the sum of the terms (readable; equals ``compact``)."""
        return sp.Add(*(t.expr for t in self.terms))

    @cached_property
    def confidence_term(self) -> sp.Expr:
        m, delta = self.samples, self.delta
        if self.gap_form == "printed":
            return sp.sqrt(9 * sp.log(2 / delta) / (2 * m))
        return 3 * sp.sqrt(sp.log(2 / delta) / (2 * m))

    @cached_property
    def complexity_coefficient(self) -> sp.Expr:
        """Factor in front of Ĝ_S in the gap bound."""
        if self.gap_form == "printed":
            return sp.sqrt(self.loss_lipschitz * sp.pi)
        return 2 * sp.sqrt(sp.pi) * self.loss_lipschitz

    @cached_property
    def gap(self) -> sp.Expr:
        """Generalization gap ≤ this, with probability ≥ 1 − δ."""
        return self.complexity_coefficient * self.complexity + self.confidence_term

    @cached_property
    def c1_power(self) -> sp.Expr | None:
        """Highest power of the unknown constant C1 in the bound (None if it cannot be read off), with every
        Max decided under the spec's own constraints (a repeat count L − 2 ≥ 1 makes L ≥ 3)."""
        powers = [power_of(t.expr, C1) for t in self.terms]
        if any(p is None for p in powers):
            return None
        if not powers:
            return sp.S.Zero
        return sp.simplify(simplify_extrema(sp.Max(*powers), self.domain))  # a small Max of degrees

    def __str__(self) -> str:
        from boundcalc.render.text import plain_text

        return plain_text(self)

    def _repr_latex_(self) -> str:
        from boundcalc.render.latex import bound_latex

        return "$$" + bound_latex(self) + "$$"


def power_of(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr | None:
    """Degree of ``symbol`` in a product-of-powers expression with Sums/Products; None if not such."""
    if not expr.has(symbol):
        return sp.S.Zero
    if expr == symbol:
        return sp.S.One
    if isinstance(expr, sp.Mul):
        parts = [power_of(a, symbol) for a in expr.args]
        return None if any(p is None for p in parts) else sp.Add(*parts)
    if isinstance(expr, sp.Add):
        parts = [power_of(a, symbol) for a in expr.args]
        return None if any(p is None for p in parts) else sp.Max(*parts)
    if isinstance(expr, sp.Pow):
        base = power_of(expr.base, symbol)
        if base is None or expr.exp.has(symbol):
            return None
        return base * expr.exp
    if isinstance(expr, sp.Product):
        (var, lo, hi), = expr.limits
        inner = power_of(expr.function, symbol)
        if inner is None or inner.has(var):
            return None
        return inner * (hi - lo + 1)
    if isinstance(expr, sp.Sum):
        (var, lo, hi), = expr.limits
        inner = power_of(expr.function, symbol)
        if inner is None:
            return None
        return sp.Max(inner.xreplace({var: lo}), inner.xreplace({var: hi}))
    return None
