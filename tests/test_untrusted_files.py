"""Untrusted files (issue 14): data quantities at any magnitude against plain numpy, outputs that never
overwrite an input and are written atomically, conv norms past their limits, shard-index reports, JSON and
manifest reading. The one-line errors themselves are in tests/hostile/round2_files.py."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.files import OutputError, json_depth, load_json, refuse_overwriting, write_atomic
from boundcalc.measure import linalg
from boundcalc.measure import data as data_module
from boundcalc.measure.data import DataError, class_labels, input_stats, margin_stats, margins, read_npz
from boundcalc.zoo.manifest import load_zoo
from tests.hostile.round2_files import CONV_SPEC

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()


# -- data quantities at any magnitude -----------------------------------------------------------------
def numpy_norms_on_scaled_data(X: np.ndarray) -> tuple[float, float]:
    """‖X‖_F and max_i ‖x_i‖ computed on X/c, c = max|X_ij|, then multiplied by c (plain numpy)."""
    c = np.abs(X).max()
    rows = np.sqrt(((X / c) ** 2).sum(axis=1))
    return c * np.sqrt((rows ** 2).sum()), c * rows.max()


@pytest.mark.parametrize("magnitude", [1e300, 1e-300, 1e155, 1e-170])   # squares overflow or underflow
def test_data_norms_are_finite_and_exact_at_any_magnitude(magnitude):
    X = np.random.default_rng(1).normal(size=(50, 64)) * magnitude
    stats = input_stats(torch.from_numpy(X))
    frobenius, max_norm = numpy_norms_on_scaled_data(X)
    assert np.isfinite(stats.frobenius) and stats.frobenius > 0
    assert stats.frobenius == pytest.approx(frobenius, rel=1e-12)
    assert stats.max_norm == pytest.approx(max_norm, rel=1e-12)


@pytest.mark.parametrize("magnitude", [1e300, 1e-300])
def test_collapse_statistics_are_exact_at_any_magnitude(magnitude):
    """NC1 is scale-free and TCV scales linearly: against plain numpy on the data before scaling."""
    from boundcalc.measure.collapse import class_statistics
    from tests.test_collapse import numpy_nc1

    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 60)
    Z = rng.normal(size=(60, 7)) + rng.normal(size=(4, 7))[y]
    stats = class_statistics(torch.from_numpy(Z * magnitude), torch.from_numpy(y))
    tcv = sum(np.linalg.norm(Z[i] - Z[y == y[i]].mean(0)) for i in range(60))
    assert stats.nc1 == pytest.approx(numpy_nc1(Z, y), rel=1e-9)
    assert stats.tcv == pytest.approx(magnitude * tcv, rel=1e-12)


def test_a_data_norm_beyond_float64_is_refused_not_inf():
    with pytest.raises(DataError, match="float64 range"):
        input_stats(torch.full((50, 64), 1.5e308, dtype=torch.float64))


def test_evaluate_is_invariant_when_data_grows_by_1e300_and_each_layer_shrinks_by_1e100(tmp_path):
    """Every norm bound is homogeneous of degree 0 in (data, weights) for a bias-free ReLU net: X·1e300 with
    W_i·1e-100 for 3 layers gives the same outputs, margins and bound as X with W_i."""
    rng = np.random.default_rng(3)
    weights = {"0.weight": rng.normal(size=(32, 64)), "2.weight": rng.normal(size=(32, 32)),
               "4.weight": rng.normal(size=(10, 32))}
    X = rng.normal(size=(80, 64))
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    y = (relu(relu(X @ weights["0.weight"].T) @ weights["2.weight"].T) @ weights["4.weight"].T).argmax(1)
    runs = {}
    for name, data_scale, weight_scale in (("plain", 1.0, 1.0), ("scaled", 1e300, 1e-100)):
        save_file({k: torch.from_numpy(w * weight_scale) for k, w in weights.items()}, tmp_path / f"{name}.safetensors")
        np.savez(tmp_path / f"{name}.npz", X=X * data_scale, y=y)
        result = runner.invoke(app, ["evaluate", str(SPECS / "digits_mlp.yaml"), str(tmp_path / f"{name}.safetensors"),
                                     "--data", str(tmp_path / f"{name}.npz"), "--format", "json"])
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(result.stdout)
    plain, scaled = runs["plain"], runs["scaled"]
    assert scaled["data"]["X_F"] == pytest.approx(1e300 * plain["data"]["X_F"], rel=1e-12)
    assert scaled["data"]["train"]["gamma"] == pytest.approx(plain["data"]["train"]["gamma"], rel=1e-9)
    compared = 0
    for a, b in zip(plain["bounds"], scaled["bounds"]):
        if a.get("complexity_log10") is not None:
            assert b["complexity_log10"] == pytest.approx(a["complexity_log10"], abs=1e-9), a["key"]
            compared += 1
    assert compared >= 5


def test_a_margin_beyond_float64_is_refused_not_inf():
    outputs = torch.tensor([[1.5e308, -1.5e308], [1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(DataError, match="float64 range"):
        margins(outputs, torch.tensor([0, 0]))


def test_margin_percentiles_match_torch_and_work_past_its_size_limit():
    values = torch.from_numpy(np.random.default_rng(0).normal(size=1001))
    stats = margin_stats(values, 10)
    assert stats.gamma == pytest.approx(float(torch.quantile(values, 0.1)), rel=1e-15)
    assert stats.p5 == pytest.approx(float(torch.quantile(values, 0.05)), rel=1e-15)
    many = torch.linspace(-1.0, 1.0, 2 ** 24 + 1, dtype=torch.float64)     # torch.quantile refuses this size
    assert margin_stats(many, 50).gamma == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("compressed", [False, True])
def test_the_checked_npz_reader_gives_what_numpy_gives(tmp_path, monkeypatch, compressed):
    """The reader that checks each .npy header before reading: Fortran order, big-endian and narrow dtypes,
    read 1 KiB at a time so that a value straddles chunk boundaries."""
    monkeypatch.setattr(data_module, "_CHUNK", 1024)
    rng = np.random.default_rng(5)
    X = np.asfortranarray(rng.normal(size=(37, 11))).astype(">f8")
    y = rng.integers(0, 7, 37).astype(np.uint16)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", X=X, y=y)
    got_x, got_y = read_npz(tmp_path / "d.npz")
    assert got_x.dtype == X.dtype and got_x.shape == X.shape and np.array_equal(got_x, X)
    assert got_y.dtype == y.dtype and np.array_equal(got_y, y)


@pytest.mark.parametrize("labels,ok", [
    (np.array([0, 3, 2], dtype=np.uint64), True),
    (np.array([0.0, 3.0]), True),
    (np.array([0, 2 ** 64 - 1], dtype=np.uint64), False),   # astype(int64) would give -1
    (np.array([0.0, 1e20]), False),                          # astype(int64) would give -2**63
    (np.array([0, -1], dtype=np.int8), False),
    (np.array([0.5, 1.0]), False),
])
def test_labels_are_checked_before_the_cast(labels, ok):
    if ok:
        assert class_labels(labels, Path("d.npz")).tolist() == labels.astype(np.int64).tolist()
    else:
        with pytest.raises(DataError, match="label"):
            class_labels(labels, Path("d.npz"))


def test_the_forward_pass_shrinks_its_batch_to_the_activation_limit_with_the_same_outputs():
    from boundcalc.limits import MAX_FORWARD_VALUES
    from boundcalc.measure.binding import concrete_graph
    from boundcalc.measure.forward import batch_size, forward, layer_inputs
    from boundcalc.spec.load import parse_spec

    spec = parse_spec("data: {samples: m, dim: 8}\nlayers:\n  - {op: linear, name: a, out: 1000000}\n  - relu\n"
                      "  - {op: linear, name: b, out: 3}\n")
    graph = concrete_graph(spec)
    per_sample = 8 + 1_000_000 + 1_000_000 + 3        # input, a, relu, b
    assert batch_size(graph) == MAX_FORWARD_VALUES // per_sample
    small = parse_spec("data: {samples: m, dim: 5}\nlayers:\n  - {op: linear, name: a, out: 4}\n  - relu\n"
                       "  - {op: linear, name: b, out: 3}\n")
    graph = concrete_graph(small)
    gen = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(4, 5, generator=gen), "b": torch.randn(3, 4, generator=gen)}
    x = torch.randn(23, 5, generator=gen, dtype=torch.float64)
    expected = torch.relu(x @ weights["a"].double().T) @ weights["b"].double().T
    for batch in (1, 5, 23, 100):
        torch.testing.assert_close(forward(graph, x, weights, batch=batch), expected, rtol=1e-14, atol=0)
        inputs = layer_inputs(graph, x, weights, batch=batch)
        torch.testing.assert_close(inputs["b"], torch.relu(x @ weights["a"].double().T), rtol=1e-14, atol=0)


# -- outputs ------------------------------------------------------------------------------------------------
def small_mlp(path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    shapes = {"0.weight": (32, 64), "0.bias": (32,), "2.weight": (32, 32), "2.bias": (32,), "4.weight": (10, 32),
              "4.bias": (10,)}
    save_file({k: torch.randn(*s, generator=gen) for k, s in shapes.items()}, path)


def collapse_args(checkpoint: Path, data: Path, plot: Path) -> list[str]:
    return ["collapse", str(SPECS / "digits_mlp.yaml"), str(checkpoint), "--data", str(data), "--plot", str(plot)]


def test_plot_over_the_checkpoint_is_refused_and_its_bytes_are_unchanged(tmp_path):
    # a checkpoint whose name matplotlib takes for a figure format: before, --plot wrote a PNG over it
    checkpoint = tmp_path / "model.png"
    small_mlp(checkpoint)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", X=rng.random((50, 64)), y=rng.integers(0, 10, 50))
    before = checkpoint.read_bytes()
    result = runner.invoke(app, collapse_args(checkpoint, tmp_path / "data.npz", checkpoint))
    assert result.exit_code == 2 and "refusing to write" in result.stderr, result.output
    assert checkpoint.read_bytes() == before


def test_plot_replaces_the_old_file_in_one_rename_with_the_usual_permissions(tmp_path):
    """Written to a temporary file and renamed: a hard link to the old figure keeps the old bytes (an in-place
    write would change both), no temporary is left, and the mode is 0666 minus the umask."""
    small_mlp(tmp_path / "ckpt.safetensors")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", X=rng.random((50, 64)), y=rng.integers(0, 10, 50))
    plot = tmp_path / "figure.png"
    plot.write_bytes(b"old figure")
    os.link(plot, tmp_path / "backup.png")
    result = runner.invoke(app, collapse_args(tmp_path / "ckpt.safetensors", tmp_path / "data.npz", plot))
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "backup.png").read_bytes() == b"old figure"
    umask = os.umask(0)
    os.umask(umask)
    assert plot.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.png", "ckpt.safetensors", "data.npz", "figure.png"]


def test_an_output_that_is_a_device_fifo_or_folder_is_refused_before_any_work(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    for out in ("/dev/null", tmp_path / "pipe.png", tmp_path):
        with pytest.raises(OutputError, match="not a regular file"):
            refuse_overwriting([out], [])
        with pytest.raises(OutputError, match="not a regular file"):
            write_atomic(out, lambda handle: handle.write(b"x"))
    assert Path("/dev/null").is_char_device()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old")

    def fails_halfway(handle):
        handle.write(b"new, partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, fails_halfway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_an_output_is_refused_when_it_is_an_input_by_path_symlink_or_hard_link(tmp_path):
    source = tmp_path / "ckpt.safetensors"
    source.write_bytes(b"weights")
    (tmp_path / "sym.png").symlink_to(source)
    os.link(source, tmp_path / "hard.png")
    (tmp_path / "sub").mkdir()
    for out in (source, tmp_path / "sym.png", tmp_path / "hard.png", tmp_path / "sub" / ".." / "ckpt.safetensors"):
        with pytest.raises(OutputError, match="refusing to write"):
            refuse_overwriting([out], [source])
    refuse_overwriting([tmp_path / "other.png"], [source])       # a new file is fine


# -- JSON, manifests, shard indexes -------------------------------------------------------------------------
def test_json_depth_counts_brackets_outside_strings_only():
    assert json_depth('{"a": "[[[{{", "b": [1, [2, {"c": 3}]]}') == 4
    assert json_depth('["\\"[[[", "x"]') == 1
    assert load_json('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    with pytest.raises(ValueError, match="duplicate key 'b'"):
        load_json('{"a": {"b": 1, "b": 2}}')
    with pytest.raises(ValueError, match="nested deeper"):
        load_json("[" * 40 + "]" * 40)


def test_a_manifest_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "models.csv").write_bytes(b"\xef\xbb\xbfid,file,train_error,test_error\na,a.pt,0.1,0.25\n")
    (model,) = load_zoo(tmp_path)
    assert (model.id, model.train_error, model.test_error) == ("a", 0.1, 0.25)


def test_tensors_missing_from_the_shard_index_are_reported(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    save_file({"a.weight": torch.ones(3, 2), "extra.weight": torch.ones(2, 2)}, folder / "shard-1.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a.weight": "shard-1.safetensors"}}))
    result = runner.invoke(app, ["measure", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [m["tensor"] for m in out["tensors"]] == ["a.weight"]
    assert out["skipped"] == {"in a shard but not listed in the shard index, so not read": ["extra.weight"]}


# -- conv norms ------------------------------------------------------------------------------------------------
def test_chunked_fft_singular_values_match_numpy():
    kernel = torch.randn(3, 2, 3, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    grid = (7, 5)
    spectrum = np.fft.fft2(kernel.numpy(), s=grid)                       # (c_out, c_in, N_h, N_w)
    blocks = spectrum.transpose(2, 3, 0, 1).reshape(-1, 3, 2)
    expected = np.sort(np.linalg.svd(blocks, compute_uv=False).reshape(-1))
    for chunk in (16 * 3 * 2 * 3, 16 * 3 * 2 * 7, 1 << 20):             # 3 or 7 frequencies per chunk, or all
        got = np.sort(linalg.conv_fft_singular_values(kernel, grid, chunk_bytes=chunk).numpy())
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


def test_conv_norms_past_their_limits_fall_back_and_say_so(tmp_path):
    """On a 4×8192×8192 input the FFT spectrum would be 17 GB and power iteration 5·10¹² multiply-adds: the
    'fft' value is the tap-sum upper bound Σ‖K_ab‖₂ (numpy below), 'power' is skipped, both are stated."""
    (tmp_path / "spec.yaml").write_text(CONV_SPEC)
    kernel = torch.randn(4, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    save_file({"w": kernel}, tmp_path / "w.safetensors")
    result = runner.invoke(app, ["measure", str(tmp_path / "w.safetensors"), "--spec", str(tmp_path / "spec.yaml"),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    (measured,) = json.loads(result.stdout)["tensors"]
    taps = kernel.double().numpy()
    tap_sum = sum(np.linalg.norm(taps[:, :, a, b], 2) for a in range(3) for b in range(3))
    assert measured["conv"]["fft"] == pytest.approx(tap_sum, rel=1e-12)
    assert measured["conv"]["power"] is None
    assert any("MAX_FFT_ENTRIES" in n for n in measured["notes"]) and any("MAX_POWER_MACS" in n for n in measured["notes"])
