"""Open weight files safely and stream their tensors one at a time.

Three layouts are understood:

* a ``.safetensors`` file — the header (names, dtypes, shapes, byte ranges) is read and checked against the
  file first (:mod:`.safetensors_file`), then tensors are read one by one with numpy alone: ``boundcalc
  measure`` on safetensors never imports torch;
* a torch ``.pt``/``.pth``/``.bin`` file — ``torch.load(weights_only=True)`` (:mod:`.torch_file`);
* a Hugging Face folder — ``model.safetensors``, a sharded ``model.safetensors.index.json``, or
  ``pytorch_model.bin``.

:meth:`Checkpoint.array` gives a tensor as a numpy array (bfloat16 and float8 decoded into float32),
:meth:`Checkpoint.tensor` as a torch tensor of its stored type (for the forward pass). :meth:`Checkpoint.read_order`
lists the tensors as they lie on disk (shards in index order, each read front to back), the order to stream them in.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from boundcalc.errors import CheckpointError, first_line
from boundcalc.files import FileInputError, load_json, read_text, regular_file, resolved
from boundcalc.limits import MAX_INDEX_BYTES
from boundcalc.measure.checkpoint_limits import check_tensor_count
from boundcalc.measure.dense import as_array, max_abs
from boundcalc.measure.dtypes import DECODERS
from boundcalc.measure.safetensors_file import Entry, read_entry, read_header

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
#: a tensor reader: called with ``decode`` (float32 values for bfloat16/float8, else the stored bits) and a scratch
#: byte array (or None), it returns a numpy array (safetensors) or a torch tensor (torch files)
Reader = Callable[[bool, Any], Any]


@dataclass(frozen=True)
class TensorInfo:
    """What the header says about one tensor, before it is read."""

    name: str
    shape: tuple[int, ...]
    dtype: str               # torch's name: float32, bfloat16, float8_e4m3fn, int64 …
    file: str
    nbytes: int = 0          # bytes it takes in the file

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return any(tag in self.dtype.lower() for tag in ("float", "f8", "f16", "f32", "f64", "bf16", "half", "double"))


class Checkpoint:
    """A set of named tensors in one file or folder; :meth:`array` and :meth:`tensor` read one at a time."""

    def __init__(self, path: Path, kind: str, infos: dict[str, TensorInfo], readers: dict[str, Reader],
                 unindexed: tuple[str, ...] = (), order: tuple[str, ...] | None = None) -> None:
        self.path = path
        self.kind = kind
        self.infos = infos
        self._readers = readers   # tensor name -> Reader
        self.unindexed = unindexed   # tensors in a shard that the shard index does not list (not read)
        self._order = order or tuple(infos)

    def __len__(self) -> int:
        return len(self.infos)

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.infos.values())

    def read_order(self) -> list[str]:
        """The tensors in the order they lie on disk: shards in index order, each from its first byte to its last."""
        return list(self._order)

    @property
    def files(self) -> list[str]:
        """Every file this checkpoint is read from: the path given, each tensor's file and a shard index."""
        out = {str(self.path)} | {info.file for info in self.infos.values()}
        if self.path.is_dir():
            out |= {str(self.path / name) for name in FOLDER_FILES if (self.path / name).exists()}
        return sorted(out)

    @property
    def size_bytes(self) -> int:
        files = {info.file for info in self.infos.values()}
        return sum(Path(f).stat().st_size for f in files)

    def array(self, name: str, scratch: np.ndarray | None = None) -> np.ndarray:
        """The tensor ``name`` as a numpy array (float32 for bfloat16 and float8), checked to be finite; raises
        CheckpointError naming file and tensor. A safetensors tensor is read into fresh memory, held only by
        the caller, or into the byte array ``scratch`` if it has room for :meth:`array_bytes` (the array is then a
        view of it, valid until the next read into it)."""
        info, value = self._read(name, decode=True, scratch=scratch)
        value = as_array(value)
        if value.dtype.kind in "fc" and not _finite(value):
            raise _not_finite(info, int(np.count_nonzero(~np.isfinite(value))))
        return value

    def tensor(self, name: str):
        """The tensor ``name`` as a torch tensor of its stored type, checked to be finite; raises CheckpointError
        naming file and tensor."""
        import torch

        from boundcalc.measure.linalg import max_abs as torch_max_abs, reducible

        info, value = self._read(name, decode=False)
        if isinstance(value, np.ndarray):
            value = _as_torch(value, info.dtype)
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{info.file}: entry {name!r} is not a tensor")
        if value.is_complex():
            finite = bool(torch.isfinite(value).all())
        else:
            finite = not value.is_floating_point() or math.isfinite(torch_max_abs(value))
        if not finite:
            raise _not_finite(info, int((~torch.isfinite(reducible(value))).sum()))
        return value

    def array_bytes(self, name: str) -> int:
        """Bytes :meth:`array` needs for ``name`` (4 per value for bfloat16 and float8)."""
        info = self.infos[name]
        return 4 * info.numel if info.dtype in DECODERS else info.nbytes

    def _read(self, name: str, decode: bool, scratch: np.ndarray | None = None) -> tuple[TensorInfo, Any]:
        info = self.infos.get(name)
        if info is None:
            raise CheckpointError(f"{self.path}: no tensor named {name!r}")
        try:
            return info, self._readers[name](decode, scratch)
        except CheckpointError:
            raise
        except Exception as err:  # a corrupt file fails here, inside the reader library
            raise CheckpointError(f"{info.file}: cannot read tensor {name!r}: {first_line(err)}") from None


def _finite(values: np.ndarray) -> bool:
    """No NaN or ±Inf (real arrays: a min and a max pass, no temporary)."""
    if values.dtype.kind == "c":
        return bool(np.isfinite(values).all())
    return math.isfinite(max_abs(values))


def _not_finite(info: TensorInfo, count: int) -> CheckpointError:
    return CheckpointError(f"{info.file}: tensor {info.name!r} contains {count} NaN/Inf value(s)")


#: torch dtypes for the types numpy lacks, read from their bits (int16 and uint8 have the same sizes)
_BITS_AS = {"bfloat16": np.int16, "float8_e4m3fn": np.uint8, "float8_e5m2": np.uint8}


def _as_torch(values: np.ndarray, dtype: str):
    """A numpy array of stored values (or bits, for bfloat16/float8) as a torch tensor of type ``dtype``."""
    import torch

    if dtype in _BITS_AS:
        return torch.from_numpy(values.view(_BITS_AS[dtype])).view(getattr(torch, dtype))
    return torch.from_numpy(values)


def open_checkpoint(path: str | Path, trust: bool = False) -> Checkpoint:
    """Open a weight file or Hugging Face folder; raises CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{path}: no such file or folder")
    if path.is_dir():
        return _open_folder(path, trust)
    return _open_file(path, trust)


def _open_file(path: Path, trust: bool) -> Checkpoint:
    """A regular weight file (never a FIFO or a device): safetensors by suffix or magic, else torch."""
    try:
        size = regular_file(path, "checkpoint").st_size
    except FileInputError as err:
        raise CheckpointError(str(err)) from None
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        return _open_safetensors(path, size)
    return _open_torch(path, trust)


# -- safetensors ----------------------------------------------------------------------------------
def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length and then '{'."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") < path.stat().st_size


def _safetensors_entries(path: Path, size: int) -> dict[str, Entry]:
    entries = read_header(str(path), size)
    check_tensor_count(path, len(entries))
    return entries


def _info(entry: Entry, file: str) -> TensorInfo:
    return TensorInfo(entry.name, entry.shape, entry.kind.name, file, entry.nbytes)


def _reader(file: str, entry: Entry) -> Reader:
    return lambda decode, scratch: read_entry(file, entry, decode, scratch)


def _open_safetensors(path: Path, size: int) -> Checkpoint:
    entries = _safetensors_entries(path, size)
    infos = {name: _info(entries[name], str(path)) for name in natural_sorted(entries)}
    readers = {name: _reader(str(path), entry) for name, entry in entries.items()}
    return Checkpoint(path, "safetensors", infos, readers, order=tuple(entries))


# -- torch ----------------------------------------------------------------------------------------
def _open_torch(path: Path, trust: bool) -> Checkpoint:
    from boundcalc.measure.torch_file import load_state

    state, kind = load_state(path, trust)
    infos = {name: TensorInfo(name, tuple(t.shape), str(t.dtype).removeprefix("torch."), str(path),
                              t.numel() * t.element_size()) for name, t in state.items()}
    readers = {name: (lambda decode, scratch, t=t: t) for name, t in state.items()}
    return Checkpoint(path, kind, infos, readers)


# -- Hugging Face folders -------------------------------------------------------------------------
#: the weight files of a Hugging Face folder, in the order they are looked for
FOLDER_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _open_folder(folder: Path, trust: bool) -> Checkpoint:
    """The first of FOLDER_FILES present; each file read, like every shard, must lie inside the folder
    (a symlink that leaves it is refused, whichever file it is)."""
    present = [name for name in FOLDER_FILES if (folder / name).exists() or (folder / name).is_symlink()]
    if not present:
        raise CheckpointError(f"{folder}: a folder needs model.safetensors, model.safetensors.index.json or "
                              "pytorch_model.bin (Hugging Face layout)")
    name = present[0]
    path = _inside(folder, name, f"{folder}: {name}")
    if name == "model.safetensors.index.json":
        checkpoint = _open_sharded(folder, path)
    else:
        checkpoint = _open_file(path, trust)
    kind = "huggingface folder: " + checkpoint.kind + (" + config.json" if (folder / "config.json").is_file() else "")
    return Checkpoint(folder, kind, checkpoint.infos, checkpoint._readers, checkpoint.unindexed,
                      tuple(checkpoint.read_order()))


def _inside(folder: Path, relative: str, what: str) -> Path:
    """``folder / relative`` with symlinks resolved, refused unless it stays inside ``folder``."""
    try:
        path, root = resolved(folder / relative), resolved(folder)
    except FileInputError as err:
        raise CheckpointError(str(err)) from None
    if root not in path.parents:
        raise CheckpointError(f"{what} lies outside the folder (it resolves to {path}); boundcalc reads only "
                              "files inside a checkpoint folder (copy it with cp -rL to resolve its symlinks)")
    return path


def _read_index(index: Path) -> dict[str, str]:
    """The weight map of a shard index: a regular file of at most MAX_INDEX_BYTES, JSON without duplicate keys."""
    try:
        weight_map = load_json(read_text(index, "shard index", MAX_INDEX_BYTES, "MAX_INDEX_BYTES"))["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except FileInputError as err:
        raise CheckpointError(str(err)) from None
    except Exception as err:
        raise CheckpointError(f"{index}: not a valid shard index: {first_line(err)}") from None
    check_tensor_count(index, len(weight_map))
    return {str(name): str(shard) for name, shard in weight_map.items()}


def _open_sharded(folder: Path, index: Path) -> Checkpoint:
    """Every shard the index names, its header read and checked before any tensor is; tensors are read in the
    shards' order (natural order of their file names: model-00001-of-00004 first) and, within a shard, in file
    order."""
    weight_map = _read_index(index)
    opened: dict[str, dict[str, Entry]] = {}
    infos: dict[str, TensorInfo] = {}
    for name, shard in weight_map.items():
        shard_path = _inside(folder, shard, f"{index}: shard {shard!r} for {name!r}")
        if not shard_path.exists():
            raise CheckpointError(f"{index}: shard {shard!r} for {name!r} does not exist")
        if str(shard_path) not in opened:
            try:
                size = regular_file(shard_path, "shard").st_size
            except FileInputError as err:
                raise CheckpointError(str(err)) from None
            opened[str(shard_path)] = _safetensors_entries(shard_path, size)
        if name not in opened[str(shard_path)]:
            raise CheckpointError(f"{shard_path}: the index puts {name!r} here but the shard has no such tensor")
        infos[name] = _info(opened[str(shard_path)][name], str(shard_path))
    check_tensor_count(folder, sum(len(entries) for entries in opened.values()))
    unindexed = natural_sorted({n for entries in opened.values() for n in entries} - set(infos))
    readers = {name: _reader(info.file, opened[info.file][name]) for name, info in infos.items()}
    order = tuple(n for file in natural_sorted(opened) for n in opened[file] if n in infos)
    ordered = {n: infos[n] for n in natural_sorted(infos)}
    return Checkpoint(folder, f"safetensors, {len(opened)} shards", ordered, readers, tuple(unindexed), order)


# -- helpers --------------------------------------------------------------------------------------
def natural_sorted(names) -> list[str]:
    """Names in natural order: ``layer.2`` before ``layer.10``."""
    return sorted(names, key=lambda s: [(0, int(p), "") if p.isdigit() else (1, 0, p)
                                        for p in re.split(r"(\d+)", s)])
