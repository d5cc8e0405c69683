"""The union bound over the margin γ that evaluate chooses from the training margins (issue 13 item 4): the grid
{2^j}, its order k and cost δ_k = δ/((k+1)(k+2)), checked by hand and end to end on a one-layer network whose
margins are known exactly."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.margin_grid import grid_index, grid_point

runner = CliRunner()

ONE_LAYER = """name: one
data: {samples: m, dim: 2}
layers:
  - {op: linear, name: fc, out: 2}
loss: {margin: %s, delta: delta}
"""
#: margins of the ten training samples: x_i = (a_i, 0), label 0, W = I, so the margin is a_i − 0 = a_i
MARGINS = np.array([0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9, 2.1])


def test_grid_points_by_hand():
    # 4.7096 = 1.18·2^2 -> γ = 4 = 2^2, k = 2·2 = 4, δ_k = δ/(5·6)
    p = grid_point(4.7096)
    assert (p.gamma, p.exponent, p.index) == (4.0, 2, 4) and p.weight == pytest.approx(1 / 30)
    assert p.log_cost == pytest.approx(math.log(30))
    # 0.3 = 1.2·2^-2 -> γ = 1/4, k = −2·(−2) − 1 = 3, δ_k = δ/(4·5)
    p = grid_point(0.3)
    assert (p.gamma, p.exponent, p.index) == (0.25, -2, 3) and p.weight == pytest.approx(1 / 20)
    # a grid value is its own grid point: γ = 1 is k = 0 with half of δ
    p = grid_point(1.0)
    assert (p.gamma, p.index, p.weight) == (1.0, 0, 0.5)
    assert grid_point(0.5).gamma == 0.5 and grid_point(0.4999999).gamma == 0.25


def test_grid_order_is_a_bijection_and_the_shares_sum_to_one():
    indices = sorted(grid_index(j) for j in range(-50, 51))
    assert indices == list(range(101))
    # Σ_{k=0}^{N} 1/((k+1)(k+2)) = 1 − 1/(N+2) -> 1
    assert sum(1 / ((k + 1) * (k + 2)) for k in range(10_000)) == pytest.approx(1 - 1 / 10_001)


@pytest.fixture
def identity_net(tmp_path):
    save_file({"fc.weight": torch.eye(2)}, tmp_path / "eye.safetensors")
    x = np.stack([MARGINS, np.zeros_like(MARGINS)], axis=1)
    np.savez(tmp_path / "train.npz", X=x, y=np.zeros(len(x), dtype=np.int64))
    return tmp_path


def _evaluate(folder, margin: str, *extra: str) -> dict:
    (folder / "one.yaml").write_text(ONE_LAYER % margin)
    result = runner.invoke(app, ["evaluate", str(folder / "one.yaml"), str(folder / "eye.safetensors"), "--data",
                                 str(folder / "train.npz"), "--bounds", "pinto2024_tight", "--delta", "0.05",
                                 "-f", "json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _tight_gap_by_hand(gamma: float, delta: float) -> float:
    """One linear layer W = I₂: Ĝ_S ≤ ‖W‖_F·√h_out·‖X‖_F/m = √2·√2·‖X‖_F/m; gap ≤ 2√π·(√2/γ)·Ĝ_S +
    3√(ln(2/δ)/(2m))."""
    m, x_f = len(MARGINS), float(np.sqrt(np.sum(MARGINS ** 2)))
    complexity = math.sqrt(2) * math.sqrt(2) * x_f / m
    return 2 * math.sqrt(math.pi) * (math.sqrt(2) / gamma) * complexity + 3 * math.sqrt(math.log(2 / delta) / (2 * m))


def test_evaluate_takes_the_union_bound_over_the_gamma_grid(identity_net):
    report = _evaluate(identity_net, "gamma", "--margin-percentile", "10")
    chosen = float(np.percentile(MARGINS, 10))            # 0.48: between 0.3 and 0.5
    gamma = 2.0 ** math.floor(math.log2(chosen))          # 0.25 = 2^-2
    k = 3                                                 # j = −2 -> k = −2j − 1
    delta_k = 0.05 / ((k + 1) * (k + 2))
    train = report["data"]["train"]
    assert train["gamma"] == gamma and report["data"]["margin_grid"]["chosen"] == pytest.approx(chosen)
    assert report["data"]["margin_grid"]["index"] == k
    assert train["margin_risk"] == pytest.approx(np.mean(MARGINS <= gamma))    # 0: every margin is above 1/4
    (bound,) = [b for b in report["bounds"] if b["applies"]]
    assert bound["gap"] == pytest.approx(_tight_gap_by_hand(gamma, delta_k), rel=1e-12)
    assert bound["test_error_bound"] == pytest.approx(np.mean(MARGINS <= gamma) + _tight_gap_by_hand(gamma, delta_k))
    text = " ".join(report["assumptions"])
    assert "union bound over γ" in text and "δ/20" in text and "ln(20)" in text and "δ = 0.05" in text


def test_a_margin_fixed_in_the_spec_needs_no_union_bound(identity_net):
    report = _evaluate(identity_net, "1")
    train = report["data"]["train"]
    assert train["gamma"] == 1.0 and report["data"]["margin_grid"] is None
    assert train["margin_risk"] == pytest.approx(np.mean(MARGINS <= 1.0))      # 0.4, at the spec's margin
    (bound,) = [b for b in report["bounds"] if b["applies"]]
    assert bound["gap"] == pytest.approx(_tight_gap_by_hand(1.0, 0.05), rel=1e-12)
    assert "no union bound over γ" in " ".join(report["assumptions"])
