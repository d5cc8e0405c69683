"""The compressed network of the compression certificate (Lotfi et al. 2022; docs/references.md §11.4): a
point-mass posterior on a quantised copy of the network.

Without a subspace the checkpoint's parameters θ are quantised; with ``subspace = D`` the network is
θ = w₀ + P z with a data-free origin w₀ and a seeded Gaussian P (d × D, entries N(0, 1/D)), z starts at the
least-squares projection of the checkpoint and is trained on the cross-entropy, and z is quantised. Quantising
is 1-D k-means (Lloyd's iterations from quantile starts), then the codebook alone is trained with the
assignments fixed, then rounded to float16. The number of entries K is chosen to minimise the bound; its code
(:mod:`boundcalc.certify.coding`) pays for that choice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from boundcalc.certify.network import Network
from boundcalc.errors import BoundcalcError
from boundcalc.limits import MAX_FORWARD_VALUES

#: codebook sizes tried
LEVELS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16)
#: largest projection matrix d × D built (float64 values)
MAX_PROJECTION_VALUES = MAX_FORWARD_VALUES


@dataclass(frozen=True)
class CompressConfig:
    subspace: int = 0            # D; 0: quantise the parameters directly
    epochs: int = 60             # Adam epochs on z (subspace only) and on the codebook
    batch: int = 64
    lr: float = 1e-2
    lloyd_steps: int = 50


@dataclass(frozen=True)
class Quantised:
    """A quantised coordinate vector: codebook (float16 values, held as float64) and one index per coordinate."""

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
    """z from the least-squares projection of the checkpoint, trained by Adam on the cross-entropy."""
    target = (network.trained - space.origin)[:, None]
    z0 = torch.linalg.lstsq(space.basis, target).solution[:, 0]
    z = z0.clone().requires_grad_(True)
    _adam(lambda idx: F.cross_entropy(network.outputs(space.params(z), x[idx]), y[idx]), [z], x.shape[0], config,
          generator)
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
    index = torch.argmin((v[:, None] - codebook[None, :]).abs(), dim=1)
    return Quantised(codebook, index)


def quantisation_aware(network: Network, coords: torch.Tensor, quantised: Quantised, to_params, x: torch.Tensor,
                       y: torch.Tensor, config: CompressConfig, generator: torch.Generator) -> Quantised:
    """Train the coordinates and the codebook through the quantiser (straight-through gradient: each coordinate
    is replaced by its nearest entry, the gradient reaches both), reassign, then round the codebook to float16."""
    z = coords.detach().clone().requires_grad_(True)
    codebook = quantised.codebook.clone().requires_grad_(True)

    def loss(idx: torch.Tensor) -> torch.Tensor:
        nearest = torch.argmin((z.detach()[:, None] - codebook.detach()[None, :]).abs(), dim=1)
        snapped = codebook[nearest] + (z - z.detach())
        return F.cross_entropy(network.outputs(to_params(snapped), x[idx]), y[idx])

    _adam(loss, [z, codebook], x.shape[0], config, generator, epochs=max(1, config.epochs // 2))
    final = to_float16(codebook.detach())
    return Quantised(final, torch.argmin((z.detach()[:, None] - final[None, :]).abs(), dim=1))


def to_float16(values: torch.Tensor) -> torch.Tensor:
    """``values`` rounded to IEEE float16 (what the code stores), as float64; BoundcalcError beyond ±65504."""
    if bool((values.abs() > 65504).any()):
        raise BoundcalcError("a codebook entry exceeds the float16 range (±65504); the code stores float16 entries")
    return values.to(torch.float16).to(torch.float64)


def _adam(loss_of, params: list[torch.Tensor], m: int, config: CompressConfig, generator: torch.Generator,
          epochs: int | None = None) -> None:
    optimiser = torch.optim.Adam(params, lr=config.lr)
    for _ in range(config.epochs if epochs is None else epochs):
        order = torch.randperm(int(m), generator=generator)
        for begin in range(0, int(m), config.batch):
            loss = loss_of(order[begin:begin + config.batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
