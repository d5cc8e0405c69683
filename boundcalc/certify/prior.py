"""The prior's mean: data-free (the ``--init`` weights, or zero), or learned on samples the bound does not use
(Pérez-Ortiz et al. 2021 §4; docs/references.md §11.3).

:func:`split_for_prior` gives the first ``fraction`` of the samples (in file order) to the prior and the rest to
the bound, so n counts only the bound samples; :func:`learn_prior_mean` trains the network from a data-free
start on the prior samples alone (Adam on the cross-entropy), so the prior depends on no bound sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from boundcalc.certify.network import Network
from boundcalc.certify.training import adam_epochs
from boundcalc.errors import BoundcalcError


@dataclass(frozen=True)
class PriorConfig:
    epochs: int = 200
    batch: int = 64
    lr: float = 3e-3


@dataclass(frozen=True)
class Split:
    prior_x: torch.Tensor
    prior_y: torch.Tensor
    bound_x: torch.Tensor
    bound_y: torch.Tensor


def split_for_prior(x: torch.Tensor, y: torch.Tensor, fraction: float | None) -> Split:
    """The first ⌊fraction·m⌋ samples for the prior, the rest for the bound; ``None``: all for the bound."""
    m = int(x.shape[0])
    if fraction is None:
        return Split(x[:0], y[:0], x, y)
    if not 0.0 < fraction < 1.0:
        raise BoundcalcError(f"--prior-fraction must be in (0, 1), got {fraction}")
    count = math.floor(fraction * m)
    if count < 1 or count >= m:
        raise BoundcalcError(f"--prior-fraction {fraction:g} of {m} samples leaves {count} for the prior and "
                             f"{m - count} for the bound; both need at least one")
    return Split(x[:count], y[:count], x[count:], y[count:])


def learn_prior_mean(network: Network, start: torch.Tensor, x: torch.Tensor, y: torch.Tensor, config: PriorConfig,
                     generator: torch.Generator) -> torch.Tensor:
    """Parameters trained from the data-free ``start`` on (x, y), the prior samples only: minibatch Adam on the
    cross-entropy with a cosine step decay, the batch order drawn from ``generator``."""
    theta = start.detach().clone().requires_grad_(True)
    adam_epochs(lambda idx: F.cross_entropy(network.outputs(theta, x[idx]), y[idx]), [theta], int(x.shape[0]),
                config.lr, config.epochs, config.batch, generator)
    return theta.detach()


def data_free_start(network: Network, init: torch.Tensor | None, generator: torch.Generator) -> tuple[torch.Tensor, str]:
    """The start of a learned prior: the ``--init`` parameters, else a seeded draw with torch's default
    nn.Linear/Conv2d scale U(±1/√fan_in) per tensor (fan_in of the weight's layer). Both are data-free."""
    if init is not None:
        return init, "the --init weights"
    parts = []
    fan_in = {}
    for slot in network.slots:
        if slot.role == "weight":
            fan_in[slot.node] = math.prod(slot.shape[1:])
    for slot in network.slots:
        bound = 1.0 / math.sqrt(fan_in[slot.node])
        parts.append((torch.rand(slot.size, generator=generator, dtype=torch.float64) * 2 - 1) * bound)
    return torch.cat(parts), "a seeded U(±1/√fan_in) draw (torch's default layer initialisation)"
