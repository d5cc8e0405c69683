"""Propagate a state through a layer graph with a rule set, recording where every term comes from.

Forward pass in topological order: each node's rule returns a Transfer; the node's width is
``Σ gain·G_in + Σ new terms`` (chain rule). Backward pass: every term is scaled by the gains from its
layer to the output, which are collected as a tuple of factors.

Keeping expressions compact on DAGs: a node read by several layers (a fork, e.g. a residual block input)
would otherwise be copied into each branch and the copies would double with every block. Its consumers
therefore see fresh placeholder symbols; at the fork's immediate post-dominator (where the branches
meet) every state field is linear in those placeholders, so it is rewritten once as
``Σ coefficient·value + rest``, e.g. N_out = (1 + s_a·s_b)·N_in. Gains are factored the same way
through the post-dominator tree, so a term's factor tuple has one entry per block, not per path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import sympy as sp

from boundcalc.calculus import arith
from boundcalc.calculus.quantities import Node, SymbolicQuantities
from boundcalc.calculus.rules import RuleSet
from boundcalc.calculus.state import LINEAR_FIELDS, LocalTerm, State, Transfer
from boundcalc.errors import DeriveError
from boundcalc.graph.build import INPUT, inputs_of
from boundcalc.spec.load import Repeat

_FIELDS = ("width",) + LINEAR_FIELDS


@dataclass(frozen=True)
class ComposedTerm:
    """A local term and the gains (factors) that carry it to the scope's output."""

    local: LocalTerm
    factors: tuple[Any, ...]

    @property
    def value(self) -> Any:
        """The term's contribution to the output width (compact form)."""
        return arith.mul(*self.factors, self.local.expr)


@dataclass
class ScopeResult:
    state: State
    input_factors: tuple[Any, ...]
    terms: list[ComposedTerm] = field(default_factory=list)


def node_context(graph: nx.DiGraph, name: str, index: Any) -> Node:
    attrs = graph.nodes[name]
    layer = attrs["layer"]
    idx = attrs["index"] if index is None else index
    base = layer.name
    display = base if idx is None else f"{base}[{idx}]"
    return Node(name=display, base=base, op=layer.op if not isinstance(layer, Repeat) else "repeat",
                params=getattr(layer, "params", {}), index=idx, out_shape=attrs["shape"],
                in_shapes=tuple(graph.nodes[u]["shape"] for u in inputs_of(graph, name)))


def compose_scope(graph: nx.DiGraph, entering: State, ruleset: RuleSet, q: SymbolicQuantities,
                  index: Any = None) -> ScopeResult:
    """Run ``ruleset`` over ``graph`` from ``entering`` (the state of the scope's input).

    ``index`` overrides the repeat index of every node (used for the first iteration of a repeat).
    """
    symbolic = isinstance(entering.image_norm, sp.Basic)
    output = graph.graph["output"]
    order = list(nx.topological_sort(graph))
    ipdom = nx.immediate_dominators(graph.reverse(copy=False), output)
    states: dict[str, State] = {}
    views: dict[str, State] = {}
    gains: dict[tuple[str, str], Any] = {}
    local_terms: list[tuple[str, LocalTerm, tuple[str, ...]]] = []
    placeholders: dict[str, dict[sp.Symbol, Any]] = {}
    pending: list[str] = []
    resolve_at: dict[str, list[str]] = {}

    for name in order:
        if name == INPUT:
            state = entering
        else:
            preds = inputs_of(graph, name)
            inputs = [views[u] for u in preds]
            transfer = _apply(graph, name, inputs, ruleset, q, index)
            width = arith.add(*(arith.mul(g, x.width) for g, x in zip(transfer.gains, inputs)),
                            *(t.expr for t in transfer.terms))
            state = transfer.state._replace(width=width)
            for u, g in zip(preds, transfer.gains):   # an input read twice (add: [a, a]) gains twice
                gains[(u, name)] = arith.add(gains[(u, name)], g) if (u, name) in gains else g
            local_terms.extend((name, t, tuple(pending)) for t in transfer.terms)
            for fork in reversed(resolve_at.pop(name, [])):
                state = _substitute_linear(state, placeholders[fork])
                pending.remove(fork)
        states[name] = state
        if symbolic and graph.out_degree(name) > 1:
            views[name], placeholders[name] = _placeholders(name, state)
            pending.append(name)
            resolve_at.setdefault(ipdom[name], []).append(name)
        else:
            views[name] = state

    factors = _factors(graph, order, ipdom, gains, output)
    terms = []
    for name, term, forks in local_terms:
        expr = term.expr
        for fork in reversed(forks):
            if isinstance(expr, sp.Basic):
                expr = arith.substitute(expr, placeholders[fork])
        terms.append(ComposedTerm(local=_replace_expr(term, expr), factors=factors[name]))
    return ScopeResult(state=states[output], input_factors=factors[INPUT], terms=terms)


def _apply(graph: nx.DiGraph, name: str, inputs: list[State], ruleset: RuleSet, q: SymbolicQuantities,
           index: Any) -> Transfer:
    attrs = graph.nodes[name]
    node = node_context(graph, name, index)
    if attrs["op"] == "repeat":
        from boundcalc.calculus.recurrence import solve_repeat

        return solve_repeat(attrs, inputs[0], ruleset, q)
    rule = ruleset.rule_for(node.op)
    if rule is None:
        raise DeriveError(f"rule set {ruleset.name!r} has no rule for op {node.op!r} (layer {node.name})")
    return rule(node, q, inputs)


def _placeholders(name: str, state: State) -> tuple[State, dict[sp.Symbol, Any]]:
    """The fork's state as its consumers see it: each non-zero field a fresh symbol, except a token bound that
    holds no placeholder or recurrence symbol (e.g. a layernorm's output): the attention rule reads it in its
    gains, which are never rewritten, so it must stay the value itself (docs/references.md §3.10)."""
    mapping: dict[sp.Symbol, Any] = {}
    updates = {}
    for fname in _FIELDS:
        value = getattr(state, fname)
        if value is None or arith.is_zero(value) or (fname == "token_norm" and not _holds_dummies(value)):
            continue
        symbol = sp.Dummy(f"{fname}_{name}", positive=True)
        mapping[symbol] = value
        updates[fname] = symbol
    return state._replace(**updates), mapping


def _holds_dummies(value: Any) -> bool:
    """True when ``value`` contains a composer placeholder or a repeat's recurrence symbol (sympy Dummies)."""
    return isinstance(value, sp.Basic) and bool(value.atoms(sp.Dummy))


def _substitute_linear(state: State, mapping: dict[sp.Symbol, Any]) -> State:
    """Rewrite each field, linear in the placeholders, as Σ coefficient·value + rest."""
    updates = {}
    zero = {p: 0 for p in mapping}
    for fname in _FIELDS:
        expr = getattr(state, fname)
        if not isinstance(expr, sp.Basic):
            continue
        parts = []
        for p, value in mapping.items():
            coefficient = arith.linear_coefficient(expr, p)
            if coefficient is None or coefficient.has(*mapping):
                raise DeriveError("internal: a rule is not linear in the state; cannot factor a fork")
            if not arith.is_zero(coefficient):
                parts.append(arith.mul(coefficient, value))
        rest = expr.xreplace(zero)
        updates[fname] = arith.add(*parts, rest)
    return state._replace(**updates)


def _factors(graph: nx.DiGraph, order: list[str], ipdom: dict[str, str], gains: dict, output: str
             ) -> dict[str, tuple[Any, ...]]:
    """For each node, the factors whose product is ∂G_output/∂G_node (post-dominator factored)."""
    rel: dict[str, Any] = {}
    factors: dict[str, tuple[Any, ...]] = {output: ()}
    for u in reversed(order):
        if u == output:
            continue
        stop = ipdom[u]
        paths = []
        for v in graph.successors(u):
            chain = []
            w = v
            while w != stop:
                chain.append(rel[w])
                w = ipdom[w]
            paths.append(arith.mul(gains[(u, v)], *chain))
        rel[u] = arith.add(*paths)
        head = () if (rel[u] == 1) else (rel[u],)
        factors[u] = head + factors[stop]
    return factors


def _replace_expr(term: LocalTerm, expr: Any) -> LocalTerm:
    return LocalTerm(layer=term.layer, kind=term.kind, expr=expr, rule=term.rule, diameter_rule=term.diameter_rule)
