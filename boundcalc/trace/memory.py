"""A :class:`~boundcalc.measure.checkpoint.Checkpoint` over tensors in memory (a model's state dict), so a
traced spec binds by name exactly as ``evaluate`` binds it from a file, without writing one."""
from __future__ import annotations

from pathlib import Path

from boundcalc.measure.checkpoint import Checkpoint, TensorInfo, natural_sorted


def memory_checkpoint(state: dict, label: str = "<state dict>") -> Checkpoint:
    """``state`` (name → tensor) as a checkpoint in natural name order."""
    infos = {name: TensorInfo(name, tuple(state[name].shape), str(state[name].dtype).removeprefix("torch."), label)
             for name in natural_sorted(state)}
    readers = {name: (lambda decode, scratch, t=state[name]: t) for name in infos}   # the Reader signature
    return Checkpoint(Path(label), "in memory", infos, readers)
