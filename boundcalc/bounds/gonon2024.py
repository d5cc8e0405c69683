"""Gonon, Brisebarre, Riccietti & Gribonval (ICLR 2024): the L1 path-norm bound for DAG ReLU networks.

The path-norm r = ‖Φ(θ)‖₁ is one measured number for the whole network (:mod:`boundcalc.pathnorm`), so the entry
evaluates itself with a ``numeric`` hook whose ``measure`` runs the path-norm pass on the bound tensors; the
formula that ``bounds show`` and ``compare`` print keeps r as the symbol ``Phi_1`` (docs/references.md §12).
"""
from __future__ import annotations

import math

import sympy as sp

from boundcalc.bounds.base import Citation, Formula, NotApplicable, NumericEvaluation, PriorBound, Requirements
from boundcalc.bounds.network import NetworkView
from boundcalc.errors import DeriveError
from boundcalc.numerics import positive_log_real
from boundcalc.pathnorm import PATH_OPS, path_norm, path_structure

CITATION = Citation(authors="Gonon, Brisebarre, Riccietti & Gribonval",
                    title="A path-norm toolkit for modern networks: consequences, promises and challenges",
                    year=2024, venue="ICLR", arxiv="2310.01225")
STATEMENT = ("L(f) − L̂_S(f) for a loss 𝓛-Lipschitz (ℓ₂) in the output with values in [0, 1], with probability "
             "1 − δ (complexity term: Thm 3.1's bound on its expectation)")
REQUIREMENTS = Requirements(
    ops=PATH_OPS, topology="dag", biases=True,
    activation="ReLU and identity neurons, max-pooling (an order statistic, incoming edges of weight 1); linear "
               "and conv layers with biases, average pooling, residual adds; no other activation")

EXPECTATION_CAVEAT = (
    "Thm 3.1 bounds the expected generalization error E_S[sup_{‖Φ(θ)‖₁ ≤ r} L(θ) − L̂_S(θ)] over the draw of the "
    "sample, not a gap with probability 1 − δ; the complexity column is that expectation bound. The gap adds "
    "McDiarmid's deviation of the supremum (the loss has values in [0, 1], so one sample moves it by ≤ 1/m): "
    "with probability ≥ 1 − δ, sup(L − L̂_S) ≤ E_S sup + √(ln(1/δ)/(2m)) (docs/references.md §12.3).")
SOURCE_CAVEAT = (
    "Only the abstract of the paper could be read here; C = √(D·ln((3+2P)K) + ln((3+2P)/(1+P)·(d_in+1)·d_out)) "
    "and the factor 4·B·C/√n are those of the authors' code (compute_1st_part_bound_resnets.py, 'the 1st part "
    "of the generalization bound given in Theorem 3.1'), multiplied by r and by the loss's ℓ₂-Lipschitz "
    "constant 𝓛; B is taken as max(1, max‖x‖∞) for the bias coordinate 1 (never below B; docs/references.md §12.2).")
DATA_CAVEAT = ("B must bound ‖x‖∞ on the input distribution; boundcalc uses the training sample's largest "
               "coordinate, as the paper does on ImageNet.")
DEPTH_CAVEAT = ("D is counted on the neuron DAG read from the spec: each linear, conv and pooling layer adds 1, "
                "a ReLU joins the layer before it, an add joins an identity-activation input read by nothing "
                "else (else it adds 1); a D above the paper's count only enlarges C (docs/references.md §12.2).")


def _terms(view: NetworkView, constant: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """(Thm 3.1's expectation bound, that bound + McDiarmid's term) with the DAG constant ``constant``."""
    table = view.spec.symbols
    m = view.m
    complexity = 4 * constant * sp.Max(1, table("R_inf")) * view.loss_lipschitz * table("Phi_1") / sp.sqrt(m)
    return complexity, complexity + sp.sqrt(sp.log(1 / view.delta) / (2 * m))


def path_norm_bound(view: NetworkView) -> Formula:
    """Thm 3.1 of Gonon et al. (in expectation over the sample S of size m), for the class of parameters with
    ‖Φ(θ)‖₁ ≤ r of a DAG ReLU network with biases, skips, max- and average-pooling:

        E_S sup (L − L̂_S) ≤ 4·C·B·𝓛·r/√m,   C = √(D·ln((3+2P)K) + ln((3+2P)/(1+P)·(d_in+1)·d_out)),

    D the depth, K the largest max-pooling window (1 without), P the number of max-pooling types (0 or 1),
    B = max(1, max_i ‖x_i‖∞) (the lifted input (x, 1)), 𝓛 the loss's ℓ₂-Lipschitz constant (√2/γ for the ramp
    loss of the multi-class margin; boundcalc's reading of where 𝓛 enters: 4 = 2 (symmetrization) × √2
    (Maurer's vector contraction) × √2 (Massart's maximal inequality over paths and outputs)). McDiarmid for a loss in [0, 1] then gives, with
    probability 1 − δ, gap ≤ 4·C·B·𝓛·r/√m + √(ln(1/δ)/(2m)). r = ‖Φ(θ)‖₁ is one forward pass of |θ| on the
    all-ones input, summed over the outputs (ReLU → identity, max-pooling → sum over its window)."""
    try:
        structure = path_structure(view.graph, view.input_dim)
    except DeriveError as err:
        raise NotApplicable(str(err)) from None
    complexity, gap = _terms(view, structure.constant())
    return Formula(complexity=complexity, gap=gap, statement=STATEMENT)


def measure(model, data) -> dict[str, float]:
    """Phi_1 (the path-norm pass on the bound tensors, biases included unless dropped), C_Phi (on the network's
    own DAG: its input dimension without a folded bias coordinate) and R_inf (from the training data)."""
    graph = model.forward_graph   # folded batchnorms are identity layers there
    try:
        out = {"Phi_1": path_norm(graph, model.weights, model.biases),
               "C_Phi": float(path_structure(graph, sp.Integer(math.prod(model.spec.data.shape))).constant())}
    except DeriveError as err:
        raise NotApplicable(str(err)) from None
    if data is not None and data.max_linf is not None:
        out["R_inf"] = data.max_linf
    return out


def evaluate(view: NetworkView, values: dict[str, float]):
    if "R_inf" not in values:
        raise NotApplicable("needs B = max_i ‖x_i‖∞ of the training inputs: pass --data FILE.npz")
    complexity, gap = _terms(view, view.spec.symbols("C_Phi"))
    return positive_log_real(complexity, values), positive_log_real(gap, values)


GONON = PriorBound(
    key="gonon2024", title=CITATION.title, citation=CITATION,
    theorem="Thm 3.1 (expected generalization error) + McDiarmid for probability 1 − δ", status="derived",
    requirements=REQUIREMENTS, build=path_norm_bound,
    numeric=NumericEvaluation("path-norm pass of |θ| on the all-ones input, then Thm 3.1 (log space)", evaluate,
                              measure=measure, layer_norms=False),
    summary="4·C·max(1,B)·𝓛·‖Φ(θ)‖₁/√m + √(ln(1/δ)/(2m))",
    caveats=(EXPECTATION_CAVEAT, SOURCE_CAVEAT, DATA_CAVEAT, DEPTH_CAVEAT),
    resnet="yes: conv and linear layers with biases (BN folded into them), ReLU, max-pooling, residual adds and "
           "average pooling are all neurons of its DAG ReLU model (max-pooling and BN need their kinds' "
           "path_forward)",
)
ENTRIES = (GONON,)
