"""Kinds for sequence data (each sample is T tokens of d features, shape (T, d)): ``layernorm`` over each token's
features and ``token_mean`` over the tokens. A ``linear`` on a (T, d) input is token-wise (:mod:`.dense`), and
coordinate-wise activations and ``add`` act on (T, d) as on any shape.

- ``layernorm``: x_t ↦ γ ⊙ N(x_t) + β for every token, N(x) = (x − mean x)/√(var x + ε) with the biased variance
  over the d features (torch's ``nn.LayerNorm(d)``). γ, β (shape (d,)) are trained parameters of the class,
  bound as ``<param>.weight`` and ``<param>.bias``; ``affine: false`` is N alone (no tensors).
- ``token_mean``: (T, d) → (d,), the mean of the tokens; a fixed linear map of operator norm 1/√T.

The constants (derived; docs/references.md §3.9). For N at x with c = x − mean(x)·1, σ = √(‖c‖²/d + ε) and the
centring projection P = I − 11ᵀ/d, the Jacobian is J = (P − c cᵀ/(d σ²))/σ. On 1 it is 0; on c it is
(1 − var/(var + ε))/σ = ε/σ³ ≤ 1/σ; on the rest of range(P) it is 1/σ. So ‖J‖₂ = 1/σ ≤ 1/√ε (for d ≥ 2; N ≡ 0
for d = 1), and N, smooth on the convex set R^d, is (1/√ε)-Lipschitz; token by token, so also for the Frobenius
norm of a whole (T, d) sample. N(0) = 0, and ‖N(x)‖₂ = ‖c‖/√(‖c‖²/d + ε) < √d for every x. The mean of T tokens
has ‖(1/T)Σ_t x_t‖₂ ≤ ‖x‖_F/√T (Cauchy–Schwarz), with equality for equal tokens.
"""
from __future__ import annotations

from typing import Literal

import sympy as sp
from pydantic import StrictBool, StrictStr

from boundcalc.errors import DeriveError
from boundcalc.ops.base import Fail, Flags, OpKind, format_shape
from boundcalc.ops.registry import register
from boundcalc.spec.model import LayerFields, Value


class LayerNormFields(LayerFields):
    op: Literal["layernorm"]
    param: StrictStr | None = None       # the state-dict prefix of the module
    eps: Value = 1e-5                    # a number > 0; YAML reads 1e-5 (no dot) as a string, parsed here
    affine: StrictBool = True


class TokenMeanFields(LayerFields):
    op: Literal["token_mean"]


class LayerNorm(OpKind):
    name = "layernorm"
    fields = LayerNormFields
    flags = Flags(weights=True)
    summary = "layer normalisation of each token over its d features: γ ⊙ (x − mean)/√(var + ε) + β"
    name_prefix = "ln"
    prefix_tensors = ("weight", "bias")
    example = ((3, 4), ({"op": "layernorm", "eps": 0.25},))
    assumption = ("layernorm layers (derived, docs/references.md §3.9): LN(x) = γ ⊙ N(x) + β per token, "
                  "N(x) = (x − mean x)/√(var x + ε); N's Jacobian (P − c cᵀ/(d·σ²))/σ (P = I − 11ᵀ/d, c = P x, "
                  "σ = √(var + ε)) has norm 1/σ ≤ 1/√ε, so N is (1/√ε)-Lipschitz with N(0) = 0, and every token of "
                  "N's image has norm < √d, so on m samples of T tokens ‖N(Z)‖_F ≤ √(m·T·d) whatever Z "
                  "(D ≤ 2·√(m·T·d)); γ and β are trained parameters of the class: s_<ln> = ‖γ‖∞, f_<ln> = ‖γ‖₂, "
                  "c_<ln> = ‖β‖₂, and γ ⊙ x + β is a token-wise affine layer with W = diag(γ) (the diagonal class "
                  "lies in the Frobenius ball the affine rule assumes)")

    def params(self, reader, model, path):
        eps = reader.expr(model.eps, path + ("eps",))
        if not (eps.is_number and eps.is_positive):
            raise reader.fail(path + ("eps",), f"eps must be a number > 0, got {model.eps}")
        return {"param": model.param, "eps": eps, "affine": model.affine, "bias": model.affine}

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        if len(shapes[0]) not in (1, 2):
            raise fail(f"layernorm needs a (dim) or (tokens, dim) input, gets {format_shape(shapes[0])}")
        return shapes[0]

    def binds_tensors(self, params):
        return params["affine"]

    def weight_shape(self, params, in_shape):
        return (in_shape[-1],)

    def forward(self, name, params, inputs, weight=None, bias=None):
        """torch's layer_norm over the last axis, with γ = ``weight`` and β = ``bias`` (None: left out)."""
        import torch
        import torch.nn.functional as F

        x = inputs[0]
        cast = [None if t is None else t.to(torch.float64) for t in (weight, bias)]
        return F.layer_norm(x, (x.shape[-1],), cast[0], cast[1], float(params["eps"]))


def layernorm_lipschitz(params) -> sp.Expr:
    """1/√ε: the Lipschitz constant of the normalisation N (see the module docstring)."""
    return 1 / sp.sqrt(params["eps"])


class TokenMean(OpKind):
    name = "token_mean"
    fields = TokenMeanFields
    flags = Flags(homogeneous=True, piecewise_linear=True, one_lipschitz=True)
    summary = "mean over the tokens: (tokens, dim) → (dim), operator norm 1/√tokens"
    name_prefix = "tokenmean"
    input_rank = 2
    example = ((3, 4), ("token_mean",))
    assumption = ("token_mean layers: the mean of the T tokens, a fixed linear map with ‖(1/T)·Σ_t x_t‖₂ ≤ "
                  "‖x‖_F/√T (Cauchy–Schwarz, equal for equal tokens): ρ = 1/√T")

    def output_shape(self, params, shapes, fail: Fail, sources=()):
        if len(shapes[0]) != 2:
            raise fail(f"token_mean needs a (tokens, dim) input, gets {format_shape(shapes[0])}")
        return shapes[0][1:]

    def lipschitz(self, name, params, value):
        return self.lipschitz_at(name, params, value)

    def lipschitz_at(self, name, params, value, in_shape=None):
        if in_shape is None:
            raise DeriveError(f"layer {name}: token_mean needs its input's number of tokens for its constant")
        return value(1 / sp.sqrt(in_shape[0]))

    def forward(self, name, params, inputs, weight=None, bias=None):
        return inputs[0].mean(dim=1)


LAYERNORM = register(LayerNorm())
TOKEN_MEAN = register(TokenMean())
