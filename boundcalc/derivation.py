"""derive(spec) -> Bound: build the graph, check the rule set applies, compose, collect the account.

The derivation is Pinto, Rangamani & Poggio's (Maurer's chain rule, layer by layer); the caveats about that
paper live with its registry entries (:mod:`boundcalc.bounds.pinto2024`).
"""
from __future__ import annotations

from typing import Any

import networkx as nx
import sympy as sp

from boundcalc.bound import GAP_FORMS, Bound, Term
from boundcalc.calculus import arith
from boundcalc.calculus.compose import compose_scope
from boundcalc.calculus.quantities import NumericQuantities, SymbolicQuantities
from boundcalc.calculus.rules import RULE_SETS, TOKEN_WISE_ASSUMPTION, RuleSet
from boundcalc.calculus.state import State
from boundcalc.domain import spec_domain
from boundcalc.errors import BoundcalcError, DeriveError
from boundcalc.graph.build import build_graph, token_wise_layers
from boundcalc.numerics import LogReal
from boundcalc.ops import LIPSCHITZ_MAPS, OPS
from boundcalc.spec.load import Repeat, Spec
from boundcalc.symbols import describe


def get_ruleset(name: str) -> RuleSet:
    try:
        return RULE_SETS[name]
    except KeyError:
        raise BoundcalcError(f"unknown rule set {name!r} (known: {', '.join(RULE_SETS)})") from None


def data_state(norm: Any, one: Any = sp.S.One, token_norm: Any = None) -> State:
    """The input: the single point X (no parameters yet); ``token_norm`` bounds its largest token's norm
    (None: not tracked)."""
    zero = one * 0
    return State(width=zero, diameter=zero, image_norm=norm, anchor=norm, lipschitz=one, min_rank=None,
                 single_point=True, diameter_rule="data: a single point, D = 0", token_norm=token_norm)


def tracks_token_bound(spec: Spec, graph: nx.DiGraph) -> bool:
    """Whether the derivation carries the largest-token-norm bound: on (tokens, dim) data, when a layer reads
    it. Only then does the data symbol B_X enter (and need a value to evaluate)."""
    return len(spec.data.shape) == 2 and any(OPS[a["op"]].flags.reads_token_bound for _, a in _all_nodes(graph)
                                               if a["op"] in OPS)


def check_applicable(graph: nx.DiGraph, ruleset: RuleSet) -> None:
    """Raise DeriveError listing every layer the rule set cannot handle."""
    problems = []
    for name, attrs in _all_nodes(graph):
        op = attrs["op"]
        if op in ("input", "repeat"):
            continue
        if ruleset.rule_for(op) is None:
            problems.append(f"layer {name}: op {op!r}")
        else:
            refusal = ruleset.refusal(op, name, attrs["layer"].params)
            if refusal is not None:
                problems.append(refusal)
    if problems:
        hint = "" if ruleset.name == "tight" else "; use --rules tight"
        raise DeriveError(f"rule set '{ruleset.name}' covers only {ruleset.description}{hint}; not covered", problems)


def _shifted_maps(graph: nx.DiGraph) -> set[str]:
    """The kinds of the parameter-free layers with φ(0) ≠ 0."""
    return {a["op"] for _, a in _all_nodes(graph) if a["op"] in LIPSCHITZ_MAPS
            and not sp.sympify(OPS[a["op"]].at_zero(a["layer"].params)).is_zero}


def _all_nodes(graph: nx.DiGraph):
    for name, attrs in graph.nodes(data=True):
        yield name, attrs
        if "body" in attrs:
            yield from _all_nodes(attrs["body"])


def derive(spec: Spec, rules: str = "tight", gap: str = "derived", graph: nx.DiGraph | None = None) -> Bound:
    """Derive the Ĝ_S and generalization-gap bounds of ``spec`` with the named rule set (``graph``: the
    spec's graph if it is already built, else built here)."""
    ruleset = get_ruleset(rules)
    if gap not in GAP_FORMS:
        raise BoundcalcError(f"unknown gap form {gap!r} (known: {', '.join(GAP_FORMS)})")
    graph = graph if graph is not None else build_graph(spec)
    check_applicable(graph, ruleset)
    quantities = _RecordingQuantities(spec.symbols)
    quantities.sample_count = spec.data.samples
    token_norm = spec.symbols("B_X") if tracks_token_bound(spec, graph) else None
    result = compose_scope(graph, data_state(spec.data.norm, token_norm=token_norm), ruleset, quantities)
    m = spec.data.samples
    terms = tuple(
        Term(index=i + 1, layer=ct.local.layer, kind=ct.local.kind, rule=ct.local.rule,
             diameter_rule=ct.local.diameter_rule, factors=ct.factors, local=ct.local.expr, samples=m)
        for i, ct in enumerate(result.terms)
    )
    compact = arith.mul(result.state.width, 1 / m)
    return Bound(spec_name=spec.name, rules=ruleset.name, rules_description=ruleset.description,
                 compact=compact, samples=m, loss_lipschitz=spec.loss.lipschitz, delta=spec.loss.delta,
                 gap_form=gap, terms=terms, assumptions=_assumptions(spec, graph, ruleset, gap),
                 caveats=generic_caveats(ruleset.name, gap) + spec_caveats(spec, ruleset, quantities.kinds),
                 symbols=_symbol_meanings(spec), domain=spec_domain(spec))


class _RecordingQuantities(SymbolicQuantities):
    """The symbolic quantities, remembering which per-layer kinds (s, f, r …) the rules asked for."""

    def __init__(self, table) -> None:
        super().__init__(table)
        self.kinds: set[str] = set()

    def layer(self, kind: str, node) -> Any:
        self.kinds.add(kind)
        return super().layer(kind, node)


def compose_numeric(spec: Spec, values: dict[str, float], rules: str = "tight",
                    graph: nx.DiGraph | None = None) -> LogReal:
    """Ĝ_S evaluated on numbers by the same rules (no sympy in the loop), in log space so that a product of
    a thousand norms stays finite: ``float(result)`` or ``result.log10``. ``values`` maps symbol names
    (``s_fc1``, ``X_F``, ``C1``, ``m`` …) to numbers. Repeat counts must be numbers in ``spec`` (load it with
    ``values={"L": 3}``, which unrolls the repeat); a symbolic count raises :class:`DeriveError`."""
    ruleset = get_ruleset(rules)
    graph = graph if graph is not None else build_graph(spec)
    check_applicable(graph, ruleset)
    q = NumericQuantities(spec.symbols, values)
    q.sample_count = spec.data.samples
    token_norm = LogReal.of(q.value(spec.symbols("B_X"))) if tracks_token_bound(spec, graph) else None
    entering = data_state(LogReal.of(q.value(spec.data.norm)), one=LogReal.of(1.0), token_norm=token_norm)
    result = compose_scope(graph, entering, ruleset, q)
    return LogReal.of(result.state.width) / q.value(spec.data.samples)


def _assumptions(spec: Spec, graph: nx.DiGraph, ruleset: RuleSet, gap: str) -> tuple[str, ...]:
    out = [
        "C1, C2 kept symbolic (universal constants of Maurer's chain rule, values unpublished)",
        spec.data.norm_note,
        _bias_line(graph),
        "Ĝ_S is the empirical Gaussian complexity on the given sample; the bound holds for the class with these "
        "constraint values (no union bound over norm or rank levels)",
        "per layer: s_<layer> bounds ‖W‖₂, f_<layer> bounds ‖W‖_F, r_<layer> bounds rank W, unless the spec "
        "gives a value",
        spec.loss.note,
        f"confidence 1 − δ with δ = {spec.loss.delta}; gap constant: {gap}"
        + (" (2√π·𝓛, derivable from the paper's appendix)" if gap == "derived" else " (as printed in Thm 2)"),
        f"rule set {ruleset.name}: {ruleset.description}",
    ]
    present = {a["op"] for _, a in _all_nodes(graph)} - {"input", "repeat"}
    shifted = _shifted_maps(graph)
    activations = sorted(present & LIPSCHITZ_MAPS - shifted)
    if activations:
        out.append("parameter-free maps (ρ-Lipschitz, φ(0) = 0, applied per sample): " + ", ".join(activations))
    if shifted:
        out[2] = ("bias-free layers; every weight class contains W = 0, so the zero network's image y0 is 0 after "
                  "each weight layer, and the chain rule's y0 term vanishes except after a map with φ(0) ≠ 0")
        out.append("parameter-free maps with φ(0) = c ≠ 0 (ρ-Lipschitz, per sample): " + ", ".join(sorted(shifted))
                   + "; the zero network's image there is c·1, of norm |c|·√(h·m), added to the anchor and the "
                   "image norm, so the next weight layer adds an anchor term")
    out += [OPS[op].assumption for op in OPS if op in present and OPS[op].assumption]
    if token_wise_layers(graph):
        out.append(TOKEN_WISE_ASSUMPTION)
    for name, attrs in _all_nodes(graph):
        if attrs["op"] == "repeat":
            rep: Repeat = attrs["layer"]
            out.append(f"repeat {name}: count {rep.count} ≥ 1, closed form valid for every count; per-layer symbols "
                       f"inside are indexed by {rep.index} = 1..{rep.count}")
    return tuple(out)


def _bias_line(graph: nx.DiGraph) -> str:
    """What the derivation assumes about biases: none, or which layers are affine."""
    biased = [name for name, attrs in _all_nodes(graph)
              if "layer" in attrs and getattr(attrs["layer"], "params", {}).get("bias")]
    if not biased:
        return ("bias-free layers; every weight class contains W = 0, so the chain rule's y0 term vanishes after the "
                "first layer (zero network, needs φ(0) = 0)")
    return (f"affine layers (bias: true): {', '.join(biased)}, with ‖b‖₂ ≤ c_<layer> over the layer's outputs; each "
            "adds c·√(m·h_out) to the anchor term G(F(y0)) and √m·c to the image norm (D ≤ 2N); every class "
            "contains W = 0, b = 0, so y0 = 0 after the first layer (needs φ(0) = 0)")


def generic_caveats(rules: str, gap: str) -> tuple[str, ...]:
    """The caveats every bound of rule set ``rules`` carries, whatever the spec: the paper's (its registry
    module says them) and the rule set's own notes."""
    from boundcalc.bounds.pinto2024 import derivation_caveats

    ruleset = get_ruleset(rules)
    return derivation_caveats(ruleset.name, gap) + ruleset.notes


def spec_caveats(spec: Spec, ruleset: RuleSet, kinds_used: set[str]) -> tuple[str, ...]:
    """Caveats about this spec under this rule set: declared ranks that the rules never read."""
    declared = [layer.name for layer in _layers(spec.layers) if layer.params.get("rank") is not None]
    if not declared or "r" in kinds_used:
        return ()
    return (f"declared rank{'s' if len(declared) > 1 else ''} ({', '.join(declared)}) not used: rule set "
            f"{ruleset.name} bounds the diameter without a rank factor, so a rank enters the bound only through "
            "values written in terms of it (e.g. frobenius: sqrt(r)*B); --rules as_printed uses ranks",)


def _layers(items):
    for item in items:
        if isinstance(item, Repeat):
            yield from _layers(item.body)
        else:
            yield item


def _symbol_meanings(spec: Spec) -> dict[str, str]:
    return {name: describe(name) for name in spec.symbols.names()}
