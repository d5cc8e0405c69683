"""compare(spec) -> Comparison: every registry bound built on one spec, normalised, ordered and paired.

For each bound: its complexity term, the factor left after dividing by Π‖W_i‖₂·‖X‖_F/(γ·m) (= Π B·R/(γ√m)
in the uniform regime, the normalisation of Pinto et al. Table 1), the leading order in each growth
variable, the order ratio to the ``vs`` bound and the crossover condition between the two.
Nothing here prints; ``boundcalc.render.compare`` formats a Comparison.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import sympy as sp

from boundcalc.bounds import REGISTRY, Applied, NetworkView, get_entry
from boundcalc.bounds.base import inverse_margin
from boundcalc.compare.crossover import crossover
from boundcalc.compare.orders import OrderUnknown, Orders
from boundcalc.compare.regime import apply_regime, output_layer
from boundcalc.domain import Domain, spec_domain
from boundcalc.errors import BoundcalcError
from boundcalc.shared_form import is_leaf, post_order
from boundcalc.ops import OPS
from boundcalc.spec.load import Layer, Repeat, Spec

DEFAULT_VS = "pinto2024_tight"
#: a factor is expanded (to cancel the normaliser into its terms) only if that gives at most this many terms
MAX_EXPANDED_TERMS = 5_000


@dataclass(frozen=True)
class Row:
    key: str
    status: str
    summary: str
    citation: str
    reason: str | None = None                  # set when the bound does not apply
    complexity: sp.Expr | None = None
    factor: sp.Expr | None = None              # complexity / normaliser
    order: tuple[sp.Expr, ...] | None = None   # non-dominated monomials of the factor
    per_variable: dict[str, tuple[sp.Expr, ...] | None] = field(default_factory=dict)
    ratio: sp.Expr | None = None               # order ratio to the vs bound (single monomials only)
    crossover: str | None = None
    order_note: str | None = None
    caveats: tuple[str, ...] = ()

    @property
    def applies(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Comparison:
    spec_name: str
    regime: str
    substitutions: tuple[str, ...]
    normaliser: sp.Expr
    growth: tuple[str, ...]
    vs: str | None
    orders_only: bool
    rows: tuple[Row, ...]
    assumptions: tuple[str, ...]


def compare(spec: Spec, keys: list[str] | None = None, regime: str = "none", vs: str | None = None,
            orders_only: bool = False, solve_for: str | None = None) -> Comparison:
    """Build every requested bound on ``spec`` under ``regime`` and compare them."""
    entries = [get_entry(k) for k in keys] if keys else list(REGISTRY.values())
    if vs is not None:
        get_entry(vs)
    reg = apply_regime(spec, regime)
    view = NetworkView(reg.spec)
    growth = growth_symbols(reg.spec)
    _check_solve_for(solve_for, growth, spec.name)
    orders = Orders(growth.values())
    normaliser = sp.powsimp(_normaliser(view), force=True)
    results = [entry.apply(view) for entry in entries]
    applied = {r.key: r for r in results if isinstance(r, Applied)}
    if vs is None:
        vs = DEFAULT_VS if DEFAULT_VS in applied else next(iter(applied), None)
    elif vs not in applied:
        reason = next((r.reason for r in results if r.key == vs), "not among the compared bounds")
        raise BoundcalcError(f"--vs {vs}: that bound does not apply to this spec ({reason})")
    in_m, m_note = _data_norm_in_m(reg.spec, growth)
    analysed = {key: _analyse(a, normaliser, orders, growth, orders_only, in_m) for key, a in applied.items()}
    domain = spec_domain(reg.spec)
    rows = []
    for result in results:
        if not isinstance(result, Applied):
            rows.append(Row(key=result.key, status=result.entry.status, summary=result.entry.summary,
                            citation=result.entry.citation.short(), reason=result.reason))
            continue
        row = analysed[result.key]
        if vs is not None and result.key != vs:
            ratio, condition = _pair(row, analysed[vs], orders, growth, solve_for, domain)
            row = replace(row, ratio=ratio, crossover=condition)
        rows.append(row)
    assumptions = (
        "orders drop constant factors (numbers, norm bounds, γ, C2) and treat C1, C2 ≥ 1 when ranking terms",
        "a sum over layers is bounded by (number of terms) × (first term + last term)",
        "normalisation: the factor column is the complexity term divided by " + str(normaliser),
        "crossovers are decided on the domain " + "; ".join(domain.reasons + ("every size and rank ≥ 1",
                                                                           "norms > 0")),
    ) + ((m_note,) if m_note else ()) + (("--orders: logarithmic factors are dropped as well",) if orders_only else ())
    return Comparison(spec_name=spec.name, regime=reg.name, substitutions=reg.substitutions, normaliser=normaliser,
                      growth=tuple(growth), vs=vs, orders_only=orders_only, rows=tuple(rows), assumptions=assumptions)


def _check_solve_for(solve_for: str | None, growth: dict[str, sp.Symbol], spec_name: str) -> None:
    """--solve-for must name a growth variable (the crossover is solved for it)."""
    if solve_for is None or solve_for in growth:
        return
    import difflib

    if not growth:
        raise BoundcalcError(f"--solve-for {solve_for}: {spec_name} has no growth variable (every size is a number), "
                             "so there is nothing to solve for")
    close = difflib.get_close_matches(solve_for, list(growth), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise BoundcalcError(f"--solve-for {solve_for}: not a growth variable of {spec_name} (growth variables: "
                         f"{', '.join(growth)}).{hint}")


def _data_norm_in_m(spec: Spec, growth: dict[str, sp.Symbol]) -> tuple[dict, str | None]:
    """With ‖X‖_F written as the symbol X_F and m a growth variable, orders take X_F ≍ √m·R: X_F grows with m
    (‖X‖_F ≤ √m·R always, equal up to a constant when the inputs have comparable norms)."""
    norm, samples = spec.data.norm, spec.data.samples
    if not (isinstance(norm, sp.Symbol) and norm.name == "X_F" and samples in growth.values()):
        return {}, None
    big_r = spec.symbols("R")
    note = ("orders and crossovers take ‖X‖_F ≍ √m·R (R = max_i ‖x_i‖): ‖X‖_F ≤ √m·R, with equality up to a "
            "constant when the inputs have comparable norms, so X_F is not held constant as m grows; the factor "
            "column keeps X_F")
    return {norm: sp.sqrt(samples) * big_r}, note


def growth_symbols(spec: Spec) -> dict[str, sp.Symbol]:
    """Symbols that grow: repeat counts, the sample size, symbolic hidden widths and ranks."""
    found: set[sp.Symbol] = set(spec.data.samples.free_symbols)
    for dim in spec.data.shape:
        found |= dim.free_symbols

    def walk(items, output):
        nonlocal found
        for item in items:
            if isinstance(item, Repeat):
                found |= item.count.free_symbols
                walk(item.body, None)
            elif isinstance(item, Layer) and OPS[item.op].width_field is not None:
                width = item.params[OPS[item.op].width_field]
                if item is not output:
                    found |= width.free_symbols
                rank = item.params.get("rank")
                if rank is not None:
                    found |= rank.free_symbols

    walk(spec.layers, output_layer(spec.layers))
    return {s.name: s for s in sorted(found, key=lambda s: s.name)}


def _normaliser(view: NetworkView) -> sp.Expr:
    product = view.product(lambda layer: layer.s) if view.is_chain else sp.S.One
    return product * view.data_norm * inverse_margin(view) / view.m


def expanded_terms(expr: sp.Expr) -> int:
    """An upper bound on the number of terms of ``sp.expand(expr)``, or MAX_EXPANDED_TERMS + 1 for "more":
    sums add, products multiply, a power p ∈ ℕ raises to p; anything else is one term. Linear in the size of
    the expression graph."""
    more = MAX_EXPANDED_TERMS + 1
    count: dict[int, int] = {}
    for node in post_order([expr]):
        parts = [count[id(a)] for a in node.args] if not is_leaf(node) else []
        if isinstance(node, sp.Add):
            count[id(node)] = min(sum(parts), more)
        elif isinstance(node, sp.Mul):
            count[id(node)] = functools.reduce(lambda n, p: min(n * p, more), parts, 1)
        elif isinstance(node, sp.Pow) and node.exp.is_Integer and node.exp > 0:
            count[id(node)] = more if parts[0] > 1 and node.exp > 64 else min(parts[0] ** int(node.exp), more)
        else:
            count[id(node)] = 1
    return count[id(expr)]


def _analyse(applied: Applied, normaliser: sp.Expr, orders: Orders, growth: dict[str, sp.Symbol],
             orders_only: bool, in_m: dict) -> Row:
    entry, formula = applied.entry, applied.formula
    if formula.too_large is not None:
        return Row(key=entry.key, status=applied.status, summary=entry.summary, citation=entry.citation.short(),
                   order_note=f"not analysed: {formula.too_large}", caveats=applied.caveats)
    factor = sp.powsimp(sp.expand_power_base(formula.complexity / normaliser, force=True), force=True)
    if not factor.has(sp.Sum, sp.Product) and expanded_terms(factor) <= MAX_EXPANDED_TERMS:
        # closed-form factors only: cancels the normaliser into the terms (no global simplify on deep specs;
        # no expansion of unrolled residual gains Π(1 + s_a·s_b), which have 2^depth monomials)
        factor = sp.factor_terms(sp.expand(factor))
    order, per_variable, note = None, {}, None
    try:
        order = orders.order(factor.xreplace(in_m))
        if orders_only:
            order = orders.drop_logs(order)
        full = orders.order(formula.complexity.xreplace(in_m))
        for name, var in growth.items():
            source = full if name == "m" else order
            per_variable[name] = tuple(orders.part(source, var))
        order = tuple(order)
    except OrderUnknown as err:
        note = f"leading order not determined: {err}"
    return Row(key=entry.key, status=applied.status, summary=entry.summary, citation=entry.citation.short(),
               complexity=formula.complexity, factor=factor, order=order, per_variable=per_variable,
               order_note=note, caveats=applied.caveats)


def _pair(row: Row, ref: Row, orders: Orders, growth: dict[str, sp.Symbol], solve_for: str | None,
          domain: Domain) -> tuple[sp.Expr | None, str | None]:
    if row.order is None or ref.order is None:
        return None, f"{row.key}: could not compare with {ref.key}: leading order unknown"
    mine, theirs = orders.drop_logs(list(row.order)), orders.drop_logs(list(ref.order))
    if len(mine) != 1 or len(theirs) != 1:
        return None, f"{row.key}: could not solve against {ref.key}: several incomparable leading terms"
    ratio = sp.powsimp(sp.expand_power_base(mine[0] / theirs[0], force=True), force=True)
    differing = _names(row.complexity) ^ _names(ref.complexity)
    return ratio, crossover(ratio, row.key, ref.key, growth, solve_for, domain, differing - set(growth))


def _names(expr: sp.Expr) -> set[str]:
    """Names of the symbols and indexed symbols (``s_fc``) in ``expr``, bound variables excluded."""
    names = {s.name for s in expr.free_symbols}
    return names | {str(b.label) for b in expr.atoms(sp.IndexedBase)}
