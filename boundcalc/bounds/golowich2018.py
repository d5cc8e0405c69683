"""Golowich, Rakhlin & Shamir (COLT 2018): size-independent sample complexity of neural networks."""
from __future__ import annotations

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, PriorBound, Requirements, confidence_term
from boundcalc.bounds.network import NetworkView
from boundcalc.ops import HOMOGENEOUS_OPS

CITATION = Citation(authors="Golowich, Rakhlin & Shamir",
                    title="Size-Independent Sample Complexity of Neural Networks",
                    year=2018, venue="COLT", arxiv="1712.06541")


def real_valued_rademacher(view: NetworkView) -> sp.Expr:
    """Thm 1: R̂_m ≤ Π_j ‖W_j‖_F·(√(2·ln(2)·L) + 1)·√(Σ_i ‖x_i‖²)/m for real-valued outputs."""
    return (view.product(lambda l: l.f) * (sp.sqrt(2 * sp.log(2) * view.depth) + 1) * view.data_norm / view.m)


def exact_form(view: NetworkView) -> Formula:
    """Thm 1 for the Rademacher complexity of the class, then the standard margin/Lipschitz-loss step.

    Real-valued output (k = 1): gap ≤ 2·𝓛·R̂_m + 3√(ln(2/δ)/(2m)) (Talagrand's contraction; Mohri et al.
    Thm 3.3).

    k > 1 outputs (derived): Maurer's vector contraction gives R̂(ℓ∘F) ≤ √2·𝓛·(1/m)·E sup Σ_{i,j} ε_ij f_j(x_i),
    and E sup Σ_j Σ_i ε_ij f_j(x_i) ≤ Σ_j E sup Σ_i ε_ij f_j(x_i). Each output f_j is a real-valued network
    whose last layer is row j of W_L, with ‖row_j‖ ≤ ‖W_L‖_F, so each summand is at most m times Thm 1's
    bound: gap ≤ 2·√2·𝓛·k·R̂_m + 3√(ln(2/δ)/(2m))."""
    rademacher = real_valued_rademacher(view)
    k = view.output_dim
    if k == 1:
        complexity = 2 * view.loss_lipschitz * rademacher
        return Formula(complexity=complexity, gap=complexity + confidence_term(view),
                       statement="L(f) − L̂_S(f) for a loss 𝓛-Lipschitz in the output, values in [0, 1]")
    complexity = 2 * sp.sqrt(2) * view.loss_lipschitz * k * rademacher
    return Formula(complexity=complexity, gap=complexity + confidence_term(view),
                   statement="L(f) − L̂_S(f) for a loss 𝓛-Lipschitz (ℓ₂) in the output, values in [0, 1]",
                   status="derived",
                   notes=(f"multi-class output ({'k = ' + str(k) if k.is_number else str(k) + ' outputs'}): Thm 1 is for real-valued networks; extended by Maurer's "
                          "vector contraction and a sum over the k outputs (status 'derived', see bounds show).",))


GOLOWICH_2018 = PriorBound(
    key="golowich2018", title=CITATION.title, citation=CITATION, theorem="Thm 1", status="exact",
    requirements=Requirements(ops=frozenset({"linear", "conv2d"}) | HOMOGENEOUS_OPS,
                              activation="1-Lipschitz, positively homogeneous, elementwise (ReLU, leaky ReLU "
                              "with |α| ≤ 1, identity), bias-free"),
    build=exact_form,
    resnet="no: Thm 1 peels a chain of layers (residual adds are outside) with bias-free, positively homogeneous "
           "elementwise activations (a folded BN leaves a bias on every conv; max- and average pooling are not "
           "elementwise)",
    summary="Π‖W_j‖_F·(√(2ln(2)L)+1)·‖X‖_F/m",
    caveats=("For conv2d layers ‖W‖_F is the Frobenius norm of the full (Toeplitz) operator, not of the kernel.",),
)
ENTRIES = (GOLOWICH_2018,)
