"""The result of ``boundcalc certify``: a bound on the error rate of a stated classifier, with every term.

A :class:`Certificate` holds the number (holding with probability ≥ 1 − δ), what was certified (never "the
checkpoint" itself: a Gaussian posterior around it, or a quantised copy), the terms with their shares, the
formula with the values substituted, and the assumptions. :func:`shares` says how the number splits over the
terms: certificate = empirical error + Monte-Carlo slack + complexity gap, and the gap kl⁻¹(ê, c) − ê is split
over the nats of the budget c (KL or code length, union bounds, confidence) in proportion to their size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

#: the kl inverse sup{p ≥ q : kl(q‖p) ≤ c}, as an undefined sympy function (printed kl⁻¹ by the renderers)
KL_INVERSE = sp.Function("klinv")


@dataclass(frozen=True)
class Term:
    """One part of the certificate: its value (in ``unit``), and its share of the certificate (a fraction)."""

    name: str
    value: float
    unit: str              # "error" (a rate), "nats", "bits"
    share: float | None    # None: shown for information, not part of the sum
    note: str = ""


@dataclass
class Certificate:
    method: str                    # "gaussian" | "compression"
    bound: str                     # "kl" | "catoni"
    certificate: float
    delta: float
    classifier: str
    terms: list[Term]
    formula: sp.Expr               # with the values substituted
    formula_symbolic: sp.Expr
    assumptions: list[str]
    n: int
    train_error: float             # of the certified classifier, on the n bound samples
    test_error: float | None = None
    checkpoint_errors: dict[str, float] = field(default_factory=dict)   # the checkpoint's own, for comparison
    spec: str = ""
    checkpoint: str = ""
    details: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def vacuous(self) -> bool:
        return self.certificate >= 1.0


def shares(certificate: float, empirical: float, slack: float, budget: dict[str, float]) -> dict[str, float]:
    """Shares of ``certificate`` = ``empirical`` + ``slack`` + gap, the gap split over ``budget`` (name -> nats)
    in proportion; every share is a fraction of the certificate and they sum to 1."""
    if certificate <= 0:
        return {"empirical": 0.0, "slack": 0.0, **{k: 0.0 for k in budget}}
    gap = max(certificate - empirical - slack, 0.0)
    total = sum(budget.values())
    out = {"empirical": empirical / certificate, "slack": slack / certificate}
    out.update({k: (gap * v / total / certificate if total > 0 else 0.0) for k, v in budget.items()})
    return out


def substituted(expr: sp.Expr, values: dict[sp.Symbol, float]) -> sp.Expr:
    """``expr`` with the values put in and nothing evaluated, so that the formula still shows its shape."""
    with sp.evaluate(False):
        return expr.xreplace({s: sp.Float(v, 6) if isinstance(v, float) else sp.Integer(v) for s, v in values.items()})


__all__ = ["Certificate", "Term", "KL_INVERSE", "shares", "substituted"]
