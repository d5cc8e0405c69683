"""Benchmark: deep unrolled residual networks through the whole CLI, every output format.

Runs ``python cli.py derive`` (text, json, latex, markdown), ``bounds show --spec``, ``compare`` and ``check`` as
separate processes on resnet_block unrolled to 30 and 300 blocks, and ``derive`` on a chain with as many layers
as the 300-block network (1200), side by side in the same run. Prints each process's CPU time (user + sys, which
other jobs on the machine inflate less than the wall time, also shown) and output size, and the ratios

    300 / 30 blocks    linear growth gives ≈ 10 (the bound's terms, written out in full, grow as N² to N³)
    resnet / chain     the same number of layers without residual adds (the chain is the baseline)

Run: python bench/derive_residual.py [--blocks 30 300]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text", "json", "latex", "markdown")


def resnet_spec(folder: Path, blocks: int) -> Path:
    path = folder / f"resnet_{blocks}.yaml"
    path.write_text((ROOT / "specs" / "resnet_block.yaml").read_text().replace("count: L", f"count: {blocks}"))
    return path


def chain_spec(folder: Path, depth: int) -> Path:
    layers = "\n".join(f"  - {{op: linear, out: h, name: fc{i}}}\n  - relu" for i in range(1, depth))
    path = folder / f"chain_{depth}.yaml"
    path.write_text(f"data: {{samples: m, dim: d}}\nlayers:\n{layers}\n  - {{op: linear, out: k, name: fc{depth}}}\n")
    return path


def best(args: list[str], repeats: int) -> tuple[float, float, int]:
    """The run with the least CPU time of ``repeats`` runs (short runs vary by ±0.2 s)."""
    return min((run(args) for _ in range(repeats)), key=lambda r: r[0])


def run(args: list[str]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, bytes on stdout) of one CLI process; it must succeed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("COLUMNS", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, len(done.stdout)


def commands(spec: Path) -> dict[str, list[str]]:
    out = {f"derive -f {fmt}": ["derive", str(spec), "-f", fmt] for fmt in FORMATS}
    out["bounds show --spec"] = ["bounds", "show", "pinto2024_tight", "--spec", str(spec)]
    out["compare"] = ["compare", str(spec)]
    out["check"] = ["check", str(spec)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, nargs=2, default=(30, 300), metavar=("SMALL", "LARGE"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of the start-up and small cases (best kept)")
    options = parser.parse_args()
    (small, large), repeats = options.blocks, options.repeats
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        specs = {"small": resnet_spec(folder, small), "large": resnet_spec(folder, large),
                 "chain": chain_spec(folder, 4 * large)}
        startup = best(["--version"], repeats)[0]
        print(f"resnet_block at {small} and {large} blocks ({4 * large} layers) vs a chain of {4 * large} layers; "
              f"CPU s (wall s), output bytes; start-up (import) {startup:.2f} s CPU")
        print(f"{'command':20} {f'N={small}':>18} {f'N={large}':>18} {'chain':>18} {'N ratio':>8} "
              f"{'net ratio':>9} {'bytes ratio':>11} {'/chain':>7}")
        for name, small_args in commands(specs["small"]).items():
            results = {"small": best(small_args, repeats), "large": run(commands(specs["large"])[name])}
            chain = run(commands(specs["chain"])[name]) if name.startswith("derive") else None
            cells = [f"{cpu:6.2f} ({wall:5.1f}) {size // 1000:5d}k" for cpu, wall, size in results.values()]
            cells.append(f"{chain[0]:6.2f} ({chain[1]:5.1f}) {chain[2] // 1000:5d}k" if chain else "")
            ratio = results["large"][0] / results["small"][0]
            net = (results["large"][0] - startup) / max(results["small"][0] - startup, 1e-3)
            size_ratio = results["large"][2] / max(results["small"][2], 1)
            vs_chain = f"{results['large'][0] / chain[0]:7.2f}" if chain else ""
            print(f"{name:20} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18} {ratio:8.1f} {net:9.1f} "
                  f"{size_ratio:11.1f} {vs_chain:>7}")
    print(f"N ratio: CPU time at {large} over {small} blocks; net ratio: the same after the start-up (linear in "
          f"the depth gives ≈ {large / small:.0f}); /chain: resnet over the chain of the same depth (CPU)")


if __name__ == "__main__":
    main()
