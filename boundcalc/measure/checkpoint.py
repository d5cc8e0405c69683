"""Open weight files safely and stream their tensors one at a time.

Three layouts are understood:

* a ``.safetensors`` file — the header (names, dtypes, shapes) is read first, tensors are read one by one
  from the memory-mapped file (huggingface/safetensors ``safe_open``);
* a torch ``.pt``/``.pth``/``.bin`` file — always ``torch.load(weights_only=True)`` (memory-mapped when the
  file is in the zip format); a training checkpoint that nests the weights under ``state_dict``, ``model``
  … is unwrapped, and ``module.``/``_orig_mod.`` prefixes (DataParallel, torch.compile) are stripped;
* a Hugging Face folder — ``model.safetensors``, a sharded ``model.safetensors.index.json``, or
  ``pytorch_model.bin``.

Nothing here executes code from a file: a torch file that needs more than tensors is refused with a message
saying how to convert it, unless the caller passes ``trust=True`` (the CLI's ``--trust-checkpoint``).
"""
from __future__ import annotations

import math
import pickle
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from boundcalc.errors import CheckpointError
from boundcalc.files import FileInputError, load_json, read_text, regular_file, resolved
from boundcalc.limits import MAX_INDEX_BYTES
from boundcalc.measure.checkpoint_limits import (check_dense, check_safetensors_header, check_tensor_count,
                                                 check_torch_zip)
from boundcalc.measure.linalg import max_abs, reducible


#: keys under which training scripts commonly nest the model's state dict, tried in this order
NESTING_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
#: prefixes added by wrappers: torch.nn.DataParallel / DistributedDataParallel, torch.compile
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
CONVERT_HINT = ("To convert a file you trust, run once in a trusted environment: "
                "import torch, safetensors.torch as st; sd = torch.load(PATH, weights_only=False); "
                "st.save_file({k: v.contiguous() for k, v in sd['state_dict'].items()}, 'model.safetensors') "
                "(adjust the key), or pass --trust-checkpoint, which runs any code the file contains")


@dataclass(frozen=True)
class TensorInfo:
    """What the header says about one tensor, before it is read."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    file: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return any(tag in self.dtype.lower() for tag in ("float", "f8", "f16", "f32", "f64", "bf16", "half", "double"))


class Checkpoint:
    """A set of named tensors in one file or folder; :meth:`tensor` reads one at a time."""

    def __init__(self, path: Path, kind: str, infos: dict[str, TensorInfo], readers: dict[str, Any],
                 unindexed: tuple[str, ...] = ()) -> None:
        self.path = path
        self.kind = kind
        self.infos = infos
        self._readers = readers   # tensor name -> callable returning the tensor
        self.unindexed = unindexed   # tensors in a shard that the shard index does not list (not read)

    def __len__(self) -> int:
        return len(self.infos)

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.infos.values())

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

    def tensor(self, name: str) -> torch.Tensor:
        """The tensor ``name``, checked to be finite; raises CheckpointError naming file and tensor."""
        info = self.infos.get(name)
        if info is None:
            raise CheckpointError(f"{self.path}: no tensor named {name!r}")
        try:
            value = self._readers[name]()
        except Exception as err:  # a corrupt or truncated file fails here, inside the reader library
            raise CheckpointError(f"{info.file}: cannot read tensor {name!r}: {_first_line(err)}") from None
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{info.file}: entry {name!r} is not a tensor")
        if (value.is_floating_point() or value.is_complex()) and not _all_finite(value):
            bad = int((~torch.isfinite(reducible(value))).sum())
            raise CheckpointError(f"{info.file}: tensor {name!r} contains {bad} NaN/Inf value(s)")
        return value


def _all_finite(value: torch.Tensor) -> bool:
    """No NaN or ±Inf (real tensors: one aminmax pass)."""
    if value.is_complex():
        return bool(torch.isfinite(value).all())
    return math.isfinite(max_abs(value))


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
        return _open_safetensors(path)
    return _open_torch(path, trust)


# -- safetensors ----------------------------------------------------------------------------------
def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length and then '{'."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") < path.stat().st_size


def _safetensors_infos(path: Path) -> tuple[dict[str, TensorInfo], Any]:
    from safetensors import safe_open

    check_safetensors_header(path)
    try:
        handle = safe_open(str(path), framework="pt")
        names = list(handle.keys())
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable safetensors file: {_first_line(err)}") from None
    check_tensor_count(path, len(names))
    try:
        infos = {}
        for name in natural_sorted(names):
            piece = handle.get_slice(name)
            infos[name] = TensorInfo(name, tuple(int(d) for d in piece.get_shape()), str(piece.get_dtype()),
                                     str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable safetensors file: {_first_line(err)}") from None
    return infos, handle


def _open_safetensors(path: Path) -> Checkpoint:
    infos, handle = _safetensors_infos(path)
    readers = {name: (lambda n=name: handle.get_tensor(n)) for name in infos}
    return Checkpoint(path, "safetensors", infos, readers)


# -- torch ----------------------------------------------------------------------------------------
def _open_torch(path: Path, trust: bool) -> Checkpoint:
    check_torch_zip(path)
    obj = _torch_load(path, trust)
    state, where = _find_state_dict(obj, path)
    state = _strip_prefixes(state)
    check_tensor_count(path, len(state))
    for name, tensor in state.items():
        check_dense(path, name, tensor)
    infos = {name: TensorInfo(name, tuple(t.shape), str(t.dtype).removeprefix("torch."), str(path))
             for name, t in state.items()}
    readers = {name: (lambda t=t: t) for name, t in state.items()}
    kind = "torch" + (f" (weights under {where!r})" if where else "") + (" [trusted: unsafe load]" if trust else "")
    return Checkpoint(path, kind, infos, readers)


def _torch_load(path: Path, trust: bool) -> Any:
    """torch.load in safe mode (memory-mapped when possible); every failure becomes one line."""
    try:
        with warnings.catch_warnings():   # torch warns about pickle protocols before refusing; the error says it all
            warnings.simplefilter("ignore")
            return _torch_load_quiet(path, trust)
    except pickle.UnpicklingError as err:
        if trust:
            raise CheckpointError(f"{path}: not a torch checkpoint: {_first_line(err)}") from None
        detail = _unsupported_global(str(err))
        raise CheckpointError(f"{path}: torch refused to load it in safe mode (weights_only=True) because it "
                              f"contains {detail}; boundcalc never unpickles code. {CONVERT_HINT}") from None
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: "
                              f"{_first_line(err)})") from None


def _torch_load_quiet(path: Path, trust: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=not trust)


def _unsupported_global(message: str) -> str:
    match = re.search(r"(?:Unsupported global|GLOBAL)[:\s]+([\w.]+(?: [\w.]+)?)", message)
    if match:
        return f"a Python object that is not a tensor ({match.group(1).strip()})"
    return "Python objects that are not tensors"


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        any(isinstance(v, torch.Tensor) for v in obj.values())


def _find_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The model's tensors: the object itself if it is a flat dict of tensors, else a nested one."""
    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict()), None
    if _is_tensor_dict(obj) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj), None
    if isinstance(obj, dict):
        for key in NESTING_KEYS:
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                return dict(inner.state_dict()), key
            if _is_tensor_dict(inner):
                return {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}, key
        if _is_tensor_dict(obj):
            return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}, None
        keys = ", ".join(sorted(map(str, obj))[:12])
        raise CheckpointError(f"{path}: no state dict found; top-level keys are: {keys} (expected tensors, or "
                              f"one of {', '.join(NESTING_KEYS)} holding them)")
    raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a dict of tensors")


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


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
    return Checkpoint(folder, kind, checkpoint.infos, checkpoint._readers, checkpoint.unindexed)


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
        raise CheckpointError(f"{index}: not a valid shard index: {_first_line(err)}") from None
    check_tensor_count(index, len(weight_map))
    return {str(name): str(shard) for name, shard in weight_map.items()}


def _open_sharded(folder: Path, index: Path) -> Checkpoint:
    weight_map = _read_index(index)
    infos: dict[str, TensorInfo] = {}
    readers: dict[str, Any] = {}
    opened: dict[str, tuple[dict[str, TensorInfo], Any]] = {}
    for name, shard in weight_map.items():
        shard_path = _inside(folder, shard, f"{index}: shard {shard!r} for {name!r}")
        if not shard_path.exists():
            raise CheckpointError(f"{index}: shard {shard!r} for {name!r} does not exist")
        if str(shard_path) not in opened:
            try:
                regular_file(shard_path, "shard")
            except FileInputError as err:
                raise CheckpointError(str(err)) from None
            opened[str(shard_path)] = _safetensors_infos(shard_path)
        shard_infos, handle = opened[str(shard_path)]
        if name not in shard_infos:
            raise CheckpointError(f"{shard_path}: the index puts {name!r} here but the shard has no such tensor")
        infos[name] = shard_infos[name]
        readers[name] = lambda n=name, h=handle: h.get_tensor(n)
    check_tensor_count(folder, sum(len(shard_infos) for shard_infos, _ in opened.values()))
    unindexed = natural_sorted({n for shard_infos, _ in opened.values() for n in shard_infos} - set(infos))
    ordered = {n: infos[n] for n in natural_sorted(infos)}
    return Checkpoint(folder, f"safetensors, {len(opened)} shards", ordered, readers, tuple(unindexed))


# -- helpers --------------------------------------------------------------------------------------
def natural_sorted(names) -> list[str]:
    """Names in natural order: ``layer.2`` before ``layer.10``."""
    return sorted(names, key=lambda s: [(0, int(p), "") if p.isdigit() else (1, 0, p)
                                        for p in re.split(r"(\d+)", s)])


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
