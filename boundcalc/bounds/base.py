"""What a registry entry is: citation, status, requirements and one formula function.

An entry never prints and never evaluates numbers. ``entry.apply(view)`` returns an :class:`Applied`
(the formula built from the spec's symbols) or an :class:`Inapplicable` (the reason, never a number).
Requirements are declared data, checked against the known ops when the entry is created, so a typo in
``ops=`` fails at import (the networkx ``not_implemented_for`` idea).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import sympy as sp

from boundcalc.bounds.network import NetworkView
from boundcalc.graph.build import token_wise_layers
from boundcalc.errors import BoundcalcError
from boundcalc.ops import OPS

Status = Literal["exact", "derived", "order"]
STATUS_MEANING: dict[str, str] = {
    "exact": "a bound with every constant known (C1, C2 excepted where stated)",
    "derived": "a bound derived from published lemmas with every constant known (C1, C2 excepted where stated); "
               "the derivation is shown",
    "order": "order of magnitude only: numbers are up to an unknown constant factor, not bounds",
}


#: how each status is labelled wherever it is printed (order-only numbers always say "up to constants")
STATUS_LABEL: dict[str, str] = {"exact": "exact", "derived": "derived", "order": "order (up to constants)"}


class NotApplicable(BoundcalcError):
    """Raised by a formula function when the spec is outside what the theorem covers."""


@dataclass(frozen=True)
class Citation:
    authors: str
    title: str
    year: int
    venue: str
    arxiv: str | None = None

    def short(self) -> str:
        tail = f", arXiv {self.arxiv}" if self.arxiv else ""
        return f"{self.authors} ({self.venue} {self.year}){tail}"


def biased_layers(graph) -> list[str]:
    """Names of the layers with ``bias: true`` (repeat bodies included)."""
    out = []
    for name, attrs in graph.nodes(data=True):
        layer = attrs.get("layer")
        if getattr(layer, "params", {}).get("bias"):
            out.append(name)
        if "body" in attrs:
            out += biased_layers(attrs["body"])
    return out


@dataclass(frozen=True)
class Requirements:
    """What the theorem assumes about the network. ``ops`` lists every op it covers."""

    ops: frozenset[str]
    activation: str
    topology: Literal["chain", "dag"] = "chain"
    needs_margin: bool = False
    #: every parameter-free map must have φ(0) = 0 for its layer's parameters (sigmoid, softplus and a
    #: 'lipschitz' map with at_zero ≠ 0 are then refused, with the layer named)
    zero_at_zero: bool = False
    biases: bool = False        # covers layers with biases (bias: true)
    sequences: bool = False     # covers token-wise weight layers (on (tokens, dim) inputs)

    def __post_init__(self) -> None:
        unknown = set(self.ops) - set(OPS)
        if unknown:
            raise ValueError(f"Requirements name unknown ops: {sorted(unknown)}")

    def violation(self, view: NetworkView) -> str | None:
        """The first reason ``view`` is outside these requirements, or None."""
        if self.topology == "chain" and not view.is_chain:
            return f"chain networks only, but {view.dag_reason}"
        extra = sorted(view.ops - self.ops - {"input", "repeat"})
        if extra:
            return f"does not cover op{'s' if len(extra) > 1 else ''} {', '.join(extra)} (needs {self.activation})"
        biased = [] if self.biases else biased_layers(view.graph)
        if biased:
            return (f"covers bias-free layers only, but {', '.join(biased)} ha{'ve' if len(biased) > 1 else 's'} a bias "
                    "(with a checkpoint: --biases fold for dense chains, or drop)")
        tokens = [] if self.sequences else token_wise_layers(view.graph)
        if tokens:
            return (f"written for layers on vectors and images, but {', '.join(tokens)} act"
                    f"{'' if len(tokens) > 1 else 's'} on each token of a (tokens, dim) input")
        if self.needs_margin and view.margin is None:
            return "needs a margin loss (loss: margin: gamma); the spec gives a Lipschitz loss"
        if self.zero_at_zero:
            return _nonzero_at_zero(view.graph)
        return None

    def describe(self) -> list[str]:
        out = [f"topology: {'chain (sequential layers)' if self.topology == 'chain' else 'any DAG'}",
               f"ops: {', '.join(sorted(self.ops))}",
               f"activations: {self.activation}"]
        if self.needs_margin:
            out.append("loss: ramp loss with margin γ (multi-class margin)")
        if self.zero_at_zero:
            out.append("maps: φ(0) = 0 at every parameter-free layer")
        return out


def _nonzero_at_zero(graph) -> str | None:
    """Why a layer of ``graph`` (repeat bodies included) is a parameter-free map with φ(0) ≠ 0, or None."""
    for name, attrs in graph.nodes(data=True):
        if "body" in attrs:
            found = _nonzero_at_zero(attrs["body"])
            if found:
                return found
        kind = OPS.get(attrs["op"])
        if kind is not None and kind.lipschitz_map:
            value = sp.sympify(kind.at_zero(attrs["layer"].params))
            if not value.is_zero:
                return (f"needs φ(0) = 0 at every activation, but layer {name} ({attrs['op']}) has φ(0) = {value}; "
                        "its proof peels layers off the zero network")
    return None


@dataclass(frozen=True)
class Formula:
    """A bound built for one spec. ``gap`` bounds the generalization gap ``statement`` describes;
    ``complexity`` is its class-dependent part (what Table 1 of Pinto et al. compares)."""

    complexity: sp.Expr
    gap: sp.Expr
    statement: str
    notes: tuple[str, ...] = ()
    status: Status | None = None      # overrides the entry's status for this spec (with a note saying why)
    too_large: str | None = None      # why complexity/gap (then compact, exact forms) are not printed or analysed


@dataclass(frozen=True)
class NumericEvaluation:
    """How an entry evaluates itself on measured values without its closed form: ``evaluate(view, values)``
    gives (complexity, gap) as LogReals; ``method`` says how, in the output. ``measure(model, data)``, if set,
    gives the network-level values the entry needs from the bound tensors and the data summary (a path-norm
    is one number for the whole network, not a per-layer symbol); the evaluator adds them to this entry's
    values only."""

    method: str
    evaluate: Callable[[NetworkView, dict[str, float]], tuple[Any, Any]] = field(repr=False)
    measure: Callable[[Any, Any], dict[str, float]] | None = field(default=None, repr=False)
    #: reads the measured per-layer norms (so the caveat of a conv-norm method that is not an upper bound applies)
    layer_norms: bool = True


@dataclass(frozen=True)
class PriorBound:
    """One registry entry. ``build(view) -> Formula`` holds the math; its docstring is the paper trail."""

    key: str
    title: str
    citation: Citation
    theorem: str
    status: Status
    requirements: Requirements
    build: Callable[[NetworkView], Formula] = field(repr=False)
    summary: str = ""
    caveats: tuple[str, ...] = ()
    #: evaluates the bound on numbers without its closed form (the composer's rules); None: the evaluator
    #: substitutes the measured values into ``build``'s formula
    numeric: NumericEvaluation | None = field(default=None, repr=False)
    #: whether the theorem covers a BN-folded ResNet (conv + folded BN with biases + ReLU + max-pool + residual
    #: adds + global average pooling + linear head), and why not where it does not
    resnet: str = ""

    @property
    def derivation(self) -> str:
        return inspect.getdoc(self.build) or ""

    def apply(self, view: NetworkView) -> "Applied | Inapplicable":
        reason = self.requirements.violation(view)
        if reason is None:
            try:
                formula = self.build(view)
            except NotApplicable as err:
                reason = str(err)
        if reason is not None:
            return Inapplicable(self, reason)
        return Applied(self, formula)


@dataclass(frozen=True)
class Applied:
    entry: PriorBound
    formula: Formula

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def status(self) -> Status:
        return self.formula.status or self.entry.status

    @property
    def caveats(self) -> tuple[str, ...]:
        return self.entry.caveats + self.formula.notes


@dataclass(frozen=True)
class Inapplicable:
    entry: PriorBound
    reason: str

    @property
    def key(self) -> str:
        return self.entry.key


def confidence_term(view: NetworkView, constant: int = 3, log_of: sp.Expr | None = None) -> sp.Expr:
    """``constant·√(log(2/δ)/(2m))``: McDiarmid's deviation term with the two-sided union (Mohri et al.,
    Foundations of ML, Thm 3.3)."""
    arg = 2 / view.delta if log_of is None else log_of
    return constant * sp.sqrt(sp.log(arg) / (2 * view.m))


def inverse_margin(view: NetworkView) -> sp.Expr:
    """1/γ for a margin loss, else the loss's Lipschitz constant 𝓛 (for order-only forms)."""
    return 1 / view.margin if view.margin is not None else view.loss_lipschitz
