"""Per-operation rules of the Maurer chain rule, and the named rule sets built from them.

Each rule is a pure function ``rule(node, q, inputs) -> Transfer``: it reads the input states and the
layer's quantities (through ``q``, which yields sympy symbols when deriving and floats when evaluating)
and returns a fresh state, one gain per input and the terms it adds. The chain rule
(Maurer 2016, as stated by Pinto, Rangamani & Poggio 2024, Thm 3), for a layer class F on inputs Y:

    G(F(Y)) ≤ C1·L(F)·G(Y) + C2·D(Y)·R(F, Y) + G(F(y0))

For a bias-free linear layer {W : ‖W‖₂ ≤ s, ‖W‖_F ≤ f}: L(F) = s, R(F, Y) ≤ f·√h_out (Pinto et al.
Lemma 6) and G(F(y0)) ≤ f·√h_out·‖y0‖_F (Lemma 10's argument), with y0 = the zero network's image.
A layer with a bias (``bias: true``) is affine; :func:`affine_tight` adds its bias part.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from boundcalc.calculus import arith
from boundcalc.calculus.attention_rule import softmax_mix_tight
from boundcalc.calculus.quantities import Node, SymbolicQuantities, output_width
from boundcalc.calculus.state import LocalTerm, State, Transfer
from boundcalc.errors import DeriveError
from boundcalc.ops import OPS
from boundcalc.ops.sequence import layernorm_lipschitz

Rule = Callable[[Node, SymbolicQuantities, list[State]], Transfer]


def shared_tokens(node: Node) -> Any:
    """T for a weight layer on a (T, d) input, which applies one map to every token (the operator I_T ⊗ W);
    None for a layer on vectors or images."""
    if node.in_shapes and len(node.in_shapes[0]) == 2:
        return node.in_shapes[0][0]
    return None


#: what derive's assumptions say when a weight layer reads (tokens, dim) inputs
TOKEN_WISE_ASSUMPTION = (
    "token-wise layers (linear, layernorm on a (T, d) input) apply one map to every token: the operator I_T ⊗ W, "
    "with ‖I_T ⊗ W‖₂ = ‖W‖₂ and ‖I_T ⊗ W‖_F = √T·‖W‖_F; s_<layer>, f_<layer> = ‖W‖_F and c_<layer> = ‖b‖₂ are "
    "of the shared matrix and bias. R(F, Y) ≤ f·√d_out by the weight sharing (not the full operator's "
    "√T·f·√(T·d_out)), the first layer's G ≤ f·√d_out·‖X‖_F, a bias adds c·√(m·T·d_out) to G(F(y0)) and "
    "√(m·T)·c to the image norm (docs/references.md §3.9)")


def _shared_width(node: Node) -> tuple[Any, str, str]:
    """(the width in R(W) ≤ ‖W‖_F·√width, its name, what the rules' texts add): h_out for a layer on vectors or
    images; d_out, one token's outputs, for a token-wise layer (docs/references.md §3.9: with Δ = y − y′,
    ⟨Γ, (I_T ⊗ W)Δ⟩ = ⟨W, Σ_t Γ_t Δ_tᵀ⟩ and E‖Σ_t Γ_t Δ_tᵀ‖_F ≤ √d_out·‖Δ‖_F; the full operator's √T·‖W‖_F with
    h_out = T·d_out would give T times more)."""
    if shared_tokens(node) is None:
        return output_width(node), "h_out", ""
    return node.out_shape[-1], "d_out", "'s argument with one W shared by the tokens, §3.9"


def token_bound(combine: Callable[..., Any], *bounds: Any) -> Any:
    """``combine(*bounds)``: a layer's bound on the largest token norm from its inputs' (State.token_norm);
    None when any input has none (nothing tracks it, or the samples are not sequences)."""
    return None if any(b is None for b in bounds) else combine(*bounds)


#: the kinds whose affine rule acts per token on a (T, d) input: ‖W x_t + b‖₂ ≤ s·B + c
_TOKEN_AFFINE = frozenset({"linear", "layernorm"})


# -- linear maps with parameters ------------------------------------------------------------------
def _linear_common(node: Node, q: SymbolicQuantities, x: State, diameter: Any, diameter_rule: str,
                   min_rank: Any) -> Transfer:
    s = q.layer("s", node)
    f = q.layer("f", node)
    width, label, shared = _shared_width(node)
    gaussian_average = arith.mul(f, arith.sqrt(q.value(width)))  # R(F, Y) ≤ f·√width (Lemma 6)
    terms = []
    if not arith.is_zero(diameter):
        terms.append(LocalTerm(node.name, "disturbance", arith.mul(q.C2, diameter, gaussian_average),
                               rule=f"C2·D(Z_in)·R(W), R(W) ≤ ‖W‖_F·√{label} (Pinto et al. Lemma 6{shared})",
                               diameter_rule=diameter_rule))
    if not arith.is_zero(x.anchor):
        kind = "first layer" if x.single_point else "anchor"
        rule = (f"G(W X) ≤ ‖W‖_F·√{label}·‖X‖_F (Pinto et al. Lemma 10{shared})" if x.single_point else
                f"G(F(y0)) ≤ ‖W‖_F·√{label}·‖y0‖_F at the zero-weight point y0")
        terms.append(LocalTerm(node.name, kind, arith.mul(gaussian_average, x.anchor), rule=rule))
    state = State(
        width=None,
        diameter=arith.mul(2, s, x.image_norm),
        image_norm=arith.mul(s, x.image_norm),
        anchor=sp.S.Zero if isinstance(s, sp.Basic) else 0.0,
        lipschitz=arith.mul(s, x.lipschitz),
        min_rank=min_rank,
        single_point=False,
        diameter_rule=f"image-norm: D ≤ 2·‖W‖₂·N(Z_in) at {node.name} (rank-free, tight)",
        token_norm=(token_bound(lambda b: arith.mul(s, b), x.token_norm)
                    if node.op in _TOKEN_AFFINE and shared_tokens(node) is not None else None),
    )
    return Transfer(state=state, gains=(arith.mul(q.C1, s),), terms=tuple(terms))


def linear_tight(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """Chain rule with the rank-free diameter D(Z) ≤ 2·N(Z) (docs/references.md §3.4):
    each sample's image has norm ≤ Π s_j ‖x‖, so two images differ by at most twice that."""
    (x,) = inputs
    return _linear_common(node, q, x, x.diameter, x.diameter_rule, x.min_rank)


def linear_as_printed(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """Pinto et al. eq. (4): the diameter of Lemma 5 as printed,
    D ≤ ‖X‖_F·√(2·𝔯_i)·2·Π_{j<i} ‖W_j‖₂ with 𝔯_i = min_{j≤i} rank(W_j) (this layer included, as printed)."""
    (x,) = inputs
    if shared_tokens(node) is not None:
        raise DeriveError(f"layer {node.name}: a token-wise linear on a (tokens, dim) input; eq. (4) covers "
                          "layers on vectors (use --rules tight)")
    r = q.layer("r", node)
    rank_min = q.minimum(x.min_rank, r)
    if x.single_point:
        diameter = x.diameter
    else:
        diameter = arith.mul(x.image_norm, arith.sqrt(arith.mul(2, rank_min)), 2)
    rule = ("Lemma 5 as printed: D ≤ ‖X‖_F·√(2·min_{j≤i} rank W_j)·2·Π_{j<i}‖W_j‖₂ "
            "(the printed min includes layer i; Lemma 5's proof supports only j ≤ i−1)")
    transfer = _linear_common(node, q, x, diameter, rule, rank_min)
    lemma5 = arith.mul(transfer.state.image_norm, arith.sqrt(arith.mul(2, rank_min)), 2)
    return Transfer(state=transfer.state._replace(diameter=lemma5, diameter_rule=rule),
                    gains=transfer.gains, terms=transfer.terms)


def affine_tight(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """:func:`linear_tight` for a layer x → W x + b with ‖b‖₂ ≤ c (c_<layer>: the norm of the bias as added to
    the layer's h_out outputs); the bias-free case when the layer has no ``bias: true``. On m samples
    Y ∈ R^{h_in×m} the layer gives W Y + b·1ᵀ (docs/references.md §3.8):

    - L(F) and R(F, Y) read only differences f(y) − f(y′) = W(y − y′), where b cancels: unchanged;
    - G(F(y0)) = E sup ⟨Γ, W y0 + b·1ᵀ⟩ ≤ E sup_W ⟨Γ, W y0⟩ + E sup_b ⟨Γ·1, b⟩, and Γ·1 ~ N(0, m·I_h_out), so the
      bias part is c·E‖Γ·1‖₂ ≤ c·√(m·h_out) (Jensen); it is added at every biased layer, the first included;
    - N(F(Y)) ≤ s·N(Y) + ‖b·1ᵀ‖_F = s·N(Y) + √m·c (√(m·T)·c for a token-wise layer whose per-token bias of
      norm c is added to each of T tokens; its Γ·1 sums m·T draws, so its G part c·√(m·T·d_out) = c·√(m·h_out));
    - D ≤ 2·N as for bias-free layers, with the new N: two functions of the class may have different biases,
      so D grows by up to 2·√m·c (the biases do not shift every image by a common vector).

    The zero-weight network (W = 0, b = 0) is in the class, so the anchor y0 after the layer is still 0."""
    transfer = linear_tight(node, q, inputs)
    if not node.params.get("bias"):
        return transfer
    c, m = q.layer("c", node), q.samples()
    tokens = shared_tokens(node)
    shift = arith.mul(arith.sqrt(m if tokens is None else arith.mul(m, q.value(tokens))), c)
    image_norm = arith.add(transfer.state.image_norm, shift)
    state = transfer.state._replace(image_norm=image_norm, diameter=arith.mul(2, image_norm),
                                    token_norm=token_bound(lambda b: arith.add(b, c), transfer.state.token_norm))
    bias_term = LocalTerm(node.name, "anchor", arith.mul(c, arith.sqrt(arith.mul(m, q.value(output_width(node))))),
                          rule="bias part of G(F(y0)): ‖b‖₂·E‖Γ·1‖₂ ≤ c·√(m·h_out)")
    return Transfer(state=state, gains=transfer.gains, terms=transfer.terms + (bias_term,))


def layernorm_tight(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """LayerNorm = the fixed normalisation N (:func:`normalised`), then, with ``affine``, the token-wise affine
    layer x ↦ γ ⊙ x + β (:func:`affine_tight` with W = diag(γ): s = ‖γ‖∞, f = ‖γ‖₂, c = ‖β‖₂ per token).
    N is a fixed ρ-Lipschitz map, ρ = 1/√ε, so G(N(Y)) ≤ ρ·G(Y) (Sudakov–Fernique, as for activations); the
    affine class then gives G ≤ C1·s·G(N(Y)) + its terms, which read N's state. Gain: C1·s·ρ."""
    (x,) = inputs
    rho = q.value(layernorm_lipschitz(node.params))
    state = normalised(node, q, x, rho)
    if not node.params["affine"]:
        return Transfer(state=state, gains=(rho,))
    affine = affine_tight(node, q, [state])
    return Transfer(state=affine.state, gains=(arith.mul(rho, affine.gains[0]),), terms=affine.terms)


def normalised(node: Node, q: SymbolicQuantities, x: State, rho: Any) -> State:
    """The state after LayerNorm's normalisation N, per token (x − mean)/√(var + ε) (docs/references.md §3.9):

    - image norm: every token of N(z) has norm < √d, so ‖N(z)‖_F ≤ √(m·T·d) = √(m·h) whatever z (h = T·d): a
      data-independent bound that replaces ρ·N(Z);
    - diameter: D ≤ 2·√(m·h) likewise (0 while Z is the single point X);
    - anchor: ‖N(y0)‖ ≤ ρ·‖y0‖ (N(0) = 0, so a zero anchor stays zero); for the single point X, ‖N(X)‖ ≤ √(m·h);
    - token bound: every token of N(z) has norm < √d, whatever z;
    - Lipschitz constant: times ρ. Every field is linear in the entering ones, as the composer needs."""
    cap = arith.sqrt(arith.mul(q.value(output_width(node)), q.samples()))
    per_token = token_bound(lambda _: arith.sqrt(q.value(node.out_shape[-1])), x.token_norm)
    return x._replace(
        width=None,
        diameter=x.diameter if x.single_point else arith.mul(2, cap),
        image_norm=cap,
        anchor=cap if x.single_point else arith.mul(rho, x.anchor),
        lipschitz=arith.mul(rho, x.lipschitz),
        diameter_rule=f"LayerNorm at {node.name}: each token of its normalised image has norm < √d, so "
                      "D ≤ 2·√(m·T·d) (§3.9)",
        token_norm=per_token,
    )


def _bias_free(name: str, params: dict[str, Any]) -> str | None:
    """as_printed: the paper's class has no biases."""
    return f"layer {name}: has a bias (bias: true); eq. (4) covers bias-free layers" if params.get("bias") else None


# -- parameter-free maps ----------------------------------------------------------------------------
def activation_lipschitz(node: Node, q: SymbolicQuantities) -> Any:
    """ρ of a parameter-free map (its Lipschitz constant / operator norm), as its op kind declares it for the
    layer's input size."""
    in_shape = node.in_shapes[0] if node.in_shapes else None
    return OPS[node.op].lipschitz_at(node.name, node.params, q.value, in_shape)


def elementwise(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """A ρ-Lipschitz map applied sample-wise: every bound scales by ρ. For the width this is Gaussian
    comparison (Sudakov–Fernique), with no C1. A map with φ(0) = c ≠ 0 adds :func:`zero_image_shift` to the
    image norm and the anchor (the zero network's image is no longer 0); D, G and L only scale."""
    (x,) = inputs
    rho = activation_lipschitz(node, q)
    state = x._replace(diameter=arith.mul(rho, x.diameter), image_norm=arith.mul(rho, x.image_norm),
                       anchor=arith.mul(rho, x.anchor), lipschitz=arith.mul(rho, x.lipschitz), width=None,
                       token_norm=_map_token_bound(node, q, x.token_norm, rho))
    shift = zero_image_shift(node, q)
    if shift is not None:
        state = state._replace(image_norm=arith.add(state.image_norm, shift), anchor=arith.add(state.anchor, shift))
    return Transfer(state=state, gains=(rho,))


def _map_token_bound(node: Node, q: SymbolicQuantities, bound: Any, rho: Any) -> Any:
    """The token bound after a parameter-free map: ρ·B + |φ(0)|·√d for a coordinate-wise map on (T, d) samples
    (each coordinate moves by at most ρ times its own size, plus |φ(0)|); None for anything else (token_mean,
    flatten, pooling: the samples are no longer sequences of the same tokens)."""
    kind = OPS[node.op]
    if bound is None or not kind.flags.pointwise or kind.flags.reshape or len(node.out_shape) != 2:
        return None
    scaled = arith.mul(rho, bound)
    c = kind.at_zero(node.params)
    if sp.sympify(c).is_zero:
        return scaled
    return arith.add(scaled, arith.mul(abs(q.value(c)), arith.sqrt(q.value(node.out_shape[-1]))))


def zero_image_shift(node: Node, q: SymbolicQuantities) -> Any:
    """|c|·√(h·m) for a coordinate-wise map with φ(0) = c ≠ 0 on h coordinates per sample and m samples (None
    when c = 0). Write φ = c + ψ with ψ(0) = 0, ψ ρ-Lipschitz (docs/references.md §3.2.1):

    - anchor: the zero network's image y0 (a point of the set Z, as the chain rule needs) goes to φ(y0), and
      ‖φ(y0)‖_F ≤ ‖ψ(y0)‖_F + ‖c·1‖_F ≤ ρ·‖y0‖_F + |c|·√(h·m); the next weight layer's anchor term
      G(W·φ(y0)) ≤ ‖W‖_F·√h_out·‖φ(y0)‖_F is then non-zero;
    - image norm: sup ‖φ(z)‖_F ≤ ρ·N(Z) + |c|·√(h·m), the same triangle inequality;
    - diameter: φ(z) − φ(z') = ψ(z) − ψ(z'), so D scales by ρ; the Lipschitz constant likewise;
    - width: ⟨Γ, φ(z)⟩ = ⟨Γ, c·1⟩ + ⟨Γ, ψ(z)⟩ and E⟨Γ, c·1⟩ = 0, so G(φ(Z)) = G(ψ(Z)) ≤ ρ·G(Z) by
      Sudakov–Fernique (E(⟨Γ, ψ(z) − ψ(z')⟩)² ≤ ρ²·‖z − z'‖²): no shift.
    """
    c = OPS[node.op].at_zero(node.params)
    if sp.sympify(c).is_zero:
        return None
    h = output_width(node)
    return arith.mul(abs(q.value(c)), arith.sqrt(arith.mul(q.value(h), q.samples())))


def residual_add(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """Z = Z_a + Z_b: the sup of a sum is at most the sum of sups, for G, D, N, the anchor, L and the token
    bound (‖a_t + b_t‖ ≤ ‖a_t‖ + ‖b_t‖)."""
    return _branch_sums(inputs, f"sum of the branch diameters at {node.name}")


def channel_concat(node: Node, q: SymbolicQuantities, inputs: list[State]) -> Transfer:
    """Z = [Z_a; Z_b] (stacked along channels): Z lies in the product set Z_a × Z_b, whose width is exactly
    G_a + G_b (the Gaussian matrix splits into independent blocks Γ_a, Γ_b and the sup over a product set is
    the sum of the sups), so G ≤ G_a + G_b with gain 1 per branch. D ≤ √(D_a² + D_b²), N ≤ √(N_a² + N_b²),
    ‖y0‖ = √(‖y0_a‖² + ‖y0_b‖²), L ≤ √(L_a² + L_b²) and a token's norm ≤ √(B_a² + B_b²) (Pythagoras over the
    blocks; at most max(B_a, B_b) when the tokens are stacked instead); each is bounded by the
    sum (√(a² + b²) ≤ a + b), which the composer needs: its fork factoring and repeat recurrences take every
    state field linear in the fields entering it (docs/references.md §3.3)."""
    return _branch_sums(inputs, f"sum of the branch diameters at {node.name} (concat: √ of the sum of squares "
                                "≤ the sum)")


def _branch_sums(inputs: list[State], diameter_rule: str) -> Transfer:
    state = State(
        width=None,
        diameter=arith.add(*(x.diameter for x in inputs)),
        image_norm=arith.add(*(x.image_norm for x in inputs)),
        anchor=arith.add(*(x.anchor for x in inputs)),
        lipschitz=arith.add(*(x.lipschitz for x in inputs)),
        min_rank=None,
        single_point=all(x.single_point for x in inputs),
        diameter_rule=diameter_rule,
        token_norm=token_bound(arith.add, *(x.token_norm for x in inputs)),
    )
    return Transfer(state=state, gains=tuple(1 for _ in inputs))


Refusal = Callable[[str, dict[str, Any]], "str | None"]


@dataclass(frozen=True)
class RuleSet:
    """Named rules keyed by op kind. With ``maps_by_flag``, every parameter-free single-input kind of the
    registry (:attr:`boundcalc.ops.OpKind.lipschitz_map`) not listed takes :func:`elementwise`, so a new
    activation needs no entry here. ``refusals`` give, per op, why a layer's parameters are outside the set."""

    name: str
    description: str
    rules: dict[str, Rule]
    notes: tuple[str, ...] = ()
    maps_by_flag: bool = False
    refusals: dict[str, Refusal] = field(default_factory=dict)

    def rule_for(self, op: str) -> Rule | None:
        rule = self.rules.get(op)
        if rule is None and self.maps_by_flag and op in OPS and OPS[op].lipschitz_map:
            return elementwise
        return rule

    def covered_ops(self) -> frozenset[str]:
        """The registered kinds this set has a rule for."""
        return frozenset(op for op in OPS if self.rule_for(op) is not None)

    def refusal(self, op: str, name: str, params: dict[str, Any]) -> str | None:
        """Why layer ``name`` of kind ``op`` is outside this rule set despite its rule (None: it is not)."""
        check = self.refusals.get(op)
        return None if check is None else check(name, params)


def _numeric_slope(name: str, params: dict[str, Any]) -> str | None:
    slope = params["slope"]
    if slope.is_number and abs(slope) <= 1:
        return None
    return f"layer {name}: leaky_relu slope {slope} must be a number in [-1, 1]"


TIGHT = RuleSet(
    name="tight",
    description="best valid rule per op: rank-free image-norm diameter D ≤ 2·N, residual adds, conv as a "
                "linear operator",
    rules={"linear": affine_tight, "conv2d": affine_tight, "batchnorm": affine_tight, "add": residual_add,
           "concat": channel_concat, "layernorm": layernorm_tight, "softmax_mix": softmax_mix_tight},
    maps_by_flag=True,
)
AS_PRINTED = RuleSet(
    name="as_printed",
    description="Pinto, Rangamani & Poggio (ALT 2025) eq. (4) exactly: chain of bias-free linear layers "
                "and piecewise-linear 1-Lipschitz activations, diameter from Lemma 5 as printed",
    rules={"linear": linear_as_printed, "relu": elementwise, "leaky_relu": elementwise, "identity": elementwise,
           "dropout": elementwise},    # dropout: the identity at evaluation
    notes=("Lemma 5 is applied with 𝔯_i = min_{j≤i} rank(W_j) as printed in eq. (4); the proof supports "
           "only min_{j≤i−1}, which is ≥ the printed value, so the printed form can be smaller than what "
           "the proof establishes (docs/references.md §9.2).",),
    refusals={"leaky_relu": _numeric_slope, "linear": _bias_free},
)
RULE_SETS: dict[str, RuleSet] = {r.name: r for r in (TIGHT, AS_PRINTED)}
