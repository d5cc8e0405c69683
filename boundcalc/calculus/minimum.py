"""The running minimum of Lemma 5 (𝔯_i = min_{j≤i} rank W_j) as one flat sympy ``Min`` per layer, built
with O(log i) sympy work per layer.

``sp.Min(previous, r)`` flattens ``previous`` and then tries to order every pair of its i arguments (an
inequality proof per pair, milliseconds each), so a chain of L layers cost O(L³). Here the reduced
arguments of each minimum are remembered, kept in sympy's own argument order, and a new argument is
compared only with the arguments it can be ordered against: numbers with numbers, and an expression with
the arguments it shares a symbol with (``r`` and ``2*r``). Arguments without a common symbol are kept side
by side, as sympy keeps them. The result is the same ``Min`` node that sympy builds (same arguments, same
order), made directly; for arguments that share no symbol and are not both numbers (e.g. ``Min(r, 0)`` for a
positive ``r``) it may keep an argument that sympy would drop, which is the same value.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import sympy as sp
from sympy.core.expr import Expr
from sympy.core.sorting import _nodes, default_sort_key

#: how many recent minima a RunningMinimum remembers (a chain extends the last one; a repeat body the first)
_REMEMBERED = 8


@dataclass(frozen=True)
class _Reduced:
    """The arguments of one minimum in sympy's order (with their sort keys), as a set, and the leaves they use."""

    keys: tuple = ()
    args: tuple = ()
    members: frozenset = frozenset()
    leaves: frozenset = frozenset()
    number: sp.Expr | None = None                    # the numeric argument, if any


class RunningMinimum:
    """``minimum(previous, value)`` = min(previous, value) as a flat, reduced sympy ``Min``; remembers the
    minima it built so that extending one costs O(log i) sympy work (a foreign ``previous`` is read once)."""

    def __init__(self) -> None:
        # the last few minima built, by id (hashing a Min costs O(its size)); older ones are read again
        self._known: dict[int, tuple[sp.Expr, _Reduced]] = {}

    def __call__(self, previous: sp.Expr | None, value: sp.Expr) -> sp.Expr:
        reduced = _Reduced() if previous is None else self._reduced(sp.sympify(previous))
        reduced = _including_all(reduced, (value,))
        expr = _as_min(reduced)
        self._known[id(expr)] = (expr, reduced)
        if len(self._known) > _REMEMBERED:
            del self._known[next(iter(self._known))]
        return expr

    def _reduced(self, expr: sp.Expr) -> _Reduced:
        known, reduced = self._known.get(id(expr), (None, None))
        return reduced if known is expr else _including_all(_Reduced(), (expr,))


def flat_min(*values: sp.Expr) -> sp.Expr:
    """min(values) built the same way, without memory (a one-off minimum, e.g. when an expression is rebuilt)."""
    return _as_min(_including_all(_Reduced(), values))


def _including_all(reduced: _Reduced, values) -> _Reduced:
    for value in values:
        for arg in _flat_args(sp.sympify(value)):
            reduced = _including(reduced, arg)
    return reduced


def _flat_args(expr: sp.Expr) -> tuple[sp.Expr, ...]:
    return expr.args if isinstance(expr, sp.Min) else (expr,)


def _sort_key(expr: sp.Expr) -> tuple:
    """sympy's argument order for Min/Max (``ordered``): node count, then ``default_sort_key``."""
    return (_nodes(expr), default_sort_key(expr))


def _leaves(expr: sp.Expr) -> frozenset:
    """Symbols and indexed symbols (``r_fc[3]`` as a whole) that ``expr`` depends on."""
    if isinstance(expr, (sp.Symbol, sp.Indexed)):
        return frozenset((expr,))
    return frozenset().union(*(_leaves(a) for a in expr.args)) if expr.args else frozenset()


def _including(reduced: _Reduced, arg: sp.Expr) -> _Reduced:
    """``reduced`` with ``arg`` added: unchanged if an argument it can be ordered against is ≤ it, and every
    such argument ≥ it removed."""
    if arg in reduced.members:
        return reduced
    leaves = _leaves(arg)
    if arg.is_number:
        candidates = [reduced.number] if reduced.number is not None else []
    elif leaves.isdisjoint(reduced.leaves):
        candidates = []
    else:      # rare: a symbol shared with an earlier argument (r and 2*r)
        candidates = [other for other in reduced.args if not leaves.isdisjoint(_leaves(other))]
    dropped = []
    for other in candidates:
        smaller = sp.Min(arg, other)
        if smaller == other:
            return reduced
        if smaller == arg:
            dropped.append(other)
    keys, args = list(reduced.keys), list(reduced.args)
    for other in dropped:
        at = args.index(other)
        del keys[at], args[at]
    key = _sort_key(arg)
    at = bisect.bisect_right(keys, key)
    keys.insert(at, key)
    args.insert(at, arg)
    all_leaves = reduced.leaves | leaves if not dropped else frozenset().union(*map(_leaves, args))
    number = arg if arg.is_number else (None if reduced.number in dropped else reduced.number)
    return _Reduced(tuple(keys), tuple(args), (reduced.members - set(dropped)) | {arg}, all_leaves, number)


def _as_min(reduced: _Reduced) -> sp.Expr:
    """The Min node of reduced, ordered arguments: what ``sp.Min`` returns for them, made without comparing
    them again."""
    if len(reduced.args) == 1:
        return reduced.args[0]
    node = Expr.__new__(sp.Min, *reduced.args)
    node._argset = reduced.members
    return node
