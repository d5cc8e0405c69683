"""Benchmark: time to derive the bound of an unrolled chain at two depths, for both rule sets, side by side.

Prints the seconds and, per rule set, the ratio time(large)/time(small): linear growth gives large/small
(10 for the default 100 and 1000 layers). ``as_printed`` used to grow as O(L³) (sympy's Min re-ordered every
pair of ranks at every layer); the last line compares it with ``tight`` at the larger depth. Absolute times
are noise on a shared machine; the ratios are measured in the same run.

    python bench/derive_depth.py [SMALL LARGE]
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


def time_derive(depth: int, rules: str, repeats: int = 3) -> float:
    spec = boundcalc.parse_spec(chain_spec(depth))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        boundcalc.derive(spec, rules=rules)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    small, large = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (100, 1000)
    times = {}
    for rules in ("tight", "as_printed"):
        times[rules] = (time_derive(small, rules), time_derive(large, rules))
        print(f"derive {rules:<10} {small:>5} layers: {times[rules][0]:7.3f} s   {large:>5} layers: "
              f"{times[rules][1]:7.3f} s   ratio {times[rules][1] / times[rules][0]:5.1f}  "
              f"(linear growth gives {large / small:g})")
    print(f"as_printed / tight at {large} layers: {times['as_printed'][1] / times['tight'][1]:.2f}")


if __name__ == "__main__":
    main()
