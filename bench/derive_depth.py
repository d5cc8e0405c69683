"""Benchmark: time to derive the `tight` bound of an unrolled chain, 100 vs 1000 layers.

Prints the absolute times and their ratio (linear growth gives ≈ 10). Run: python bench/derive_depth.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boundcalc  # noqa: E402


def chain_spec(depth: int) -> str:
    layers = "\n".join(f"  - {{op: linear, out: h, name: fc{i}}}\n  - relu" for i in range(1, depth))
    return f"data: {{samples: m, dim: d}}\nlayers:\n{layers}\n  - {{op: linear, out: k, name: fc{depth}}}\n"


def time_derive(depth: int, repeats: int = 3) -> float:
    spec = boundcalc.parse_spec(chain_spec(depth))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        boundcalc.derive(spec, rules="tight")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    small, large = time_derive(100), time_derive(1000)
    print(f"derive tight, 100 layers:  {small:.3f} s")
    print(f"derive tight, 1000 layers: {large:.3f} s  (target < 2 s)")
    print(f"ratio 1000/100 layers: {large / small:.1f}  (linear growth gives ≈ 10)")


if __name__ == "__main__":
    main()
