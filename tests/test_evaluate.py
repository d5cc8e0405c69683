"""evaluate on small models trained here on scikit-learn's digits: data quantities against numpy, bias folding
as an exact rewrite, the numeric composer against the symbolic bound, exact/derived bounds above the measured
test error, and the CLI (JSON output, binding errors, hostile checkpoints)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import boundcalc
from boundcalc.cli import app
from boundcalc.derivation import derive
from boundcalc.evaluate import data_summary, evaluation_spec, layer_values
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.data import load_npz
from boundcalc.measure.forward import forward
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.measure.run import bind_and_measure
from boundcalc.numerics import log_value
from boundcalc.spec.load import load_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()


def bound_model(digits, spec="digits_mlp", ckpt="mlp.pt", **kw):
    return bind_and_measure(load_spec(SPECS / f"{spec}.yaml"), open_checkpoint(digits["root"] / ckpt),
                            MeasureOptions(), **kw)


def test_forward_pass_matches_the_torch_model(digits):
    model = bound_model(digits)
    x = torch.tensor(digits["x"], dtype=torch.float64)
    want = digits["mlp"].double()(x)
    got = forward(model.binding.graph, x, model.weights, model.biases)
    torch.testing.assert_close(got, want)
    digits["mlp"].float()


def test_folded_weights_are_an_exact_bias_free_rewrite(digits):
    """[[W, b], [0, 1]] on [x, 1] reproduces the trained network, so norms of the folded matrices are the
    norms of a bias-free network computing the same function."""
    model = bound_model(digits)
    assert model.folded
    x = torch.tensor(digits["x"][:50])
    h = torch.cat([x, torch.ones(50, 1, dtype=torch.float64)], dim=1)
    from boundcalc.measure.run import _folded
    nodes = list(model.weights)
    for i, node in enumerate(nodes):
        matrix = _folded(model.weights[node], model.biases[node], i == len(nodes) - 1)
        assert model.measurements[node].matrix.spectral == pytest.approx(np.linalg.norm(matrix.numpy(), 2))
        h = matrix @ h.T
        h = h.T if i == len(nodes) - 1 else torch.relu(h).T
    torch.testing.assert_close(h, digits["mlp"].double()(x))
    digits["mlp"].float()
    assert evaluation_spec(model.spec, folded=True).data.shape == (65,)


def test_data_quantities_match_numpy(digits):
    model = bound_model(digits)
    train, test = load_npz(digits["root"] / "train.npz", (64,)), load_npz(digits["root"] / "test.npz", (64,))
    summary = data_summary(model, train, test, percentile=10)
    x = digits["x"]
    assert summary.frobenius == pytest.approx(math.sqrt(np.linalg.norm(x) ** 2 + len(x)))   # folded: x̃ = [x, 1]
    assert summary.max_norm == pytest.approx(math.sqrt(np.max(np.sum(x ** 2, axis=1)) + 1))
    with torch.no_grad():
        out = digits["mlp"](torch.tensor(x, dtype=torch.float32)).double().numpy()
    correct = out[np.arange(len(x)), digits["y"]]
    out[np.arange(len(x)), digits["y"]] = -np.inf
    margins = correct - out.max(axis=1)
    assert summary.margin_grid.chosen == pytest.approx(np.percentile(margins, 10), rel=1e-4)
    # γ is the percentile rounded down to the grid 2^j (union bound over γ, boundcalc.margin_grid)
    assert summary.train.gamma == 2.0 ** math.floor(math.log2(np.percentile(margins, 10)))
    assert summary.train.min == pytest.approx(margins.min(), rel=1e-4)
    assert summary.train.margin_risk == pytest.approx(np.mean(margins <= summary.train.gamma), abs=1 / len(x))
    with torch.no_grad():
        test_pred = digits["mlp"](torch.tensor(digits["x_test"], dtype=torch.float32)).argmax(1).numpy()
    assert summary.test.error == pytest.approx(np.mean(test_pred != digits["y_test"]), abs=1e-9)


@pytest.mark.parametrize("rules", ["tight", "as_printed"])
def test_numeric_composer_equals_symbolic_bound_at_measured_values(digits, rules):
    model = bound_model(digits)
    spec = evaluation_spec(model.spec, model.folded)
    values = {"C1": 1.3, "C2": 0.7, "X_F": 40.0, "m": 1200.0, **layer_values(model, MeasureOptions(), False)}
    numeric = boundcalc.compose_numeric(spec, values, rules=rules)
    sign, log_symbolic = log_value(derive(spec, rules=rules).complexity, values)
    assert sign == 1 and numeric.log == pytest.approx(log_symbolic, rel=1e-12)


def test_numeric_composer_does_not_overflow_at_depth_1000():
    spec = boundcalc.parse_spec("""
name: deep
data: {samples: m, dim: 4}
layers:
  - repeat: {name: blk, count: 1000, index: t, body: [{op: linear, name: fc, out: 4}, relu]}
  - {op: linear, name: head, out: 2}
""")
    values = {"C1": 1.0, "C2": 1.0, "X_F": 1.0, "m": 1.0, "s_head": 3.0, "f_head": 3.0}
    values.update({f"{k}_fc[{t}]": 3.0 for t in range(1, 1001) for k in ("s", "f")})
    numeric = boundcalc.compose_numeric(spec, values)
    assert math.isfinite(numeric.log10) and numeric.log10 > 470 and float(numeric) == math.inf


@pytest.mark.parametrize("spec,ckpt", [("digits_mlp", "mlp.pt"), ("digits_cnn", "cnn.safetensors")])
def test_evaluate_cli_json(digits, spec, ckpt):
    root = digits["root"]
    result = runner.invoke(app, ["evaluate", str(SPECS / f"{spec}.yaml"), str(root / ckpt), "--data",
                                 str(root / "train.npz"), "--data-test", str(root / "test.npz"), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    test_error = report["data"]["test"]["error"]
    applied = [b for b in report["bounds"] if b["applies"]]
    assert "pinto2024_tight" in {b["key"] for b in applied} and len(applied) >= 3
    for b in applied:
        assert math.isfinite(b["gap_log10"])
        if b["status"] in ("exact", "derived"):
            # an exact/derived bound on the test error can never be below the measured test error
            assert b["test_error_bound"] >= test_error
            assert b["vacuous"] == (b["test_error_bound"] >= 1)
        else:
            assert b["vacuous"] is None and b["order_only"]
    assumptions = " ".join(report["assumptions"])
    for phrase in ("C1 = 1", "rank tolerance", "10th percentile", "conv operator norm used in bounds"):
        assert phrase in assumptions


def test_evaluate_with_init_uses_distances(digits):
    root = digits["root"]
    result = runner.invoke(app, ["evaluate", str(SPECS / "digits_mlp.yaml"), str(root / "mlp.pt"), "--init",
                                 str(root / "mlp_init.safetensors"), "--data", str(root / "train.npz"), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    layer = report["layers"][0]
    assert layer["init"]["row_norm_21"] == pytest.approx(report["values"]["b_fc1"])
    assert layer["init"]["row_norm_21"] != pytest.approx(layer["row_norm_21"])


def test_binding_mismatch_prints_the_table_and_exits_2(digits, tmp_path):
    spec = tmp_path / "wrong.yaml"
    spec.write_text((SPECS / "digits_mlp.yaml").read_text().replace("out: 32}", "out: 16}", 1))
    result = runner.invoke(app, ["evaluate", str(spec), str(digits["root"] / "mlp.pt")])
    assert result.exit_code == 2
    assert "checkpoint ↔ spec binding" in result.stderr and "no tensor left" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.output


def test_measure_cli_on_a_safetensors_file(digits):
    result = runner.invoke(app, ["measure", str(digits["root"] / "cnn.safetensors"), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [t["tensor"] for t in report["tensors"]] == ["1.weight", "5.weight"]
    w = digits["cnn"][5].weight.detach().double().numpy()
    assert report["tensors"][1]["matrix"]["spectral"] == pytest.approx(np.linalg.norm(w, 2))


def test_measure_cli_without_the_spectrum(digits):
    path = str(digits["root"] / "mlp.pt")
    full = json.loads(runner.invoke(app, ["measure", path, "-f", "json"]).stdout)
    lean = runner.invoke(app, ["measure", path, "-f", "json", "--no-spectrum"])
    assert lean.exit_code == 0, lean.output
    lean = json.loads(lean.stdout)
    assert lean["options"]["spectrum"] is False and any("--no-spectrum" in line for line in lean["method"])
    for a, b in zip(full["tensors"], lean["tensors"]):
        w = digits["mlp"][int(a["tensor"].split(".")[0])].weight.detach().double().numpy()
        assert b["matrix"]["spectral"] == pytest.approx(np.linalg.norm(w, 2), rel=1e-9)
        assert b["matrix"]["rank"] == a["matrix"]["rank"] == np.linalg.matrix_rank(w.astype(np.float32))
        assert b["matrix"]["energy_rank"] is b["matrix"]["effective_rank"] is b["matrix"]["tail_energy"] is None
    text = runner.invoke(app, ["measure", path, "--no-spectrum"])
    assert text.exit_code == 0 and "—" in text.stdout and "Lanczos" in text.stdout


def test_measure_cli_reports_what_it_skips_and_reads_float8(tmp_path):
    from safetensors.torch import save_file

    weight = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)).to(torch.float8_e5m2)
    save_file({"w": weight, "b": torch.zeros(12), "ids": torch.arange(6).reshape(2, 3)}, tmp_path / "m.safetensors")
    result = runner.invoke(app, ["measure", str(tmp_path / "m.safetensors"), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [t["tensor"] for t in report["tensors"]] == ["w"]
    assert report["tensors"][0]["matrix"]["spectral"] == pytest.approx(
        np.linalg.norm(weight.double().numpy(), 2), rel=1e-9)
    assert report["skipped"] == {"fewer than 2 dimensions (biases, norms, scalars)": ["b"],
                                 "not floating point": ["ids"]}
    text = runner.invoke(app, ["measure", str(tmp_path / "m.safetensors")]).stdout
    assert "not measured, not floating point: 1 tensor(s): ids" in text


def test_measure_cli_refuses_a_malicious_pickle(tmp_path):
    from tests.helpers import WritesAFile

    target = tmp_path / "pwned.txt"
    torch.save({"w": torch.ones(2, 2), "x": WritesAFile(str(target))}, tmp_path / "evil.pt")
    result = runner.invoke(app, ["measure", str(tmp_path / "evil.pt")])
    assert result.exit_code == 2 and not target.exists()
    assert "safe mode" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("arrays,match", [
    ({"X": np.ones((5, 64)), "y": np.zeros(4, dtype=int)}, "y has shape"),
    ({"X": np.full((5, 64), np.nan), "y": np.zeros(5, dtype=int)}, "NaN"),
    ({"y": np.zeros(5, dtype=int)}, "no array named 'X'"),
    ({"X": np.ones((5, 63)), "y": np.zeros(5, dtype=int)}, "spec's input"),
])
def test_bad_data_files(digits, tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    result = runner.invoke(app, ["evaluate", str(SPECS / "digits_mlp.yaml"), str(digits["root"] / "mlp.pt"),
                                 "--data", str(tmp_path / "bad.npz")])
    assert result.exit_code == 2 and match in result.stderr


def test_bartlett_bounds_on_a_cnn_use_the_conv_operator_21_norm(digits):
    """evaluate on digits_cnn (conv 4×3×3 padding 1 on 8×8, relu, avgpool 2, linear 10) against the formulas
    of Bartlett et al. worked out here in numpy: b_conv1 is the (2,1) norm of the conv's full 256 × 64 matrix
    (every output channel and position), not of the reshaped 4 × 9 kernel."""
    from tests.test_measure import dense_conv_matrix

    root = digits["root"]
    result = runner.invoke(app, ["evaluate", str(SPECS / "digits_cnn.yaml"), str(root / "cnn.safetensors"), "--data",
                                 str(root / "train.npz"), "--bounds", "bartlett2017,bartlett2017_dudley", "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kernel = digits["cnn"][1].weight.detach().double().numpy()            # (4, 1, 3, 3)
    dense = digits["cnn"][5].weight.detach().double().numpy()             # (10, 64)
    b_conv = np.linalg.norm(dense_conv_matrix(kernel, (8, 8), 1, 1), axis=1).sum()
    assert report["values"]["b_conv1"] == pytest.approx(b_conv, rel=1e-9)
    assert b_conv > 30 * np.linalg.norm(kernel.reshape(4, 9), axis=1).sum()
    # s_conv1: the FFT bound on the padded 10×10 grid (the default); each frequency's block is 4 × 1
    s_conv = np.abs(np.fft.fft2(kernel, s=(10, 10))).reshape(4, -1)
    s_conv = np.sqrt((s_conv ** 2).sum(axis=0)).max()
    s_fc, b_fc = np.linalg.norm(dense, 2), np.linalg.norm(dense, axis=1).sum()
    x_f = np.linalg.norm(digits["x"])
    grid = report["data"]["margin_grid"]          # γ on the 2^j grid, δ_k = δ/((k+1)(k+2)) for the union over it
    k_grid = grid["index"]
    m, gamma, delta = report["data"]["m"], grid["gamma"], 0.05 / ((k_grid + 1) * (k_grid + 2))
    rho = 0.5            # relu: 1; 2×2 average pooling with stride 2: each output averages 4 inputs, ‖P‖₂ = 1/2
    width = 4 * 8 * 8    # W: the largest layer (input 64, conv 256, output 10)
    r_a = rho * s_conv * s_fc * ((b_conv / s_conv) ** (2 / 3) + (b_fc / s_fc) ** (2 / 3)) ** 1.5
    order = x_f * r_a * math.log(width) / (gamma * m) + math.sqrt(math.log(1 / delta) / m)
    k = math.sqrt(2) / gamma * x_f * math.sqrt(math.log(2 * width ** 2)) * r_a
    dudley = 2 * (4 / m + 12 * math.log(m) * k / m) + 3 * math.sqrt(math.log(2 / delta) / (2 * m))
    gaps = {b["key"]: b["gap"] for b in report["bounds"]}
    assert gaps["bartlett2017"] == pytest.approx(order, rel=1e-9)
    assert gaps["bartlett2017_dudley"] == pytest.approx(dudley, rel=1e-9)
    assert "full operator" in " ".join(report["assumptions"])
