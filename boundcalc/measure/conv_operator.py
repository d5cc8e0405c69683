"""Operator norms of conv2d layers with stride, zero padding, dilation and groups (docs/references.md §6.3).

The layer: y[o, i, j] = Σ_{c, a, b} K[o, c, a, b]·x_pad[c, i·s_h + a·d_h, j·s_w + b·d_w] on the input x (c_in × H × W)
padded by p_h, p_w zeros, output channel o reading only the input channels of its group.

**The grid.** Per axis N = ⌈(H + 2p)/s⌉·s (the padded size rounded up to a multiple of the stride), m = N/s. The
circular strided operator C on N_h × N_w inputs, (Cz)[o, i, j] = Σ K[o, c, a, b]·z[c, (i·s_h + a·d_h) mod N_h,
(j·s_w + b·d_w) mod N_w] for i < m_h, j < m_w, is the object whose norm is computed exactly. *Claim:* the
zero-padded layer A = P·C·E, with E the isometry that puts x at offset (p_h, p_w) into an all-zero N_h × N_w grid
and P the selection of the rows i < H_out, j < W_out; so ‖A‖₂ ≤ ‖C‖₂. *Proof:* H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋
+ 1, so for i < H_out the largest index read, (H_out − 1)·s + d(k−1) ≤ H + 2p − 1 < N, does not wrap: C reads
exactly what the zero-padded layer reads (zeros outside x). And H_out ≤ m because (H_out − 1)·s + 1 ≤ N.
P and E are coordinate selections (norm ≤ 1). On a grid that is not a multiple of the stride there is no strided
circular operator; rounding down instead of up can cut real inputs off (tests/test_conv_operator.py).

**Polyphase (block-circulant) decomposition.** With the unitary DFTs on Z_N (input) and Z_m (output) and
K̂(f) = Σ_{a,b} K[:, :, a, b]·exp(2πi(f_h·a·d_h/N_h + f_w·b·d_w/N_w)), subsampling aliases the s_h·s_w input
frequencies f = g + k·m (k ∈ Z_s) onto the output frequency g ∈ Z_m: Ĉz(g) = B(g)·[ẑ(g + k·m)]_k with
B(g) = (s_h·s_w)^(−1/2)·[K̂(g + k·m)]_k, a c_out × (c_in·s_h·s_w) block. So the singular values of C are those of
the m_h·m_w blocks B(g) (Sedghi, Gupta & Long 2019 for s = 1), and per group (C is block diagonal over groups).
For a real kernel B(−g) is conj(B(g)) with permuted columns, so half the frequencies suffice.

**Gram of the smaller side.** B·Bᴴ = Σ_{Δ : s | Δ} M_Δ·exp(2πi g·(Δ/s)/m) with M_Δ = Σ_{p − q = Δ} K_p·K_qᵀ over
pairs of tap offsets p = (a·d_h, b·d_w) (the aliasing sum (1/s)Σ_k exp(2πi k·Δ/s) is 1 when s | Δ, else 0): the
Gram of C Cᴴ is the kernel's autocorrelation, subsampled. Forming the k² products K_p·K_qᵀ once costs far less
than one Gram per frequency; an axis along which every Δ is 0 needs only g = 0 on it (a 1×1 strided conv has one
block, K). When c_in·s_h·s_w < c_out the blocks B(g) are formed from the DFT and Bᴴ·B is used. λ_max over all
blocks comes from :func:`boundcalc.measure.certified_eig.certified_max_eigenvalue` (certified to 10⁻¹⁰, the
upper end returned: an upper bound, exact to rounding).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from boundcalc.limits import FFT_CHUNK_BYTES
from boundcalc.measure.certified_eig import CertifiedMax, certified_max_eigenvalue


def pair(value) -> tuple[int, int]:
    """An int or an (h, w) pair as an (h, w) pair of ints."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


@dataclass(frozen=True)
class ConvLayout:
    """Where a kernel is applied, per axis (h, w)."""

    input_hw: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def of(cls, geometry) -> ConvLayout:
        """From a ConvGeometry (or anything with its fields; dilation and groups default to 1)."""
        return cls(pair(geometry.input_hw), pair(geometry.stride), pair(geometry.padding),
                   pair(getattr(geometry, "dilation", 1)), int(getattr(geometry, "groups", 1)))

    @property
    def plain(self) -> bool:
        """Stride 1, no dilation, one group, the same padding on both axes (the FFT method of Sedghi et al.)."""
        return self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1 and \
            self.padding[0] == self.padding[1]

    def grid(self) -> tuple[int, int]:
        """N per axis: the padded size rounded up to a multiple of the stride."""
        return tuple(-(-(n + 2 * p) // s) * s for n, p, s in zip(self.input_hw, self.padding, self.stride))

    def output_hw(self, kernel_hw: tuple[int, int]) -> tuple[int, int]:
        return tuple(max((n + 2 * p - d * (k - 1) - 1) // s + 1, 0) for n, p, d, k, s in
                     zip(self.input_hw, self.padding, self.dilation, kernel_hw, self.stride))

    def check(self, kernel_shape: tuple[int, ...]) -> None:
        c_out, c_in_group = kernel_shape[:2]
        if self.groups < 1 or c_out % self.groups:
            raise ValueError(f"groups {self.groups} does not divide the kernel's {c_out} output channels")
        if c_in_group < 1 or min(self.stride + self.dilation) < 1 or min(self.padding) < 0:
            raise ValueError(f"conv layout {self} does not fit the kernel of shape {tuple(kernel_shape)}")


def output_values(kernel_shape: tuple[int, ...], layout: ConvLayout) -> int:
    """c_out·H_out·W_out."""
    h, w = layout.output_hw(tuple(kernel_shape[2:]))
    return kernel_shape[0] * h * w


def step_macs(kernel_shape: tuple[int, ...], layout: ConvLayout) -> int:
    """Multiply-adds of one application of the layer: c_out·H_out·W_out·(c_in/groups)·k_h·k_w."""
    return output_values(kernel_shape, layout) * kernel_shape[1] * kernel_shape[2] * kernel_shape[3]


def dilated_kernel(kernel: torch.Tensor, dilation) -> torch.Tensor:
    """The kernel with d − 1 zero rows/columns between taps: the same layer as a dilation-1 conv."""
    d_h, d_w = pair(dilation)
    c_out, c_in, k_h, k_w = kernel.shape
    out = kernel.new_zeros(c_out, c_in, d_h * (k_h - 1) + 1, d_w * (k_w - 1) + 1)
    out[:, :, ::d_h, ::d_w] = kernel
    return out


def operator_frobenius(kernel: torch.Tensor, layout: ConvLayout) -> float:
    """Exact Frobenius norm of the layer's matrix (a grouped kernel's taps meet only their group's inputs, so
    the grouped kernel counts them right; a dilated kernel is its zero-filled equivalent)."""
    from boundcalc.measure import linalg

    return linalg.conv_operator_frobenius(_undilated(kernel, layout), layout.input_hw, _int_or_pair(layout.stride),
                                          _int_or_pair(layout.padding))


def operator_row_norm_21(kernel: torch.Tensor, layout: ConvLayout) -> float:
    """Exact ‖Aᵀ‖₂,₁ of the layer's matrix A (as :func:`operator_frobenius`)."""
    from boundcalc.measure import linalg

    return linalg.conv_operator_row_norm_21(_undilated(kernel, layout), layout.input_hw,
                                            _int_or_pair(layout.stride), _int_or_pair(layout.padding))


def _undilated(kernel: torch.Tensor, layout: ConvLayout) -> torch.Tensor:
    return kernel if layout.dilation == (1, 1) else dilated_kernel(kernel, layout.dilation)


def _int_or_pair(value: tuple[int, int]):
    return value[0] if value[0] == value[1] else value


# -- the exact (circular) norm -----------------------------------------------------------------------------
def polyphase_norm(kernel: torch.Tensor, layout: ConvLayout, chunk_bytes: int = FFT_CHUNK_BYTES,
                   side: str = "auto", gram: str = "auto") -> float:
    """Exact operator norm of the circular strided conv on ``layout.grid()`` (an upper bound for the
    zero-padded layer), rounded up by the certificate's 10⁻¹⁰ relative width. ``side`` (output | input) and
    ``gram`` (autocorrelation | blocks) force a route; by default the smaller Gram and the cheaper route."""
    return polyphase_top(kernel, layout, chunk_bytes, side, gram)[0]


def polyphase_top(kernel: torch.Tensor, layout: ConvLayout, chunk_bytes: int = FFT_CHUNK_BYTES,
                  side: str = "auto", gram: str = "auto") -> tuple[float, CertifiedMax]:
    """:func:`polyphase_norm` and the certificate's record (how many blocks, how many decomposed)."""
    layout.check(tuple(kernel.shape))
    unit, scale = _grouped_unit(kernel, layout.groups)
    if scale == 0.0:
        return 0.0, CertifiedMax()
    _, c_out, c_in, _, _ = unit.shape
    s_h, s_w = layout.stride
    if side == "auto":
        side = "output" if c_out <= c_in * s_h * s_w else "input"
    pairs = _tap_pairs(unit.shape[3:], layout)
    frequencies = half_frequencies(layout, pairs)
    if gram == "auto":
        gram = "autocorrelation" if side == "output" and _autocorrelation_bytes(unit, pairs) <= chunk_bytes \
            else "blocks"
    if gram == "autocorrelation":
        chunks = _autocorrelation_grams(unit, layout, pairs, frequencies, chunk_bytes)
    else:
        chunks = (block @ block.mH if side == "output" else block.mH @ block
                  for block in polyphase_blocks(unit, layout, frequencies, chunk_bytes))
    top = certified_max_eigenvalue(chunks)
    return scale * math.sqrt(top.upper), top


def _grouped_unit(kernel: torch.Tensor, groups: int) -> tuple[torch.Tensor, float]:
    """The kernel in float64 as (groups, c_out/groups, c_in/groups, k_h, k_w), divided by its largest |entry|
    (so Gram matrices neither overflow nor underflow), and that scale."""
    weight = kernel.detach().to(torch.float64)
    scale = float(weight.abs().max()) if weight.numel() else 0.0
    if not math.isfinite(scale):
        raise ValueError("the kernel has a non-finite entry")
    if scale == 0.0:
        return weight, 0.0
    c_out, c_in, k_h, k_w = weight.shape
    return (weight / scale).reshape(groups, c_out // groups, c_in, k_h, k_w), scale


def _tap_pairs(kernel_hw, layout: ConvLayout) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Pairs (p, q) of flat tap indices whose offset difference is a multiple of the stride on both axes,
    keyed by that difference in strides, Δ/s; only p ≤ q (the pair (q, p) has −Δ and the transposed product)."""
    k_h, k_w = kernel_hw
    (s_h, s_w), (d_h, d_w) = layout.stride, layout.dilation
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for p in range(k_h * k_w):
        for q in range(p, k_h * k_w):
            dh, dw = (p // k_w - q // k_w) * d_h, (p % k_w - q % k_w) * d_w
            if dh % s_h == 0 and dw % s_w == 0:
                out.setdefault((dh // s_h, dw // s_w), []).append((p, q))
    return out


def half_frequencies(layout: ConvLayout, pairs, half: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Output frequencies (g_h, g_w) whose blocks hold every distinct singular value: g ∈ Z_m per axis, only
    g = 0 on an axis along which every Δ is 0 (the blocks do not change along it), and (``half``) only
    0 … ⌊m/2⌋ on the last axis that changes (B(−g) has B(g)'s singular values)."""
    m = [n // s for n, s in zip(layout.grid(), layout.stride)]
    moves = [any(delta[axis] != 0 for delta in pairs) or not half for axis in (0, 1)]
    ranges = [list(range(m[axis])) if moves[axis] else [0] for axis in (0, 1)]
    if half:
        last = 1 if moves[1] else 0
        ranges[last] = ranges[last][: m[last] // 2 + 1]
    g_h, g_w = torch.meshgrid(torch.tensor(ranges[0]), torch.tensor(ranges[1]), indexing="ij")
    return g_h.reshape(-1), g_w.reshape(-1)


def _phases(turns_h: torch.Tensor, turns_w: torch.Tensor) -> torch.Tensor:
    """exp(2πi(turns_h + turns_w)) for integer-fraction turns already reduced mod 1 (exact angle rounding)."""
    turns = turns_h + turns_w
    return torch.polar(torch.ones_like(turns), 2 * math.pi * turns)


def _autocorrelation_bytes(unit: torch.Tensor, pairs) -> int:
    groups, c_out = unit.shape[:2]
    return 8 * (2 * len(pairs) - 1) * groups * c_out * c_out


def _autocorrelation(unit: torch.Tensor, pairs) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """The differences Δ/s (both signs) and M_Δ = Σ_{p−q=Δ} K_p·K_qᵀ per group, as (D, groups·c_out·c_out):
    one matrix product K_p·[K_q]_qᵀ per tap p (all its partners q at once), added into the M_Δ."""
    groups, c_out, c_in, k_h, k_w = unit.shape
    taps = unit.permute(3, 4, 0, 1, 2).reshape(k_h * k_w, groups, c_out, c_in)
    index = {delta: i for i, delta in enumerate(pairs)}
    totals = torch.zeros(len(pairs), groups, c_out, c_out, dtype=torch.float64)
    partners: dict[int, list[tuple[int, int]]] = {}
    for delta, members in pairs.items():
        for p, q in members:
            partners.setdefault(p, []).append((q, index[delta]))
    for p, row in partners.items():
        others = taps[[q for q, _ in row]].permute(1, 3, 0, 2).reshape(groups, c_in, -1)   # (g, c_in, t·c_out)
        products = (taps[p] @ others).reshape(groups, c_out, len(row), c_out)
        for j, (_, slot) in enumerate(row):
            totals[slot] += products[:, :, j]
    deltas, products = [], []
    for delta, total in zip(pairs, totals):
        deltas.append(delta)
        products.append(total)
        if delta != (0, 0):
            deltas.append((-delta[0], -delta[1]))
            products.append(total.transpose(1, 2))
    return deltas, torch.stack(products).reshape(len(deltas), -1)


def _autocorrelation_grams(unit: torch.Tensor, layout: ConvLayout, pairs, frequencies,
                           chunk_bytes: int) -> Iterator[torch.Tensor]:
    """B(g)·B(g)ᴴ = Σ_Δ M_Δ·exp(2πi g·Δ/m), a chunk of frequencies at a time, as (P·groups, c_out, c_out)."""
    groups, c_out = unit.shape[:2]
    deltas, products = _autocorrelation(unit, pairs)
    delta_h = torch.tensor([d[0] for d in deltas])
    delta_w = torch.tensor([d[1] for d in deltas])
    m_h, m_w = (n // s for n, s in zip(layout.grid(), layout.stride))
    g_h, g_w = frequencies
    per_chunk = max(1, chunk_bytes // (32 * groups * c_out * c_out))
    for start in range(0, g_h.numel(), per_chunk):
        gh, gw = g_h[start:start + per_chunk], g_w[start:start + per_chunk]
        phases = _phases((gh[:, None] * delta_h % m_h).double() / m_h, (gw[:, None] * delta_w % m_w).double() / m_w)
        grams = torch.complex(phases.real @ products, phases.imag @ products)
        yield grams.reshape(-1, c_out, c_out)


def polyphase_blocks(unit: torch.Tensor, layout: ConvLayout, frequencies,
                     chunk_bytes: int = FFT_CHUNK_BYTES) -> Iterator[torch.Tensor]:
    """The blocks B(g) of the frequencies (g_h, g_w), a chunk at a time, as (P·groups, c_out, s_h·s_w·c_in):
    ``unit`` is a grouped kernel (groups, c_out, c_in, k_h, k_w) as from :func:`_grouped_unit`."""
    groups, c_out, c_in, k_h, k_w = unit.shape
    (n_h, n_w), (s_h, s_w), (d_h, d_w) = layout.grid(), layout.stride, layout.dilation
    m_h, m_w = n_h // s_h, n_w // s_w
    taps = unit.permute(3, 4, 0, 1, 2).reshape(k_h * k_w, -1).to(torch.complex128)
    a = (torch.arange(k_h) * d_h).repeat_interleave(k_w)
    b = (torch.arange(k_w) * d_w).repeat(k_h)
    k_index = torch.arange(s_h).repeat_interleave(s_w), torch.arange(s_w).repeat(s_h)
    g_h, g_w = frequencies
    per_chunk = max(1, chunk_bytes // (16 * groups * c_out * c_in * s_h * s_w))
    for start in range(0, g_h.numel(), per_chunk):
        f_h = (g_h[start:start + per_chunk, None] + k_index[0] * m_h).reshape(-1)     # (P·s_h·s_w,)
        f_w = (g_w[start:start + per_chunk, None] + k_index[1] * m_w).reshape(-1)
        phases = _phases((f_h[:, None] * a % n_h).double() / n_h, (f_w[:, None] * b % n_w).double() / n_w)
        spectrum = (phases @ taps).reshape(-1, s_h * s_w, groups, c_out, c_in)
        blocks = spectrum.permute(0, 2, 3, 1, 4).reshape(-1, c_out, s_h * s_w * c_in)
        yield blocks / math.sqrt(s_h * s_w)


# -- power iteration on the layer as applied ---------------------------------------------------------------
def power_norm(kernel: torch.Tensor, layout: ConvLayout, iterations: int = 500, tol: float = 1e-10,
               seed: int = 0) -> float:
    """Operator norm of the layer exactly as applied (zero padding, stride, dilation, groups), by power
    iteration on AᵀA with A = conv2d and Aᵀ = conv_transpose2d (output_padding restores the input size):
    a lower estimate that converges to the norm."""
    layout.check(tuple(kernel.shape))
    if 0 in layout.output_hw(tuple(kernel.shape[2:])):
        return 0.0
    weight = kernel.detach().to(torch.float64)
    options = {"stride": layout.stride, "padding": layout.padding, "dilation": layout.dilation,
               "groups": layout.groups}
    extra = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, p, d, k, s in
                  zip(layout.input_hw, layout.padding, layout.dilation, kernel.shape[2:], layout.stride))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((1, kernel.shape[1] * layout.groups, *layout.input_hw), generator=generator,
                    dtype=torch.float64)
    x /= x.norm()
    estimate = 0.0
    with torch.no_grad():
        for _ in range(iterations):
            y = torch.nn.functional.conv2d(x, weight, **options)
            grad = torch.nn.functional.conv_transpose2d(y, weight, output_padding=extra, **options)
            norm = float(grad.norm())
            if norm == 0.0:
                return 0.0
            previous, estimate = estimate, math.sqrt(norm)
            x = grad / norm
            if abs(estimate - previous) <= tol * estimate:
                break
        return float(torch.nn.functional.conv2d(x, weight, **options).norm())
