"""Linear algebra in torch: conv operator norms, the torch thread count, and reductions on torch tensors.

The dense-matrix methods (singular values, ranks, norms) are numpy functions in :mod:`boundcalc.measure.dense`,
re-exported here; this module imports torch, which ``boundcalc measure`` on a safetensors file never needs.

Convolutions (Sedghi, Gupta & Long 2019): the circular convolution on an N×N grid is block-diagonalised by
the 2-D DFT, its singular values are those of the c_out × c_in matrices K̂(u, v). A zero-padded convolution
on an H×W input is a restriction of the circular one on the padded grid (H+2p)×(W+2p) followed by a
subsampling (stride), both of norm ≤ 1, so the FFT value on the padded grid is an upper bound, exact for
stride 1 with circular padding. Power iteration on the operator itself converges to its norm from below.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from boundcalc.limits import FFT_CHUNK_BYTES
# the dense-matrix functions, for callers that reach them through this module
from boundcalc.measure.dense import (LANCZOS_RTOL, SVD_METHODS, ScaledGram, all_eigenvalues_above,  # noqa: F401
                                     choose_svd_method, frobenius, gram_resolution, gram_singular_values,
                                     numpy_rank_rtol, rank_epsilon, row_norm_21, scaled_gram, svd_singular_values,
                                     top_eigenvalue)
from boundcalc.measure.conv_operator import pair


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch (OpenMP) threads. The Gram method does its heavy work in numpy's
    BLAS; after each torch call torch's idle OpenMP threads spin and take the cores from it, so a loop over
    tensors runs with one torch thread (MiniLM-L6 on 2 cores: 1.0 s with torch's 2 threads, 0.5 s with 1;
    bench/measure_minilm.py)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def reducible(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor, or its exact float32 upcast for float8 types (which have no CPU reductions)."""
    return tensor.to(torch.float32) if tensor.element_size() == 1 and tensor.is_floating_point() else tensor


def max_abs(tensor: torch.Tensor) -> float:
    """max |x| over a real tensor, NaN if it holds a NaN (0 when empty): one pass, no mask. The scale that
    keeps sums of squares inside float64, and a finiteness check."""
    if tensor.numel() == 0:
        return 0.0
    low, high = torch.aminmax(reducible(tensor))   # min and max propagate NaN
    return max(abs(float(low)), abs(float(high))) if not math.isnan(float(low) + float(high)) else math.nan


def _unit_scaled(matrix: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(W/c in float64, c) with c = max|W_ij|: squares of W/c neither overflow nor underflow."""
    scale = max_abs(matrix) or 1.0
    return matrix.to(torch.float64) / scale, scale


# -- convolutions ---------------------------------------------------------------------------------
def conv_spectrum_entries(kernel_shape: tuple[int, ...], grid: tuple[int, int]) -> int:
    """Complex entries c_out·c_in·N_h·N_w of the kernel's spectrum on ``grid``: the size MAX_FFT_ENTRIES bounds."""
    c_out, c_in = kernel_shape[:2]
    return c_out * c_in * grid[0] * grid[1]


def conv_fft_singular_values(kernel: torch.Tensor, grid: tuple[int, int],
                             chunk_bytes: int = FFT_CHUNK_BYTES) -> torch.Tensor:
    """All singular values of the circular convolution with ``kernel`` (c_out, c_in, kh, kw) on a
    ``grid`` = (N_h, N_w) input (Sedghi et al. 2019, Thm 6), as one flat float64 tensor.

    K̂(u, v) = Σ_(a,b) K[:, :, a, b]·exp(−2πi(ua/N_h + vb/N_w)) is formed for a chunk of frequencies at a time
    (a matrix product with the DFT phases), so memory stays near ``chunk_bytes`` whatever the grid; the whole
    spectrum (16·c_out·c_in·N_h·N_w bytes: 17 GB for 512 channels on 64×64) is never held."""
    n_h, n_w = grid
    c_out, c_in, k_h, k_w = kernel.shape
    if k_h > n_h or k_w > n_w:
        raise ValueError(f"kernel {k_h}×{k_w} is larger than the grid {n_h}×{n_w}")
    taps = kernel.to(torch.float64).permute(2, 3, 0, 1).reshape(k_h * k_w, c_out * c_in).to(torch.complex128)
    a = torch.arange(k_h).repeat_interleave(k_w)              # tap (a, b) in the order of ``taps``' rows
    b = torch.arange(k_w).repeat(k_h)
    per_chunk = max(1, chunk_bytes // (16 * c_out * c_in))
    frequencies = n_h * n_w
    values = []
    for start in range(0, frequencies, per_chunk):
        index = torch.arange(start, min(start + per_chunk, frequencies))
        u, v = index // n_w, index % n_w
        # exact phase fractions: (u·a mod N_h)/N_h keeps the angle's rounding error at ε whatever the grid
        turns = (u[:, None] * a % n_h).double() / n_h + (v[:, None] * b % n_w).double() / n_w
        phases = torch.polar(torch.ones_like(turns), -2 * math.pi * turns)     # (P, kh·kw)
        blocks = (phases @ taps).reshape(-1, c_out, c_in)
        values.append(torch.linalg.svdvals(blocks).reshape(-1))
    return torch.cat(values)


def conv_operator_norm_fft(kernel: torch.Tensor, input_hw: tuple[int, int], padding: int) -> float:
    """Upper bound on the operator norm of the zero-padded convolution: the exact norm of the circular
    convolution on the padded grid (exact for stride 1, circular padding)."""
    return float(conv_fft_singular_values(kernel, padded_grid(input_hw, padding)).max())


def padded_grid(input_hw: tuple[int, int], padding: int) -> tuple[int, int]:
    return input_hw[0] + 2 * padding, input_hw[1] + 2 * padding


def conv_operator_norm_taps(kernel: torch.Tensor) -> float:
    """Σ_(a,b) ‖K[:, :, a, b]‖₂: an upper bound on the operator norm of the convolution with any zero padding and
    stride (each tap moves every pixel to a distinct one and multiplies it by K[:, :, a, b]; the triangle
    inequality sums them). Looser than the FFT value, and as cheap as k_h·k_w small matrix norms."""
    taps = kernel.to(torch.float64).permute(2, 3, 0, 1)
    return float(torch.linalg.matrix_norm(taps, ord=2).sum())


def conv_output_values(kernel_shape: tuple[int, ...], input_hw: tuple[int, int], stride: int, padding: int) -> int:
    """Values c_out·H_out·W_out of the convolution's output on one input."""
    c_out, _, k_h, k_w = kernel_shape
    h_out = (input_hw[0] + 2 * padding - k_h) // stride + 1
    w_out = (input_hw[1] + 2 * padding - k_w) // stride + 1
    return c_out * max(h_out, 0) * max(w_out, 0)


def power_step_macs(kernel_shape: tuple[int, ...], input_hw: tuple[int, int], stride: int, padding: int) -> int:
    """Multiply-adds of one convolution on the input: c_out·c_in·k_h·k_w·H_out·W_out."""
    _, c_in, k_h, k_w = kernel_shape
    return conv_output_values(kernel_shape, input_hw, stride, padding) * c_in * k_h * k_w


def conv_operator_frobenius(kernel: torch.Tensor, input_hw: tuple[int, int], stride, padding) -> float:
    """Exact Frobenius norm of the convolution's (Toeplitz) matrix: each kernel tap counted once per output
    position at which it meets the input rather than the zero padding. ``stride``, ``padding``: an int or an
    (h, w) pair; a dilated or grouped layer: pass ``conv_operator.dilated_kernel`` and the grouped kernel."""
    _, _, k_h, k_w = kernel.shape
    (s_h, s_w), (p_h, p_w) = pair(stride), pair(padding)
    counts_h = _tap_counts(input_hw[0], k_h, s_h, p_h)
    counts_w = _tap_counts(input_hw[1], k_w, s_w, p_w)
    unit, scale = _unit_scaled(kernel)
    tap_energy = (unit ** 2).sum(dim=(0, 1))                                # (kh, kw)
    weights = torch.tensor(counts_h, dtype=torch.float64)[:, None] * torch.tensor(counts_w, dtype=torch.float64)
    return scale * math.sqrt(float((tap_energy * weights).sum()))


def conv_operator_row_norm_21(kernel: torch.Tensor, input_hw: tuple[int, int], stride, padding) -> float:
    """Exact ‖Aᵀ‖₂,₁ of the convolution's matrix A: Σ over output coordinates (channel, row, column) of the ℓ2
    norm of that coordinate's row, which holds the kernel taps that meet the input rather than the zero padding.
    An output position's in-bounds taps depend only on which border its row and its column are near, so each
    channel's tap energies are summed over the distinct in-bounds masks and weighted by how many positions
    share them (no operator is formed; exact, O(c_out·masks²·k²))."""
    (s_h, s_w), (p_h, p_w) = pair(stride), pair(padding)
    masks_h, counts_h = _tap_masks(input_hw[0], kernel.shape[2], s_h, p_h)
    masks_w, counts_w = _tap_masks(input_hw[1], kernel.shape[3], s_w, p_w)
    unit, scale = _unit_scaled(kernel)
    tap_energy = (unit ** 2).sum(dim=1)                                     # (c_out, kh, kw)
    row_energy = torch.einsum("ia,oab,jb->oij", masks_h, tap_energy, masks_w)   # (c_out, masks_h, masks_w)
    weights = counts_h[:, None] * counts_w[None, :]
    return scale * float((row_energy.clamp(min=0).sqrt() * weights).sum())


def _tap_masks(size: int, k: int, stride: int, padding: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct in-bounds masks over the k kernel offsets along one axis (row a of an output position i is
    in bounds when 0 ≤ i·stride + a − padding < size), as float64 rows, and how many output positions have each."""
    outputs = (size + 2 * padding - k) // stride + 1
    counts: dict[tuple[bool, ...], int] = {}
    for i in range(outputs):
        mask = tuple(0 <= i * stride + a - padding < size for a in range(k))
        counts[mask] = counts.get(mask, 0) + 1
    masks = torch.tensor(list(counts), dtype=torch.float64).reshape(len(counts), k)
    return masks, torch.tensor(list(counts.values()), dtype=torch.float64)


def _tap_counts(size: int, k: int, stride: int, padding: int) -> list[int]:
    """For each kernel offset a, how many output positions read a real (non-padding) input at offset a."""
    outputs = (size + 2 * padding - k) // stride + 1
    return [sum(1 for i in range(outputs) if 0 <= i * stride + a - padding < size) for a in range(k)]
