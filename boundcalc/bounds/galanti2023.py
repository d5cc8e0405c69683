"""Galanti, Xu, Galanti & Poggio (NeurIPS 2023): norm-based bounds for sparse (convolutional) networks."""
from __future__ import annotations

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, NotApplicable, PriorBound, Requirements, inverse_margin
from boundcalc.bounds.network import NetworkView

CITATION = Citation(authors="Galanti, Xu, Galanti & Poggio",
                    title="Norm-based Generalization Bounds for Sparse Neural Networks",
                    year=2023, venue="NeurIPS", arxiv="2301.12033")


def order_form(view: NetworkView) -> Formula:
    """Order form with filter norms instead of Toeplitz norms:
        O( Π_l ‖w_l‖_F·√(Π_l deg_l)·√(L·log deg_max)·R/√m ),
    w_l the kernel tensor of layer l (the whole matrix for a dense layer), deg_l the number of inputs per
    neuron (kernel area; for a dense layer after a flatten, the number of input positions), R = max ‖x_i‖."""
    if "conv2d" not in view.ops:
        raise NotApplicable("meant for convolutional (sparse) networks; the spec has no conv2d layer")
    degrees = [layer.degree for seg in view.segments for layer in seg.layers]
    deg_max = sp.Max(*degrees)
    complexity = (inverse_margin(view) * view.product(lambda l: l.w) * sp.sqrt(view.product(lambda l: l.degree))
                  * sp.sqrt(view.depth * sp.log(deg_max)) * view.max_input_norm / sp.sqrt(view.m))
    return Formula(complexity=complexity, gap=complexity + sp.sqrt(sp.log(1 / view.delta) / view.m),
                   statement="L(f) − L̂_γ(f) (order form)")


GALANTI_2023 = PriorBound(
    key="galanti2023", title=CITATION.title, citation=CITATION, theorem="main theorem, order form",
    status="order",
    requirements=Requirements(ops=frozenset({"conv2d", "linear", "relu", "flatten", "dropout"}),
                              activation="ReLU, bias-free; convolutions with filter norms"),
    build=order_form,
    resnet="no: a chain of convolutions and a dense head with bias-free ReLU; no pooling, no residual adds",
    summary="Π‖w_l‖_F·√(Π deg_l)·√(L·log deg_max)·R/(γ√m)",
    caveats=("Order only: constants not confirmed; the number is not a bound.",
             "deg_l follows docs/references.md §5.9 (kernel area); a dense layer counts its input positions."),
)
ENTRIES = (GALANTI_2023,)
