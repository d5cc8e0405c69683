"""The running minimum of Lemma 5 (𝔯_i = min_{j≤i} rank W_j) as one flat sympy ``Min`` per layer, each built
from the previous one with O(log i) sympy work.

``sp.Min(previous, r)`` flattens ``previous`` and then tries to order every pair of its i arguments (an
inequality proof per pair, milliseconds each), so a chain of L layers cost O(L³). Here a new argument is
compared only with the arguments it can be ordered against: numbers with numbers, and an expression with the
arguments it shares a symbol with (``r`` and ``2*r``). Arguments without a common symbol are kept side by side,
as sympy keeps them, in sympy's own argument order. The result is the ``Min`` node that sympy builds (same
arguments, same order), made directly; for arguments that share no symbol and are not both numbers (e.g.
``Min(r, 0)`` for a positive ``r``) it may keep an argument that sympy would drop, which is the same value.
"""
from __future__ import annotations

import bisect
import functools
import weakref

import sympy as sp
from sympy.core.expr import Expr
from sympy.core.sorting import _nodes, default_sort_key

#: the minima built, by (previous minimum, new argument): a second derivation gets the same nodes back (sympy's
#: cache compares an equal but distinct node argument by argument, O(i) Python work per lookup)
_EXTENDED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
#: for each Min node built here: its numeric argument (or None) and its arguments that are not plain symbols
_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def running_min(previous: sp.Expr | None, value: sp.Expr) -> sp.Expr:
    """min(previous, value) as a flat, reduced sympy ``Min`` (``previous`` None: ``value`` alone)."""
    value = sp.sympify(value)
    if previous is None:
        return flat_min(value)
    key = (previous, value)
    known = _EXTENDED.get(key)
    if known is not None:
        return known
    result = previous
    for arg in _flat_args(value):
        result = _including(result, arg)
    if isinstance(result, sp.Min):
        _EXTENDED[key] = result
    return result


def flat_min(*values: sp.Expr) -> sp.Expr:
    """min(values), reduced and built the same way (a one-off minimum, e.g. when an expression is rebuilt)."""
    args = [arg for value in values for arg in _flat_args(sp.sympify(value))]
    result = args[0]
    for arg in args[1:]:
        result = _including(result, arg)
    return result


def _flat_args(expr: sp.Expr) -> tuple[sp.Expr, ...]:
    return expr.args if isinstance(expr, sp.Min) else (expr,)


@functools.lru_cache(maxsize=1 << 16)
def _sort_key(expr: sp.Expr) -> tuple:
    """sympy's argument order for Min/Max (``ordered``): node count, then ``default_sort_key``."""
    return (_nodes(expr), default_sort_key(expr))


def _leaves(expr: sp.Expr) -> frozenset:
    """Symbols and indexed symbols (``r_fc[3]`` as a whole) that ``expr`` depends on."""
    if isinstance(expr, (sp.Symbol, sp.Indexed)):
        return frozenset((expr,))
    return frozenset().union(*(_leaves(a) for a in expr.args)) if expr.args else frozenset()


def _is_leaf(expr: sp.Expr) -> bool:
    return isinstance(expr, (sp.Symbol, sp.Indexed))


def _facts(minimum: sp.Expr) -> tuple[sp.Expr | None, tuple[sp.Expr, ...]]:
    """(the numeric argument or None, the arguments that are neither numbers nor plain symbols)."""
    if isinstance(minimum, sp.Min) and minimum in _FACTS:
        return _FACTS[minimum]
    args = _flat_args(minimum)
    numbers = [a for a in args if a.is_number]
    return (numbers[0] if numbers else None), tuple(a for a in args if not a.is_number and not _is_leaf(a))


def _members(minimum: sp.Expr) -> frozenset:
    return minimum._argset if isinstance(minimum, sp.Min) else frozenset((minimum,))


def _comparable(minimum: sp.Expr, arg: sp.Expr) -> list[sp.Expr]:
    """The arguments of ``minimum`` that sympy can order against ``arg``: the number (for a number), else
    those sharing a symbol with it (plain symbols are found by membership, so this is O(1) for them)."""
    number, compound = _facts(minimum)
    if arg.is_number:
        return [number] if number is not None else []
    leaves = _leaves(arg)
    members = _members(minimum)
    plain = [leaf for leaf in leaves if leaf in members] if not _is_leaf(arg) else []
    return plain + [c for c in compound if not leaves.isdisjoint(_leaves(c))]


def _including(minimum: sp.Expr, arg: sp.Expr) -> sp.Expr:
    """``minimum`` with ``arg`` added: unchanged if an argument it can be ordered against is ≤ it, and every
    such argument ≥ it removed."""
    if arg in _members(minimum):
        return minimum
    dropped = set()
    for other in _comparable(minimum, arg):
        smaller = sp.Min(arg, other)
        if smaller == other:
            return minimum
        if smaller == arg:
            dropped.add(other)
    args = [a for a in _flat_args(minimum) if a not in dropped] if dropped else list(_flat_args(minimum))
    at = bisect.bisect_right(args, _sort_key(arg), key=_sort_key)
    args.insert(at, arg)
    if len(args) == 1:
        return args[0]
    number, compound = _facts(minimum)
    node = Expr.__new__(sp.Min, *args)
    node._argset = (_members(minimum) - dropped) | {arg}
    _FACTS[node] = (arg if arg.is_number else (None if number in dropped else number),
                    tuple(c for c in compound if c not in dropped) + (() if arg.is_number or _is_leaf(arg) else (arg,)))
    return node
