"""Benchmark: the two costs the digits study (studies/digits/run.py) removed, each timed side by side with what
it replaced, in CPU time (process_time, so other load on the machine counts less than in wall time):

- training one study model (width 64, depth 3, 60 epochs) on torch's default thread count (the old run) against
  one thread with deterministic algorithms (the study's setting); it also says whether two one-thread runs give
  the same weights bit for bit, and whether the default thread count gives those weights;
- `boundcalc collapse` on that model in a new Python process (the old run) against in this process through
  typer's runner (the study's way), with the same output.

Run: python bench/digits_study.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "digits"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(STUDY))

import training  # noqa: E402


def train_once(threads: int) -> tuple[float, torch.Tensor]:
    """CPU seconds to train the model on ``threads`` threads, and its first weight matrix."""
    torch.set_num_threads(threads)
    x, y, _, _ = training.split()
    torch.manual_seed(3)
    net = training.make_net(64, 3, None)
    start = time.process_time()
    training.train(net, x, y, 1e-3, 60, 3e-3, seed=3)
    return time.process_time() - start, net[0].weight.detach().clone()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def collapse_both(folder: Path) -> tuple[float, float, bool]:
    """CPU seconds of `boundcalc collapse` in a new process and in this one, and whether the outputs agree."""
    from typer.testing import CliRunner

    from boundcalc.cli import app

    args = ["collapse", str(folder / "m.yaml"), str(folder / "m.safetensors"), "--data", str(folder / "train.npz"),
            "--weight-decay", "0.001", "-f", "json"]
    before = children_cpu()
    fresh = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True,
                           check=True).stdout
    subprocess_cpu = children_cpu() - before
    start = time.process_time()
    here = CliRunner().invoke(app, args).stdout
    return subprocess_cpu, time.process_time() - start, fresh == here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        x, y, _, _ = training.split()
        training.write_npz(folder / "train.npz", X=x.numpy(), y=y.numpy())
        (folder / "m.yaml").write_text(training.spec_text(64, 3))
        for r in range(args.rounds):
            old_cpu, old_weight = train_once(default_threads)
            new_cpu, new_weight = train_once(1)
            _, again = train_once(1)
            print(f"round {r + 1}: training on {default_threads} threads {old_cpu:.2f} s CPU, on 1 thread "
                  f"{new_cpu:.2f} s: {old_cpu / new_cpu:.1f}× less CPU; 1 thread twice bit-identical: "
                  f"{torch.equal(new_weight, again)}; {default_threads} threads gives the 1-thread weights: "
                  f"{torch.equal(old_weight, new_weight)}")
            torch.manual_seed(3)
            net = training.make_net(64, 3, None)
            training.train(net, x, y, 1e-3, 2, 3e-3, seed=3)
            save_file(training.state_for_spec(net), folder / "m.safetensors")
            fresh, here, same = collapse_both(folder)
            print(f"round {r + 1}: collapse in a new process {fresh:.2f} s CPU, in this process {here:.2f} s: "
                  f"{fresh / here:.1f}× less CPU; same output: {same}")


if __name__ == "__main__":
    main()
