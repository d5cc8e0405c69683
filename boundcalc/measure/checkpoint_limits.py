"""Checks of a checkpoint's declared sizes against :mod:`boundcalc.limits`, made before anything is loaded or
copied: the safetensors header length, the tensor count, the pickle of a torch zip file, and each torch tensor's
layout, device and logical size against its storage."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from boundcalc.errors import CheckpointError
from boundcalc.limits import MAX_PICKLE_BYTES, MAX_SAFETENSORS_HEADER_BYTES, MAX_TENSORS, size_text

if TYPE_CHECKING:
    import torch


def check_safetensors_header(path: Path | str, length: int) -> None:
    """The header's declared length against MAX_SAFETENSORS_HEADER_BYTES, checked before the header is read."""
    if length > MAX_SAFETENSORS_HEADER_BYTES:
        raise CheckpointError(f"{path}: the safetensors header declares {length:,} bytes, larger than the limit of "
                              f"{size_text(MAX_SAFETENSORS_HEADER_BYTES)} (MAX_SAFETENSORS_HEADER_BYTES)")


def check_tensor_count(path: Path, count: int) -> None:
    """At most MAX_TENSORS tensors in one checkpoint (counted from a header or directory, before reading)."""
    if count > MAX_TENSORS:
        raise CheckpointError(f"{path}: {count:,} tensors, more than the limit of {MAX_TENSORS:,} per checkpoint "
                              "(MAX_TENSORS)")


def check_torch_zip(path: Path) -> None:
    """From the zip directory, before torch.load: the pickle's size (MAX_PICKLE_BYTES: unpickling cost grows
    with it, about 85 bytes per tensor) and the number of records (one per storage, MAX_TENSORS)."""
    if not zipfile.is_zipfile(path):
        return                        # the legacy format: torch.load checks the storages' sizes itself
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return                        # torch.load reports it
    check_tensor_count(path, sum(1 for m in members if "/data/" in m.filename))
    pickles = [m for m in members if m.filename.endswith("data.pkl")]
    if any(m.file_size > MAX_PICKLE_BYTES for m in pickles):
        size = max(m.file_size for m in pickles)
        raise CheckpointError(f"{path}: its pickle (data.pkl) is {size:,} bytes, larger than the limit of "
                              f"{size_text(MAX_PICKLE_BYTES)} (MAX_PICKLE_BYTES, about {MAX_TENSORS:,} tensors)")


def check_dense(path: Path, name: str, tensor: torch.Tensor) -> None:
    """A dense CPU tensor whose values all lie in its own storage: a stride-0 (expanded) tensor of 10¹⁰ values
    over 4 bytes of storage would be materialised by the first reshape or copy."""
    import torch

    if tensor.layout is not torch.strided:
        raise CheckpointError(f"{path}: tensor {name!r} is {str(tensor.layout).removeprefix('torch.')}; boundcalc "
                              "reads dense tensors only (save it with .to_dense())")
    if tensor.device.type != "cpu":
        raise CheckpointError(f"{path}: tensor {name!r} is on the {tensor.device.type} device and has no values "
                              "to read (save real weights)")
    if tensor.is_quantized:
        raise CheckpointError(f"{path}: tensor {name!r} is quantized ({tensor.dtype}); save it dequantized")
    logical = tensor.numel() * tensor.element_size()
    stored = tensor.untyped_storage().nbytes()
    if logical > stored:
        raise CheckpointError(f"{path}: tensor {name!r} of shape {tuple(tensor.shape)} claims {logical:,} bytes but "
                              f"its storage holds {stored:,} (an expanded or stride-0 view); save it with "
                              ".contiguous()")
