"""Torch weight files (``.pt``/``.pth``/``.bin``): always ``torch.load(weights_only=True)`` (memory-mapped when
the file is in the zip format); a training checkpoint that nests the weights under ``state_dict``, ``model`` …
is unwrapped, and ``module.``/``_orig_mod.`` prefixes (DataParallel, torch.compile) are stripped.

Nothing here executes code from a file: a file that needs more than tensors is refused with a message saying
how to convert it, unless the caller passes ``trust=True`` (the CLI's ``--trust-checkpoint``). This is the only
checkpoint module that imports torch; :mod:`.checkpoint` imports it when a torch file is opened.
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from boundcalc.errors import CheckpointError, first_line
from boundcalc.measure.checkpoint_limits import check_dense, check_tensor_count, check_torch_zip

#: keys under which training scripts commonly nest the model's state dict, tried in this order
NESTING_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
#: prefixes added by wrappers: torch.nn.DataParallel / DistributedDataParallel, torch.compile
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
CONVERT_HINT = ("To convert a file you trust, run once in a trusted environment: "
                "import torch, safetensors.torch as st; sd = torch.load(PATH, weights_only=False); "
                "st.save_file({k: v.contiguous() for k, v in sd['state_dict'].items()}, 'model.safetensors') "
                "(adjust the key), or pass --trust-checkpoint, which runs any code the file contains")


def load_state(path: Path, trust: bool) -> tuple[dict[str, torch.Tensor], str]:
    """The file's tensors by name (checked dense, on the CPU, within their storage) and a description of
    where they were found."""
    check_torch_zip(path)
    obj = _torch_load(path, trust)
    state, where = _find_state_dict(obj, path)
    state = _strip_prefixes(state)
    check_tensor_count(path, len(state))
    for name, tensor in state.items():
        check_dense(path, name, tensor)
    kind = "torch" + (f" (weights under {where!r})" if where else "") + (" [trusted: unsafe load]" if trust else "")
    return state, kind


def _torch_load(path: Path, trust: bool) -> Any:
    """torch.load in safe mode (memory-mapped when possible); every failure becomes one line."""
    try:
        with warnings.catch_warnings():   # torch warns about pickle protocols before refusing; the error says it all
            warnings.simplefilter("ignore")
            return _torch_load_quiet(path, trust)
    except pickle.UnpicklingError as err:
        if trust:
            raise CheckpointError(f"{path}: not a torch checkpoint: {first_line(err)}") from None
        detail = _unsupported_global(str(err))
        raise CheckpointError(f"{path}: torch refused to load it in safe mode (weights_only=True) because it "
                              f"contains {detail}; boundcalc never unpickles code. {CONVERT_HINT}") from None
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: "
                              f"{first_line(err)})") from None


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
