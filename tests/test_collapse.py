"""Neural-collapse diagnostics: NC1 and TCV against plain numpy (explicit covariances and a pseudo-inverse),
hand-worked cases, and `boundcalc collapse` on a digits-trained MLP."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.measure.collapse import class_statistics

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()


def numpy_nc1(Z: np.ndarray, y: np.ndarray) -> float:
    classes = np.unique(y)
    mu = np.array([Z[y == c].mean(0) for c in classes])
    g = Z.mean(0)
    within = Z - mu[np.searchsorted(classes, y)]
    sigma_w = within.T @ within / len(Z)
    sigma_b = sum(np.outer(m - g, m - g) for m in mu) / len(classes)
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / len(classes))


@pytest.mark.parametrize("m,p,C", [(60, 7, 4), (40, 3, 5), (100, 20, 3), (30, 12, 10)])
def test_nc1_and_tcv_match_numpy(m, p, C):
    rng = np.random.default_rng(m + p)
    y = rng.integers(0, C, m)
    Z = rng.normal(size=(m, p)) + 0.5 * rng.normal(size=(C, p))[y]
    stats = class_statistics(torch.tensor(Z), torch.tensor(y))
    assert stats.nc1 == pytest.approx(numpy_nc1(Z, y), rel=1e-8)
    classes = np.unique(y)
    tcv = sum(np.linalg.norm(Z[i] - Z[y == y[i]].mean(0)) for i in range(m))
    assert stats.tcv == pytest.approx(tcv, rel=1e-12)
    assert stats.classes == len(classes)
    assert stats.between_rank == min(len(classes) - 1, p)


def test_hand_worked_case():
    # 1-D features: class 0 at {0, 2} (mean 1), class 1 at {5, 5} (mean 5); global mean 3
    # TCV = |0-1| + |2-1| + 0 + 0 = 2
    # Σ_W = (1 + 1 + 0 + 0)/4 = 0.5; Σ_B = ((1-3)² + (5-3)²)/2 = 4; NC1 = 0.5/4/2 = 0.0625
    stats = class_statistics(torch.tensor([[0.0], [2.0], [5.0], [5.0]]), torch.tensor([0, 0, 1, 1]))
    assert stats.tcv == pytest.approx(2.0)
    assert stats.nc1 == pytest.approx(0.0625)


def test_fully_collapsed_features_have_nc1_zero():
    means = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    y = np.repeat([0, 1, 2], 5)
    stats = class_statistics(torch.tensor(means[y]), torch.tensor(y))
    assert stats.nc1 == pytest.approx(0.0, abs=1e-12) and stats.tcv == pytest.approx(0.0, abs=1e-12)


def test_collapse_cli_on_a_trained_mlp(digits, tmp_path):
    root = digits["root"]
    plot = tmp_path / "collapse.png"
    result = runner.invoke(app, ["collapse", str(SPECS / "digits_mlp.yaml"), str(root / "mlp.pt"), "--data",
                                 str(root / "train.npz"), "--weight-decay", "0.001", "--plot", str(plot), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    layers = report["layers"]
    assert [layer["features"] for layer in layers] == [64, 32, 32]
    state = digits["mlp"].state_dict()
    x = torch.tensor(digits["x"])
    features = [x, None, None]
    with torch.no_grad():
        h = torch.relu(x @ state["0.weight"].double().T + state["0.bias"].double())
        features[1] = h
        features[2] = torch.relu(h @ state["2.weight"].double().T + state["2.bias"].double())
    for layer, key, z in zip(layers, ["0.weight", "2.weight", "4.weight"], features):
        w = state[key].double().numpy()
        sigma = np.linalg.svd(w, compute_uv=False)
        assert layer["rank"] == np.linalg.matrix_rank(state[key].numpy())     # numpy's float32 tolerance
        assert layer["dist_k"] == pytest.approx(np.sqrt((sigma[10:] ** 2).sum()), abs=1e-9)
        assert layer["stable_rank"] == pytest.approx((sigma ** 2).sum() / sigma[0] ** 2, rel=1e-9)
        assert layer["nc1"] == pytest.approx(numpy_nc1(z.numpy(), digits["y"]), rel=1e-6)
        assert layer["ratio"] == pytest.approx(layer["dist_k"] * 0.001 / layer["tcv"], rel=1e-12)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = runner.invoke(app, ["collapse", str(SPECS / "digits_mlp.yaml"), str(root / "mlp.pt"), "--data",
                               str(root / "train.npz")])
    assert text.exit_code == 0 and "NC1" in text.stdout and "not computed" in text.stdout


def test_collapse_needs_two_classes(digits, tmp_path):
    one_class = tmp_path / "one.npz"
    np.savez(one_class, X=digits["x"][:50], y=np.zeros(50, dtype=int))
    result = runner.invoke(app, ["collapse", str(SPECS / "digits_mlp.yaml"), str(digits["root"] / "mlp.pt"),
                                 "--data", str(one_class)])
    assert result.exit_code == 2 and "at least 2 classes" in result.stderr
