"""Bartlett, Foster & Telgarsky (NeurIPS 2017): spectrally-normalized margin bounds.

Spectral complexity R_A = (Π_i ρ_i‖W_i‖₂)·(Σ_i (‖W_iᵀ − M_iᵀ‖₂,₁/‖W_i‖₂)^(2/3))^(3/2).
"""
from __future__ import annotations

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, PriorBound, Requirements, confidence_term
from boundcalc.bounds.network import NetworkView
from boundcalc.ops import LIPSCHITZ_MAPS

CITATION = Citation(authors="Bartlett, Foster & Telgarsky",
                    title="Spectrally-normalized margin bounds for neural networks",
                    year=2017, venue="NeurIPS", arxiv="1706.08498")
STATEMENT = "P(argmax_j f(x)_j ≠ y) − R̂_γ(f), R̂_γ the empirical ramp risk at margin γ"
REQUIREMENTS = Requirements(
    ops=frozenset({"linear", "conv2d"}) | LIPSCHITZ_MAPS,
    activation="ρ_i-Lipschitz maps (ℓ2) with σ_i(0) = 0: activations, dropout, flatten, pooling (maxpool with "
               "ρ = √(most windows per input)), bias-free",
    needs_margin=True, zero_at_zero=True)

BARTLETT_RESNET = ("no: Thm 1.1 composes the layers in sequence (a chain: residual adds are outside) of bias-free "
                   "maps with σ_i(0) = 0 (a folded BN leaves a bias on every conv); max-pooling and average pooling "
                   "would be covered as ρ_i-Lipschitz maps")


def spectral_complexity(view: NetworkView) -> sp.Expr:
    """R_A with the reference matrices M_i inside b_i (M_i = 0 unless measured against an init)."""
    lipschitz = view.rho_product * view.product(lambda layer: layer.s)
    return lipschitz * view.total(lambda layer: (layer.b / layer.s) ** sp.Rational(2, 3)) ** sp.Rational(3, 2)


def order_form(view: NetworkView) -> Formula:
    """Thm 1.1 as stated, in Õ(·) form:
        P(err) ≤ R̂_γ + Õ( ‖X‖_F·R_A·ln(W)/(γm) + √(ln(1/δ)/m) ),   W = the largest width.
    Constants and the log factors inside Õ are not given; numbers are up to a constant factor."""
    complexity = view.data_norm * spectral_complexity(view) * sp.log(view.max_width) / (view.margin * view.m)
    return Formula(complexity=complexity, gap=complexity + sp.sqrt(sp.log(1 / view.delta) / view.m),
                   statement=STATEMENT)


def dudley_form(view: NetworkView) -> Formula:
    """Derived, exact for the class with these norm constraints (no union bound over them):

    1. Lemma 3.1: P(err) ≤ R̂_γ(f) + 2ℜ(F_γ|S) + 3√(ln(2/δ)/(2m)), F_γ = ramp_γ ∘ margin map ∘ F
       (boundcalc uses ln(2/δ), the two-sided McDiarmid form of Mohri et al. Thm 3.3).
    2. Thm 3.3 covers the network outputs: ln N(F|S, ε, ‖·‖_F) ≤ ‖X‖_F²·ln(2W²)·R_A²/ε².
       The loss ramp_γ ∘ margin map is 𝓛 = √2/γ-Lipschitz in the output's ℓ₂ norm (margin map √2-Lipschitz,
       ramp 1/γ), so ln N(F_γ|S, ε) ≤ K²/ε² with K = 𝓛·‖X‖_F·√(ln(2W²))·R_A.
    3. Dudley's entropy integral (Lemma A.5) with cut-off α = 1/√m:
       ℜ ≤ 4α/√m + (12/m)∫_α^√m K/ε dε = 4/m + 12·ln(m)·K/m.
    So gap ≤ 8/m + 24·ln(m)·K/m + 3√(ln(2/δ)/(2m))."""
    k = view.loss_lipschitz * view.data_norm * sp.sqrt(sp.log(2 * view.max_width ** 2)) * spectral_complexity(view)
    m = view.m
    complexity = 2 * (4 / m + 12 * sp.log(m) * k / m)
    return Formula(complexity=complexity, gap=complexity + confidence_term(view), statement=STATEMENT)


BARTLETT_ORDER = PriorBound(
    key="bartlett2017", title=CITATION.title, citation=CITATION, theorem="Thm 1.1", status="order",
    requirements=REQUIREMENTS, build=order_form, resnet=BARTLETT_RESNET,
    summary="‖X‖_F·R_A·ln(W)/(γm),  R_A = Πρ_i s_i·(Σ(b_i/s_i)^(2/3))^(3/2)",
    caveats=("Order only (Õ): the theorem hides constants and log factors; the number is not a bound.",),
)
BARTLETT_DERIVED = PriorBound(
    key="bartlett2017_dudley", title=CITATION.title + " (Dudley form)", citation=CITATION,
    theorem="Lemma 3.1 + Thm 3.3 + Dudley (Lemma A.5), α = 1/√m", status="derived",
    requirements=REQUIREMENTS, build=dudley_form, resnet=BARTLETT_RESNET,
    summary="8/m + 24·ln(m)·𝓛‖X‖_F√ln(2W²)·R_A/m",
    caveats=("K = (‖X‖_F/γ)·√ln(2W²)·R_A (docs/references.md §9.6) leaves out the margin map's Lipschitz "
             "factor (√2 in ℓ₂; Bartlett et al. Lemma A.3 use 2 in ℓ∞); boundcalc uses K = 𝓛·‖X‖_F·√ln(2W²)"
             "·R_A with 𝓛 = √2/γ, which the covering argument needs.",
             "b_i = ‖W_iᵀ − M_iᵀ‖₂,₁ with reference matrices M_i fixed before seeing the data (0 by default); "
             "for a conv2d layer W_i is the layer's full matrix (one row per output channel and position), "
             "not the c_out × c_in·k·k kernel.",
             "Holds for the class with exactly these norm values; Thm 1.1's union bound over norm levels "
             "is not included."),
)
ENTRIES = (BARTLETT_ORDER, BARTLETT_DERIVED)
