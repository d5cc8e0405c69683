"""Minibatch Adam with a cosine step decay: the one training loop of the certificates (prior mean, subspace
coordinates, quantisation-aware fine-tuning). The batch order is drawn from the run's generator."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch


def adam_epochs(loss_of: Callable[[torch.Tensor], torch.Tensor], params: list[torch.Tensor], m: int, lr: float,
                epochs: int, batch: int, generator: torch.Generator,
                after_epoch: Callable[[], None] | None = None) -> None:
    """Minimise ``loss_of(indices)`` over ``params`` for ``epochs`` passes over ``m`` samples in shuffled batches,
    the step decayed from ``lr`` to 0 on a cosine; ``after_epoch`` is called at the end of every pass."""
    optimiser = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, epochs * math.ceil(m / batch)))
    for _ in range(epochs):
        order = torch.randperm(int(m), generator=generator)
        for begin in range(0, int(m), batch):
            loss = loss_of(order[begin:begin + batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if after_epoch is not None:
            after_epoch()
