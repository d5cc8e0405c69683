"""A lower estimate of the empirical Gaussian complexity of a small residual ReLU network with biases,

    f(x) = W3·relu(z + W2·relu(z) + b2) + b3,   z = W1·x + b1,

over the class {‖W_l‖₂ ≤ s_l, ‖b_l‖₂ ≤ c_l} (the Frobenius bound written into the spec, √(min(out, in))·s_l, is
implied by the spectral one, so the class is exactly this). Plain torch only (nothing from boundcalc): for each
draw of Γ, gradient ascent on ⟨Γ, f(X)⟩ from random feasible starts, each step followed by the exact
projection (singular values clipped at s, the bias scaled into its ball); the last layer is then replaced by its
exact maximiser for the features reached, s_3·‖Γ Zᵀ‖_* + c_3·‖Γ·1‖₂. Every value is that of a feasible
network, hence ≤ the supremum for that Γ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tests.soundness.estimators import Estimate, _summary


@dataclass(frozen=True)
class Affine:
    out: int
    spectral: float
    bias: float     # ‖b‖₂ ≤ bias; 0 for a bias-free layer


def residual_spec(d: int, m: int, layers: tuple[Affine, Affine, Affine], biases: bool = True) -> str:
    """The boundcalc spec of the class (``biases=False``: the same layers declared bias-free, for the check
    that the estimate can beat a bound that leaves the biases out)."""
    widths = [d, layers[0].out, layers[1].out]
    lines = [f"data: {{samples: {m}, dim: {d}}}", "layers:"]
    for i, (name, layer) in enumerate(zip(("fc1", "fc2", "head"), layers)):
        frobenius = f"sqrt({min(layer.out, widths[i])})*{layer.spectral!r}"
        lines.append(f"  - {{op: linear, name: {name}, out: {layer.out}, spectral: {layer.spectral!r}, "
                     f"frobenius: {frobenius}, bias: {'true' if biases else 'false'}}}")
        if name == "fc1":
            lines.append("  - {op: relu, name: act1}")
        if name == "fc2":
            lines += ["  - {op: add, name: res, inputs: [fc2, fc1]}", "  - {op: relu, name: act2}"]
    return "\n".join(lines) + "\n"


def _project(W: torch.Tensor, b: torch.Tensor, layer: Affine) -> tuple[torch.Tensor, torch.Tensor]:
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    W = (U * S.clamp(max=layer.spectral).unsqueeze(-2)) @ Vh
    norms = b.norm(dim=-1, keepdim=True).clamp(min=1e-300)
    return W, b * (layer.bias / norms).clamp(max=1.0)


def _features(X: torch.Tensor, params: list) -> torch.Tensor:
    """relu(z + W2·relu(z) + b2) with z = W1·X + b1: (batch, h, m)."""
    (W1, b1), (W2, b2) = params
    z = W1 @ X.T + b1.unsqueeze(-1)
    return torch.relu(z + W2 @ torch.relu(z) + b2.unsqueeze(-1))


def residual_lower(X: np.ndarray, layers: tuple[Affine, Affine, Affine], draws: int, restarts: int, steps: int,
                   seed: int, lr: float = 0.1) -> Estimate:
    gen = torch.Generator().manual_seed(seed)
    m, d = X.shape
    Xt = torch.tensor(X, dtype=torch.float64)
    batch = draws * restarts
    gamma = torch.randn(draws, layers[2].out, m, generator=gen, dtype=torch.float64).repeat_interleave(restarts, 0)
    params, widths = [], [d, layers[0].out, layers[1].out]
    for i, layer in enumerate(layers):
        W = torch.randn(batch, layer.out, widths[i], generator=gen, dtype=torch.float64) * 10
        b = torch.randn(batch, layer.out, generator=gen, dtype=torch.float64) * 10
        W, b = _project(W, b, layer)
        params.append((W.requires_grad_(True), b.requires_grad_(True)))
    optimiser = torch.optim.Adam([t for pair in params for t in pair], lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        W3, b3 = params[2]
        out = W3 @ _features(Xt, params[:2]) + b3.unsqueeze(-1)
        (-(gamma * out).sum()).backward()
        optimiser.step()
        with torch.no_grad():
            for (W, b), layer in zip(params, layers):
                W_new, b_new = _project(W, b, layer)
                W.copy_(W_new)
                b.copy_(b_new)
    with torch.no_grad():
        Z = _features(Xt, params[:2])
        last = layers[2]
        values = (last.spectral * torch.linalg.svdvals(gamma @ Z.transpose(-1, -2)).sum(-1)
                  + last.bias * gamma.sum(-1).norm(dim=-1))
    return _summary(values.reshape(draws, restarts).max(dim=1).values.numpy(), m)
