"""Cost of the issue-14 checks, each next to the code it replaced, in one process.

1. Conv FFT singular values: the chunked DFT of ``linalg.conv_fft_singular_values`` (memory bounded by
   FFT_CHUNK_BYTES) against the former ``torch.fft.fft2`` of the whole spectrum, on conv layers of common sizes;
   both then take the same ``svdvals``. Prints seconds, the ratio new/old and the largest relative difference.
2. Data loading: ``read_npz`` (each .npy header checked before the member is inflated, read in chunks) against
   ``numpy.load`` on an MNIST-sized training set (60,000 × 784 float32), stored and compressed.

    python bench/file_checks.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from boundcalc.measure import linalg  # noqa: E402
from boundcalc.measure.data import read_npz  # noqa: E402

LAYERS = [(64, 64, 3, (34, 34)), (128, 128, 3, (18, 18)), (256, 256, 3, (16, 16)), (512, 512, 3, (9, 9))]


def fft2_whole(kernel: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The former method: the whole (c_out, c_in, N_h, N_w) complex spectrum at once."""
    spectrum = torch.fft.fft2(kernel.to(torch.float64), s=grid)
    return torch.linalg.svdvals(spectrum.permute(2, 3, 0, 1)).reshape(-1)


def best_of(fn, rounds: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def conv_rows() -> None:
    print(f"{'layer':<22} {'fft2 s':>8} {'chunked s':>10} {'ratio':>6} {'max rel diff':>13}")
    for c_out, c_in, k, grid in LAYERS:
        kernel = torch.randn(c_out, c_in, k, k, generator=torch.Generator().manual_seed(0))
        t_old, old = best_of(lambda: fft2_whole(kernel, grid))
        t_new, new = best_of(lambda: linalg.conv_fft_singular_values(kernel, grid))
        diff = float((new.sort().values - old.sort().values).abs().max() / old.max())
        name = f"{c_out}x{c_in}x{k}x{k} on {grid[0]}x{grid[1]}"
        print(f"{name:<22} {t_old:8.3f} {t_new:10.3f} {t_new / t_old:6.2f} {diff:13.1e}")


def npz_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((60_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 60_000)
    print(f"\n{'npz (60000x784 f32)':<22} {'np.load s':>9} {'read_npz s':>10} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for name, save in (("stored", np.savez), ("compressed", np.savez_compressed)):
            path = Path(folder) / f"{name}.npz"
            save(path, X=X, y=y)

            def numpy_load():
                with np.load(path, allow_pickle=False) as archive:
                    return archive["X"], archive["y"]

            t_old, _ = best_of(numpy_load)
            t_new, (x_new, _) = best_of(lambda: read_npz(path))
            assert np.array_equal(x_new, X)
            print(f"{name:<22} {t_old:9.3f} {t_new:10.3f} {t_new / t_old:6.2f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    conv_rows()
    npz_rows()
