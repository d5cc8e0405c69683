import os
import random

import numpy as np
import pytest
import sympy as sp
import torch
from safetensors.torch import save_file

#: a bug reached by a test must fail it with its traceback, not become the CLI's last-resort "internal error" line
os.environ.setdefault("BOUNDCALC_DEBUG", "1")


def random_values(*exprs, seed: int = 0, low: float = 0.5, high: float = 2.0) -> dict:
    """One random positive number per symbol and indexed symbol appearing in ``exprs``."""
    rng = random.Random(seed)
    atoms = set()
    for e in exprs:
        atoms |= sp.sympify(e).atoms(sp.Indexed)
    values = {a: rng.uniform(low, high) for a in sorted(atoms, key=str)}
    symbols = set()
    for e in exprs:
        symbols |= sp.sympify(e).xreplace(values).free_symbols
    values.update({s: rng.uniform(low, high) for s in sorted(symbols, key=str)})
    return values


def evaluate(expr, values) -> float:
    expr = sp.sympify(expr).doit()
    expr = expr.xreplace({k: v for k, v in values.items() if isinstance(k, sp.Indexed)})
    return float(expr.xreplace({k: v for k, v in values.items() if not isinstance(k, sp.Indexed)}))


@pytest.fixture
def sym():
    return lambda name, **kw: sp.Symbol(name, positive=True, **kw)


@pytest.fixture
def spec_path():
    from pathlib import Path

    from boundcalc.spec.load import load_spec

    root = Path(__file__).resolve().parents[1] / "specs"
    return lambda name, **kw: load_spec(root / f"{name}.yaml", **kw)


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """Digits split 1200/597, an MLP with biases (torch file, nested and prefixed, plus its init) and a
    bias-free CNN (safetensors), each trained 150 full-batch Adam epochs in float32."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    d = load_digits()
    x, y = d.data / 16.0, d.target
    order = np.random.default_rng(0).permutation(len(x))
    train_idx, test_idx = order[:1200], order[1200:]
    np.savez(root / "train.npz", X=x[train_idx], y=y[train_idx])
    np.savez(root / "test.npz", X=x[test_idx], y=y[test_idx])
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 10))
    save_file({k: v.clone() for k, v in mlp.state_dict().items()}, root / "mlp_init.safetensors")
    train(mlp, x[train_idx], y[train_idx], 150)
    torch.save({"epoch": 150, "state_dict": {"module." + k: v for k, v in mlp.state_dict().items()}}, root / "mlp.pt")
    cnn = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),
                              torch.nn.ReLU(), torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 10, bias=False))
    train(cnn, x[train_idx], y[train_idx], 150)
    save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, root / "cnn.safetensors")
    return {"root": root, "x": x[train_idx], "y": y[train_idx], "x_test": x[test_idx], "y_test": y[test_idx],
            "mlp": mlp, "cnn": cnn}
