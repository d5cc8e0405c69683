"""Measure every weight matrix of a checkpoint, streaming: one tensor is read, measured and released before the
next is read, in the order the tensors lie on disk (:meth:`Checkpoint.read_order`), into one reused buffer the
size of the largest tensor (in float32 for bfloat16/float8), so memory stays near the working set of the largest
tensor whatever the checkpoint's size. numpy and scipy only: torch is not imported
for a safetensors checkpoint.

``on_progress(done, total, name)`` reports bytes of tensor data measured so far (the CLI draws a bar with it).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable
from contextlib import nullcontext
from functools import lru_cache

import numpy as np

from boundcalc.errors import BoundcalcError
from boundcalc.measure.checkpoint import Checkpoint, TensorInfo
from boundcalc.measure.quantities import MeasureOptions, WeightMeasurement, measure_weight

Progress = Callable[[int, int, str], None]
#: matrices whose smaller side (the Gram matrix's) is below this are measured with one BLAS thread
BLAS_THREADS_MIN_SIDE = 1024
#: the reason given for tensors a shard holds but its index does not list
UNINDEXED = "in a shard but not listed in the shard index, so not read"


def noop(done: int, total: int, name: str) -> None:
    return None


def measure_checkpoint(checkpoint: Checkpoint, options: MeasureOptions, init: Checkpoint | None = None,
                       on_progress: Progress = noop) -> list[WeightMeasurement]:
    """Every floating-point tensor with ≥ 2 dimensions (conv kernels as reshaped c_out × c_in·kh·kw), in the
    checkpoint's name order; read in disk order."""
    names = [n for n in checkpoint.read_order() if _skip_reason(checkpoint.infos[n]) is None]
    total, done = sum(checkpoint.infos[n].nbytes for n in names), 0
    measured = {}
    scratch = np.empty(max((checkpoint.array_bytes(n) for n in names), default=0), dtype=np.uint8)
    with _one_torch_thread():
        for name in names:
            on_progress(done, total, name)
            measured[name] = _measure_one(checkpoint, name, options, init, scratch)
            done += checkpoint.infos[name].nbytes
    on_progress(total, total, "")
    return [measured[info.name] for info in checkpoint if info.name in measured]


def _measure_one(checkpoint: Checkpoint, name: str, options: MeasureOptions, init: Checkpoint | None,
                 scratch: np.ndarray) -> WeightMeasurement:
    """One tensor read (into ``scratch``, one buffer for every tensor: no new pages to fault in for each) and
    measured; nothing of it is held when this returns, before the next is read."""
    weight = checkpoint.array(name, scratch)
    reference = checked_init(init, name, weight.shape) if init is not None else None
    with _blas_threads(weight.shape):
        return measure_weight(weight, options, tensor=name, init=reference, stored_dtype=checkpoint.infos[name].dtype)


def _blas_threads(shape: tuple[int, ...]):
    """One BLAS thread for a matrix whose smaller side is below BLAS_THREADS_MIN_SIDE: its products and
    eigenvalue problems are too small to split, and OpenBLAS's threads then wait on each other (far worse when
    another process holds a core: MiniLM-L6's 40 matrices on 2 busy cores took 6–21 s with 2 threads, 0.4–0.9 s
    with 1). Larger matrices keep the library's thread count (``OPENBLAS_NUM_THREADS`` sets it)."""
    if min(shape[0], math.prod(shape[1:])) >= BLAS_THREADS_MIN_SIDE:
        return nullcontext()
    return _controller().limit(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def checked_init(init: Checkpoint, name: str, shape: tuple[int, ...], as_tensor: bool = False):
    """The reference (--init) tensor ``name``, of the same shape as the checkpoint's: a numpy array, or a torch
    tensor with ``as_tensor``."""
    if name not in init.infos:
        raise BoundcalcError(f"--init {init.path}: no tensor named {name!r}")
    reference = init.tensor(name) if as_tensor else init.array(name)
    if tuple(reference.shape) != tuple(shape):
        raise BoundcalcError(f"--init {init.path}: {name} has shape {tuple(reference.shape)}, the checkpoint's has "
                             f"{tuple(shape)}")
    return reference


def _one_torch_thread():
    """One torch thread while measuring if torch is loaded (a torch file): its idle OpenMP threads would spin
    and take the cores from numpy's BLAS (``linalg.torch_threads``); nothing when it is not."""
    if "torch" not in sys.modules:
        return nullcontext()
    from boundcalc.measure.linalg import torch_threads

    return torch_threads(1)


def skipped_tensors(checkpoint: Checkpoint, every_tensor: bool = True) -> dict[str, list[str]]:
    """The tensors left out, by reason: those ``measure_checkpoint`` skips (with ``every_tensor``) and those
    missing from a shard index."""
    out: dict[str, list[str]] = {}
    for info in checkpoint if every_tensor else ():
        reason = _skip_reason(info)
        if reason is not None:
            out.setdefault(reason, []).append(info.name)
    if checkpoint.unindexed:
        out[UNINDEXED] = list(checkpoint.unindexed)
    return out


def _skip_reason(info: TensorInfo) -> str | None:
    if not info.is_float:
        return "not floating point"
    if len(info.shape) < 2:
        return "fewer than 2 dimensions (biases, norms, scalars)"
    if min(info.shape) == 0:
        return "empty"
    return None
