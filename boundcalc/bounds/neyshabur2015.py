"""Neyshabur, Tomioka & Srebro (COLT 2015): norm-based capacity control in neural networks."""
from __future__ import annotations

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, PriorBound, Requirements, inverse_margin
from boundcalc.bounds.network import NetworkView
from boundcalc.ops import HOMOGENEOUS_OPS

CITATION = Citation(authors="Neyshabur, Tomioka & Srebro", title="Norm-Based Capacity Control in Neural Networks",
                    year=2015, venue="COLT", arxiv="1503.00036")


def order_form(view: NetworkView) -> Formula:
    """Rademacher complexity of layered ReLU networks with Frobenius-bounded layers (order form):
        R ≲ 2^(L−1)·Π_i ‖W_i‖_F·R/√m,   R = max_i ‖x_i‖,
    turned into a gap by the margin (1/γ) and the √(ln(1/δ)/m) deviation term, constants dropped."""
    complexity = inverse_margin(view) * 2 ** (view.depth - 1) * view.product(lambda l: l.f) \
        * view.max_input_norm / sp.sqrt(view.m)
    return Formula(complexity=complexity, gap=complexity + sp.sqrt(sp.log(1 / view.delta) / view.m),
                   statement="L(f) − L̂_γ(f) (order form)")


NEYSHABUR_2015 = PriorBound(
    key="neyshabur2015", title=CITATION.title, citation=CITATION, theorem="Cor. 2 (Frobenius / ℓ2 case)",
    status="order",
    requirements=Requirements(ops=frozenset({"linear"}) | HOMOGENEOUS_OPS,
                              activation="ReLU (positively homogeneous), bias-free"),
    build=order_form,
    resnet="no: dense layers in a chain (no convolutions, pooling or residual adds), bias-free ReLU",
    summary="2^(L−1)·Π‖W_i‖_F·R/(γ√m)",
    caveats=("Order only: the 2^L factor is the point of the comparison; the constant is not confirmed.",
             "Stated for real-valued outputs; the class-count dependence of a multi-class extension is not "
             "included."),
)
ENTRIES = (NEYSHABUR_2015,)
