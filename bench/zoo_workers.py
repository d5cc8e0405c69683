"""Benchmark: `zoo evaluate` on 200 small checkpoints with 1 and with 2 Dask worker processes, run side by side
in this process; prints the speed-up (target ≥ 1.7×). Each timing includes starting the local cluster, as a
user's run does. Each round also times the machine's own ceiling: a plain 2-process pool on equal CPU-bound
jobs (on a shared 2-vCPU machine it is well below 2×).

The zoo: one 64-32-32-10 MLP trained on scikit-learn's digits, plus 199 copies with small random
perturbations (every model binds to specs/digits_mlp.yaml and has positive margins).
Run: python bench/zoo_workers.py [--models 200]
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from boundcalc.zoo.manifest import load_zoo  # noqa: E402
from boundcalc.pipeline import EvaluateSettings  # noqa: E402
from boundcalc.zoo.run import ZooTask, run_zoo  # noqa: E402


def make_zoo(folder: Path, models: int) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)
    data = folder / "train.npz"
    np.savez(data, X=x[:1000].numpy(), y=y[:1000].numpy())
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[:1000]), y[:1000]).backward()
        opt.step()
    rows = []
    base = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for i in range(models):
        noise = 0.004 * (i % 10)
        state = {k: (v + noise * torch.randn_like(v)).contiguous() for k, v in base.items()}
        net.load_state_dict(state)
        with torch.no_grad():
            train = float((net(x[:1000]).argmax(1) != y[:1000]).float().mean())
            test = float((net(x[1000:]).argmax(1) != y[1000:]).float().mean())
        save_file(state, folder / f"m{i}.safetensors")
        rows.append({"id": f"m{i}", "file": f"m{i}.safetensors", "noise": noise, "train_error": train,
                     "test_error": test})
    with open(folder / "models.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return data


def timed(tasks, workers: int, start_method: str) -> tuple[float, int]:
    start = time.perf_counter()
    results = run_zoo(tasks, workers=workers, start_method=start_method)
    return time.perf_counter() - start, sum(r.ok for r in results)


def _busy(_: int) -> float:
    """Fixed CPU-bound work (one thread): what perfectly parallel work looks like on this machine."""
    torch.set_num_threads(1)
    a = torch.randn(300, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    total = 0.0
    for _ in range(60):
        total += float(torch.linalg.eigvalsh(a @ a.T)[0]) + sum(j * j for j in range(20000))
    return total


def ceiling() -> float:
    """Speed-up of 2 forked processes over 1 on 8 equal independent jobs: the machine's own limit."""
    import multiprocessing

    start = time.perf_counter()
    [_busy(i) for i in range(8)]
    serial = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_busy, range(8))
        parallel = time.perf_counter() - start
    return serial / parallel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--start-methods", default="fork,spawn", help="worker start methods to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = make_zoo(folder, args.models)
        tasks = [ZooTask(m, ROOT / "specs" / "digits_mlp.yaml", data, EvaluateSettings()) for m in load_zoo(folder)]
        print(f"{len(tasks)} checkpoints; each run starts its own local Dask cluster")
        for repeat in range(args.repeats):
            for method in args.start_methods.split(","):
                one, ok1 = timed(tasks, 1, method)
                two, ok2 = timed(tasks, 2, method)
                print(f"run {repeat + 1}, workers started by {method:>5}: --workers 1 {one:6.1f} s ({ok1} ok)   "
                      f"--workers 2 {two:6.1f} s ({ok2} ok)   speed-up {one / two:.2f}× (target ≥ 1.7×)")
            print(f"run {repeat + 1}, machine ceiling (plain 2-process pool on equal CPU-bound jobs): {ceiling():.2f}×")


if __name__ == "__main__":
    main()
