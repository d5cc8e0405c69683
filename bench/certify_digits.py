"""Benchmark: `boundcalc certify` on scikit-learn's digits (1,400 train / 397 test) with specs/digits_mlp.yaml
trained with Adam for 60 epochs, and on mnist1d (its generator, offline; never its download function), with
the certificate beside the measured test error and the best norm-based bound of `boundcalc evaluate` (the
baseline), and each run's time beside evaluate's, both in the same run.

Run: python bench/certify_digits.py [--skip-mnist1d] [--mnist1d-samples 2000]

Defaults (each run under 3 minutes on 2 cores): data-free prior with --fit all and --fit sigma (10,000
Monte-Carlo samples), learned prior with fclassic (50,000 samples: the Monte-Carlo slack is 0.008 at 10,000 and
0.003 at 50,000), compression in a 150-dimensional subspace. mnist1d: 2,000 generated samples (80 % train,
20 % test), its MLP 40-100-100-10 trained 200 epochs, the Gaussian fits 100 epochs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies" / "digits"))

import training  # noqa: E402

RUNS = {"data-free prior (gaussian, --prior init --fit all)": ["--prior", "init", "--fit", "all"],
        "data-free prior (gaussian, --prior init --fit sigma)": ["--prior", "init", "--fit", "sigma"],
        "learned prior (gaussian, --prior learned, fclassic, N 50k)": ["--prior", "learned", "--objective",
                                                                       "fclassic", "--mc-samples", "50000"],
        "compression (--subspace 150)": ["--method", "compression", "--subspace", "150"]}
BATCH, LR = 128, 1e-3
#: per data set: training epochs of the checkpoint, and extra certify options for the Gaussian runs
EPOCHS = {"digits": 60, "mnist1d": 200}
GAUSSIAN_EPOCHS = {"digits": [], "mnist1d": ["--epochs", "100"]}


def invoke(*args: str) -> tuple[dict, float]:
    from typer.testing import CliRunner

    from boundcalc.cli import app

    start = time.perf_counter()
    result = CliRunner().invoke(app, list(args))
    if result.exit_code != 0:
        raise SystemExit(f"boundcalc {' '.join(args)} failed: {result.stderr}")
    return json.loads(result.stdout), time.perf_counter() - start


def train_model(folder: Path, x, y, x_test, y_test, dims: list[int], epochs: int) -> None:
    """The MLP dims[0]-…-dims[-1] trained with Adam (lr 1e-3, batch 128, seed 0); init and result saved."""
    torch.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(dims) - 2 else [])
    net = torch.nn.Sequential(*layers)
    save_file({k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}, folder / "init.safetensors")
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), BATCH):
            idx = order[s:s + BATCH]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, folder / "model.safetensors")
    training.write_npz(folder / "train.npz", X=x.numpy(), y=y.numpy())
    training.write_npz(folder / "test.npz", X=x_test.numpy(), y=y_test.numpy())


def digits(folder: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = order[:1400], order[1400:]
    train_model(folder, x[tr], y[tr], x[te], y[te], [64, 32, 32, 10], EPOCHS["digits"])
    return ROOT / "specs" / "digits_mlp.yaml"


def mnist1d(folder: Path, samples: int) -> Path | None:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        print("mnist1d is not installed (pip install mnist1d): skipped")
        return None
    args = get_dataset_args()
    args.num_samples = samples
    data = make_dataset(args)          # the generator: offline (get_dataset would download)
    x, y = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"])
    xt, yt = torch.tensor(data["x_test"], dtype=torch.float32), torch.tensor(data["y_test"])
    train_model(folder, x, y, xt, yt, [40, 100, 100, 10], EPOCHS["mnist1d"])
    spec = folder / "mnist1d_mlp.yaml"
    spec.write_text("name: mnist1d_mlp\ndata: {samples: m, dim: 40, norm: frobenius}\nlayers:\n"
                    "  - {op: linear, name: fc1, out: 100}\n  - relu\n  - {op: linear, name: fc2, out: 100}\n"
                    "  - relu\n  - {op: linear, name: fc3, out: 10}\nloss: {margin: gamma, delta: delta}\n")
    return spec


def bench(name: str, spec: Path, folder: Path) -> None:
    f = lambda n: str(folder / n)  # noqa: E731
    evaluation, t_eval = invoke("evaluate", str(spec), f("model.safetensors"), "--data", f("train.npz"),
                                "--data-test", f("test.npz"), "--init", f("init.safetensors"), "--margin-percentile", "25",
                                "-f", "json")
    bounds = [b["test_error_bound"] for b in evaluation["bounds"] if b.get("test_error_bound") is not None
              and b["status"] != "order"]
    best = min(bounds) if bounds else float("nan")
    print(f"\n{name}: checkpoint test error {evaluation['data']['test']['error']:.4f}; best norm-based test-error "
          f"bound {best:.3g} (γ at the 25th margin percentile; evaluate took {t_eval:.1f} s)")
    print(f"{'run':<50} {'certificate':>11} {'its test error':>14} {'train error':>11} {'time s':>7} "
          f"{'vs evaluate':>11} {'cert / norm bound':>17}")
    for label, extra in RUNS.items():
        cert, took = invoke("certify", str(spec), f("model.safetensors"), "--data", f("train.npz"), "--data-test",
                            f("test.npz"), "--init", f("init.safetensors"), *extra,
                            *(GAUSSIAN_EPOCHS[name] if "--method" not in extra else []),
                            "-f", "json")
        print(f"{label:<50} {cert['certificate']:>11.4f} {cert['test_error']:>14.4f} {cert['train_error']:>11.4f} "
              f"{took:>7.1f} {took / t_eval:>10.1f}× {cert['certificate'] / best:>17.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist1d-samples", type=int, default=2000)
    parser.add_argument("--skip-mnist1d", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("digits", "mnist1d"):
            if name == "mnist1d" and args.skip_mnist1d:
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            spec = digits(folder) if name == "digits" else mnist1d(folder, args.mnist1d_samples)
            if spec is not None:
                bench(name, spec, folder)


if __name__ == "__main__":
    main()
