"""One arithmetic for symbols and floats (the einops ``_backends`` idea, reduced to what rules need).

Rules call these functions instead of ``*``/``+`` so the same rule code derives (sympy) and evaluates
(floats, or :class:`~boundcalc.numerics.LogReal` where products must not overflow). On sympy input, products and sums are built *unevaluated*: sympy's automatic flattening of a
growing product costs O(depth) per layer, i.e. O(L^2) for a chain, while an unevaluated node costs O(1)
and shares its sub-expressions. Readable, evaluated forms are made per term when a bound is rendered.
"""
from __future__ import annotations

import math
from typing import Union

import sympy as sp

from boundcalc.calculus.minimum import flat_min
from boundcalc.numerics import LogReal

Value = Union[sp.Expr, float, LogReal]


def _symbolic(values: tuple) -> bool:
    return any(isinstance(v, sp.Basic) for v in values)


def is_zero(value: Value) -> bool:
    """True when ``value`` is exactly zero. Structural for sympy: asking ``is_zero`` of an unevaluated
    product runs the assumption system over the whole tree (O(depth) per call)."""
    if isinstance(value, sp.Basic):
        return value.is_Number and value == 0
    return value == 0


def mul(*factors: Value) -> Value:
    """Product of ``factors``; drops ones, short-circuits on an exact zero."""
    if not _symbolic(factors):
        return math.prod(factors)
    kept = []
    for f in factors:
        f = sp.sympify(f)
        if is_zero(f):
            return sp.S.Zero
        if not (f.is_Number and f == 1):
            kept.append(f)
    if not kept:
        return sp.S.One
    if len(kept) == 1:
        return kept[0]
    return sp.Mul(*kept, evaluate=False)


def add(*terms: Value) -> Value:
    """Sum of ``terms``; drops exact zeros."""
    if not _symbolic(terms):
        if any(isinstance(t, LogReal) for t in terms):
            return sum(terms[1:], LogReal.of(terms[0]))
        return math.fsum(terms) if any(isinstance(t, float) for t in terms) else sum(terms)
    kept = [sp.sympify(t) for t in terms if not is_zero(t)]
    if not kept:
        return sp.S.Zero
    if len(kept) == 1:
        return kept[0]
    return sp.Add(*kept, evaluate=False)


def sqrt(value: Value) -> Value:
    """√value; on a sympy product or sum unevaluated, like :func:`mul` (evaluating √ of a product asks the
    assumption system about every factor, O(size) per call)."""
    if isinstance(value, LogReal):
        return value.sqrt()
    if isinstance(value, (sp.Mul, sp.Add)):
        return sp.Pow(value, sp.S.Half, evaluate=False)
    return sp.sqrt(value) if isinstance(value, sp.Basic) else math.sqrt(value)


def maximum(*values: Value) -> Value:
    return sp.Max(*values) if _symbolic(values) else max(values)


def canonical(expr: sp.Expr) -> sp.Expr:
    """Rebuild an expression bottom-up with sympy's normal evaluation (for display and comparison).

    Iterative (compact expressions nest as deep as the network, beyond Python's recursion limit) and
    memoized on sub-expressions, so a shared sub-tree is rebuilt once.
    """
    root = sp.sympify(expr)
    memo: dict[int, sp.Basic] = {}
    stack: list[tuple[sp.Basic, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in memo:
            continue
        if not node.args or node.is_Atom or isinstance(node, (sp.Indexed, sp.IndexedBase)):
            memo[key] = node
        elif children_done:
            memo[key] = _rebuilt(node, [memo[id(a)] for a in _operands(node)])
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in _operands(node) if id(a) not in memo)
    return memo[id(root)]


def _rebuilt(node: sp.Basic, operands: list[sp.Basic]) -> sp.Basic:
    """``node`` evaluated on its rebuilt operands. A Min or Max is already in evaluated form when it was built
    (sympy evaluates it on creation, or :mod:`boundcalc.calculus.minimum` built it reduced); evaluating it again
    would re-order every pair of its arguments, so it is kept when its operands are unchanged, and a changed
    Min is reduced the cheap way."""
    if isinstance(node, (sp.Min, sp.Max)):
        if all(new is old for new, old in zip(operands, node.args)):
            return node
        if isinstance(node, sp.Min):
            return flat_min(*operands)
    return node.func(*operands)


def _operands(node: sp.Basic) -> list[sp.Basic]:
    """Arguments of ``node``, with nested products (or sums) inside a product (sum) spliced in, so that a
    chain of unevaluated products is evaluated once instead of once per level (O(depth²) otherwise)."""
    if not isinstance(node, (sp.Mul, sp.Add)):
        return list(node.args)
    kind, out, todo = type(node), [], list(reversed(node.args))
    while todo:
        arg = todo.pop()
        if type(arg) is kind:
            todo.extend(reversed(arg.args))
        else:
            out.append(arg)
    return out


def substitute(expr: sp.Basic, mapping: dict) -> sp.Basic:
    """``expr`` with ``mapping`` applied, the nodes above a replaced one rebuilt unevaluated: the values stay
    shared sub-expressions, where ``xreplace`` would flatten a product value into every product that uses
    it (O(depth) per use). Iterative, like :func:`canonical`."""
    done: dict[int, sp.Basic] = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in done:
            continue
        if node in mapping:
            done[id(node)] = mapping[node]
        elif not node.args or node.is_Atom or isinstance(node, (sp.Indexed, sp.IndexedBase)):
            done[id(node)] = node
        elif children_done:
            args = [done[id(a)] for a in node.args]
            if all(new is old for new, old in zip(args, node.args)):
                done[id(node)] = node
            elif isinstance(node, (sp.Mul, sp.Add)):
                done[id(node)] = type(node)(*args, evaluate=False)
            else:
                done[id(node)] = node.func(*args)
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if id(a) not in done)
    return done[id(expr)]


def linear_coefficient(expr: sp.Basic, symbol: sp.Symbol) -> sp.Basic | None:
    """∂expr/∂symbol for an ``expr`` linear in ``symbol``, read off the tree (a sum adds its arguments'
    coefficients, a product has ``symbol`` in one factor); None where ``expr`` is not visibly linear in it.
    Unevaluated and iterative; ``sp.diff`` costs ~1000× more on the composer's trees (assumptions, caching)."""
    result: dict[int, sp.Basic | None] = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in result:
            continue
        if node == symbol:
            result[id(node)] = sp.S.One
        elif not node.args or node.is_Atom or isinstance(node, (sp.Indexed, sp.IndexedBase)):
            result[id(node)] = sp.S.Zero
        elif not children_done:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if id(a) not in result)
        else:
            result[id(node)] = _coefficient_of(node, [result[id(a)] for a in node.args])
    return result[id(expr)]


def _coefficient_of(node: sp.Basic, parts: list) -> sp.Basic | None:
    """The coefficient of a sum or product from its arguments' coefficients (None: not linear)."""
    found = [(arg, c) for arg, c in zip(node.args, parts) if c is None or not is_zero(c)]
    if not found:
        return sp.S.Zero
    if any(c is None for _, c in found):
        return None
    if isinstance(node, sp.Add):
        return add(*(c for _, c in found))
    if isinstance(node, sp.Mul) and len(found) == 1:
        (arg, c), = found
        return mul(*(a for a in node.args if a is not arg), c)
    return None
