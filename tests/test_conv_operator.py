"""Conv operator norms under stride, padding, dilation and groups, against the SVD of the unrolled dense operator
written out in plain numpy (docs/references.md §6.3)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from boundcalc.measure import certified_eig, conv_operator, linalg, quantities
from boundcalc.measure.conv_operator import ConvLayout
from boundcalc.measure.quantities import ConvGeometry, MeasureOptions, conv_norms


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As ``measure`` runs (linalg.torch_threads): many tiny torch calls are slow with idle threads spinning."""
    with linalg.torch_threads(1):
        yield


def zero_padded(kernel: np.ndarray, hw, stride, padding, dilation, groups) -> np.ndarray:
    """Row (o, i, j) holds K[o, c, a, b] in column (g·c_in/G + c, y, x), y = i·s + a·d − p, for in-image taps."""
    c_out, c_group, k_h, k_w = kernel.shape
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = stride, padding, dilation
    out_h = (hw[0] + 2 * p_h - d_h * (k_h - 1) - 1) // s_h + 1
    out_w = (hw[1] + 2 * p_w - d_w * (k_w - 1) - 1) // s_w + 1
    matrix = np.zeros((c_out, out_h, out_w, c_group * groups, *hw))
    for o, i, j, c, a, b in np.ndindex(c_out, out_h, out_w, c_group, k_h, k_w):
        y, x = i * s_h + a * d_h - p_h, j * s_w + b * d_w - p_w
        if 0 <= y < hw[0] and 0 <= x < hw[1]:
            matrix[o, i, j, o // (c_out // groups) * c_group + c, y, x] = kernel[o, c, a, b]
    return matrix.reshape(c_out * out_h * out_w, -1)


def circular(kernel: np.ndarray, grid, stride, dilation, groups) -> np.ndarray:
    """(Cz)[o, i, j] = Σ K[o, c, a, b]·z[c, (i·s + a·d) mod N], i < N/s (taps that wrap twice add up)."""
    c_out, c_group, k_h, k_w = kernel.shape
    m_h, m_w = grid[0] // stride[0], grid[1] // stride[1]
    matrix = np.zeros((c_out, m_h, m_w, c_group * groups, *grid))
    for o, i, j, c, a, b in np.ndindex(c_out, m_h, m_w, c_group, k_h, k_w):
        y, x = (i * stride[0] + a * dilation[0]) % grid[0], (j * stride[1] + b * dilation[1]) % grid[1]
        matrix[o, i, j, o // (c_out // groups) * c_group + c, y, x] += kernel[o, c, a, b]
    return matrix.reshape(c_out * m_h * m_w, -1)


def dense_of(kernel, layout: ConvLayout):
    return zero_padded(kernel, layout.input_hw, layout.stride, layout.padding, layout.dilation, layout.groups)


def norm(matrix):
    return float(np.linalg.norm(matrix, 2))


GRID = [(s, p, d, g, hw) for s, p, d, g, hw in itertools.product((1, 2, 3), (0, 1, 2), (1, 2), (1, 2),
                                                                  ((5, 6), (6, 6), (7, 5)))
        if (min(hw) + 2 * p - d * 2 - 1) >= 0]


def test_the_dense_references_are_the_layers_torch_applies():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((4, 2, 3, 2))
    layout = ConvLayout((7, 6), (2, 3), (1, 2), (2, 1), 2)
    x = rng.standard_normal((4, 7, 6))
    applied = torch.nn.functional.conv2d(torch.from_numpy(x)[None], torch.from_numpy(kernel), stride=(2, 3),
                                         padding=(1, 2), dilation=(2, 1), groups=2).numpy().reshape(-1)
    np.testing.assert_allclose(dense_of(kernel, layout) @ x.reshape(-1), applied, rtol=1e-12, atol=1e-12)
    # torch's circular padding of p = 1 on a 6×6 input, stride 2: the circular operator on N = 6, up to a shift
    square = rng.standard_normal((3, 2, 3, 3))
    z = rng.standard_normal((2, 6, 6))
    padded = torch.nn.functional.pad(torch.from_numpy(z)[None], (1, 1, 1, 1), mode="circular")
    torch_circular = torch.nn.functional.conv2d(padded, torch.from_numpy(square), stride=2).numpy()
    shifted = np.roll(z, (1, 1), axis=(1, 2))        # output i reads rows 2i − 1 …: the operator on z shifted by 1
    mine = (circular(square, (6, 6), (2, 2), (1, 1), 1) @ shifted.reshape(-1)).reshape(torch_circular.shape)
    np.testing.assert_allclose(mine, torch_circular, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding,dilation,groups,hw", GRID)
def test_fft_bounds_the_zero_padded_layer_and_is_the_circular_norm(stride, padding, dilation, groups, hw):
    rng = np.random.default_rng(stride * 100 + padding * 10 + dilation + 1000 * groups + hw[0])
    kernel = rng.standard_normal((2 * groups, 2, 3, 3))
    layout = ConvLayout(hw, (stride, stride), (padding, padding), (dilation, dilation), groups)
    zero = norm(dense_of(kernel, layout))
    exact = norm(circular(kernel, layout.grid(), layout.stride, layout.dilation, groups))
    got = conv_operator.polyphase_norm(torch.from_numpy(kernel), layout)
    assert got == pytest.approx(exact, rel=1e-9)
    assert got >= exact and got >= zero * (1 - 1e-13)


@pytest.mark.parametrize("stride,padding,dilation,groups,hw", GRID[::8])
def test_power_iteration_is_the_zero_padded_norm_from_below(stride, padding, dilation, groups, hw):
    rng = np.random.default_rng(stride + padding + hw[1])
    kernel = rng.standard_normal((2 * groups, 2, 3, 3))
    layout = ConvLayout(hw, (stride, stride), (padding, padding), (dilation, dilation), groups)
    zero = norm(dense_of(kernel, layout))
    power = conv_operator.power_norm(torch.from_numpy(kernel), layout, iterations=3000, tol=1e-12)
    assert power <= zero * (1 + 1e-12)
    assert power == pytest.approx(zero, rel=1e-4)


@pytest.mark.parametrize("shape,layout", [
    ((3, 2, 3, 2), ConvLayout((5, 7), (2, 3), (1, 2), (1, 2), 1)),
    ((4, 1, 2, 3), ConvLayout((6, 5), (3, 1), (2, 0), (2, 1), 2)),
    ((6, 1, 3, 3), ConvLayout((6, 6), (2, 2), (1, 1), (1, 1), 3)),   # c_out/G = 2 < c_in·s² = 4: output side
    ((8, 1, 3, 3), ConvLayout((5, 5), (2, 2), (0, 0), (1, 1), 1)),   # 8 > 4: the input-side Gram
])
def test_every_route_gives_the_whole_circular_spectrum(shape, layout):
    """All singular values of the blocks B(g), g over all frequencies, are those of the dense circular operator;
    each forced route (smaller side, autocorrelation or explicit blocks) gives its norm."""
    kernel = np.random.default_rng(sum(shape)).standard_normal(shape)
    dense = circular(kernel, layout.grid(), layout.stride, layout.dilation, layout.groups)
    want = np.sort(np.linalg.svd(dense, compute_uv=False))[::-1]
    unit, scale = conv_operator._grouped_unit(torch.from_numpy(kernel), layout.groups)
    frequencies = conv_operator.half_frequencies(layout, {}, half=False)
    blocks = torch.cat(list(conv_operator.polyphase_blocks(unit, layout, frequencies, chunk_bytes=4096)))
    got = np.sort(scale * torch.linalg.svdvals(blocks).reshape(-1).numpy())[::-1]
    np.testing.assert_allclose(got[: want.size], want[: got.size], rtol=1e-10, atol=1e-10)
    assert np.all(got[want.size:] < 1e-10) and np.all(want[got.size:] < 1e-10)
    for side, gram in (("output", "autocorrelation"), ("output", "blocks"), ("input", "blocks")):
        value = conv_operator.polyphase_norm(torch.from_numpy(kernel), layout, chunk_bytes=2048, side=side, gram=gram)
        assert value == pytest.approx(want[0], rel=1e-9)


def test_the_grid_is_the_padded_input_rounded_up_to_the_stride():
    """The zero-padded layer is P·C·E exactly on that grid; rounded down, the circular norm can be smaller than
    the layer's (a 3×3 kernel, stride 2, on a 3×3 input: the grid 2×2 cuts the last row and column off)."""
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((2, 2, 3, 3))
    layout = ConvLayout((5, 4), (2, 3), (1, 1), (1, 1), 1)
    assert layout.grid() == (8, 6)
    full = circular(kernel, layout.grid(), layout.stride, layout.dilation, 1).reshape(2, 4, 2, 2, 8, 6)
    restricted = full[:, :3, :2, :, 1:6, 1:5].reshape(2 * 3 * 2, 2 * 5 * 4)     # rows i < H_out, columns of x
    np.testing.assert_array_equal(restricted, dense_of(kernel, layout))
    down = ConvLayout((3, 3), (2, 2))
    kernel = np.random.default_rng(2).standard_normal((2, 2, 3, 3))
    assert norm(circular(kernel, (2, 2), (2, 2), (1, 1), 1)) < norm(dense_of(kernel, down)) * 0.99
    assert conv_operator.polyphase_norm(torch.from_numpy(kernel), down) >= norm(dense_of(kernel, down))


def test_a_strided_1x1_conv_has_one_block_and_the_kernel_norm():
    kernel = np.random.default_rng(1).standard_normal((6, 4, 1, 1))
    value, record = conv_operator.polyphase_top(torch.from_numpy(kernel), ConvLayout((9, 8), (2, 2)))
    assert record.matrices == 1
    assert value == pytest.approx(np.linalg.norm(kernel[:, :, 0, 0], 2), rel=1e-9)


def test_zero_and_extreme_kernels():
    layout = ConvLayout((6, 6), (2, 2), (1, 1))
    assert conv_operator.polyphase_norm(torch.zeros(3, 2, 3, 3), layout) == 0.0
    kernel = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 2, 3, 3)))
    base = conv_operator.polyphase_norm(kernel, layout)
    for magnitude in (1e-200, 1e200):
        assert conv_operator.polyphase_norm(kernel * magnitude, layout) == pytest.approx(base * magnitude, rel=1e-12)
    with pytest.raises(ValueError, match="groups"):
        conv_operator.polyphase_norm(kernel, ConvLayout((6, 6), groups=2))


@pytest.mark.parametrize("steps,chunk", [(1, 3), (12, 50), (3, 7)])
def test_certified_maximum_against_the_whole_spectra(steps, chunk):
    """Near-equal tops (a poor ranking with one Lanczos step makes certificates fail and be repaired); the
    value is the largest eigenvalue of all matrices, within the certified interval."""
    rng = np.random.default_rng(steps)
    n, count = 100, 40
    a = rng.standard_normal((count, n, n)) + 1j * rng.standard_normal((count, n, n))
    grams = a @ np.conj(a.transpose(0, 2, 1))
    grams *= (1 + 1e-3 * rng.standard_normal(count))[:, None, None]
    want = np.linalg.eigvalsh(grams)[:, -1].max()
    tensors = torch.from_numpy(grams)
    record = certified_eig.certified_max_eigenvalue((tensors[i:i + chunk] for i in range(0, count, chunk)),
                                                     steps=steps)
    assert record.lower <= want * (1 + 1e-13) and want <= record.upper
    assert record.upper == pytest.approx(want, rel=2e-10)
    assert record.matrices == count
    small = torch.from_numpy(grams[:, :20, :20].copy())
    assert certified_eig.certified_max_eigenvalue([small], steps=1).upper == pytest.approx(
        np.linalg.eigvalsh(small.numpy())[:, -1].max(), rel=2e-10)


LAYERS = [  # shape, geometry
    ((4, 2, 3, 3), ConvGeometry((7, 6), stride=2, padding=1)),
    ((4, 1, 3, 2), ConvGeometry((6, 7), stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=2)),
    ((2, 3, 3, 3), ConvGeometry((6, 6), stride=1, padding=1, dilation=2)),
]


@pytest.mark.parametrize("shape,geometry", LAYERS)
def test_conv_norms_of_strided_dilated_grouped_layers(shape, geometry):
    kernel = np.random.default_rng(shape[0] + shape[3]).standard_normal(shape)
    layout = ConvLayout.of(geometry)
    dense = dense_of(kernel, layout)
    got = conv_norms(torch.from_numpy(kernel), geometry, MeasureOptions(power_iterations=3000))
    assert got["fft"] == pytest.approx(conv_operator.polyphase_norm(torch.from_numpy(kernel), layout), rel=1e-15)
    assert got["fft"] >= norm(dense)
    assert norm(dense) * (1 - 1e-4) <= got["power"] <= norm(dense) * (1 + 1e-12)
    assert got["operator_frobenius"] == pytest.approx(np.linalg.norm(dense), rel=1e-12)
    assert got["operator_row_norm_21"] == pytest.approx(np.linalg.norm(dense, axis=1).sum(), rel=1e-12)


def test_stride_one_layers_keep_the_fft_on_the_padded_grid():
    kernel = torch.from_numpy(np.random.default_rng(8).standard_normal((3, 2, 3, 3)))
    got = conv_norms(kernel, ConvGeometry((6, 6), stride=1, padding=1), MeasureOptions())
    assert got["fft"] == linalg.conv_operator_norm_fft(kernel, (6, 6), 1)


def test_the_spectrum_limit_applies_to_strided_layers(monkeypatch):
    """Past MAX_FFT_ENTRIES the value is the tap-sum bound Σ‖K_ab‖₂, an upper bound under stride, dilation and
    groups too (a grouped kernel's stacked taps have a norm ≥ each group's)."""
    kernel = np.random.default_rng(9).standard_normal((4, 1, 3, 3))
    geometry = ConvGeometry((7, 7), stride=2, padding=1, dilation=2, groups=2)
    monkeypatch.setattr(quantities, "MAX_FFT_ENTRIES", 4 * 1 * 10 * 10 - 1)   # 7 + 2 → 10, the stride's multiple
    notes: list[str] = []
    got = conv_norms(torch.from_numpy(kernel), geometry, MeasureOptions(), notes)
    taps = sum(np.linalg.norm(kernel[:, :, a, b], 2) for a in range(3) for b in range(3))
    assert got["fft"] == pytest.approx(taps, rel=1e-12)
    assert got["fft"] >= norm(dense_of(kernel, ConvLayout.of(geometry)))
    assert any("MAX_FFT_ENTRIES" in note and "10×10 grid" in note for note in notes)
