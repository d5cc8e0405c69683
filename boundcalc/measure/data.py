"""Data files (``.npz`` with ``X`` and ``y``, format in docs/data.md) and the data-dependent quantities of
docs/references.md §6.5.

An .npz is read member by member: a regular file only, each .npy header read first and its dtype (real
numbers; an object array is refused, never unpickled) and shape (MAX_DATA_VALUES) checked before the member
is inflated. Labels are checked as non-negative integers up to MAX_LABEL before they are cast. Norms are
formed on X/max|X_ij| and rescaled, so data of any float64 magnitude gives exact values.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from boundcalc.errors import BoundcalcError, first_line
from boundcalc.files import FileInputError, regular_file
from boundcalc.limits import MAX_DATA_VALUES, MAX_LABEL, MAX_NPZ_MEMBERS
from boundcalc.measure.linalg import max_abs


#: bytes read from a compressed member at a time (no second copy of a whole array)
_CHUNK = 1 << 24


class DataError(BoundcalcError):
    """A data file that cannot be used."""


@dataclass(frozen=True)
class Dataset:
    file: str
    x: torch.Tensor            # (m, *input shape), float64
    y: torch.Tensor | None     # (m,), int64 class labels


def load_npz(path: str | Path, input_shape: tuple[int, ...] | None = None, need_labels: bool = True) -> Dataset:
    """``X`` (m × d, or m × input shape) and ``y`` (m integer labels) from an .npz file, checked; each array's
    shape and dtype are read from its .npy header and checked against MAX_DATA_VALUES before it is inflated."""
    path = Path(path)
    x, y = read_npz(path)
    if x.dtype.kind not in "fiu" or x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"{path}: X must be a non-empty numeric array of shape (m, features…), got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: X contains NaN or Inf")
    m = x.shape[0]
    if input_shape is not None:
        if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
            raise DataError(f"{path}: each sample of X has shape {tuple(x.shape[1:])}, the spec's input is "
                            f"{tuple(input_shape)}")
        x = x.reshape((m, *input_shape))
    labels = None
    if y is not None:
        if y.ndim != 1 or y.shape[0] != m:
            raise DataError(f"{path}: y has shape {y.shape} but X has {m} samples (expected y of shape ({m},))")
        labels = torch.from_numpy(class_labels(y, path))
    elif need_labels:
        raise DataError(f"{path}: no array named 'y' (integer labels are needed for margins)")
    return Dataset(str(path), torch.from_numpy(x.astype(np.float64, copy=False)), labels)


def class_labels(y: np.ndarray, path: Path) -> np.ndarray:
    """``y`` as int64 class indices, checked BEFORE the cast: integers (or integral floats) in [0, MAX_LABEL].
    A cast first would wrap 2⁶⁴−1 (uint64) to −1 and 1e20 (float) to −2⁶³."""
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(np.mod(y, 1) == 0))):
        raise DataError(f"{path}: y must hold integer class labels, got {y.dtype}"
                        + (" with non-integer or non-finite values" if y.dtype.kind == "f" else ""))
    if y.size:
        low, high = y.min().item(), y.max().item()
        if low < 0:
            raise DataError(f"{path}: y has a negative label {_number(low)}; labels are class indices 0 … C−1")
        if high > MAX_LABEL:
            raise DataError(f"{path}: y has the label {_number(high)}, larger than the limit of {MAX_LABEL} "
                            "(MAX_LABEL); labels are class indices 0 … C−1")
    return y.astype(np.int64)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The arrays ``X`` and (if present) ``y`` of an .npz archive, never unpickled (``allow_pickle=False``);
    a regular file only, and each member's declared shape checked before it is read."""
    try:
        regular_file(path, "data file")
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except FileInputError as err:
        raise DataError(str(err)) from None
    if magic == b"\x93NUMPY":
        raise DataError(f"{path}: a single .npy array; --data expects an .npz archive with arrays X and y "
                        "(numpy.savez(path, X=X, y=y))")
    try:
        with zipfile.ZipFile(path) as archive:
            members = _npz_members(archive, path)
            x = _read_member(archive, members["X"], path)
            y = _read_member(archive, members["y"], path) if "y" in members else None
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError) as err:
        raise DataError(f"{path}: not a readable .npz file ({first_line(err)})") from None
    return x, y


def _npz_members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """Array name (``X`` for ``X.npy``) -> member, with the member count checked and ``X`` required."""
    infos = archive.infolist()
    if len(infos) > MAX_NPZ_MEMBERS:
        raise DataError(f"{path}: {len(infos)} arrays, more than the limit of {MAX_NPZ_MEMBERS} (MAX_NPZ_MEMBERS); "
                        "--data needs only X and y")
    members = {info.filename.removesuffix(".npy"): info for info in infos}
    if "X" not in members:
        raise DataError(f"{path}: no array named 'X' (found: {', '.join(sorted(members)) or 'none'})")
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One array: its .npy header read first, its dtype (real numbers, no objects) and shape (at most
    MAX_DATA_VALUES values) checked, then exactly that many values read, a chunk at a time."""
    name = info.filename
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(stream)
        if dtype.hasobject:
            raise DataError(f"{path}: {name} is an object array; boundcalc never unpickles data (save numbers)")
        if dtype.kind not in "biuf":
            raise DataError(f"{path}: {name} has dtype {dtype}; data arrays hold real numbers")
        values = math.prod(shape)
        if values > MAX_DATA_VALUES:
            raise DataError(f"{path}: {name} declares shape {shape} ({values:,} values), more than the limit of "
                            f"{MAX_DATA_VALUES:,} values per array (MAX_DATA_VALUES); subsample the data")
        data = np.empty(values, dtype=dtype)
        raw, done = memoryview(data.view(np.uint8).reshape(-1)), 0
        while done < len(raw):
            chunk = stream.read(min(_CHUNK, len(raw) - done))
            if not chunk:
                raise DataError(f"{path}: {name} ends before its {values:,} values (truncated or forged header)")
            raw[done:done + len(chunk)] = chunk
            done += len(chunk)
    return data.reshape(shape, order="F" if fortran else "C")


def _number(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class InputStats:
    m: int
    frobenius: float      # ‖X‖_F
    max_norm: float       # R = max_i ‖x_i‖


def input_stats(x: torch.Tensor, file: str = "X") -> InputStats:
    """m, ‖X‖_F and R = max_i ‖x_i‖, formed on X/c with c = max|X_ij| and rescaled, so that no square over- or
    underflows: data of magnitude 1e±300 gives the same digits as data of order 1. DataError when a norm
    itself exceeds the float64 range."""
    flat = x.reshape(x.shape[0], -1)
    scale = max_abs(flat) or 1.0
    unit_norms = torch.linalg.vector_norm(flat.to(torch.float64) / scale, dim=1)
    unit_frobenius = float(torch.linalg.vector_norm(unit_norms))
    frobenius, max_norm = scale * unit_frobenius, scale * float(unit_norms.max())
    if not math.isfinite(frobenius):
        raise DataError(f"{file}: ‖X‖_F ≈ 10^{math.log10(scale) + math.log10(unit_frobenius):.1f} exceeds the float64 range "
                        "(1.8e308); rescale the data")
    return InputStats(m=int(x.shape[0]), frobenius=frobenius, max_norm=max_norm)


@dataclass(frozen=True)
class MarginStats:
    """Multi-class margins f(x)_y − max_{j≠y} f(x)_j on one sample (Bartlett et al. 2017 §2)."""

    m: int
    error: float              # fraction with margin ≤ 0 (ties count as errors)
    min: float
    p5: float
    p10: float
    percentile: float         # the percentile used to choose γ
    gamma: float              # margin at that percentile
    margin_risk: float        # fraction with margin ≤ γ (≥ the empirical ramp loss at γ)

    def to_dict(self) -> dict:
        return asdict(self)


def margins(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """f(x)_y − max_{j≠y} f(x)_j for every sample; DataError when one exceeds the float64 range (outputs near
    ±1.8e308 of opposite signs), which would otherwise make γ = inf."""
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise DataError(f"margins need a network with ≥ 2 outputs, got outputs of shape {tuple(outputs.shape)}")
    check_labels_fit(labels, outputs.shape[1])
    correct = outputs.gather(1, labels[:, None]).squeeze(1)
    others = outputs.scatter(1, labels[:, None], -math.inf)
    values = correct - others.max(dim=1).values
    if not bool(torch.isfinite(values).all()):
        raise DataError("a margin f(x)_y − max_(j≠y) f(x)_j exceeds the float64 range (network outputs near ±1.8e308); "
                        "rescale the data or the weights")
    return values


def check_labels_fit(labels: torch.Tensor, outputs: int) -> None:
    """Every label is an index into the network's ``outputs`` classes."""
    if labels.numel() and int(labels.max()) >= outputs:
        raise DataError(f"label {int(labels.max())} is out of range for a network with {outputs} outputs")


def margin_stats(values: torch.Tensor, percentile: float, gamma: float | None = None) -> MarginStats:
    """Summary of margins; γ is the given value or the ``percentile``-th percentile of the margins."""
    v = values.to(torch.float64)
    q = lambda p: float(np.quantile(v.numpy(), p / 100.0))  # noqa: E731  (torch.quantile refuses > 2²⁴ values)
    chosen = q(percentile) if gamma is None else gamma
    return MarginStats(m=int(v.numel()), error=float((v <= 0).double().mean()), min=float(v.min()), p5=q(5),
                       p10=q(10), percentile=percentile, gamma=chosen,
                       margin_risk=float((v <= chosen).double().mean()))
