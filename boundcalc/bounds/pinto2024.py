"""Pinto, Rangamani & Poggio (ALT 2025): Gaussian-complexity bound for networks with low-rank layers.

The bound is not a fixed formula: boundcalc's composer derives it for the spec from Maurer's chain rule
(:func:`boundcalc.derive`). Two entries: ``pinto2024`` reproduces the paper's eq. (4) exactly (``as_printed``
rules) and ``pinto2024_tight`` is the same recursion with the rank-free diameter (``tight`` rules).
"""
from __future__ import annotations

from boundcalc.bound import Bound
from boundcalc.bounds.base import Citation, Formula, NotApplicable, NumericEvaluation, PriorBound, Requirements
from boundcalc.bounds.network import NetworkView
from boundcalc.calculus.rules import AS_PRINTED, RULE_SETS, TIGHT
from boundcalc.errors import DeriveError
from boundcalc.numerics import positive_log_real
from boundcalc.shared_form import too_large_note

CITATION = Citation(authors="Pinto, Rangamani & Poggio",
                    title="On Generalization Bounds for Neural Networks with Low Rank Layers",
                    year=2025, venue="ALT", arxiv="2411.13733")
STATEMENT = "L(f) − L̂_S(f) for a loss 𝓛-Lipschitz in the output with values in [0, 1] (Thm 2 + Thm 12)"

GAP_CAVEAT = ("Gap constant: Pinto et al. Thm 2 prints √(𝓛π)·Ĝ_S + √(9·log(2/δ)/(2m)); their own appendix "
              "route (Thm 12, Maurer's vector contraction √2·𝓛, R̂ ≤ √(π/2)·Ĝ) gives 2√π·𝓛·Ĝ_S + "
              "3·√(log(2/δ)/(2m)). The printed constant looks like a typo (docs/references.md §9.1).")
C_CAVEAT = ("C1, C2 are the universal constants of Maurer's chain rule; their values are not published in any "
            "source we could reach, so they stay symbols (docs/references.md §9.4).")
FINITE_CAVEAT = ("Maurer's chain rule is stated for finite Y and F; like the paper, boundcalc applies it to "
                 "continuous weight classes without the approximation step (docs/references.md §9.5).")
KAPPA_CAVEAT = ("Eq. (4) prints κ_i = Π_{j≠i}^{d} ‖W_j‖₂; the upper limit d is read as L (typo, "
                "docs/references.md §9.3).")


def derivation_caveats(rules: str, gap: str) -> tuple[str, ...]:
    """What every bound the composer derives with ``rules`` and gap form ``gap`` must say about this paper."""
    out = (C_CAVEAT, GAP_CAVEAT + f" Using: {gap}.", FINITE_CAVEAT)
    return out + (KAPPA_CAVEAT,) if rules == "as_printed" else out


def composed_bound(view: NetworkView, rules: str) -> Bound:
    """The composer's bound on the spec with the named rule set (gap constant: derived); NotApplicable when
    the rule set does not cover the spec."""
    from boundcalc.derivation import derive   # the composer imports this module for the caveats above

    try:
        return derive(view.spec, rules=rules, gap="derived", graph=view.graph)
    except DeriveError as err:
        raise NotApplicable(str(err)) from None


def composed_numeric(rules: str) -> NumericEvaluation:
    """The entry hook that evaluates the bound with the composer's rules on numbers, in log space (the rendered
    formula, O(L²) terms, is never built): one symbolic derivation gives the gap constants."""
    def evaluate(view: NetworkView, values: dict[str, float]):
        from boundcalc.derivation import compose_numeric

        bound = composed_bound(view, rules)
        complexity = (positive_log_real(bound.complexity_coefficient, values)
                      * compose_numeric(view.spec, values, rules=rules, graph=view.graph))
        return complexity, complexity + positive_log_real(bound.confidence_term, values)
    return NumericEvaluation(f"numeric composer, rule set {rules} (log space)", evaluate)


def _from_composer(view: NetworkView, rules: str) -> Formula:
    bound = composed_bound(view, rules)
    if bound.shared is not None:    # too large to write out: the exact compact form, not printed or analysed
        complexity = bound.complexity_coefficient * bound.compact
        return Formula(complexity=complexity, gap=complexity + bound.confidence_term, statement=STATEMENT,
                       too_large=too_large_note(bound.written_size, len(bound.terms)))
    complexity = bound.complexity_coefficient * bound.complexity
    generic = derivation_caveats(rules, "derived") + RULE_SETS[rules].notes
    spec_notes = tuple(c for c in bound.caveats if c not in generic)
    return Formula(complexity=complexity, gap=complexity + bound.confidence_term, statement=STATEMENT,
                   notes=spec_notes)


def as_printed(view: NetworkView) -> Formula:
    """Eq. (4) of Pinto et al. (Thm 7), composed layer by layer with the ``as_printed`` rules:

        Ĝ_S ≤ (‖X‖_F/m)·{ ‖W_1‖_F√h_1·Π_{i≥2} C1‖W_i‖₂ + Σ_{i≥2} C1^(L−i)·C2·2√(2𝔯_i)·κ_i·‖W_i‖_F√h_i }

    with 𝔯_i = min_{j≤i} rank W_j and κ_i = Π_{j≠i} ‖W_j‖₂, then gap ≤ 2√π·𝓛·Ĝ_S + 3√(log(2/δ)/(2m))
    (the derivable constant; Thm 2 prints √(𝓛π), see the caveat)."""
    return _from_composer(view, "as_printed")


def tight(view: NetworkView) -> Formula:
    """The same chain-rule recursion with the diameter D(Z_{i−1}) ≤ 2·Π_{j<i}‖W_j‖₂·‖X‖_F, which needs no
    rank factor (each sample's image has norm ≤ Π s_j·‖x‖; docs/references.md §3.4). Every step is one of
    the paper's lemmas or Maurer's chain rule; boundcalc's composer also covers residual adds (sup of a sum
    ≤ sum of sups), convolutions as linear operators and pooling."""
    return _from_composer(view, "tight")


PINTO_PRINTED = PriorBound(
    key="pinto2024", title=CITATION.title, citation=CITATION, theorem="Thm 7, eq. (4), with Thm 2",
    status="exact",
    requirements=Requirements(ops=AS_PRINTED.covered_ops(), activation="1-Lipschitz piecewise-linear "
                              "(ReLU, leaky ReLU, identity), bias-free, φ(0) = 0"),
    build=as_printed, numeric=composed_numeric("as_printed"),
    resnet="no: eq. (4) is a layer-by-layer recursion over a chain (no residual adds), of bias-free layers with "
           "φ(0) = 0 (a folded BN leaves a bias on every conv), without max-pooling",
    summary="(‖X‖_F/m)(‖W₁‖_F√h₁ΠC1‖W_i‖₂ + Σ C1^(L−i)C2·2√(2𝔯_i)κ_i‖W_i‖_F√h_i)",
    caveats=(C_CAVEAT, GAP_CAVEAT + " Using: derived.", FINITE_CAVEAT, KAPPA_CAVEAT) + AS_PRINTED.notes,
)
PINTO_TIGHT = PriorBound(
    key="pinto2024_tight", title=CITATION.title + " (rank-free diameter)", citation=CITATION,
    theorem="Thm 7's recursion with D ≤ 2·N (boundcalc 'tight' rules)", status="derived",
    requirements=Requirements(ops=TIGHT.covered_ops(), topology="dag", biases=True, sequences=True,
                              activation="ρ-Lipschitz maps (ReLU, leaky ReLU, tanh, identity, "
                              "avgpool, generic 'lipschitz', smooth activations, pooling); φ(0) ≠ 0 through the "
                              "anchor term; biases through the affine rule; token-wise layers, layernorm and "
                              "token_mean on sequences"),
    build=tight, numeric=composed_numeric("tight"),
    resnet="not yet: its rules cover convs, residual adds and average pooling, but only bias-free layers (a folded "
           "BN leaves a bias on every conv: the chain rule needs the anchor term of a DAG bias rule) and no "
           "max-pooling rule (a Lipschitz map once its kind declares √(windows per input))",
    summary="(‖X‖_F/m)(‖W₁‖_F√h₁ΠC1‖W_i‖₂ + Σ C1^(L−i)C2·2κ_i‖W_i‖_F√h_i)",
    caveats=(C_CAVEAT, GAP_CAVEAT + " Using: derived.", FINITE_CAVEAT),
)
ENTRIES = (PINTO_PRINTED, PINTO_TIGHT)
#: the registry entry whose bound each rule set derives (its status is the one ``derive`` reports)
ENTRY_FOR_RULES = {"as_printed": PINTO_PRINTED, "tight": PINTO_TIGHT}
