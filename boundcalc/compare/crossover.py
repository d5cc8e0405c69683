"""Where one bound's leading order is below another's: a condition on one growth variable, decided on the
spec's domain (sizes, ranks and counts ≥ 1, a repeat count ≥ 1 itself, C1, C2 ≥ 1, norms > 0).

Every message names both bounds. A condition the domain rules out is "never" (``r < 1`` with r ≥ 1), one the
domain always meets is "always"; a threshold that has no value somewhere on the domain says where
("undefined at C1 = 1"), and a direction that changes with a constant is split into its cases (C1 = 1 and
C1 > 1). Logs are dropped from the orders before this (the caller's job), so the ratio is a monomial.
"""
from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from boundcalc.compare.orders import AT_LEAST_ONE
from boundcalc.domain import Domain

SOLVE_ORDER = ("r", "L", "h", "m")
#: symbols named in a "same order" message before eliding
MAX_NAMES = 8


def crossover(ratio: sp.Expr, key: str, ref: str, growth: dict[str, sp.Symbol], solve_for: str | None,
              domain: Domain, differing: Iterable[str] = ()) -> str:
    """The condition on one growth variable under which ``key`` is smaller than ``ref`` (up to constants);
    ``differing`` names the non-growth symbols in which the two bounds differ (said when orders are equal)."""
    names = [solve_for] if solve_for else [n for n in SOLVE_ORDER if n in growth] + list(growth)
    candidates = [growth[n] for n in names if n in growth and ratio.has(growth[n])]
    if not candidates:
        if solve_for and any(ratio.has(g) for g in growth.values()):
            return f"{key}: same order as {ref} in {solve_for} (the order ratio {ratio} does not involve {solve_for})"
        return same_order(key, ref, ratio, growth, differing)
    x = candidates[0]
    verdict = _verdict(ratio, x, domain, frozenset(), split=True)
    if verdict is None:
        return f"{key}: sympy could not solve {key}/{ref} = 1 for {x}"
    return f"{key} < {ref} (up to constants){verdict if verdict.startswith(':') else ' ' + verdict}"


def same_order(key: str, ref: str, ratio: sp.Expr, growth: dict[str, sp.Symbol], differing: Iterable[str]) -> str:
    """'same order' with the variables it was compared in, and the factors that were held constant."""
    where = f"in {', '.join(growth)}" if growth else "(the spec has no growth variable: every size is a number)"
    out = f"{key}: same order as {ref} {where} (order ratio {ratio})"
    differing = sorted(differing)
    if differing:
        shown = ", ".join(differing[:MAX_NAMES]) + (f", … ({len(differing) - MAX_NAMES} more)"
                                                   if len(differing) > MAX_NAMES else "")
        out += f"; the bounds also differ in {shown}, held constant here"
    return out


def _verdict(ratio: sp.Expr, x: sp.Symbol, domain: Domain, strict: frozenset, split: bool) -> str | None:
    """The phrase after "key < ref (up to constants)": iff / never / always / a split on a constant."""
    low = domain.lower_of(x) or sp.S.One
    log_ratio = sp.expand_log(sp.log(ratio), force=True)
    slope = sp.simplify(sp.diff(log_ratio, x) * x)      # d log(ratio) / d log(x)
    direction = domain.sign(slope, strict)
    if direction is None and split:
        constants = sorted((c for c in AT_LEAST_ONE if slope.has(c) and c not in strict), key=str)
        if constants:
            c = constants[0]
            at_bound = _verdict(ratio.subs(c, domain.lower_of(c) or 1), x, domain, strict, split=False)
            above = _verdict(ratio, x, domain, strict | {c}, split=False)
            if at_bound is not None and above is not None:
                return (f": depends on {c}: at {c} = {domain.lower_of(c) or 1}{_clause(at_bound)}; "
                        f"for {c} > 1{_clause(above)}")
    try:
        solutions = sp.solve(sp.Eq(log_ratio, 0), x)
    except (NotImplementedError, ValueError):
        return None
    if not solutions:
        return _no_crossing(ratio, x, low, log_ratio, domain, strict)
    if len(solutions) != 1:
        return None
    threshold = _readable(solutions[0])
    undefined = undefined_points(threshold, domain)
    note = f", which is undefined at {', '.join(undefined)}" if undefined else ""
    if direction == 1:
        if domain.compare(threshold, low) in (-1, 0):
            return f": never, since it needs {x} < {threshold} and {x} ≥ {low}"
        top = next((u for u in domain.upper_of(x) if domain.compare(threshold, u) == 1), None)
        if top is not None:
            return f": always, since it needs {x} < {threshold} and {x} ≤ {top} (a rank is at most its width)"
        return f"iff {x} < {threshold}{note}"
    if direction == -1:
        top = next((u for u in domain.upper_of(x) if domain.compare(threshold, u) in (0, 1)), None)
        if top is not None:
            return f": never, since it needs {x} > {threshold} and {x} ≤ {top} (a rank is at most its width)"
        below = domain.compare(threshold, low)
        if below == -1:
            return f": always, since it needs {x} > {threshold} and {x} ≥ {low}"
        if below == 0:
            return f": always for {x} > {low} (it needs {x} > {threshold}; equal orders at {x} = {low})"
        return f"iff {x} > {threshold}{note}"
    return _eventually(slope, x, threshold, note, strict)


def _clause(verdict: str) -> str:
    """A verdict inside a case: ': never, …' -> ', never, …'; 'iff …' -> ', iff …'."""
    return ", " + verdict[2:] if verdict.startswith(": ") else ", " + verdict


def _no_crossing(ratio, x, low, log_ratio, domain: Domain, strict: frozenset) -> str | None:
    sign = domain.sign(log_ratio, strict)
    if sign == 1:
        return f": never, since the order ratio {ratio} is > 1 for every {x} ≥ {low}"
    if sign == -1:
        return f": always, since the order ratio {ratio} is < 1 for every {x} ≥ {low}"
    return None


def _eventually(slope: sp.Expr, x: sp.Symbol, threshold: sp.Expr, note: str, strict: frozenset) -> str:
    """Direction not fixed on the whole domain: say where the orders meet and which way it goes for large x."""
    meet = f"the orders meet at {x} = {threshold}{note}"
    shifted = slope.xreplace({c: 1 + sp.Dummy(f"{c}_excess", positive=True) for c in strict})
    try:
        limit = sp.limit(shifted, x, sp.oo)
    except (NotImplementedError, ValueError, TypeError):
        limit = None
    if limit is not None and limit.is_extended_negative:     # oo is extended-positive, not positive
        return f": for every {x} large enough ({meet}; there may be other roots)"
    if limit is not None and limit.is_extended_positive:
        return f": only for {x} below a crossing ({meet}; there may be other roots)"
    return f": direction undetermined ({meet})"


def undefined_points(expr: sp.Expr, domain: Domain) -> list[str]:
    """Boundary values of the domain at which ``expr`` has no value (0 in a denominator …), e.g. C1 = 1."""
    out = []
    for sym in sorted(expr.free_symbols, key=str):
        low = domain.lower_of(sym)
        if low is None:
            continue
        value = sp.sympify(expr).subs(sym, low)
        if value is sp.nan or value.has(sp.nan, sp.zoo) or value in (sp.oo, -sp.oo):
            out.append(f"{sym} = {low}")
    return out


def _readable(expr: sp.Expr) -> sp.Expr:
    """exp(log(X)/(L − 1)) -> X**(1/(L − 1)): the form sympy's solver returns, made readable."""
    if isinstance(expr, sp.exp):
        inner = sp.logcombine(expr.args[0], force=True)
        if isinstance(inner, sp.log):
            return inner.args[0]
    return sp.powsimp(expr, force=True)
