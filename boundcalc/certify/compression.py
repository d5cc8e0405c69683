"""The compressed network of the compression certificate (Lotfi et al. 2022; docs/references.md §11.4): a
point-mass posterior on a quantised copy of the network.

Without a subspace the checkpoint's parameters θ are quantised; with ``subspace = D`` the network is
θ = w₀ + P z with a data-free origin w₀ and a seeded Gaussian P (d × D, entries N(0, 1/D)), z starts at the
least-squares projection of the checkpoint and is trained on the cross-entropy (Adam, cosine step decay, with
Gaussian noise on z so that the minimum found survives quantisation). Quantising is 1-D k-means (Lloyd's
iterations from quantile starts), then quantisation-aware training of the coordinates and the codebook through
the coded quantiser (straight-through gradient); after every epoch the coded network is scored and the best kept.
The Occam bound holds for every code at once, so picking among them (epochs, codebook sizes K) costs only the
bits of the code (:mod:`boundcalc.certify.coding`), which pay for K.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from boundcalc.certify.coding import ENTRY_BITS
from boundcalc.certify.network import Network
from boundcalc.certify.training import adam_epochs
from boundcalc.errors import BoundcalcError
from boundcalc.limits import MAX_FORWARD_VALUES

#: codebook sizes tried
LEVELS = (3, 4, 5, 6, 8)
#: the largest multiple of the scale a codebook entry stores (a signed ENTRY_BITS-bit integer)
ENTRY_MAX = 2 ** (ENTRY_BITS - 1) - 1
#: largest projection matrix d × D built (float64 values)
MAX_PROJECTION_VALUES = MAX_FORWARD_VALUES


@dataclass(frozen=True)
class CompressConfig:
    subspace: int = 0            # D; 0: quantise the parameters directly
    epochs: int = 100            # Adam epochs on z (subspace only)
    lr: float = 2e-2
    noise: float = 0.2           # std of the noise on z while training, as a fraction of z's std
    qat_epochs: int = 40         # quantisation-aware epochs, per codebook size
    qat_lr: float = 3e-3
    batch: int = 64
    lloyd_steps: int = 50


@dataclass(frozen=True)
class Quantised:
    """A quantised coordinate vector: codebook (exactly its coded values, held as float64) and one index per
    coordinate."""

    codebook: torch.Tensor       # (K,)
    index: torch.Tensor          # (D or d,) int64

    @property
    def values(self) -> torch.Tensor:
        return self.codebook[self.index]

    def counts(self) -> list[int]:
        return torch.bincount(self.index, minlength=self.codebook.numel()).tolist()


@dataclass(frozen=True)
class Subspace:
    origin: torch.Tensor         # w₀ (d,)
    basis: torch.Tensor          # P (d, D)

    def params(self, z: torch.Tensor) -> torch.Tensor:
        return self.origin + self.basis @ z


def random_subspace(origin: torch.Tensor, dim: int, generator: torch.Generator) -> Subspace:
    d = int(origin.numel())
    if not 1 <= dim <= d:
        raise BoundcalcError(f"--subspace must be between 1 and the {d} parameters, got {dim}")
    if d * dim > MAX_PROJECTION_VALUES:
        raise BoundcalcError(f"a {d} × {dim} projection is {d * dim:,} values, more than the limit of "
                             f"{MAX_PROJECTION_VALUES:,}; choose a smaller --subspace")
    basis = torch.randn(d, dim, generator=generator, dtype=torch.float64) / math.sqrt(dim)
    return Subspace(origin, basis)


def train_subspace(network: Network, space: Subspace, x: torch.Tensor, y: torch.Tensor, config: CompressConfig,
                   generator: torch.Generator) -> torch.Tensor:
    """z from the least-squares projection of the checkpoint, trained by Adam on the cross-entropy at z + ε,
    ε ~ N(0, (noise · std z)² I) drawn per step."""
    target = (network.trained - space.origin)[:, None]
    z = torch.linalg.lstsq(space.basis, target).solution[:, 0].clone().requires_grad_(True)

    def loss(idx: torch.Tensor) -> torch.Tensor:
        scale = config.noise * float(z.detach().std()) if z.numel() > 1 else 0.0
        noisy = z + scale * torch.randn(z.shape, generator=generator, dtype=torch.float64)
        return F.cross_entropy(network.outputs(space.params(noisy), x[idx]), y[idx])

    adam_epochs(loss, [z], x.shape[0], config.lr, config.epochs, config.batch, generator)
    return z.detach()


def kmeans_1d(values: torch.Tensor, levels: int, steps: int) -> Quantised:
    """Lloyd's iterations on the real line from the quantiles (k + ½)/K; an emptied entry keeps its value."""
    v = values.detach().to(torch.float64)
    probs = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
    codebook = torch.quantile(v, probs) if v.numel() > 1 else v.repeat(levels)
    for _ in range(steps):
        index = torch.argmin((v[:, None] - codebook[None, :]).abs(), dim=1)
        sums = torch.zeros(levels, dtype=torch.float64).index_add_(0, index, v)
        counts = torch.bincount(index, minlength=levels).to(torch.float64)
        codebook = torch.where(counts > 0, sums / counts.clamp(min=1), codebook)
    return snap(v, codebook)


def quantisation_aware(network: Network, coords: torch.Tensor, start: Quantised, to_params, x: torch.Tensor,
                       y: torch.Tensor, config: CompressConfig, generator: torch.Generator,
                       score: Callable[[Quantised], float]) -> Quantised:
    """Train the coordinates and the codebook through the coded quantiser (each coordinate replaced by its
    nearest coded entry; the straight-through gradient reaches both), and return the coded network with the
    lowest ``score`` (its bound) among the start and the end of every epoch."""
    z = coords.detach().clone().requires_grad_(True)
    codebook = start.codebook.clone().requires_grad_(True)

    def coded() -> Quantised:
        return snap(z.detach(), coded_codebook(codebook.detach()))

    def loss(idx: torch.Tensor) -> torch.Tensor:
        entries = coded_codebook(codebook.detach())
        nearest = snap(z.detach(), entries).index
        values = (codebook + (entries - codebook.detach()))[nearest] + (z - z.detach())
        return F.cross_entropy(network.outputs(to_params(values), x[idx]), y[idx])

    best = coded()
    best_score = score(best)

    def keep_best() -> None:
        nonlocal best, best_score
        candidate = coded()
        value = score(candidate)
        if value < best_score:
            best, best_score = candidate, value

    adam_epochs(loss, [z, codebook], x.shape[0], config.qat_lr, config.qat_epochs, config.batch, generator,
          after_epoch=keep_best)
    return best


def snap(values: torch.Tensor, codebook: torch.Tensor) -> Quantised:
    """Each value at its nearest codebook entry (the lower index on a tie)."""
    return Quantised(codebook, torch.argmin((values[:, None] - codebook[None, :]).abs(), dim=1))


def coded_codebook(values: torch.Tensor) -> torch.Tensor:
    """The codebook as its code stores it: s·m_k with s = max|c|/ENTRY_MAX rounded to IEEE float16 and
    m_k = round(c_k/s) clamped to ±ENTRY_MAX; as float64 (exact). BoundcalcError beyond float16's range."""
    top = float(values.abs().max()) / ENTRY_MAX
    if top > 65504:
        raise BoundcalcError("a codebook entry exceeds the range the code stores (float16 scale × 127)")
    scale = float(torch.tensor(top, dtype=torch.float64).to(torch.float16))
    if scale == 0.0:
        return torch.zeros_like(values, dtype=torch.float64)
    return scale * torch.round(values.to(torch.float64) / scale).clamp(-ENTRY_MAX, ENTRY_MAX)
