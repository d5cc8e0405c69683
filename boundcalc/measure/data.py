"""Data files (``.npz`` with ``X`` and ``y``, format in docs/data.md) and the data-dependent quantities of
docs/references.md §6.5.

Loaded with ``allow_pickle=False``: an object array is refused, never unpickled.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from boundcalc.errors import BoundcalcError


class DataError(BoundcalcError):
    """A data file that cannot be used."""


@dataclass(frozen=True)
class Dataset:
    file: str
    x: torch.Tensor            # (m, *input shape), float64
    y: torch.Tensor | None     # (m,), int64 class labels


def load_npz(path: str | Path, input_shape: tuple[int, ...] | None = None, need_labels: bool = True) -> Dataset:
    """``X`` (m × d, or m × input shape) and ``y`` (m integer labels) from an .npz file, checked."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if "X" not in names:
                raise DataError(f"{path}: no array named 'X' (found: {', '.join(sorted(names)) or 'none'})")
            x = np.asarray(archive["X"])
            y = np.asarray(archive["y"]) if "y" in names else None
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz file ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
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
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise DataError(f"{path}: y must hold integer class labels, got {y.dtype}")
        if y.size and y.min() < 0:
            raise DataError(f"{path}: y has a negative label {int(y.min())}")
        labels = torch.from_numpy(y.astype(np.int64))
    elif need_labels:
        raise DataError(f"{path}: no array named 'y' (integer labels are needed for margins)")
    return Dataset(str(path), torch.from_numpy(x.astype(np.float64)), labels)


@dataclass(frozen=True)
class InputStats:
    m: int
    frobenius: float      # ‖X‖_F
    max_norm: float       # R = max_i ‖x_i‖


def input_stats(x: torch.Tensor) -> InputStats:
    flat = x.reshape(x.shape[0], -1).to(torch.float64)
    norms = torch.linalg.vector_norm(flat, dim=1)
    return InputStats(m=int(x.shape[0]), frobenius=float(torch.linalg.vector_norm(norms)), max_norm=float(norms.max()))


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
    """f(x)_y − max_{j≠y} f(x)_j for every sample."""
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise DataError(f"margins need a network with ≥ 2 outputs, got outputs of shape {tuple(outputs.shape)}")
    k = outputs.shape[1]
    if int(labels.max()) >= k:
        raise DataError(f"label {int(labels.max())} is out of range for a network with {k} outputs")
    correct = outputs.gather(1, labels[:, None]).squeeze(1)
    others = outputs.scatter(1, labels[:, None], -math.inf)
    return correct - others.max(dim=1).values


def margin_stats(values: torch.Tensor, percentile: float, gamma: float | None = None) -> MarginStats:
    """Summary of margins; γ is the given value or the ``percentile``-th percentile of the margins."""
    v = values.to(torch.float64)
    q = lambda p: float(torch.quantile(v, p / 100.0))  # noqa: E731
    chosen = q(percentile) if gamma is None else gamma
    return MarginStats(m=int(v.numel()), error=float((v <= 0).double().mean()), min=float(v.min()), p5=q(5),
                       p10=q(10), percentile=percentile, gamma=chosen,
                       margin_risk=float((v <= chosen).double().mean()))
