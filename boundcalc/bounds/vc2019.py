"""Bartlett, Harvey, Liaw & Mehrabian (JMLR 2019): nearly-tight VC-dimension bounds for piecewise-linear
neural networks."""
from __future__ import annotations

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, PriorBound, Requirements
from boundcalc.bounds.network import NetworkView
from boundcalc.ops import PIECEWISE_LINEAR_OPS, names_where

#: branch merges that are piecewise linear (add, concat): edges of the DAG, no units of their own
MERGES = names_where(lambda kind: kind.flags.multi_input and kind.flags.piecewise_linear)

CITATION = Citation(authors="Bartlett, Harvey, Liaw & Mehrabian",
                    title="Nearly-tight VC-dimension and pseudodimension bounds for piecewise linear neural "
                          "networks", year=2019, venue="JMLR", arxiv="1703.02930")


def order_form(view: NetworkView) -> Formula:
    """VCdim = O(P·L·log P) for piecewise-linear networks with P parameters and L layers (longest path,
    any feed-forward DAG); the uniform-convergence gap is then ≲ √(VCdim·log(m)/m) + √(log(1/δ)/m)."""
    params, depth, m = view.parameter_count, view.depth, view.m
    complexity = sp.sqrt(params * depth * sp.log(params) * sp.log(m) / m)
    return Formula(complexity=complexity, gap=complexity + sp.sqrt(sp.log(1 / view.delta) / m),
                   statement="P(err) − P̂_S(err) (binary classification; order form)")


VC_2019 = PriorBound(
    key="vc2019", title=CITATION.title, citation=CITATION, theorem="Thm 6 (upper bound O(P·L·log P))",
    status="order",
    requirements=Requirements(ops=frozenset({"linear", "conv2d"}) | MERGES | (PIECEWISE_LINEAR_OPS - {"maxpool"}),
                              activation="piecewise linear, elementwise or linear (ReLU, leaky ReLU, identity, "
                              "average pooling); not max-pooling, whose units are not σ(affine)",
                              topology="dag"),
    build=order_form,
    resnet="not as stated (order only in any case): its units apply a piecewise-linear activation to an affine "
           "map of earlier units, which covers convs with biases, ReLU, residual adds and average pooling, but "
           "not max-pooling (a max of several inputs; rewriting it with ReLUs adds units and depth)",
    summary="√(P·L·log(P)·log(m)/m)",
    caveats=("Order only: constants not confirmed; the number is not a bound.",
             "Counts parameters, not norms: it does not shrink with small weights or low rank.",
             "VC dimension is for binary outputs; multi-class needs a Natarajan-dimension argument (not included)."),
)
ENTRIES = (VC_2019,)
