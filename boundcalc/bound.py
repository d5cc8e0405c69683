"""The result of a derivation: a Bound with its terms, assumptions and caveats.

A Bound holds sympy expressions and plain strings; it never formats itself beyond delegating to
``boundcalc.render`` (``str(bound)`` is the plain-text rendering, ``_repr_latex_`` the LaTeX one).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

import sympy as sp

from boundcalc.calculus import arith
from boundcalc.domain import Domain, simplify_extrema
from boundcalc.printers import printer
from boundcalc.symbols import C1

if TYPE_CHECKING:
    from boundcalc.shared_form import SharedForm

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
        return tidy(arith.canonical(sp.Mul(*self.factors, self.local, evaluate=False)) / self.samples)


def tidy(product: sp.Expr) -> sp.Expr:
    """A term's evaluated product, with powers of one base merged when an exponent is symbolic."""
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
        """Ĝ_S ≤ this, written as the sum of the terms (readable; equals ``compact``). Above
        ``shared_form.MAX_WRITTEN_NODES`` nodes (see :attr:`shared`) it is slow to build and huge."""
        return sp.Add(*(t.expr for t in self.terms))

    @cached_property
    def written_size(self) -> int:
        """Expression nodes the terms take written out in full (each use of a shared part counted)."""
        from boundcalc.shared_form import written_size

        return written_size(self.terms)

    @cached_property
    def shared(self) -> "SharedForm | None":
        """The terms with their shared sub-expressions named once, when writing them out in full would take
        more than ``shared_form.MAX_WRITTEN_NODES`` nodes (deep residual networks); None otherwise."""
        from boundcalc.shared_form import MAX_WRITTEN_NODES, shared_form

        if self.written_size <= MAX_WRITTEN_NODES:
            return None
        return shared_form(self.terms, self.written_size)

    @cached_property
    def term_exprs(self) -> tuple[sp.Expr, ...]:
        """Each term as printed: :attr:`Term.expr`, or in the names of :attr:`shared`."""
        return tuple(t.expr for t in self.terms) if self.shared is None else self.shared.terms

    @cached_property
    def printed_gap(self) -> sp.Expr:
        """The gap bound as printed: :attr:`gap`, or (shared form) written with the symbol Ĝ_S."""
        from boundcalc.shared_form import COMPLEXITY

        if self.shared is None:
            return self.gap
        return self.complexity_coefficient * COMPLEXITY + self.confidence_term

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
        powers = [power_of(t.expr, C1) for t in self.terms] if self.shared is None else \
            shared_powers(self.shared, C1)
        if any(p is None for p in powers):
            return None
        if not powers:
            return sp.S.Zero
        return sp.simplify(simplify_extrema(sp.Max(*powers), self.domain))  # a small Max of degrees

    def __str__(self) -> str:
        return printer("text")(self)

    def _repr_latex_(self) -> str:
        return "$$" + printer("latex")(self) + "$$"


def power_of(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr | None:
    """Degree of ``symbol`` in a product-of-powers expression with Sums/Products; None if not such."""
    if not expr.has(symbol):
        return sp.S.Zero
    return _power_step(expr, symbol, lambda arg: power_of(arg, symbol))


def _power_step(expr: sp.Expr, symbol: sp.Symbol, power: Callable[[sp.Expr], sp.Expr | None]
                ) -> sp.Expr | None:
    """:func:`power_of` of an ``expr`` that contains ``symbol``, given ``power`` of its arguments."""
    if expr == symbol:
        return sp.S.One
    if isinstance(expr, sp.Mul):
        parts = [power(a) for a in expr.args]
        return None if any(p is None for p in parts) else sp.Add(*parts)
    if isinstance(expr, sp.Add):
        parts = [power(a) for a in expr.args]
        return None if any(p is None for p in parts) else sp.Max(*parts)
    if isinstance(expr, sp.Pow):
        base = power(expr.base)
        if base is None or expr.exp.has(symbol):
            return None
        return base * expr.exp
    if isinstance(expr, sp.Product):
        (var, lo, hi), = expr.limits
        inner = power(expr.function)
        if inner is None or inner.has(var):
            return None
        return inner * (hi - lo + 1)
    if isinstance(expr, sp.Sum):
        (var, lo, hi), = expr.limits
        inner = power(expr.function)
        if inner is None:
            return None
        return sp.Max(inner.xreplace({var: lo}), inner.xreplace({var: hi}))
    return None


def shared_powers(form: "SharedForm", symbol: sp.Symbol) -> list[sp.Expr | None]:
    """:func:`power_of` ``symbol`` in each term of a bound in the shared form, read off the shared expression
    graph once (each node's power from its arguments' powers; a run of gains from prefix sums)."""
    from boundcalc.shared_form import is_leaf, post_order

    power: dict[int, sp.Expr | None] = {}
    contains: dict[int, bool] = {}
    roots = [*form.gains, *(x for p in form.parts for x in (*p.inline, p.local))]
    for node in post_order(roots):
        key = id(node)
        contains[key] = node.has(symbol) if is_leaf(node) else any(contains[id(a)] for a in node.args)
        power[key] = _power_step(node, symbol, lambda a: power[id(a)]) if contains[key] else sp.S.Zero
    prefix, unknown = [sp.S.Zero], [0]     # sums of the gains' powers, and of gains without one
    for gain in form.gains:
        p = power[id(gain)]
        prefix.append(prefix[-1] + (p if p is not None else 0))
        unknown.append(unknown[-1] + (p is None))
    out = []
    for part in form.parts:
        parts = [power[id(f)] for f in (*part.inline, part.local)]
        if None in parts or any(unknown[b] - unknown[a - 1] for a, b in part.runs):
            out.append(None)
        else:
            out.append(sp.Add(*parts, *(prefix[b] - prefix[a - 1] for a, b in part.runs)))
    return out
