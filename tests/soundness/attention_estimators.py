"""A lower estimate of the empirical Gaussian complexity of a small attention network on sequences,

    f(x) = W2·mean_t(W_o·mix(W_q u, W_k u, W_v u)_t),   u_t = LN(W1·x_t + b1) = γ ⊙ (z − mean z)/√(var z + ε) + β,
    mix(Q, K, V) = [softmax(scale·Q_j K_jᵀ)·V_j]_j  (heads j, the j-th block of columns; causal optional),

over the class {‖W1‖₂ ≤ s1, ‖b1‖₂ ≤ c1, ‖γ‖∞ ≤ g, ‖β‖₂ ≤ c_β, ‖W_q‖₂ ≤ s_q, ‖W_k‖₂ ≤ s_k, ‖W_v‖₂ ≤ s_v,
‖W_o‖₂ ≤ s_o, ‖W2‖₂ ≤ s2}. Plain torch only (nothing from boundcalc): for each draw of Γ, Adam steps on ⟨Γ, f(X)⟩
from random feasible starts, each followed by the exact projection (singular values clipped, biases scaled into
their balls, γ clipped to [−g, g]); W2 is then its exact maximiser s2·‖Γ Pᵀ‖_* for the features P reached. Every
value is that of a feasible network, hence ≤ the supremum for that Γ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tests.soundness.estimators import Estimate, _summary
from tests.soundness.sequence_estimators import layer_norm


@dataclass(frozen=True)
class AttentionClass:
    s1: float          # ‖W1‖₂ (d × d)
    c1: float          # ‖b1‖₂
    eps: float         # the layernorm's ε
    g: float           # ‖γ‖∞
    c_beta: float      # ‖β‖₂
    sq: float          # ‖W_q‖₂, ‖W_k‖₂, ‖W_v‖₂ (width × d), ‖W_o‖₂ (d × width)
    sk: float
    sv: float
    so: float
    s2: float          # ‖W2‖₂ (out × d)
    width: int         # q, k, v width (heads · head width)
    heads: int
    out: int
    causal: bool = False


def mix(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, heads: int, causal: bool) -> torch.Tensor:
    """softmax(scale·Q_j K_jᵀ)·V_j per head, scale = 1/√(width/heads), for (..., T, width) tensors."""
    *lead, T, width = Q.shape
    dk = width // heads

    def split(t):
        return t.reshape(*lead, T, heads, dk).transpose(-2, -3)

    scores = split(Q) @ split(K).transpose(-1, -2) / dk ** 0.5
    if causal:
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    out = torch.softmax(scores, dim=-1) @ split(V)
    return out.transpose(-2, -3).reshape(*lead, T, width)


def pooled(X: torch.Tensor, p: dict[str, torch.Tensor], c: AttentionClass) -> torch.Tensor:
    """mean_t(W_o·mix(...)_t) for X (m, T, d) and a batch of parameters: (batch, d, m)."""
    z = torch.einsum("bij,mtj->bmti", p["W1"], X) + p["b1"][:, None, None, :]
    u = p["gamma"][:, None, None, :] * layer_norm(z, c.eps) + p["beta"][:, None, None, :]
    Q, K, V = (torch.einsum("bij,bmtj->bmti", p[w], u) for w in ("Wq", "Wk", "Wv"))
    o = torch.einsum("bij,bmtj->bmti", p["Wo"], mix(Q, K, V, c.heads, c.causal))
    return o.mean(dim=2).transpose(1, 2)


def _clip(W: torch.Tensor, s: float) -> torch.Tensor:
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    return (U * S.clamp(max=s).unsqueeze(-2)) @ Vh


def _ball(v: torch.Tensor, radius: float) -> torch.Tensor:
    return v * (radius / v.norm(dim=-1, keepdim=True).clamp(min=1e-300)).clamp(max=1.0)


def _project(p: dict[str, torch.Tensor], c: AttentionClass) -> dict[str, torch.Tensor]:
    return {"W1": _clip(p["W1"], c.s1), "b1": _ball(p["b1"], c.c1), "gamma": p["gamma"].clamp(-c.g, c.g),
            "beta": _ball(p["beta"], c.c_beta), "Wq": _clip(p["Wq"], c.sq), "Wk": _clip(p["Wk"], c.sk),
            "Wv": _clip(p["Wv"], c.sv), "Wo": _clip(p["Wo"], c.so)}


def attention_lower(X: np.ndarray, c: AttentionClass, draws: int, restarts: int, steps: int, seed: int,
                    lr: float = 0.1) -> Estimate:
    """A lower estimate of Ĝ_S = (1/m)·E sup ⟨Γ, f(X)⟩ for X of shape (m, T, d)."""
    gen = torch.Generator().manual_seed(seed)
    m, _, d = X.shape
    Xt = torch.tensor(X, dtype=torch.float64)
    batch = draws * restarts
    gamma = torch.randn(draws, c.out, m, generator=gen, dtype=torch.float64).repeat_interleave(restarts, 0)
    shapes = {"W1": (d, d), "b1": (d,), "gamma": (d,), "beta": (d,), "Wq": (c.width, d), "Wk": (c.width, d),
              "Wv": (c.width, d), "Wo": (d, c.width)}
    start = {k: 10.0 * torch.randn(batch, *v, generator=gen, dtype=torch.float64) for k, v in shapes.items()}
    params = {k: v.requires_grad_(True) for k, v in _project(start, c).items()}
    optimiser = torch.optim.Adam(list(params.values()), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        P = pooled(Xt, params, c)
        (-torch.linalg.svdvals(gamma @ P.transpose(-1, -2)).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            for k, new in _project(params, c).items():
                params[k].copy_(new)
    with torch.no_grad():
        values = c.s2 * torch.linalg.svdvals(gamma @ pooled(Xt, params, c).transpose(-1, -2)).sum(-1)
    return _summary(values.reshape(draws, restarts).max(dim=1).values.numpy(), m)


def query_only_lower(X: np.ndarray, s_q: float, draws: int, restarts: int, steps: int, seed: int,
                     lr: float = 0.05) -> Estimate:
    """The same lower estimate for f(x) = mean_t(softmax(scale·(W_q x_t)·Xᵀ)·X) (keys and values the data itself,
    one head, scale = 1/√d) over {‖W_q‖₂ ≤ s_q}: only the attention pattern is learnt, the class the softmax part
    of the constant covers. Per draw sup_W ⟨Γ, f_W(X) − f_0(X)⟩, whose mean is the same (E⟨Γ, f_0(X)⟩ = 0) and whose
    variance is smaller."""
    gen = torch.Generator().manual_seed(seed)
    m, _, d = X.shape
    Xt = torch.tensor(X, dtype=torch.float64)
    batch = draws * restarts
    gamma = torch.randn(draws, m, d, generator=gen, dtype=torch.float64).repeat_interleave(restarts, 0)
    W = _clip(10.0 * torch.randn(batch, d, d, generator=gen, dtype=torch.float64), s_q).requires_grad_(True)
    optimiser = torch.optim.Adam([W], lr=lr)

    baseline = Xt.mean(dim=1)   # f at W_q = 0 (uniform attention): E⟨Γ, f_0⟩ = 0, so subtracting it keeps the mean

    def value():
        Q = torch.einsum("bij,mtj->bmti", W, Xt)
        pooled_out = mix(Q, Xt.expand_as(Q), Xt.expand_as(Q), 1, False).mean(dim=2)
        return (gamma * (pooled_out - baseline)).sum(dim=(1, 2))

    for _ in range(steps):
        optimiser.zero_grad()
        (-value().sum()).backward()
        optimiser.step()
        with torch.no_grad():
            W.copy_(_clip(W, s_q))
    with torch.no_grad():
        values = value()
    return _summary(values.reshape(draws, restarts).max(dim=1).values.numpy(), m)
