"""Linear algebra on one dense weight matrix, in numpy and scipy alone (``boundcalc measure`` on a safetensors
file never imports torch): singular values, ranks with a stated tolerance, norms.

Singular values, method ``"gram"``: the eigenvalues of the smaller Gram matrix WᵀW (or WWᵀ), formed (BLAS
syrk) and decomposed in float64. The absolute error of σ_i² is about n·ε₆₄·σ₁², so σ_i is resolved down to
``gram_resolution`` ≈ √(n·ε₆₄)·σ₁ (2·10⁻⁷·σ₁ for n = 384) — finer than the float32 rank tolerance
σ₁·max(m,n)·ε₃₂ (≥ 10⁻⁵·σ₁ there), and as accurate as a float32 SVD. ``"svd"`` is LAPACK gesdd in float64
(``numpy.linalg.svd``); ``"auto"`` takes the Gram method unless the rank tolerance is finer than ten times its
resolution (float64 weights, or a small ``--rank-rtol``), and then the SVD.

Without the whole spectrum (``--no-spectrum``), σ₁ comes from Lanczos iteration on the Gram matrix (ARPACK,
to relative accuracy 10⁻¹²) and the rank from a Cholesky certificate: G − τ²I is positive definite exactly when
every σ_i > τ. Only a matrix that fails the certificate has its eigenvalues computed.

Every function takes a numpy array (a CPU torch tensor of a type numpy knows converts without a copy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SVD_METHODS = ("auto", "gram", "svd")
#: below this size the whole spectrum is cheaper than Lanczos iteration
_LANCZOS_MIN_SIZE = 32
#: Lanczos stops at a residual ‖Gx − θx‖ ≤ this·θ, so |λ₁ − θ| ≤ this·λ₁ and σ₁ is accurate to half of it
LANCZOS_RTOL = 1e-12
_EPS64 = float(np.finfo(np.float64).eps)


def dtype_name(dtype) -> str:
    """``float32``, ``bfloat16`` …: the name of a numpy or torch dtype, or the name itself."""
    return str(dtype).removeprefix("torch.")


def rank_epsilon(dtype) -> float:
    """ε of numpy's rank convention for weights stored in ``dtype`` (a numpy or torch dtype, or its name): ε₆₄
    for float64, else ε₃₂. numpy's linear algebra works in float32 or float64 only (it refuses float16), so
    half-precision and float8 weights are ranked as their float32 upcast; their own ε (2⁻⁷ for bfloat16) would
    count σ_i < 0.3·σ₁ as zero for a 40-column matrix."""
    return _EPS64 if dtype_name(dtype) == "float64" else float(np.finfo(np.float32).eps)


def numpy_rank_rtol(shape: tuple[int, ...], dtype) -> float:
    """numpy.linalg.matrix_rank's default tolerance relative to σ₁: max(m, n)·ε, ε from :func:`rank_epsilon`."""
    return max(shape) * rank_epsilon(dtype)


def gram_resolution(shape: tuple[int, ...]) -> float:
    """Smallest σ_i/σ₁ the float64 Gram method resolves: √(max(m, n)·ε₆₄)."""
    return math.sqrt(max(shape) * _EPS64)


def choose_svd_method(requested: str, shape: tuple[int, ...], relative_tolerance: float) -> str:
    """``requested`` unless it is "auto": then "gram" when it resolves the rank tolerance (σ_i > rtol·σ₁)
    with a factor 10 to spare, else "svd"."""
    if requested not in SVD_METHODS:
        raise ValueError(f"unknown singular-value method {requested!r}")
    if requested != "auto":
        return requested
    return "gram" if relative_tolerance >= 10 * gram_resolution(shape) else "svd"


def max_abs(array: np.ndarray) -> float:
    """max |x| over a real array, NaN if it holds a NaN (0 when empty): a min and a max pass, no temporary
    array. The scale that keeps sums of squares inside float64, and a finiteness check."""
    array = np.asarray(array)
    if array.size == 0:
        return 0.0
    low, high = float(array.min()), float(array.max())    # min and max propagate NaN
    return max(abs(low), abs(high)) if not math.isnan(low + high) else math.nan


def _unit_scaled(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """(W/c in float64, c) with c = max|W_ij|: squares of W/c neither overflow nor underflow."""
    scale = max_abs(matrix) or 1.0
    return np.asarray(matrix, dtype=np.float64) / scale, scale


def svd_singular_values(matrix: np.ndarray) -> np.ndarray:
    """Singular values in descending order by LAPACK gesdd in float64, computed on W/max|W_ij| (no overflow)."""
    unit, scale = _unit_scaled(matrix)
    return scale * np.linalg.svd(unit, compute_uv=False)


def spectral_norm(matrix: np.ndarray) -> float:
    """‖W‖₂ (largest singular value, LAPACK SVD in float64); 0 for an empty matrix."""
    sigma = svd_singular_values(matrix)
    return float(sigma[0]) if sigma.size else 0.0


def row_norm_21(matrix: np.ndarray) -> float:
    """‖Wᵀ‖₂,₁ = Σ_j ‖W_j,:‖₂ in float64, scaled so that no square over- or underflows."""
    unit, scale = _unit_scaled(matrix)
    return scale * float(np.sqrt(np.einsum("ij,ij->i", unit, unit)).sum())


def frobenius(matrix: np.ndarray) -> float:
    """‖W‖_F in float64 (any shape), scaled so that no square over- or underflows."""
    unit, scale = _unit_scaled(matrix)
    flat = unit.reshape(-1)
    return scale * math.sqrt(float(flat @ flat))


@dataclass(frozen=True)
class ScaledGram:
    """The smaller Gram matrix of W/c (WᵀW/c² or WWᵀ/c²) with c = max|W_ij|, so no entry over- or underflows
    float64 whatever the weights' magnitude; ``row_norm_21`` = ‖Wᵀ‖₂,₁ = Σ_j ‖W_j,:‖₂, unscaled."""

    matrix: np.ndarray
    scale: float
    row_norm_21: float


def scaled_gram(matrix: np.ndarray, block_rows: int = 2048) -> ScaledGram:
    """One pass that converts W/c to float64 a block of rows at a time (no float64 copy of the whole matrix;
    numpy calls BLAS syrk for BᵀB, half the work of a general product) and also gives the row norms."""
    matrix = np.asarray(matrix)
    scale = max_abs(matrix) or 1.0
    tall = matrix.shape[0] >= matrix.shape[1]
    source = matrix if tall else matrix.T
    rows, cols = source.shape
    gram = np.zeros((cols, cols))
    squares = np.empty(rows) if tall else None          # squared row norms of W/c, when its rows are source's
    buffer = np.empty((min(block_rows, rows), cols))
    for start in range(0, rows, block_rows):
        values = buffer[:min(block_rows, rows - start)]
        values[...] = source[start:start + block_rows]      # to float64 first: float32 / scale rounds to float32
        values /= scale
        gram += values.T @ values
        if squares is not None:
            squares[start:start + len(values)] = np.einsum("ij,ij->i", values, values)
    if squares is None:
        squares = np.diag(gram)                          # W's rows are source's columns: diag(WWᵀ)
    return ScaledGram(gram, scale, scale * float(np.sqrt(squares).sum()))


def gram_singular_values(gram: np.ndarray) -> np.ndarray:
    """√ of the Gram matrix's eigenvalues (negative rounding clamped to 0), descending."""
    eig = np.linalg.eigvalsh(gram)
    return np.sqrt(np.clip(eig[::-1], 0.0, None))


def top_eigenvalue(gram: np.ndarray) -> float:
    """Largest eigenvalue of a symmetric PSD matrix: Lanczos (ARPACK) to relative accuracy ``LANCZOS_RTOL``
    from a fixed start; the whole spectrum for small matrices, or if Lanczos fails."""
    n = gram.shape[0]
    if n >= _LANCZOS_MIN_SIZE:
        from scipy.sparse.linalg import ArpackError, eigsh

        start = np.random.default_rng(0).standard_normal(n)
        try:
            return float(eigsh(gram, k=1, which="LA", tol=LANCZOS_RTOL, v0=start, return_eigenvectors=False)[0])
        except ArpackError:          # no convergence, or a breakdown (e.g. the zero matrix)
            pass
    return float(np.linalg.eigvalsh(gram)[-1]) if n else 0.0


def all_eigenvalues_above(gram: np.ndarray, threshold: float) -> bool:
    """Whether every eigenvalue of ``gram`` exceeds ``threshold``: a Cholesky factorisation of
    gram − threshold·I succeeds exactly when it is positive definite (up to n·ε₆₄·‖gram‖)."""
    try:
        np.linalg.cholesky(gram - threshold * np.eye(gram.shape[0]))
    except np.linalg.LinAlgError:
        return False
    return True


def as_array(value) -> np.ndarray:
    """A weight as a numpy array: an array as it is, a CPU torch tensor without a copy (its float32 upcast for
    bfloat16 and float8, which numpy lacks; exact). torch is not imported."""
    if isinstance(value, np.ndarray):
        return value
    value = value.detach()
    try:
        return value.numpy()
    except TypeError:                 # "Got unsupported ScalarType BFloat16" (and the float8 types)
        return value.float().numpy()
