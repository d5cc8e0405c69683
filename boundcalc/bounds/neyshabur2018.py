"""Neyshabur, Bhojanapalli & Srebro (ICLR 2018): a PAC-Bayesian spectrally-normalized margin bound."""
from __future__ import annotations

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, PriorBound, Requirements
from boundcalc.bounds.network import NetworkView

CITATION = Citation(authors="Neyshabur, Bhojanapalli & Srebro",
                    title="A PAC-Bayesian Approach to Spectrally-Normalized Margin Bounds for Neural Networks",
                    year=2018, venue="ICLR", arxiv="1707.09564")


def order_form(view: NetworkView) -> Formula:
    """Thm 1, order form (R = max_i ‖x_i‖, h = the largest width, L = depth):
        gap ≤ O( √( (R²·L²·h·ln(L·h)·Π s_i²·Σ f_i²/s_i² + ln(L·m/δ)) / (γ²·m) ) ).
    The complexity column keeps the first summand under the root."""
    big_l, h, m, gamma = view.depth, view.max_width, view.m, view.margin
    core = (view.max_input_norm ** 2 * big_l ** 2 * h * sp.log(big_l * h) * view.product(lambda l: l.s ** 2)
            * view.total(lambda l: l.f ** 2 / l.s ** 2))
    complexity = sp.sqrt(core / (gamma ** 2 * m))
    gap = sp.sqrt((core + sp.log(big_l * m / view.delta)) / (gamma ** 2 * m))
    return Formula(complexity=complexity, gap=gap,
                   statement="L_0(f) − L̂_γ(f) (expected 0-1 loss minus empirical margin loss at γ)")


NEYSHABUR_2018 = PriorBound(
    key="neyshabur2018", title=CITATION.title, citation=CITATION, theorem="Thm 1", status="order",
    requirements=Requirements(ops=frozenset({"linear", "relu", "leaky_relu", "identity", "dropout"}),
                              activation="ReLU (positively homogeneous), dense layers, bias-free",
                              needs_margin=True),
    build=order_form,
    resnet="no: dense layers in a chain (no convolutions, pooling or residual adds), bias-free ReLU",
    summary="√(R²L²h·ln(Lh)·Πs_i²·Σf_i²/s_i² / (γ²m))",
    caveats=("Order only: the constant in O(·) is not confirmed; the number is not a bound.",),
)
ENTRIES = (NEYSHABUR_2018,)
