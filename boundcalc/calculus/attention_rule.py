"""The chain-rule rule for ``softmax_mix`` (attention's parameter-free core), derived in docs/references.md §3.10.

softmax_mix is a fixed map φ of the triple (Q, K, V) of one sample, each (T, ·), but dot-product attention is not
globally Lipschitz (Kim, Papamakarios & Mnih, ICML 2021), so the rule uses a constant valid on the set the layer
sees: every token of q, k, v has norm ≤ B_q, B_k, B_v (the inputs' token bounds, State.token_norm). There φ is
L-Lipschitz for ‖(ΔQ, ΔK, ΔV)‖_F with

    L = √T·√(1 + scale²·B_v²·(B_q² + B_k²)/2),

per head and hence for all heads together (their squared changes add). On m samples the same L holds, so by
Sudakov–Fernique G(φ(Y)) ≤ L·G(Y) with Y inside the product set Z_q × Z_k × Z_v, whose width is at most the
sum of the three (as for ``concat``): the gain is L per input, no C1 (no parameter is chosen here).

L is not linear in the token bounds, which the composer's fork factoring and repeat recurrences need of a state;
it is a constant where each token bound is a closed expression (q, k, v computed from a layernorm's output or
from the data), and the rule refuses when a bound holds a placeholder or recurrence symbol.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy as sp

from boundcalc.calculus import arith
from boundcalc.calculus.state import State, Transfer
from boundcalc.errors import DeriveError
from boundcalc.ops.attention import mix_scale

if TYPE_CHECKING:
    from boundcalc.calculus.quantities import Node, SymbolicQuantities


def mix_lipschitz(tokens: Any, scale: Any, b_q: Any, b_k: Any, b_v: Any) -> Any:
    """√T·√(1 + scale²·B_v²·(B_q² + B_k²)/2): the Lipschitz constant of softmax_mix on inputs whose tokens have
    norms ≤ B_q, B_k, B_v (symbols or numbers)."""
    square = arith.add(arith.mul(b_q, b_q), arith.mul(b_k, b_k))
    inner = arith.add(1, arith.mul(scale, scale, b_v, b_v, square, sp.Rational(1, 2) if _symbolic(b_v) else 0.5))
    return arith.mul(arith.sqrt(tokens), arith.sqrt(inner))


def softmax_mix_tight(node: "Node", q: "SymbolicQuantities", inputs: list[State]) -> Transfer:
    """The softmax_mix rule (docs/references.md §3.10), from the token bounds B_q, B_k, B_v of its inputs:

    - gains (L, L, L), L = :func:`mix_lipschitz` (Sudakov–Fernique on the product set; no terms: no parameters);
    - token bound √heads·B_v: per head each output token is a convex combination of V_j's tokens, so its block
      has norm ≤ max_s ‖v_s,j‖ ≤ B_v, and the heads' blocks add in squares (they may pick different tokens);
    - image norm √(m·T)·√heads·B_v, diameter twice that (0 on the single point X);
    - anchor √T·‖y0_v‖ (per head ‖A·V_j‖_F ≤ ‖A‖₂·‖V_j‖_F, ‖A‖₂ ≤ √(‖A‖₁‖A‖∞) ≤ √T for a row-stochastic A);
    - Lipschitz constant L·(L_q + L_k + L_v)."""
    bounds = tuple(x.token_norm for x in inputs)
    _check_bounds(node, bounds)
    b_q, b_k, b_v = bounds
    tokens, width = node.in_shapes[0]
    heads = q.value(node.params["heads"])
    lipschitz = mix_lipschitz(q.value(tokens), q.value(mix_scale(node.params, width)), b_q, b_k, b_v)
    token_norm = arith.mul(arith.sqrt(heads), b_v)
    image_norm = arith.mul(arith.sqrt(arith.mul(q.samples(), q.value(tokens))), token_norm)
    single = all(x.single_point for x in inputs)
    state = State(
        width=None,
        diameter=arith.mul(0, image_norm) if single else arith.mul(2, image_norm),
        image_norm=image_norm,
        anchor=arith.mul(arith.sqrt(q.value(tokens)), inputs[2].anchor),
        lipschitz=arith.mul(lipschitz, arith.add(*(x.lipschitz for x in inputs))),
        min_rank=None,
        single_point=single,
        diameter_rule=f"softmax_mix at {node.name}: each output token's head block is a convex combination of the "
                      "values' tokens, so D ≤ 2·√(m·T·heads)·B_v (§3.10)",
        token_norm=token_norm,
    )
    return Transfer(state=state, gains=(lipschitz,) * 3)


def _check_bounds(node: "Node", bounds: tuple) -> None:
    """Refuse when a token bound is missing, or holds a placeholder or recurrence symbol (L is not linear in it)."""
    if any(b is None for b in bounds):
        raise DeriveError(f"layer {node.name}: softmax_mix needs a bound on the token norms of its inputs q, k, v, "
                          "and none is known here")
    if any(isinstance(b, sp.Basic) and b.atoms(sp.Dummy) for b in bounds):
        raise DeriveError(f"layer {node.name}: softmax_mix's Lipschitz constant √T·√(1 + scale²·B_v²·(B_q² + B_k²)/2) "
                          "is not linear in the token bounds of q, k, v, and here they depend on the state entering a "
                          "symbolic repeat (attention on the raw residual stream): no closed form; put a layernorm "
                          "before q, k, v or give the repeat a numeric count (docs/references.md §3.10)")


def _symbolic(value: Any) -> bool:
    return isinstance(value, sp.Basic)
