"""Bounds too large to write out term by term: every sub-expression several terms share is named once.

A term of Ĝ_S is its local part times the gains that carry it to the output. In a deep residual network each
term carries one gain per later block and a diameter built from every earlier block, so writing every term out
in full takes O(N²) to O(N³) symbols for N blocks (28 million nodes at N = 300). Above :data:`MAX_WRITTEN_NODES`
expression nodes the renderers print the *shared form* instead, exact and linear in the depth:

* ``Γ[j]``: a gain that at least two terms carry, numbered in the order the terms first use them; the gains
  Γ[a]·Γ[a+1]⋯Γ[b] of one term are written ``Product(Γ[j], (j, a, b))``;
* ``Ξ[j]``: a sub-expression used at least twice (an image norm, a diameter), written in earlier names;
* every term in these names. Substituting the definitions back gives each term exactly.

The names are Greek capitals, which spec identifiers (ASCII only) cannot be.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from boundcalc.bound import tidy

#: terms are written out in full up to this many expression nodes (summed over the terms, a shared
#: sub-expression counted at each use); above it they are printed in the shared form
MAX_WRITTEN_NODES = 5_000
#: a sub-expression used twice is named only if it has more nodes than this (smaller ones are repeated)
MIN_NAMED_NODES = 4
#: consecutive gains Γ[a]⋯Γ[b] are written as a Product from this many on
SHORTEST_RUN = 3

GAIN = sp.IndexedBase("Γ")
SHARED = sp.IndexedBase("Ξ")
RUN_INDEX = sp.Symbol("j", integer=True, positive=True)
#: stands for Ĝ_S in the gap bound of a bound in the shared form
COMPLEXITY = sp.Symbol("Ĝ_S", positive=True)


def is_leaf(node: sp.Basic) -> bool:
    return not node.args or node.is_Atom or isinstance(node, (sp.Indexed, sp.IndexedBase))


def post_order(roots: Iterable[Any]) -> Iterator[sp.Basic]:
    """Every distinct node (by identity) under the sympy expressions ``roots``, once, after its arguments.
    Iterative: unevaluated terms nest deeper than Python's recursion limit."""
    seen: set[int] = set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                yield node
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                if not is_leaf(node):
                    stack.extend((a, False) for a in reversed(node.args) if id(a) not in seen)


def written_size(terms: Sequence[Any]) -> int:
    """Expression nodes the terms take written out in full: the sizes of each term's gains and local part
    (sympy expressions), a shared sub-expression counted at every use. Linear in the size of the graph."""
    uses: Counter[int] = Counter()
    roots: dict[int, sp.Basic] = {}
    for t in terms:
        for x in (*t.factors, t.local):
            uses[id(x)] += 1
            roots.setdefault(id(x), x)
    size: dict[int, int] = {}
    for node in post_order(roots.values()):
        size[id(node)] = 1 if is_leaf(node) else 1 + sum(size[id(a)] for a in node.args)
    return sum(size[key] * count for key, count in uses.items()) + len(terms)


def too_large_note(size: int, count: int) -> str:
    """Why a formula of ``count`` terms and ``size`` written-out nodes is not written out or analysed."""
    return (f"Ĝ_S has {count} terms that take {size} expression nodes written out in full, above the limit of "
            f"{MAX_WRITTEN_NODES}: `boundcalc derive` prints it with shared sub-expressions named once; keep a "
            "repeat count symbolic (e.g. count: L) for a closed form")


@dataclass(frozen=True)
class TermParts:
    """One term as built by the composer: the gains it carries that no other term does (``inline``), the
    numbers of its shared gains as runs (first, last), and its local part."""

    inline: tuple[Any, ...]
    runs: tuple[tuple[int, int], ...]
    local: Any
    samples: Any


@dataclass(frozen=True)
class SharedForm:
    """The terms of a bound with shared sub-expressions named: ``definitions`` in dependency order (each uses
    only names defined before it), ``terms`` in those names. ``gains`` and ``parts`` keep the unnamed
    originals (Γ[j] is ``gains[j - 1]``)."""

    written_size: int
    definitions: tuple[tuple[sp.Expr, sp.Expr], ...]
    terms: tuple[sp.Expr, ...]
    gains: tuple[Any, ...] = field(repr=False)
    parts: tuple[TermParts, ...] = field(repr=False)


def shared_form(terms: Sequence[Any], size: int) -> SharedForm:
    """Name the gains several terms carry (Γ) and the sub-expressions used twice (Ξ); write every term in
    those names, normalised as :attr:`Term.expr` is. ``size`` is :func:`written_size` of ``terms``."""
    gains, number = _shared_gains(terms)
    parts = tuple(_term_parts(t, number) for t in terms)
    roots = [*gains, *(x for p in parts for x in (*p.inline, p.local))]
    written, definitions = _name_shared(roots, number)
    exprs = tuple(tidy(sp.Mul(*(written[id(f)] for f in p.inline), *_run_factors(p.runs),
                              written[id(p.local)]) / p.samples) for p in parts)
    return SharedForm(written_size=size, definitions=tuple(definitions), terms=exprs, gains=tuple(gains),
                      parts=parts)


def _shared_gains(terms: Sequence[Any]) -> tuple[list[Any], dict[int, int]]:
    """The factors carried by two or more terms in order of first use, and their numbers by identity."""
    first: dict[int, Any] = {}
    uses: Counter[int] = Counter()
    for t in terms:
        for f in t.factors:
            first.setdefault(id(f), f)
        uses.update({id(f) for f in t.factors})
    gains = [f for key, f in first.items() if uses[key] >= 2]
    return gains, {id(f): k for k, f in enumerate(gains, 1)}


def _term_parts(term: Any, number: dict[int, int]) -> TermParts:
    inline = tuple(f for f in term.factors if id(f) not in number)
    return TermParts(inline=inline, runs=runs(number[id(f)] for f in term.factors if id(f) in number),
                     local=term.local, samples=term.samples)


def runs(numbers: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted numbers as maximal runs of consecutive numbers (first, last); a repeated number starts a new run,
    so the runs hold each number as often as ``numbers`` does."""
    out: list[tuple[int, int]] = []
    for k in sorted(numbers):
        if out and k == out[-1][1] + 1:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return tuple(out)


def _run_factors(gain_runs: Iterable[tuple[int, int]]) -> list[sp.Expr]:
    out: list[sp.Expr] = []
    for first, last in gain_runs:
        if last - first + 1 >= SHORTEST_RUN:
            out.append(sp.Product(GAIN[RUN_INDEX], (RUN_INDEX, first, last)))
        else:
            out.extend(GAIN[k] for k in range(first, last + 1))
    return out


def _name_shared(roots: list[Any], number: dict[int, int]) -> tuple[dict[int, sp.Basic], list]:
    """Rebuild every node bottom-up (evaluated) with named children in their names; a gain becomes Γ[its
    number], a sub-expression referenced twice and larger than MIN_NAMED_NODES becomes the next Ξ[j]."""
    nodes = list(post_order(roots))
    refs: Counter[int] = Counter(id(r) for r in roots)
    for node in nodes:
        if not is_leaf(node):
            refs.update(id(a) for a in node.args)
    written: dict[int, sp.Basic] = {}
    size: dict[int, int] = {}
    definitions: list[tuple[sp.Expr, sp.Expr]] = []
    named = 0
    for node in nodes:
        key = id(node)
        if is_leaf(node):
            expr, size[key] = node, 1
        else:
            expr = node.func(*(written[id(a)] for a in node.args))
            size[key] = 1 + sum(size[id(a)] for a in node.args)
        if key in number:
            name = GAIN[number[key]]
        elif refs[key] >= 2 and size[key] > MIN_NAMED_NODES:
            named += 1
            name = SHARED[named]
        else:
            written[key] = expr
            continue
        definitions.append((name, expr))
        written[key], size[key] = name, 1
    return written, definitions
