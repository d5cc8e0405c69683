"""Benchmark: the whole `boundcalc evaluate` command, every bound, on a deep chain, against baselines in the
same run.

For each depth (default 100 and 1000 layers) a chain is written to a temporary folder: a spec whose depth L
is read from the checkpoint, float64 weights saved with safetensors (width 3, spectral norm 1.5, so the
bounds reach 10^700 and only log space holds them) and 40 training samples as .npz
(``tests.helpers.write_deep_chain``). Then, in one run:

- ``evaluate`` as a subprocess (interpreter start, imports, binding, measuring, every bound), best of 2;
- the start-up floor of any command: a subprocess that only imports boundcalc's CLI and evaluate modules;
- ``boundcalc.derive(spec, rules='tight')`` in process on the evaluated spec, the composer's own cost.

Printed: seconds, evaluate(large)/evaluate(small), evaluate(large)/start-up and evaluate(large)/derive-tight
at the same depth, and whether every applicable bound kept a finite log10. The issue's target is evaluate
under 10 s at 1000 layers on this 2-core machine; absolute times are noise, the ratios are side by side.

    python bench/evaluate_depth.py [SMALL LARGE]
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boundcalc  # noqa: E402
from tests.helpers import write_deep_chain  # noqa: E402

CLI = [sys.executable, str(ROOT / "cli.py")]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def timed_run(args: list[str], rounds: int = 2) -> tuple[float, str]:
    best, out = math.inf, ""
    for _ in range(rounds):
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
        out = done.stdout
    return best, out


def evaluate_once(folder: Path) -> tuple[float, bool]:
    seconds, out = timed_run(CLI + ["evaluate", str(folder / "deep.yaml"), str(folder / "deep.safetensors"),
                                    "--data", str(folder / "train.npz"), "-f", "json"])
    bounds = json.loads(out)["bounds"]
    finite = all(math.isfinite(b["gap_log10"]) for b in bounds if b["applies"])
    return seconds, finite


def derive_tight(folder: Path, depth: int) -> float:
    """The tight derivation of the chain evaluate binds (L = depth, unrolled), in process."""
    spec = boundcalc.load_spec(folder / "deep.yaml", values={"L": depth})
    start = time.perf_counter()
    boundcalc.derive(spec, rules="tight")
    return time.perf_counter() - start


def main() -> None:
    small, large = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (100, 1000)
    startup, _ = timed_run([sys.executable, "-c", "import boundcalc.cli, boundcalc.evaluate"])
    seconds, finite = {}, True
    with tempfile.TemporaryDirectory() as tmp:
        for depth in (small, large):
            folder = Path(tmp) / f"chain{depth}"
            folder.mkdir()
            write_deep_chain(folder, depth)
            seconds[depth], ok = evaluate_once(folder)
            finite &= ok
        tight = derive_tight(folder, large)
    print(f"start-up (import cli + evaluate):        {startup:6.2f} s")
    for depth in (small, large):
        print(f"evaluate, every bound, {depth:>5} layers:   {seconds[depth]:6.2f} s")
    print(f"derive tight in process, {large:>5} layers: {tight:6.2f} s")
    print(f"ratio evaluate {large}/{small} layers: {seconds[large] / seconds[small]:.2f}  "
          f"(linear growth gives {large / small:g}; start-up is the same in both)")
    print(f"ratio evaluate({large}) / start-up: {seconds[large] / startup:.2f}")
    print(f"ratio evaluate({large}) / derive tight({large}): {seconds[large] / tight:.2f}")
    print(f"every applicable bound has a finite log10: {finite}")
    print(f"target: evaluate at {large} layers under 10 s: {'met' if seconds[large] < 10 else 'NOT met'} "
          f"({seconds[large]:.1f} s)")


if __name__ == "__main__":
    main()
