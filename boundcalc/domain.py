"""What a spec's symbols are known to satisfy, and the decisions that follow from it.

The domain of a spec: every size (sample count, input dimensions, widths, channels, declared ranks, repeat
counts) is ≥ 1, and each repeat count expression is ≥ 1 itself (``count: L - 2`` gives L ≥ 3); counts are
integers; the chain-rule constants C1, C2 are ≥ 1; every other symbol (norms, γ, δ) is positive, as the
symbol table declares. Decisions are proofs on the shifted variables (L = 3 + n with n ≥ 0 …): "provably
≥ 0" means sympy's assumptions confirm it there; anything sympy cannot confirm is left undecided, never guessed.

Used to simplify ``Max``/``Min`` of exponents (the highest power of C1) and to tell crossovers that can never
hold (``r < 1`` when r ≥ 1) from real ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import sympy as sp

from boundcalc.numerics import known_sign
from boundcalc.ops import OPS
from boundcalc.spec.load import Layer, Repeat, Spec
from boundcalc.symbols import C1, C2

#: layer parameters that are sizes (≥ 1)
SIZE_PARAMS = ("out", "channels", "rank")
#: a Max/Min sum of more combinations than this is left as it is
_MAX_COMBINATIONS = 64


@dataclass(frozen=True)
class Domain:
    """Lower bounds of a spec's symbols (every symbol not listed is only known to be positive)."""

    lower: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    upper: dict[sp.Symbol, tuple[sp.Expr, ...]] = field(default_factory=dict)   # a rank ≤ its layer's width

    def lower_of(self, symbol: sp.Symbol) -> sp.Expr | None:
        return self.lower.get(symbol)

    def upper_of(self, symbol: sp.Symbol) -> tuple[sp.Expr, ...]:
        """Expressions that ``symbol`` is at most (each one; so it is ≤ their minimum)."""
        return self.upper.get(symbol, ())

    def shifted(self, expr: sp.Expr, strict: frozenset[sp.Symbol] = frozenset()) -> sp.Expr:
        """``expr`` with each bounded symbol s written as lower(s) + n_s, n_s ≥ 0 (> 0 for ``strict``;
        an integer when s is)."""
        subs = {}
        for sym, low in self.lower.items():
            gap = sp.Dummy(f"n_{sym.name}", positive=True) if sym in strict else \
                sp.Dummy(f"n_{sym.name}", nonnegative=True, integer=bool(sym.is_integer and low.is_integer))
            subs[sym] = low + gap
        return sp.sympify(expr).xreplace(subs)

    def nonnegative(self, expr: sp.Expr, strict: frozenset[sp.Symbol] = frozenset()) -> bool:
        """True when ``expr`` ≥ 0 is proved for every value in the domain (False means: not proved)."""
        expr = sp.sympify(expr)
        if expr.is_number:
            return bool(expr >= 0) if expr.is_real else False
        shifted = self.shifted(expr, strict)
        return bool(shifted.is_nonnegative or sp.expand(shifted).is_nonnegative)

    def sign(self, expr: sp.Expr, strict: frozenset[sp.Symbol] = frozenset()) -> int | None:
        """1, −1 or 0 when the sign of ``expr`` is the same (strictly) on the whole domain; None otherwise."""
        return known_sign(self.shifted(sp.sympify(expr), strict))

    def compare(self, a: sp.Expr, b: sp.Expr) -> int | None:
        """Sign of a − b on the domain for positive a, b (1: a ≥ b … proved through log a − log b, which
        sympy decides for products of powers); 0 when equal; None when undecided."""
        a, b = sp.sympify(a), sp.sympify(b)
        if sp.simplify(a - b) == 0:
            return 0
        diff = sp.expand_log(sp.log(a), force=True) - sp.expand_log(sp.log(b), force=True)
        if self.nonnegative(diff):
            return 1
        if self.nonnegative(-diff):
            return -1
        return None


def spec_domain(spec: Spec) -> Domain:
    """The domain of ``spec``'s symbols (see the module docstring)."""
    lower: dict[sp.Symbol, sp.Expr] = {C1: sp.S.One, C2: sp.S.One}
    reasons = ["C1, C2 ≥ 1 (universal constants of the chain rule)"]

    def at_least(expr: sp.Expr, bound: sp.Expr, why: str) -> None:
        for sym in sp.sympify(expr).free_symbols:
            value = _lower_bound(sp.sympify(expr), sym, bound)
            if value is not None and (sym not in lower or _larger(value, lower[sym])):
                lower[sym] = value
                reasons.append(why)

    sizes = [spec.data.samples, *spec.data.shape]

    def walk(items) -> None:
        for item in items:
            if isinstance(item, Repeat):
                at_least(item.count, sp.S.One, f"repeat {item.name}: count {item.count} ≥ 1")
                walk(item.body)
            elif isinstance(item, Layer):
                sizes.extend(item.params[k] for k in SIZE_PARAMS if item.params.get(k) is not None)
                rank, width = item.params.get("rank"), item.params.get("out")
                if OPS[item.op].dense_matrix and isinstance(rank, sp.Symbol) and width is not None and width != rank:
                    upper.setdefault(rank, [])
                    if width not in upper[rank]:
                        upper[rank].append(width)

    upper: dict[sp.Symbol, list[sp.Expr]] = {}
    walk(spec.layers)
    if upper:
        reasons.append("a declared rank is at most its layer's output width")
    sizes += [spec.symbols(name) for name in spec.symbols.names() if name.startswith("r_")]   # per-layer ranks
    for size in sizes:
        for sym in sp.sympify(size).free_symbols:
            if sym not in lower:
                lower[sym] = sp.S.One
    return Domain(lower, tuple(dict.fromkeys(reasons)), {k: tuple(v) for k, v in upper.items()})


def _lower_bound(expr: sp.Expr, sym: sp.Symbol, bound: sp.Expr) -> sp.Expr | None:
    """From expr ≥ bound with expr = a·sym + b (a > 0, b a number): sym ≥ (bound − b)/a, rounded up for an
    integer symbol; 1 for a size symbol otherwise (sizes are ≥ 1 in any case)."""
    poly = sp.Poly(expr, sym) if expr.is_polynomial(sym) else None
    if poly is None or poly.degree() != 1:
        return sp.S.One
    a, b = poly.all_coeffs()
    if not (a.is_number and b.is_number and a > 0):
        return sp.S.One
    value = (bound - b) / a
    value = sp.ceiling(value) if sym.is_integer else value
    return sp.Max(value, sp.S.One)


def _larger(a: sp.Expr, b: sp.Expr) -> bool:
    return bool((a - b).is_positive)


# -- Max / Min under the domain --------------------------------------------------------------------
def simplify_extrema(expr: sp.Expr, domain: Domain) -> sp.Expr:
    """``expr`` with every Max/Min decided as far as the domain allows: nested extrema are flattened (a sum
    or a non-negative multiple of a Max is the Max of the sums or multiples), and an argument is dropped when
    another is provably at least as large (Max) or as small (Min) on the domain. Max(L − 1, Max(0, L − 4) + 1)
    with L ≥ 3 is L − 1."""
    expr = sp.sympify(expr)
    if not expr.has(sp.Max, sp.Min):
        return expr
    return _decide(expr, domain)


def _decide(expr: sp.Expr, domain: Domain) -> sp.Expr:
    if not expr.args or not expr.has(sp.Max, sp.Min):
        return expr
    args = [_decide(a, domain) for a in expr.args]
    if isinstance(expr, (sp.Max, sp.Min)):
        kind = type(expr)
        flat = [x for a in args for x in (a.args if isinstance(a, kind) else (a,))]
        return _prune(kind, flat, domain)
    if isinstance(expr, sp.Add):
        return _distribute(args, sp.Add, domain)
    if isinstance(expr, sp.Mul):
        extrema = [a for a in args if isinstance(a, (sp.Max, sp.Min))]
        rest = sp.Mul(*(a for a in args if not isinstance(a, (sp.Max, sp.Min))))
        if len(extrema) == 1 and domain.nonnegative(rest):
            inner = extrema[0]
            return _prune(type(inner), [rest * a for a in inner.args], domain)
        return sp.Mul(*args)
    return expr.func(*args)


def _distribute(args: list[sp.Expr], op, domain: Domain) -> sp.Expr:
    """A sum of terms, some of them Max (or all extrema of one kind): the Max over every choice of one argument
    per term."""
    extrema = [a for a in args if isinstance(a, (sp.Max, sp.Min))]
    kinds = {type(a) for a in extrema}
    if not extrema or len(kinds) != 1:
        return op(*args)
    choices = [a.args if isinstance(a, (sp.Max, sp.Min)) else (a,) for a in args]
    count = 1
    for c in choices:
        count *= len(c)
    if count > _MAX_COMBINATIONS:
        return op(*args)
    return _prune(kinds.pop(), [op(*pick) for pick in product(*choices)], domain)


def _prune(kind, args: list[sp.Expr], domain: Domain) -> sp.Expr:
    """Keep the arguments no other argument provably dominates (for Max: is ≥ them; for Min: ≤)."""
    kept: list[sp.Expr] = []
    for arg in dict.fromkeys(sp.expand(a) for a in args):
        if any(_dominates(kind, k, arg, domain) for k in kept):
            continue
        kept = [k for k in kept if not _dominates(kind, arg, k, domain)] + [arg]
    return kept[0] if len(kept) == 1 else kind(*kept)


def _dominates(kind, a: sp.Expr, b: sp.Expr, domain: Domain) -> bool:
    return domain.nonnegative(a - b) if kind is sp.Max else domain.nonnegative(b - a)
