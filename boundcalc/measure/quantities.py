"""Per-weight quantities (bounds.md §4): reduce a tensor to its spectrum, then map the spectrum to numbers.

``spectrum_quantities`` is a pure function of the singular values (the torchmetrics "reduce, then compute"
shape); ``measure_weight`` does the reduction for dense and conv weights and records how every number was
obtained, so the output can state it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from boundcalc.measure import linalg

CONV_NORM_METHODS = {
    "fft": "exact operator norm of the circular convolution on the padded grid (FFT, Sedghi et al. 2019); "
           "an upper bound for zero padding and stride > 1, so valid in a bound",
    "power": "power iteration on the convolution as applied (zero padding, stride); a lower estimate of the "
             "operator norm, so a bound evaluated with it is not guaranteed",
    "reshaped": "spectral norm of the reshaped c_out × (c_in·kh·kw) matrix, as in most public code; neither an "
                "upper nor a lower bound on the operator norm",
}
#: conv-norm methods whose value is ≥ the true operator norm (safe to put into a bound)
UPPER_BOUND_METHODS = frozenset({"fft"})


@dataclass(frozen=True)
class MeasureOptions:
    """How to measure; every choice is printed with the results."""

    svd: str = "auto"                  # auto | gram | svd (see linalg.singular_values)
    rank_rtol: float | None = None     # None: numpy's σ₁·max(m,n)·ε(dtype); else σ_i > rtol·σ₁
    energy: float = 0.99               # rank at an energy threshold: smallest k with Σ_{j≤k} σ_j² ≥ energy·‖W‖_F²
    tail_k: int = 10                   # K of dist_K (Frobenius distance to rank K)
    conv_norm: str = "fft"             # which operator norm a bound uses for conv layers
    power_iterations: int = 500

    def describe(self) -> list[str]:
        tol = ("numpy matrix_rank convention: σ_i > σ₁·max(m, n)·ε(stored dtype)" if self.rank_rtol is None
               else f"σ_i > {self.rank_rtol:g}·σ₁")
        return [f"singular values: {self.svd} ({_SVD_NOTE[self.svd]})",
                f"rank tolerance: {tol}",
                f"energy rank: smallest k with Σ_(j≤k) σ_j² ≥ {self.energy:g}·‖W‖_F²",
                f"tail energy dist_K = √(Σ_(j>K) σ_j²) with K = {self.tail_k}",
                f"conv operator norm used in bounds: {self.conv_norm} — {CONV_NORM_METHODS[self.conv_norm]}"]


_SVD_NOTE = {"auto": "float64 Gram eigenvalues for float32/16 weights, LAPACK SVD for float64",
             "gram": "eigenvalues of the smaller Gram matrix in float64",
             "svd": "LAPACK SVD in float64"}


@dataclass(frozen=True)
class SpectrumQuantities:
    """Numbers that depend only on the singular values σ₁ ≥ σ₂ ≥ … ≥ 0."""

    spectral: float
    frobenius: float
    rank: int
    rank_tolerance: float
    energy_rank: int
    stable_rank: float
    effective_rank: float
    tail_energy: float


def spectrum_quantities(sigma: torch.Tensor, tolerance: float, energy: float, tail_k: int) -> SpectrumQuantities:
    """Spectral and Frobenius norms, ranks, stable rank f²/s², effective rank exp(H(σ/Σσ)) (Roy & Vetterli
    2007), and dist_K = √(Σ_{j>K} σ_j²) (Eckart–Young: the Frobenius distance to the nearest rank-K matrix)."""
    sigma = sigma.to(torch.float64)
    if sigma.numel() == 0:
        return SpectrumQuantities(0.0, 0.0, 0, tolerance, 0, 0.0, 0.0, 0.0)
    energies = sigma ** 2
    total = float(energies.sum())
    spectral = float(sigma[0])
    if total == 0.0:
        return SpectrumQuantities(0.0, 0.0, 0, tolerance, 0, 0.0, 0.0, 0.0)
    cumulative = torch.cumsum(energies, 0)
    energy_rank = int(torch.searchsorted(cumulative, torch.tensor(energy * total, dtype=torch.float64))) + 1
    p = sigma / sigma.sum()
    p = p[p > 0]
    entropy = float(-(p * p.log()).sum())
    return SpectrumQuantities(
        spectral=spectral,
        frobenius=math.sqrt(total),
        rank=int((sigma > tolerance).sum()),
        rank_tolerance=tolerance,
        energy_rank=min(energy_rank, sigma.numel()),
        stable_rank=total / spectral ** 2,
        effective_rank=math.exp(entropy),
        tail_energy=math.sqrt(float(energies[tail_k:].sum())),
    )


@dataclass(frozen=True)
class ConvGeometry:
    """Where a conv kernel is applied: its input's spatial size, stride and zero padding."""

    input_hw: tuple[int, int]
    stride: int = 1
    padding: int = 0


@dataclass
class WeightMeasurement:
    """Everything measured on one weight tensor (matrix view: dense weight, or reshaped conv kernel)."""

    tensor: str
    shape: tuple[int, ...]
    dtype: str
    layer: str | None
    svd_method: str
    matrix: SpectrumQuantities
    row_norm_21: float                      # Σ_rows ‖W_j,:‖₂ = ‖Wᵀ‖₂,₁
    init: dict[str, float] | None = None    # distances to the reference: spectral, frobenius, row_norm_21
    conv: dict[str, float] = field(default_factory=dict)   # operator norms by method, operator Frobenius
    notes: list[str] = field(default_factory=list)

    @property
    def is_conv(self) -> bool:
        return len(self.shape) == 4

    def to_dict(self) -> dict:
        out = asdict(self)
        out["shape"] = list(self.shape)
        return out


def measure_weight(weight: torch.Tensor, options: MeasureOptions, *, tensor: str, layer: str | None = None,
                   init: torch.Tensor | None = None, geometry: ConvGeometry | None = None,
                   stored_dtype: torch.dtype | None = None) -> WeightMeasurement:
    """Measure one dense (2-D) or conv (4-D) weight; conv operator norms need ``geometry``."""
    stored_dtype = stored_dtype or weight.dtype
    matrix = weight.reshape(weight.shape[0], -1)
    sigma, method = linalg.singular_values(matrix, options.svd)
    spectral = float(sigma[0]) if sigma.numel() else 0.0
    tolerance = (linalg.numpy_rank_tolerance(spectral, tuple(matrix.shape), stored_dtype) if options.rank_rtol is None
                 else options.rank_rtol * spectral)
    quantities = spectrum_quantities(sigma, tolerance, options.energy, options.tail_k)
    rows = _row_norm_21(matrix)
    measured = WeightMeasurement(tensor=tensor, shape=tuple(weight.shape), dtype=str(stored_dtype).removeprefix("torch."),
                                 layer=layer, svd_method=method, matrix=quantities, row_norm_21=rows)
    if init is not None:
        diff = matrix.to(torch.float64) - init.reshape(matrix.shape).to(torch.float64)
        measured.init = {"spectral": float(torch.linalg.matrix_norm(diff, ord=2)),
                         "frobenius": float(torch.linalg.matrix_norm(diff)),
                         "row_norm_21": _row_norm_21(diff)}
    if weight.dim() == 4 and geometry is not None:
        measured.conv = conv_norms(weight, geometry, options)
    return measured


def conv_norms(kernel: torch.Tensor, geometry: ConvGeometry, options: MeasureOptions) -> dict[str, float]:
    """Operator norms of a conv layer by each method, its operator Frobenius norm and its filter norm."""
    hw, stride, pad = geometry.input_hw, geometry.stride, geometry.padding
    out = {"fft": linalg.conv_operator_norm_fft(kernel, hw, pad),
           "operator_frobenius": linalg.conv_operator_frobenius(kernel, hw, stride, pad),
           "power": linalg.conv_operator_norm_power(kernel, hw, stride, pad, options.power_iterations),
           "filter_norm": float(torch.linalg.vector_norm(kernel, dtype=torch.float64))}
    return out


def _row_norm_21(matrix: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(matrix, dim=1, dtype=torch.float64).sum())
