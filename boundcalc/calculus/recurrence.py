"""Closed forms for a ``repeat`` block whose count is a symbol (e.g. L).

The first iteration is composed on its own (its input may be the data itself, of another shape). For
iterations t ≥ 2 the body is composed once on placeholder inputs, which gives the *steady map*: every
output field is linear in the input fields, x(t) = M(t)·x(t−1) + c(t). The dependency of fields on each
other is triangular (Lipschitz, anchor, image norm → diameter → width), so each field solves as a
first-order linear recurrence,

    x_k(n) = Π_{u=2..n} M_kk(u) · x_k(1) + Σ_{t=2..n} b_k(t) · Π_{u=t+1..n} M_kk(u),
    b_k(t) = Σ_{l≠k} M_kl(t)·x_l(t−1) + c_k(t),

and the width's terms keep their provenance (one summed term per term of the body). Products of a
factor that does not depend on the index become powers. Valid for every count n ≥ 1; the tests check it
against the unrolled derivation for n = 1..6.
"""
from __future__ import annotations

import random
from typing import Any

import networkx as nx
import sympy as sp

from boundcalc.calculus import arith
from boundcalc.calculus.compose import compose_scope
from boundcalc.calculus.quantities import SymbolicQuantities
from boundcalc.calculus.rules import RuleSet
from boundcalc.calculus.state import LINEAR_FIELDS, LocalTerm, State, Transfer
from boundcalc.errors import DeriveError

_ALL = ("width",) + LINEAR_FIELDS


def solve_repeat(attrs: dict, entering: State, ruleset: RuleSet, q: SymbolicQuantities) -> Transfer:
    """Transfer of a symbolic-count repeat node: gain Π a(t), summed terms, closed-form fields."""
    repeat = attrs["layer"]
    if not isinstance(entering.image_norm, sp.Basic):
        raise DeriveError(f"repeat {repeat.name}: its count {repeat.count} has no value; give one "
                          f"(e.g. --set {repeat.count}=3) to evaluate numerically")
    n, t = repeat.count, repeat.index
    j = sp.Symbol(f"{t}_n", positive=True, integer=True)
    u = sp.Symbol(f"{t}'", positive=True, integer=True)

    entry_symbols = {f: sp.Dummy(f"E_{f}", positive=True) for f in _ALL}
    entry_values = {entry_symbols[f]: getattr(entering, f) for f in _ALL if getattr(entering, f) is not None}
    entry = entering._replace(**{f: (sp.S.Zero if arith.is_zero(getattr(entering, f)) else entry_symbols[f])
                                 for f in _ALL if getattr(entering, f) is not None})
    first = compose_scope(attrs["body"], entry, ruleset, q, index=sp.Integer(1))
    x1 = first.state

    steady_symbols = {f: sp.Dummy(f"P_{f}", positive=True) for f in _ALL}
    steady_in = x1._replace(**{f: symbol for f, symbol in steady_symbols.items() if getattr(x1, f) is not None})
    steady = compose_scope(attrs["body_steady"], steady_in, ruleset, q, index=t)
    if steady.state.min_rank != x1.min_rank:
        raise DeriveError(f"repeat {repeat.name}: the running minimum rank changes with the index "
                          f"({x1.min_rank} then {steady.state.min_rank}); with rule set '{ruleset.name}' give "
                          "the body a rank that does not depend on the index, or a numeric count")

    linear = _present(x1, steady.state)
    M, c = _affine_map(steady.state, steady_symbols, linear)
    closed: dict[str, sp.Expr] = {}
    for k in _triangular_order(M, repeat.name):
        closed[k] = _solve_field(k, M, c, closed, getattr(x1, k), t, j, u)

    def at(expr: sp.Expr, iteration: sp.Expr) -> sp.Expr:
        """Replace steady placeholders by the closed forms at ``iteration`` (= t − 1)."""
        return expr.xreplace({steady_symbols[l]: closed[l].xreplace({j: iteration}) for l in linear})

    gain_t = arith.canonical(arith.mul(*steady.input_factors))
    tail = _product(gain_t, t, u, sp.Integer(2), n)
    terms: list[LocalTerm] = []
    for term in first.terms:
        terms.append(LocalTerm(term.local.layer, term.local.kind, arith.mul(term.value, tail), term.local.rule,
                               term.local.diameter_rule))
    terms += _steady_terms(steady.terms, at, gain_t, t, u, n)

    fields = {k: closed[k].xreplace({j: n}) if k in linear else None for k in LINEAR_FIELDS}
    gain = arith.mul(*first.input_factors, tail)
    state = x1._replace(width=None, diameter_rule=steady.state.diameter_rule, **fields)

    def enter(expr: Any) -> Any:
        return expr.xreplace(entry_values) if isinstance(expr, sp.Basic) else expr

    state = state._replace(**{k: enter(getattr(state, k)) for k in linear})
    terms = [LocalTerm(tm.layer, tm.kind, enter(tm.expr), tm.rule, tm.diameter_rule) for tm in terms]
    return Transfer(state=state, gains=(enter(gain),), terms=tuple(terms))


def _present(*states: State) -> tuple[str, ...]:
    """The linear fields every one of ``states`` bounds (the token bound is None where nothing tracks it)."""
    return tuple(f for f in LINEAR_FIELDS if all(getattr(s, f) is not None for s in states))


def _affine_map(state: State, symbols: dict[str, sp.Expr], linear: tuple[str, ...]) -> tuple[dict, dict]:
    """The steady body as an affine map of its entering fields ``linear``: M[k][l] = ∂x_k/∂x_l and c[k] = x_k at
    zero input, as expressions of the index."""
    zero = {s: 0 for s in symbols.values()}
    M: dict[str, dict[str, sp.Expr]] = {}
    c: dict[str, sp.Expr] = {}
    for k in linear:
        expr = sp.sympify(getattr(state, k))
        M[k] = {l: sp.diff(expr, symbols[l]) for l in linear}
        c[k] = arith.canonical(expr.xreplace(zero))
    return M, c


def _steady_terms(steady_terms, at, gain_t: sp.Expr, t: sp.Symbol, u: sp.Symbol, n: sp.Expr) -> list[LocalTerm]:
    """The terms of iterations t = 2..n: each steady term at t, times the gains of the iterations after it."""
    out = []
    for term in steady_terms:
        value = at(arith.canonical(term.value), t - 1)
        if sp.sympify(value).is_zero:
            continue
        summand = arith.mul(value, _product(gain_t, t, u, t + 1, n))
        out.append(LocalTerm(f"{term.local.layer} for {t}=2..{n}", term.local.kind,
                             _sum(summand, t, sp.Integer(2), n), term.local.rule, term.local.diameter_rule))
    return out


def _triangular_order(M: dict[str, dict[str, sp.Expr]], name: str) -> list[str]:
    deps = nx.DiGraph()
    deps.add_nodes_from(M)
    for k, row in M.items():
        for l, coefficient in row.items():
            if l != k and not coefficient.is_zero:
                deps.add_edge(l, k)
    try:
        return list(nx.topological_sort(deps))
    except nx.NetworkXUnfeasible:
        raise DeriveError(f"repeat {name}: the body's state fields depend on each other cyclically; "
                          "no closed form (give the count a number to unroll)") from None


def _solve_field(k: str, M: dict, c: dict, closed: dict, first_value: Any, t: sp.Symbol, j: sp.Symbol,
                 u: sp.Symbol) -> sp.Expr:
    """Closed form of field k after j ≥ 1 iterations, as an expression of j."""
    tau = sp.Symbol(f"{t}_{k[0]}", positive=True, integer=True)
    diag = M[k][k]

    def b(at: sp.Expr) -> sp.Expr:
        parts = [arith.mul(M[k][l].xreplace({t: at}), closed[l].xreplace({j: at - 1}))
                 for l in closed if l != k and not M[k][l].is_zero]
        return arith.canonical(arith.add(*parts, c[k].xreplace({t: at})))

    first_value = sp.sympify(first_value)
    if diag.is_zero:
        candidate = b(j)
        if _numerically_equal(_empty_ranges_as_identity(candidate.xreplace({j: 1})), first_value):
            return candidate
        return sp.Piecewise((first_value, sp.Eq(j, 1)), (candidate, True))
    head = arith.mul(_product(diag, t, u, sp.Integer(2), j), first_value)
    body = arith.mul(b(tau), _product(diag.xreplace({t: tau}), tau, u, tau + 1, j))
    return arith.canonical(arith.add(head, _sum(body, tau, sp.Integer(2), j)))


def _empty_ranges_as_identity(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every Π over an empty or reversed numeric range replaced by 1 and every such Σ by 0,
    then evaluated: the convention a reader (and :mod:`boundcalc.numerics`) applies. sympy's ``doit``
    follows Karr's convention instead (Π_{a..b} = 1/Π_{b+1..a−1} when b < a − 1), under which a closed
    form can look right at j = 1 and still print a wrong-looking Π_{2..0}."""
    def empty(node: sp.Basic) -> bool:
        if not isinstance(node, (sp.Product, sp.Sum)):
            return False
        (_, lo, hi), = node.limits
        return (hi - lo).is_number and bool(hi - lo < 0)

    return expr.replace(empty, lambda node: sp.S.One if isinstance(node, sp.Product) else sp.S.Zero).doit()


def _product(factor: sp.Expr, var: sp.Symbol, dummy: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """Π_{dummy=lo..hi} factor(var := dummy); a power when the factor does not depend on ``var``."""
    factor = sp.sympify(factor)
    if factor == 1:
        return sp.S.One
    if not factor.has(var):
        return factor ** (hi - lo + 1)
    return sp.Product(factor.xreplace({var: dummy}), (dummy, lo, hi))


def _sum(summand: sp.Expr, var: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    summand = sp.sympify(summand)
    if summand.is_zero:
        return sp.S.Zero
    if not summand.has(var):
        return arith.mul(summand, hi - lo + 1)
    return sp.Sum(summand, (var, lo, hi))


def _numerically_equal(a: sp.Expr, b: sp.Expr, trials: int = 3) -> bool:
    """Spot check a == b at random positive values of every symbol (both sides are block-sized)."""
    a, b = sp.sympify(a), sp.sympify(b)
    rng = random.Random(0)
    for _ in range(trials):
        atoms = (a.atoms(sp.Indexed) | b.atoms(sp.Indexed))
        values = {x: rng.uniform(0.5, 2.0) for x in atoms}
        va, vb = a.xreplace(values), b.xreplace(values)
        syms = va.free_symbols | vb.free_symbols
        values = {x: rng.uniform(0.5, 2.0) for x in syms}
        fa, fb = complex(va.xreplace(values).evalf()), complex(vb.xreplace(values).evalf())
        if abs(fa - fb) > 1e-9 * max(1.0, abs(fa), abs(fb)):
            return False
    return True
