"""Time `compare` on every bundled spec (both regimes) next to `derive` on the same spec, in one process.

Prints seconds and the ratio compare/derive, each timed from a cold sympy cache (compare derives both Pinto
rule sets, builds eight more bounds and analyses their orders). Issue 3 asks for compare < 5 s on every
bundled spec.

    python bench/compare_specs.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boundcalc  # noqa: E402,F401  (sets the sympy cache size before sympy is imported)
from boundcalc.compare.table import compare  # noqa: E402
from boundcalc.derivation import derive  # noqa: E402
from boundcalc.spec.load import load_spec  # noqa: E402
from sympy.core.cache import clear_cache  # noqa: E402

SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.yaml"))


def timed(fn) -> float:
    clear_cache()   # both sides start cold: sympy memoizes expression construction across calls
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    print(f"{'spec':<18} {'regime':<8} {'derive s':>9} {'compare s':>10} {'ratio':>7}")
    for path in SPECS:
        for regime in ("none", "uniform"):
            spec = load_spec(path)   # fresh load: no cached expressions shared between runs
            t_derive = timed(lambda: derive(spec).complexity)
            spec = load_spec(path)
            t_compare = timed(lambda: compare(spec, regime=regime))
            print(f"{path.stem:<18} {regime:<8} {t_derive:9.2f} {t_compare:10.2f} {t_compare / t_derive:7.1f}")


if __name__ == "__main__":
    main()
