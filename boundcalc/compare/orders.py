"""Leading order of a bound as its growth variables (depth L, width h, rank r, samples m …) go to infinity.

An order is a list of monomials (sympy products of powers), none dominated by another: the bound is
≍ their sum up to constant factors. Rules, each an upper bound up to constants:

- constants (norm bounds, C1, C2, γ, numbers) are dropped, except as the base of a power whose exponent
  grows (C1^(L−3) → C1^L);
- a sum keeps its non-dominated terms; (a + b)^p ≍ a^p + b^p for p > 0; max(a, b) ≤ a + b;
- a sum Σ_{i=a..b} f(i) ≤ (b − a + 1)·(f(a) + f(b)) (terms monotone in i, as in every bound here);
- log(a·b) = log a + log b, log(c^L) ≍ L.

Ordering assumes the universal constants C1, C2 ≥ 1 (so C1^L grows); a term is dropped only when another
is at least as large in every variable. Anything else raises :class:`OrderUnknown`.
"""
from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from boundcalc.numerics import known_sign
from boundcalc.symbols import C1, C2

#: constant bases taken to be ≥ 1 when comparing growth (universal constants of the chain rule)
AT_LEAST_ONE = frozenset({C1, C2})
_LARGE = 10 ** 6


def eventual_sign(expr: sp.Expr, growth: Iterable[sp.Symbol]) -> int | None:
    """Sign of ``expr`` once every growth variable is large (shifted by 10⁶); None when sympy can't tell."""
    return known_sign(sp.sympify(expr).xreplace({g: g + _LARGE for g in growth}))


class OrderUnknown(ValueError):
    """The expression has a shape these rules do not cover."""


class Orders:
    """Leading-order analysis with respect to a fixed set of growth symbols."""

    def __init__(self, growth: Iterable[sp.Symbol]) -> None:
        self.growth = frozenset(growth)

    # -- public ----------------------------------------------------------------------------------
    def order(self, expr: sp.Expr) -> list[sp.Expr]:
        """The non-dominated monomials of ``expr`` (a list of one ``1`` for a constant)."""
        return self.prune(self._order(sp.sympify(expr)))

    def dominates(self, a: sp.Expr, b: sp.Expr) -> bool:
        """True when a ≥ c·b eventually, in every growth variable (a/b has only non-decaying factors)."""
        ratio = sp.powsimp(sp.expand_power_base(a / b, force=True), force=True)
        return all(self._non_decaying(factor) for factor in sp.Mul.make_args(ratio))

    def prune(self, monomials: list[sp.Expr]) -> list[sp.Expr]:
        kept: list[sp.Expr] = []
        for mono in monomials:
            if any(self.dominates(k, mono) for k in kept):
                continue
            kept = [k for k in kept if not self.dominates(mono, k)] + [mono]
        return kept

    def part(self, monomials: list[sp.Expr], var: sp.Symbol) -> list[sp.Expr]:
        """The factors of each monomial that involve ``var``, non-dominated ones kept."""
        parts = [sp.Mul(*(f for f in sp.Mul.make_args(mono) if f.has(var))) for mono in monomials]
        return self.prune(parts)

    @staticmethod
    def drop_logs(monomials: list[sp.Expr]) -> list[sp.Expr]:
        out = []
        for mono in monomials:
            kept = sp.Mul(*(f for f in sp.Mul.make_args(mono) if not f.as_base_exp()[0].has(sp.log)))
            if kept not in out:
                out.append(kept)
        return out

    # -- the rules -------------------------------------------------------------------------------
    def _has_growth(self, expr: sp.Expr) -> bool:
        return bool(expr.free_symbols & self.growth)

    def _strip(self, expr: sp.Expr) -> sp.Expr:
        """Drop constant factors; keep a constant base's power only through the growing part of its exponent."""
        kept = []
        for factor in sp.Mul.make_args(sp.expand_power_base(expr, force=True)):
            base, exp = factor.as_base_exp()
            if self._has_growth(base):
                kept.append(factor)
            elif self._has_growth(exp):
                growing = sp.Add(*(t for t in sp.Add.make_args(sp.expand(exp)) if self._has_growth(t)))
                kept.append(sp.Pow(base, growing))
        return sp.Mul(*kept)

    def _times(self, left: list[sp.Expr], right: list[sp.Expr]) -> list[sp.Expr]:
        return self.prune([self._strip(a * b) for a in left for b in right])

    def _order(self, e: sp.Expr) -> list[sp.Expr]:
        if not self._has_growth(e) and not isinstance(e, (sp.Sum, sp.Product)):
            return [sp.S.One]
        if isinstance(e, sp.Symbol):
            return [e]
        if isinstance(e, sp.Mul):
            result = [sp.S.One]
            for arg in e.args:
                result = self._times(result, self._order(arg))
            return result
        if isinstance(e, (sp.Add, sp.Max)):
            return self.prune([m for arg in e.args for m in self._order(arg)])
        if isinstance(e, sp.Min):
            return self._order(e.args[0])
        if isinstance(e, sp.Pow):
            return self._power(e)
        if isinstance(e, sp.log):
            return self._log(e.args[0])
        if isinstance(e, (sp.Abs, sp.floor, sp.ceiling)):
            return self._order(e.args[0])
        if isinstance(e, sp.Sum):
            (var, lo, hi), = e.limits
            count = self._order(hi - lo + 1)
            ends = self.prune(self._order(e.function.xreplace({var: lo})) + self._order(e.function.xreplace({var: hi})))
            return self._times(count, ends)
        if isinstance(e, sp.Product):
            (var, lo, hi), = e.limits
            if e.function.has(var):
                raise OrderUnknown(f"product whose factor depends on its index: {e}")
            return self._power(sp.Pow(e.function, hi - lo + 1, evaluate=False))
        raise OrderUnknown(f"no order rule for {type(e).__name__}")

    def _power(self, e: sp.Pow) -> list[sp.Expr]:
        base, exp = e.base, e.exp
        if not self._has_growth(exp):
            inner = self._order(base)
            if exp.is_positive:
                return self.prune([self._strip(m ** exp) for m in inner])
            if len(inner) == 1:
                return [self._strip(inner[0] ** exp)]
            raise OrderUnknown(f"negative power of a sum of incomparable terms: {e}")
        if not self._has_growth(base):
            return [self._strip(sp.Pow(base, exp))]
        inner = self._order(base)
        if len(inner) != 1:
            raise OrderUnknown(f"growing power of a sum: {e}")
        return [self._strip(sp.Pow(inner[0], exp))]

    def _log(self, arg: sp.Expr) -> list[sp.Expr]:
        out = []
        for mono in self._order(arg):
            for factor in sp.Mul.make_args(mono):
                base, exp = factor.as_base_exp()
                if self._has_growth(base):
                    out.append(sp.log(base))          # log(v^a) ≍ log v
                else:
                    out.extend(self._order(exp))      # log(c^L) ≍ L
        return self.prune(out) if out else [sp.S.One]

    # -- dominance -------------------------------------------------------------------------------
    def _eventually_nonnegative(self, exponent: sp.Expr) -> bool:
        if exponent.is_number:
            return bool(exponent >= 0)
        return eventual_sign(exponent, self.growth) in (0, 1)

    def _non_decaying(self, factor: sp.Expr) -> bool:
        """factor ≥ c > 0 eventually: a growing base (or C1, C2, a number ≥ 1) to a non-negative power."""
        if factor.is_number:
            return bool(factor > 0)
        base, exp = factor.as_base_exp()
        if self._has_growth(base):
            return self._eventually_nonnegative(exp)
        at_least_one = base in AT_LEAST_ONE or (base.is_number and base >= 1)
        return at_least_one and self._eventually_nonnegative(exp)
