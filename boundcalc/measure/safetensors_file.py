"""A safetensors file read with numpy alone (no torch): the header checked against the file, then one tensor
at a time read into fresh memory with ``readinto``.

Format (huggingface/safetensors): 8 bytes little-endian header length n, n bytes of JSON mapping each tensor
name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional ``__metadata__`` of strings),
then the data; offsets count from the end of the header. The header is refused, as the safetensors library
refuses it, unless the tensors tile the data exactly: sorted by offset, each begins where the previous ends,
holds numel × itemsize bytes, and the last ends at the end of the file. A truncated file therefore fails when
it is opened, naming the tensor that runs past its end, before any tensor is read.

Values are read with ``readinto`` (not memory-mapped): the file's pages stay in the page cache, which the
kernel reclaims, and only the tensor being measured counts in the process's resident memory; it is freed
before the next one is read. bfloat16 and float8 bits are decoded into float32 (:mod:`.dtypes`) a chunk at a
time through one reused buffer of ``READ_CHUNK_BYTES``, so no second copy of a large tensor is held.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from boundcalc.errors import CheckpointError, first_line
from boundcalc.files import load_json
from boundcalc.measure.checkpoint_limits import check_safetensors_header
from boundcalc.measure.dtypes import SAFETENSORS_TYPES, ElementType, decode_into

#: bytes of bfloat16/float8 bits read per step while decoding into float32
READ_CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Entry:
    """One tensor of a safetensors file: where its bytes are (absolute offsets) and how to read them."""

    name: str
    shape: tuple[int, ...]
    kind: ElementType
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


def read_header(path: str, size: int) -> dict[str, Entry]:
    """The tensors of the safetensors file ``path`` of ``size`` bytes, in file order; CheckpointError with a
    one-line reason if the header is malformed or does not tile the data exactly."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise _bad(path, f"{size} bytes, shorter than the 8-byte header length")
        length = int.from_bytes(head, "little")
        check_safetensors_header(path, length)
        if 8 + length > size:
            raise _bad(path, f"the header declares {length:,} bytes but the file has {size - 8:,} after the length")
        raw = handle.read(length)
    try:
        header = load_json(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise _bad(path, f"the header is not valid JSON ({first_line(err)})") from None
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    start = 8 + length
    entries = [_entry(path, name, value, start) for name, value in header.items() if name != "__metadata__"]
    entries.sort(key=lambda e: (e.begin, e.end))
    _check_tiling(path, entries, start, size)
    return {e.name: e for e in entries}


def _entry(path: str, name: str, value, start: int) -> Entry:
    """One header entry, its fields checked (types, known dtype, size consistent with the offsets)."""
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise _bad(path, f"entry {name!r} is not {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_TYPES:
        raise _bad(path, f"tensor {name!r} has unknown dtype {str(dtype)[:40]!r} "
                         f"(known: {', '.join(SAFETENSORS_TYPES)})")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise _bad(path, f"tensor {name!r} has a shape that is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_natural(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise _bad(path, f"tensor {name!r} has data_offsets that are not [begin, end] with 0 ≤ begin ≤ end")
    kind = SAFETENSORS_TYPES[dtype]
    expected = math.prod(shape) * kind.itemsize
    if offsets[1] - offsets[0] != expected:
        raise _bad(path, f"tensor {name!r} of shape {tuple(shape)} and dtype {dtype} needs {expected:,} bytes, its "
                         f"data_offsets span {offsets[1] - offsets[0]:,}")
    return Entry(name, tuple(shape), kind, start + offsets[0], start + offsets[1])


def _check_tiling(path: str, entries: list[Entry], start: int, size: int) -> None:
    """Each tensor begins where the previous one ends, and the last one ends at the end of the file."""
    position = start
    for entry in entries:
        if entry.end > size:
            raise _bad(path, f"tensor {entry.name!r} ends at byte {entry.end:,}, past the end of the file "
                             f"({size:,} bytes): the file is truncated or its header is wrong")
        if entry.begin != position:
            raise _bad(path, f"tensor {entry.name!r} begins at byte {entry.begin:,}, not where the previous tensor "
                             f"ends ({position:,}): overlapping or gapped data_offsets")
        position = entry.end
    if position != size:
        raise _bad(path, f"{size - position:,} bytes after the last tensor (the data ends at byte {position:,})")


def read_entry(path: str, entry: Entry, decode: bool = True, scratch: np.ndarray | None = None) -> np.ndarray:
    """The tensor's values: float32 for bfloat16/float8 when ``decode`` (else their bits as unsigned integers),
    numpy's own type otherwise. Read with ``readinto`` into fresh memory, or into the byte array ``scratch``
    when it is large enough (the result is then a view of it: one buffer reused for every tensor of a stream
    saves faulting in new pages for each). A file that shrank since its header was read fails with a
    CheckpointError naming the tensor."""
    with open(path, "rb", buffering=0) as handle:
        handle.seek(entry.begin)
        if entry.kind.native or not decode:
            values = _empty(entry.shape, np.dtype(entry.kind.storage), scratch)
            _fill(handle, values.reshape(-1).view(np.uint8), path, entry)
            return values
        out = _empty(entry.shape, np.dtype(np.float32), scratch)
        flat = out.reshape(-1)
        step = max(1, READ_CHUNK_BYTES // entry.kind.itemsize)
        buffer = np.empty(min(step, flat.size), dtype=entry.kind.storage)
        for first in range(0, flat.size, step):
            bits = buffer[:min(step, flat.size - first)]
            _fill(handle, bits.view(np.uint8), path, entry)
            decode_into(bits, entry.kind.name, flat[first:first + len(bits)])
        return out


def _empty(shape: tuple[int, ...], dtype: np.dtype, scratch: np.ndarray | None) -> np.ndarray:
    size = math.prod(shape) * dtype.itemsize
    if scratch is None or scratch.size < size:
        return np.empty(shape, dtype=dtype)
    return scratch[:size].view(dtype).reshape(shape)


def _fill(handle, target: np.ndarray, path: str, entry: Entry) -> None:
    """Fill the byte array ``target`` from ``handle``; CheckpointError if the file ends first."""
    view, done = memoryview(target), 0
    while done < len(view):
        got = handle.readinto(view[done:])
        if not got:
            raise CheckpointError(f"{path}: cannot read tensor {entry.name!r}: the file ends before its last "
                                  f"{len(view) - done:,} bytes (it was truncated after it was opened)")
        done += got


def _natural(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _bad(path: str, reason: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable safetensors file: {reason}")

