"""Measure every weight matrix of a checkpoint, streaming: one tensor is read, measured and released before the
next is read, in the order the tensors lie on disk (:meth:`Checkpoint.read_order`), into one reused buffer the
size of the largest tensor (in float32 for bfloat16/float8), so memory stays near the working set of the largest
tensor whatever the checkpoint's size. numpy and scipy only: torch is not imported
for a safetensors checkpoint.

Small matrices (smaller side below ``BLAS_THREADS_MIN_SIDE``, at most ``PARALLEL_MAX_BYTES``) run on one BLAS
thread each, since their products are too small to split; on a machine with two cores or more, two of them are
measured at once, each in its own thread and second buffer (numpy releases the GIL in BLAS and LAPACK), so both
cores work. Larger matrices run alone, with the library's threads.

``on_progress(done, total, name)`` reports bytes of tensor data measured so far (the CLI draws a bar with it).
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import lru_cache
from itertools import groupby
from queue import SimpleQueue

import numpy as np

from boundcalc.errors import BoundcalcError
from boundcalc.measure.checkpoint import Checkpoint, TensorInfo
from boundcalc.measure.quantities import MeasureOptions, WeightMeasurement, measure_weight

Progress = Callable[[int, int, str], None]
#: matrices whose smaller side (the Gram matrix's) is below this are measured with one BLAS thread
BLAS_THREADS_MIN_SIDE = 1024
#: the largest tensor (its array bytes) measured beside another one; a second buffer of at most this size is kept
PARALLEL_MAX_BYTES = 256 * 2**20
#: how many small matrices are measured at once (each holds one buffer while it runs)
PARALLEL_WORKERS = 2
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
    workers = _workers()
    small = {n for n in names if workers > 1 and _runs_beside_another(checkpoint, n)}
    largest = np.empty(max((checkpoint.array_bytes(n) for n in names), default=0), dtype=np.uint8)
    spare: SimpleQueue = SimpleQueue()       # the buffers of the matrices measured two at a time
    if small:
        spare.put(largest)
        spare.put(np.empty(max(checkpoint.array_bytes(n) for n in small), dtype=np.uint8))

    def alone(name: str) -> WeightMeasurement:
        return _measure_one(checkpoint, name, options, init, largest)

    def beside_another(name: str) -> WeightMeasurement:
        scratch = spare.get()
        try:
            return _measure_one(checkpoint, name, options, init, scratch, limit=False)
        finally:
            spare.put(scratch)

    measured = {}
    on_progress(0, total, names[0] if names else "")
    with _one_torch_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
        for together, run in groupby(names, key=small.__contains__):
            run = list(run)
            with _controller().limit(limits=1, user_api="blas") if together else nullcontext():
                for name, result in zip(run, pool.map(beside_another, run) if together else map(alone, run)):
                    measured[name] = result
                    done += checkpoint.infos[name].nbytes
                    on_progress(done, total, name)
    on_progress(total, total, "")
    return [measured[info.name] for info in checkpoint if info.name in measured]


def _workers() -> int:
    """PARALLEL_WORKERS on a machine (or CPU affinity) with two cores or more; 1 otherwise, and for torch files
    (torch's own threads are pinned to one while measuring)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores < 2 or "torch" in sys.modules else PARALLEL_WORKERS


def _runs_beside_another(checkpoint: Checkpoint, name: str) -> bool:
    """A matrix small enough to run on one BLAS thread beside another one (see the module docstring)."""
    shape = checkpoint.infos[name].shape
    return min(shape[0], math.prod(shape[1:])) < BLAS_THREADS_MIN_SIDE and \
        checkpoint.array_bytes(name) <= PARALLEL_MAX_BYTES


def _measure_one(checkpoint: Checkpoint, name: str, options: MeasureOptions, init: Checkpoint | None,
                 scratch: np.ndarray, limit: bool = True) -> WeightMeasurement:
    """One tensor read (into ``scratch``, a reused buffer: no new pages to fault in for each) and measured;
    nothing of it is held when this returns. ``limit``: set the BLAS threads for its shape here (a caller that
    measures several at once holds one thread for all of them instead)."""
    weight = checkpoint.array(name, scratch)
    reference = checked_init(init, name, weight.shape) if init is not None else None
    with _blas_threads(weight.shape) if limit else nullcontext():
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
