"""Linear algebra on one weight tensor: singular values, ranks with a stated tolerance, conv operator norms.

Every function takes a torch tensor and returns numbers; nothing here knows about specs or symbols.

Singular values, method ``"gram"`` (the default for float32/16 weights): the eigenvalues of the smaller Gram
matrix WᵀW (or WWᵀ), formed and decomposed in float64. The absolute error of σ_i² is about
n·ε₆₄·σ₁², so σ_i is resolved down to ≈ √n·10⁻⁸·σ₁ — finer than the float32 rank tolerance
σ₁·max(m,n)·ε₃₂ (≥ 10⁻⁵·σ₁), and as accurate as a float32 SVD. Float64 weights use ``"svd"`` (LAPACK
gesdd via ``torch.linalg.svdvals``), since their rank tolerance is below what a Gram matrix resolves.

Convolutions (Sedghi, Gupta & Long 2019): the circular convolution on an N×N grid is block-diagonalised by
the 2-D DFT, its singular values are those of the c_out × c_in matrices K̂(u, v). A zero-padded convolution
on an H×W input is a restriction of the circular one on the padded grid (H+2p)×(W+2p) followed by a
subsampling (stride), both of norm ≤ 1, so the FFT value on the padded grid is an upper bound, exact for
stride 1 with circular padding. Power iteration on the operator itself converges to its norm from below.
"""
from __future__ import annotations

import math

import torch

SVD_METHODS = ("auto", "gram", "svd")


def singular_values(matrix: torch.Tensor, method: str = "auto") -> tuple[torch.Tensor, str]:
    """Singular values of a 2-D tensor in descending order (float64), and the method used."""
    if method == "auto":
        method = "svd" if matrix.dtype == torch.float64 else "gram"
    if method == "svd":
        return torch.linalg.svdvals(matrix.to(torch.float64)), "svd"
    if method != "gram":
        raise ValueError(f"unknown singular-value method {method!r}")
    wide = matrix.to(torch.float64)
    if wide.shape[0] < wide.shape[1]:
        wide = wide.T
    gram = wide.T @ wide
    eig = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    return eig.flip(0).sqrt(), "gram"


def machine_epsilon(dtype: torch.dtype) -> float:
    """ε of the dtype the weights were stored in (float32 for anything that is not a float type)."""
    return torch.finfo(dtype).eps if dtype.is_floating_point else torch.finfo(torch.float32).eps


def numpy_rank_tolerance(sigma_max: float, shape: tuple[int, ...], dtype: torch.dtype) -> float:
    """numpy.linalg.matrix_rank's default: σ₁·max(m, n)·ε(dtype)."""
    return sigma_max * max(shape) * machine_epsilon(dtype)


# -- convolutions ---------------------------------------------------------------------------------
def conv_fft_singular_values(kernel: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """All singular values of the circular convolution with ``kernel`` (c_out, c_in, kh, kw) on a
    ``grid`` = (N_h, N_w) input (Sedghi et al. 2019, Thm 6), as one flat float64 tensor."""
    n_h, n_w = grid
    c_out, c_in, k_h, k_w = kernel.shape
    if k_h > n_h or k_w > n_w:
        raise ValueError(f"kernel {k_h}×{k_w} is larger than the grid {n_h}×{n_w}")
    spectrum = torch.fft.fft2(kernel.to(torch.float64), s=(n_h, n_w))   # (c_out, c_in, N_h, N_w)
    blocks = spectrum.permute(2, 3, 0, 1)                               # (N_h, N_w, c_out, c_in)
    return torch.linalg.svdvals(blocks).reshape(-1)


def conv_operator_norm_fft(kernel: torch.Tensor, input_hw: tuple[int, int], padding: int) -> float:
    """Upper bound on the operator norm of the zero-padded convolution: the exact norm of the circular
    convolution on the padded grid (exact for stride 1, circular padding)."""
    grid = (input_hw[0] + 2 * padding, input_hw[1] + 2 * padding)
    return float(conv_fft_singular_values(kernel, grid).max())


def conv_operator_norm_power(kernel: torch.Tensor, input_hw: tuple[int, int], stride: int, padding: int,
                             iterations: int = 500, tol: float = 1e-10, seed: int = 0) -> float:
    """Operator norm of the convolution exactly as applied (zero padding, stride), by power iteration on
    AᵀA; a lower estimate that converges to the norm."""
    weight = kernel.to(torch.float64)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((1, weight.shape[1], *input_hw), generator=generator, dtype=torch.float64)
    x /= x.norm()
    estimate = 0.0
    for _ in range(iterations):
        x.requires_grad_(True)
        y = torch.nn.functional.conv2d(x, weight, stride=stride, padding=padding)
        (grad,) = torch.autograd.grad(0.5 * (y * y).sum(), x)   # AᵀA x
        norm = float(grad.norm())
        if norm == 0.0:
            return 0.0
        previous, estimate = estimate, math.sqrt(norm)
        x = (grad / norm).detach()
        if abs(estimate - previous) <= tol * estimate:
            break
    with torch.no_grad():
        return float(torch.nn.functional.conv2d(x, weight, stride=stride, padding=padding).norm())


def conv_operator_frobenius(kernel: torch.Tensor, input_hw: tuple[int, int], stride: int, padding: int) -> float:
    """Exact Frobenius norm of the convolution's (Toeplitz) matrix: each kernel tap counted once per output
    position at which it meets the input rather than the zero padding."""
    _, _, k_h, k_w = kernel.shape
    counts_h = _tap_counts(input_hw[0], k_h, stride, padding)
    counts_w = _tap_counts(input_hw[1], k_w, stride, padding)
    tap_energy = (kernel.to(torch.float64) ** 2).sum(dim=(0, 1))            # (kh, kw)
    weights = torch.tensor(counts_h, dtype=torch.float64)[:, None] * torch.tensor(counts_w, dtype=torch.float64)
    return math.sqrt(float((tap_energy * weights).sum()))


def _tap_counts(size: int, k: int, stride: int, padding: int) -> list[int]:
    """For each kernel offset a, how many output positions read a real (non-padding) input at offset a."""
    outputs = (size + 2 * padding - k) // stride + 1
    return [sum(1 for i in range(outputs) if 0 <= i * stride + a - padding < size) for a in range(k)]
