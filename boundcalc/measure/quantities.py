"""Per-weight quantities (docs/references.md §6): reduce a tensor to its spectrum, then map the spectrum to numbers.

``spectrum_quantities`` is a pure function of the singular values (the torchmetrics "reduce, then compute"
shape); ``measure_weight`` does the reduction for dense and conv weights and records how every number was
obtained, so the output can state it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from boundcalc.errors import BoundcalcError
from boundcalc.limits import MAX_FFT_ENTRIES, MAX_POWER_VALUES, MAX_POWER_MACS
from boundcalc.measure import dense

if TYPE_CHECKING:
    from boundcalc.measure.conv_operator import ConvLayout

CONV_NORM_METHODS = {
    "fft": "exact operator norm of the circular convolution on the padded grid, rounded up to a multiple of the "
           "stride (FFT, Sedghi et al. 2019; polyphase blocks for stride, dilation or groups); an upper bound "
           "for zero padding, so valid in a bound",
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

    svd: str = "auto"                  # auto | gram | svd (see dense.choose_svd_method)
    spectrum: bool = True              # False: σ₁, ‖W‖_F, ranks, stable rank only (Lanczos + Cholesky, no spectrum)
    rank_rtol: float | None = None     # None: numpy's σ₁·max(m,n)·ε (dense.rank_epsilon); else σ_i > rtol·σ₁
    energy: float = 0.99               # rank at an energy threshold: smallest k with Σ_{j≤k} σ_j² ≥ energy·‖W‖_F²
    tail_k: int = 10                   # K of dist_K (Frobenius distance to rank K)
    conv_norm: str = "fft"             # which operator norm a bound uses for conv layers
    power_iterations: int = 500

    def describe(self) -> list[str]:
        tol = ("numpy matrix_rank convention: σ_i > σ₁·max(m, n)·ε, ε = ε₆₄ for float64 weights, ε₃₂ for float32 "
               "and lower precisions (numpy ranks those as float32)" if self.rank_rtol is None
               else f"σ_i > {self.rank_rtol:g}·σ₁")
        lines = [f"singular values: {self.svd} ({_SVD_NOTE[self.svd]})", f"rank tolerance: {tol}"]
        if self.spectrum:
            lines += [f"energy rank: smallest k with Σ_(j≤k) σ_j² ≥ {self.energy:g}·‖W‖_F²",
                      f"tail energy dist_K = √(Σ_(j>K) σ_j²) with K = {self.tail_k}"]
        else:
            lines.append("no spectrum (--no-spectrum): with the Gram method σ₁ is from Lanczos iteration (ARPACK, relative "
                         "accuracy 10⁻¹²) and the rank from a Cholesky certificate of WᵀW − τ²I; energy rank, "
                         "effective rank and dist_K are not measured")
        lines.append(f"conv operator norm used in bounds: {self.conv_norm} — {CONV_NORM_METHODS[self.conv_norm]}")
        return lines


_SVD_NOTE = {"auto": "float64 Gram eigenvalues when they resolve the rank tolerance (float32/16 weights), "
                     "LAPACK SVD in float64 otherwise",
             "gram": "eigenvalues of the smaller Gram matrix in float64",
             "svd": "LAPACK SVD in float64"}


@dataclass(frozen=True)
class SpectrumQuantities:
    """Numbers that depend only on the singular values σ₁ ≥ σ₂ ≥ … ≥ 0 (the last three are None when the
    spectrum was not computed)."""

    spectral: float
    frobenius: float
    rank: int
    rank_tolerance: float
    energy_rank: int | None
    stable_rank: float
    effective_rank: float | None
    tail_energy: float | None


def spectrum_quantities(sigma: np.ndarray, relative_tolerance: float, energy: float,
                        tail_k: int) -> SpectrumQuantities:
    """Spectral and Frobenius norms, the rank at τ = relative_tolerance·σ₁, the energy rank, stable rank f²/s²,
    effective rank exp(H(σ/Σσ)) (Roy & Vetterli 2007), and dist_K = √(Σ_{j>K} σ_j²) (Eckart–Young: the
    Frobenius distance to the nearest rank-K matrix). ``sigma`` is descending."""
    sigma = np.asarray(sigma, dtype=np.float64)
    spectral = float(sigma[0]) if sigma.size else 0.0
    tolerance = relative_tolerance * spectral
    if spectral == 0.0:
        return SpectrumQuantities(0.0, 0.0, 0, tolerance, 0, 0.0, 0.0, 0.0)
    unit = sigma / spectral                      # σ/σ₁: sums of squares neither overflow nor underflow
    energies = unit ** 2
    total = float(energies.sum())
    cumulative = np.cumsum(energies)
    energy_rank = int(np.searchsorted(cumulative, energy * total)) + 1
    p = unit / unit.sum()
    p = p[p > 0]
    entropy = float(-(p * np.log(p)).sum())
    return SpectrumQuantities(
        spectral=spectral,
        frobenius=spectral * math.sqrt(total),
        rank=int((sigma > tolerance).sum()),
        rank_tolerance=tolerance,
        energy_rank=min(energy_rank, sigma.size),
        stable_rank=total,
        effective_rank=math.exp(entropy),
        tail_energy=spectral * math.sqrt(float(energies[tail_k:].sum())),
    )


@dataclass(frozen=True)
class ConvGeometry:
    """Where a conv kernel is applied: its input's spatial size, stride, zero padding and dilation (each an int
    or an (h, w) pair), and groups (the kernel is c_out × c_in/groups × k_h × k_w)."""

    input_hw: tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1


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
                                            # (+ operator_row_norm_21 of A − A₀ for conv layers)
    conv: dict[str, float] = field(default_factory=dict)   # operator norms by method, operator Frobenius and (2,1)
    notes: list[str] = field(default_factory=list)

    @property
    def is_conv(self) -> bool:
        return len(self.shape) == 4

    def to_dict(self) -> dict:
        out = asdict(self)
        out["shape"] = list(self.shape)
        return out


def measure_weight(weight, options: MeasureOptions, *, tensor: str, layer: str | None = None,
                   init=None, geometry: ConvGeometry | None = None, stored_dtype=None) -> WeightMeasurement:
    """Measure one dense (2-D) or conv (4-D) weight, a numpy array or a CPU torch tensor; conv operator norms
    need ``geometry`` (and torch). ``stored_dtype`` (a dtype or its name) is the type the weight was stored in,
    which sets the default rank tolerance; by default the weight's own."""
    stored = dense.dtype_name(stored_dtype if stored_dtype is not None else weight.dtype)
    weight = dense.as_array(weight)
    matrix = weight.reshape(weight.shape[0], -1)
    shape = tuple(matrix.shape)
    relative = options.rank_rtol if options.rank_rtol is not None else dense.numpy_rank_rtol(shape, stored)
    method = dense.choose_svd_method(options.svd, shape, relative)
    if method == "gram":
        gram = dense.scaled_gram(matrix)
        sigma = gram.scale * dense.gram_singular_values(gram.matrix) if options.spectrum else None
        rows = gram.row_norm_21
    else:
        sigma, rows = dense.svd_singular_values(matrix), dense.row_norm_21(matrix)
    quantities = (spectrum_quantities(sigma, relative, options.energy, options.tail_k) if sigma is not None
                  else _quantities_without_spectrum(gram, relative))
    measured = WeightMeasurement(tensor=tensor, shape=tuple(weight.shape), dtype=stored, layer=layer,
                                 svd_method=method, matrix=quantities, row_norm_21=rows)
    if method == "gram" and relative < 10 * dense.gram_resolution(shape):
        measured.notes.append(f"rank tolerance {relative:.1e}·σ₁ is below what the Gram method resolves "
                              f"(≈ {dense.gram_resolution(shape):.1e}·σ₁): the rank is unreliable; use --svd svd")
    if init is not None:
        diff = matrix.astype(np.float64) - dense.as_array(init).reshape(matrix.shape).astype(np.float64)
        measured.init = {"spectral": dense.spectral_norm(diff), "frobenius": dense.frobenius(diff),
                         "row_norm_21": dense.row_norm_21(diff)}
    if weight.ndim == 4 and geometry is not None:
        _measure_conv(measured, weight, None if init is None else diff.reshape(weight.shape), geometry, options,
                      layer)
    return measured


def _measure_conv(measured: WeightMeasurement, kernel: np.ndarray, difference: np.ndarray | None,
                  geometry: ConvGeometry, options: MeasureOptions, layer: str | None = None) -> None:
    """Conv operator norms (torch), and the (2,1) norm of the operator of W − W₀ (the difference of the
    operators)."""
    import torch

    from boundcalc.measure import conv_operator
    from boundcalc.measure.conv_operator import ConvLayout

    measured.conv = conv_norms(torch.from_numpy(np.ascontiguousarray(kernel)), geometry, options, measured.notes)
    if difference is not None:
        measured.init["operator_row_norm_21"] = conv_operator.operator_row_norm_21(
            torch.from_numpy(np.ascontiguousarray(difference)), ConvLayout.of(geometry))


#: Gram matrices up to this size get their whole spectrum even without --spectrum: LAPACK's eigenvalues take about
#: as long as Lanczos and a Cholesky there (8.7 against 7 ms at 384), and ARPACK's import alone costs 0.3 s
WHOLE_SPECTRUM_MAX_SIZE = 512


def _quantities_without_spectrum(gram: dense.ScaledGram, relative_tolerance: float) -> SpectrumQuantities:
    """σ₁, ‖W‖_F² = tr(G), and the rank at τ = rtol·σ₁, without the spectrum's other quantities: from the whole
    spectrum for a Gram matrix up to WHOLE_SPECTRUM_MAX_SIZE, else σ₁ by Lanczos and the rank full when G − τ²I
    passes the Cholesky certificate (else counted on the whole spectrum, rare). Computed on the scaled Gram
    matrix; only σ₁, ‖W‖_F and τ carry the scale."""
    total = float(np.trace(gram.matrix))
    if total == 0.0:
        return SpectrumQuantities(0.0, 0.0, 0, 0.0, None, 0.0, None, None)
    if gram.matrix.shape[0] <= WHOLE_SPECTRUM_MAX_SIZE:
        sigma = dense.gram_singular_values(gram.matrix)
        top, scaled_tolerance = float(sigma[0]) ** 2, relative_tolerance * float(sigma[0])
        rank = int((sigma > scaled_tolerance).sum())
    else:
        top, scaled_tolerance, rank = _top_and_rank(gram.matrix, relative_tolerance)
    return SpectrumQuantities(spectral=gram.scale * math.sqrt(top), frobenius=gram.scale * math.sqrt(total), rank=rank,
                              rank_tolerance=gram.scale * scaled_tolerance, energy_rank=None, stable_rank=total / top,
                              effective_rank=None, tail_energy=None)


def _top_and_rank(matrix: np.ndarray, relative_tolerance: float) -> tuple[float, float, int]:
    """(λ_max by Lanczos, the rank tolerance τ = rtol·σ₁, the rank): full when G − τ²I passes the Cholesky
    certificate, else counted on the whole spectrum."""
    top = dense.top_eigenvalue(matrix)
    scaled_tolerance = relative_tolerance * math.sqrt(top)
    if dense.all_eigenvalues_above(matrix, scaled_tolerance ** 2):
        return top, scaled_tolerance, matrix.shape[0]
    return top, scaled_tolerance, int((dense.gram_singular_values(matrix) > scaled_tolerance).sum())


def conv_norms(kernel, geometry: ConvGeometry, options: MeasureOptions,
               notes: list[str] | None = None) -> dict[str, float | None]:
    """Operator norms of a conv layer by each method, its operator Frobenius and (2,1) norms (‖Aᵀ‖₂,₁ of the
    full matrix A, one row per output coordinate) and its filter norm. The
    costly methods are checked against their limits before anything is computed: past MAX_FFT_ENTRIES the
    'fft' value is the looser upper bound Σ_taps ‖K_ab‖₂; past MAX_POWER_MACS or MAX_POWER_VALUES power
    iteration is skipped (an error when it is the method the bounds use). Each fallback is added to ``notes``.
    Stride 1 without dilation or groups: the FFT on the padded grid; otherwise the polyphase decomposition on
    the padded grid rounded up to a multiple of the stride (:mod:`boundcalc.measure.conv_operator`)."""
    from boundcalc.measure import conv_operator, linalg
    from boundcalc.measure.conv_operator import ConvLayout

    layout = ConvLayout.of(geometry)
    layout.check(tuple(kernel.shape))
    notes = notes if notes is not None else []
    too_costly = _power_iteration_cost(kernel.shape, layout, options.power_iterations)
    if too_costly and options.conv_norm == "power":
        raise BoundcalcError(f"--conv-norm power: {too_costly}; use --conv-norm fft")
    grid = linalg.padded_grid(layout.input_hw, layout.padding[0]) if layout.plain else layout.grid()
    entries = linalg.conv_spectrum_entries(tuple(kernel.shape), grid)
    if entries <= MAX_FFT_ENTRIES:
        fft = (linalg.conv_operator_norm_fft(kernel, layout.input_hw, layout.padding[0]) if layout.plain
               else conv_operator.polyphase_norm(kernel, layout))
    else:
        fft = linalg.conv_operator_norm_taps(kernel)
        notes.append(f"conv norm 'fft': the spectrum on the {grid[0]}×{grid[1]} grid has {entries:,} complex entries, "
                     f"more than the limit of {MAX_FFT_ENTRIES:,} (MAX_FFT_ENTRIES); the value given is the looser "
                     "upper bound Σ_taps ‖K[:, :, a, b]‖₂ instead")
    power = None
    if too_costly:
        notes.append(f"conv norm 'power' not computed: {too_costly}")
    else:
        power = conv_operator.power_norm(kernel, layout, options.power_iterations)
    return {"fft": fft, "operator_frobenius": conv_operator.operator_frobenius(kernel, layout),
            "operator_row_norm_21": conv_operator.operator_row_norm_21(kernel, layout),
            "power": power, "filter_norm": dense.frobenius(dense.as_array(kernel))}


def _power_iteration_cost(shape, layout: ConvLayout, iterations: int) -> str | None:
    """Why power iteration on this layer is past a limit (work or input size), or None."""
    from boundcalc.measure import conv_operator

    hw = layout.input_hw
    macs = conv_operator.step_macs(tuple(shape), layout) * iterations
    if macs > MAX_POWER_MACS:
        return (f"{iterations} power-iteration steps on the {hw[0]}×{hw[1]} input need {macs:,} multiply-adds, "
                f"more than the limit of {MAX_POWER_MACS:,} (MAX_POWER_MACS)")
    values = max(shape[1] * layout.groups * hw[0] * hw[1], conv_operator.output_values(tuple(shape), layout))
    if values > MAX_POWER_VALUES:
        return (f"its input or output has {values:,} values, more than the limit of {MAX_POWER_VALUES:,} "
                "(MAX_POWER_VALUES)")
    return None
