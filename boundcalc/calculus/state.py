"""The state a rule reads and returns, and what a rule reports about the terms it adds.

A *state* describes the set Z = {f(X) : f in the class so far} ⊂ R^{h×m} by upper bounds (all
unnormalised, i.e. not divided by m):

* ``width``      G(Z) = E sup_z <Γ, z>, the Gaussian width (Ĝ_S = width / m at the output);
* ``diameter``   D(Z) = sup ‖z − z'‖_F;
* ``image_norm`` N(Z) = sup ‖z‖_F;
* ``anchor``     ‖f_0(X)‖_F for the network with every weight set to zero (the y0 of the chain rule;
  0 once a bias-free linear layer has been applied);
* ``lipschitz``  Lipschitz constant of the map from the input to here, over the whole class;
* ``min_rank``   the smallest rank bound so far (used only by Lemma 5 of Pinto et al.; None = none yet);
* ``single_point`` True while no parameter has been applied (Z = {X}, so G = D = 0);
* ``token_norm``  sup over Z of the largest per-token ℓ2 norm of one sample, for (tokens, dim) samples: what
  the attention rule reads (docs/references.md §3.10). None where nothing needs it (no attention in the graph)
  or where the samples are no longer sequences; every rule that does not bound it returns None.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from boundcalc.calculus.arith import Value

#: state fields that rules combine linearly (what symbolic repeats solve as a recurrence)
LINEAR_FIELDS = ("diameter", "image_norm", "anchor", "lipschitz", "token_norm")


class State(NamedTuple):
    width: Value
    diameter: Value
    image_norm: Value
    anchor: Value
    lipschitz: Value
    min_rank: Value | None
    single_point: bool
    diameter_rule: str
    token_norm: Value | None = None


@dataclass(frozen=True)
class LocalTerm:
    """An additive contribution to the width created at one layer (before later layers scale it)."""

    layer: str
    kind: str            # "first layer" | "anchor" | "disturbance"
    expr: Value
    rule: str
    diameter_rule: str | None = None


@dataclass(frozen=True)
class Transfer:
    """What a rule returns: the new state (width filled in by the composer), one gain
    ∂G_out/∂G_in per input, and the new additive terms."""

    state: State
    gains: tuple[Value, ...]
    terms: tuple[LocalTerm, ...] = ()
