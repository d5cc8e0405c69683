"""Exact operator norms of every conv layer of a ResNet-18 in ImageNet geometry (224×224 input), three ways in
one process, with random (Kaiming-normal, seeded) weights:

1. ``exact``: :func:`boundcalc.measure.conv_operator.polyphase_top` (polyphase blocks, Gram of the smaller side
   from the kernel's autocorrelation, λ_max certified by Cholesky; half the frequencies by conjugate symmetry);
2. ``naive``: a plain loop over every output frequency g of the same circular operator, the block B(g) formed
   from the DFT of the taps and ``numpy.linalg.svd`` (compute_uv=False) taken of it (the baseline);
3. ``power``: :func:`boundcalc.measure.conv_operator.power_norm` with the settings ``measure`` uses (at most
   500 steps, relative change 10⁻¹⁰), a lower estimate of the zero-padded layer's norm.

Prints seconds per layer and in total, the ratios naive/exact and power/exact, and the largest relative
difference between the exact and naive values (the same operator; the column naive−ex is it relative to exact)
and power/exact (≤ 1: zero padding).

    python bench/conv_norms_resnet18.py [--threads 1] [--no-naive]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _threads_from_argv(default: int = 1) -> int:
    """--threads, read before numpy is imported: its BLAS reads the thread count from the environment once."""
    args = sys.argv[1:]
    return int(args[args.index("--threads") + 1]) if "--threads" in args[:-1] else default


for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(_threads_from_argv())

import numpy as np  # noqa: E402
import torch  # noqa: E402

from boundcalc.measure import conv_operator  # noqa: E402
from boundcalc.measure.conv_operator import ConvLayout  # noqa: E402


def resnet18_convs() -> list[tuple[str, tuple[int, int, int, int], ConvLayout]]:
    """The 20 conv layers of torchvision's resnet18 on 3×224×224: name, kernel shape, layout."""
    layers = [("conv1", (64, 3, 7, 7), ConvLayout((224, 224), (2, 2), (3, 3)))]
    size, c_in = 56, 64                                  # after the 3×3 stride-2 max-pool
    for stage, c_out in enumerate((64, 128, 256, 512), start=1):
        for block in (0, 1):
            stride = 2 if stage > 1 and block == 0 else 1
            prefix = f"layer{stage}.{block}"
            layers.append((f"{prefix}.conv1", (c_out, c_in, 3, 3), ConvLayout((size, size), (stride, stride), (1, 1))))
            if stride == 2:
                layers.append((f"{prefix}.downsample", (c_out, c_in, 1, 1), ConvLayout((size, size), (2, 2))))
            size = size // stride
            layers.append((f"{prefix}.conv2", (c_out, c_out, 3, 3), ConvLayout((size, size), (1, 1), (1, 1))))
            c_in = c_out
    return layers


def naive_norm(kernel: torch.Tensor, layout: ConvLayout) -> float:
    """max over every output frequency g and group of σ_max(B(g)), one numpy SVD per block."""
    weight = kernel.double().numpy()
    c_out, c_in, k_h, k_w = weight.shape
    (n_h, n_w), (s_h, s_w), (d_h, d_w) = layout.grid(), layout.stride, layout.dilation
    m_h, m_w = n_h // s_h, n_w // s_w
    groups = layout.groups
    taps = weight.reshape(groups, c_out // groups, c_in, k_h, k_w)
    a, b = np.arange(k_h) * d_h, np.arange(k_w) * d_w
    best = 0.0
    for g_h in range(m_h):
        for g_w in range(m_w):
            f_h = g_h + np.arange(s_h) * m_h
            f_w = g_w + np.arange(s_w) * m_w
            phase_h = np.exp(2j * math.pi * np.outer(f_h, a) / n_h)          # (s_h, k_h)
            phase_w = np.exp(2j * math.pi * np.outer(f_w, b) / n_w)          # (s_w, k_w)
            spectrum = np.einsum("ia,jb,gocab->goijc", phase_h, phase_w, taps)     # (G, c_out/G, s_h, s_w, c_in)
            for block in spectrum.reshape(groups, c_out // groups, -1):
                best = max(best, float(np.linalg.svd(block, compute_uv=False)[0]) / math.sqrt(s_h * s_w))
    return best


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads, for every method "
                        "(measure runs torch with 1)")
    parser.add_argument("--no-naive", action="store_true", help="skip the per-frequency numpy SVD loop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    layers = [(name, torch.randn(shape, generator=generator, dtype=torch.float64) *
               math.sqrt(2.0 / (shape[0] * shape[2] * shape[3])), layout) for name, shape, layout in resnet18_convs()]
    print(f"ResNet-18 on 3×224×224, {len(layers)} conv layers, random Kaiming-normal weights; torch "
          f"and BLAS threads {args.threads}")
    head = f"{'layer':<20} {'kernel':<16} {'grid':>7} {'blocks':>6} {'exact s':>8} {'naive s':>8} {'power s':>8} " \
           f"{'exact':>9} {'naive−ex':>9} {'power/ex':>9}"
    print(head)
    # one pass per method over all layers: interleaving them per layer lets torch's OpenMP threads (still
    # spinning after power iteration's convolutions) compete with the BLAS threads of the next exact norm,
    # which made the exact pass 2-3x slower than it is on its own
    exact = {name: timed(lambda: conv_operator.polyphase_top(kernel, layout)) for name, kernel, layout in layers}
    naive = {name: (0.0, math.nan) if args.no_naive else timed(lambda: naive_norm(kernel, layout))
             for name, kernel, layout in layers}
    power = {name: timed(lambda: conv_operator.power_norm(kernel, layout)) for name, kernel, layout in layers}
    totals = {key: sum(t for t, _ in runs.values()) for key, runs in
              (("exact", exact), ("naive", naive), ("power", power))}
    worst = 0.0
    for name, kernel, layout in layers:
        (t_exact, (value, record)), (t_naive, naive_value), (t_power, power_value) = \
            exact[name], naive[name], power[name]
        if not args.no_naive:
            worst = max(worst, abs(value - naive_value) / naive_value)
        grid = "×".join(map(str, layout.grid()))
        shape = "×".join(map(str, kernel.shape)) + f" s{layout.stride[0]}"
        print(f"{name:<20} {shape:<16} {grid:>7} {record.matrices:>6} {t_exact:8.2f} {t_naive:8.2f} {t_power:8.2f} "
              f"{value:9.5f} {(naive_value - value) / value:9.1e} {power_value / value:9.6f}", flush=True)
    print(f"{'total':<52} {totals['exact']:8.2f} {totals['naive']:8.2f} {totals['power']:8.2f}")
    if not args.no_naive:
        print(f"naive / exact time: {totals['naive'] / totals['exact']:.1f}×; largest relative difference of the "
              f"values {worst:.1e}")
    print(f"power / exact time: {totals['power'] / totals['exact']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
