"""conv2d with stride, padding, dilation and groups: shapes and outputs against torch's nn.Conv2d over a grid of
geometries, the measured norms against the dense operator built by applying torch's conv to basis vectors, and
the spec errors of bad geometries."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import boundcalc
from boundcalc.errors import BoundcalcError, SpecError
from boundcalc.graph.build import build_graph
from boundcalc.measure.forward import forward
from boundcalc.measure.quantities import ConvGeometry, MeasureOptions, measure_weight

GRID = list(itertools.product((1, 2, [2, 1]), (0, 1, [1, 0]), (1, 2, [1, 2]), (1, 2)))


def _spec(conv: str, shape=(4, 7, 8)) -> str:
    return (f"data: {{samples: m, shape: {list(shape)}}}\nlayers:\n  - {{op: conv2d, name: c, {conv}}}\n"
            "  - flatten\n  - {op: linear, name: head, out: 2}\n")


def _as_pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


@pytest.mark.parametrize("stride,padding,dilation,groups", GRID)
def test_shape_and_forward_match_torch(stride, padding, dilation, groups):
    conv = f"channels: 6, kernel: [3, 2], stride: {stride}, padding: {padding}, dilation: {dilation}, groups: {groups}"
    graph = build_graph(boundcalc.parse_spec(_spec(conv)))
    module = torch.nn.Conv2d(4, 6, (3, 2), stride=_as_pair(stride), padding=_as_pair(padding),
                             dilation=_as_pair(dilation), groups=groups, bias=True).double()
    x = torch.randn(3, 4, 7, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = module(x)
    assert tuple(int(d) for d in graph.nodes["c"]["shape"]) == tuple(want.shape[1:])
    head = torch.eye(2, want[0].numel(), dtype=torch.float64)
    got = forward(graph, x, {"c": module.weight.detach(), "head": head}, {"c": module.bias.detach()})
    assert torch.allclose(got, want.reshape(3, -1) @ head.T, rtol=0, atol=1e-12)


def _dense_operator(kernel: torch.Tensor, hw, stride, padding, dilation, groups) -> np.ndarray:
    """The convolution's matrix: column j is torch's conv2d applied to the j-th basis input."""
    c_in = kernel.shape[1] * groups
    basis = torch.eye(c_in * hw[0] * hw[1], dtype=torch.float64).reshape(-1, c_in, *hw)
    out = torch.nn.functional.conv2d(basis, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return out.reshape(basis.shape[0], -1).T.numpy()


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 2, 2), (2, 1, 1, 3), (2, 2, 2, 1), (1, 0, 1, 6)])
def test_measured_norms_of_dilated_grouped_conv_against_the_dense_operator(stride, padding, dilation, groups):
    kernel = torch.randn(6, 6 // groups, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(groups))
    hw = (7, 6)
    dense = _dense_operator(kernel, hw, stride, padding, dilation, groups)
    geometry = ConvGeometry(hw, stride=stride, padding=padding, dilation=dilation, groups=groups)
    measured = measure_weight(kernel, MeasureOptions(), tensor="k", geometry=geometry)
    sigma = np.linalg.norm(dense, 2)
    assert measured.conv["operator_frobenius"] == pytest.approx(np.linalg.norm(dense), rel=1e-12)
    assert measured.conv["operator_row_norm_21"] == pytest.approx(np.linalg.norm(dense, axis=1).sum(), rel=1e-12)
    assert measured.conv["filter_norm"] == pytest.approx(float(kernel.norm()), rel=1e-12)
    assert measured.conv["fft"] >= sigma * (1 - 1e-12)                 # an upper bound
    assert measured.conv["power"] == pytest.approx(sigma, rel=1e-6)    # power iteration on the operator as applied


@pytest.mark.parametrize("conv,shape,message", [
    ("channels: 5, kernel: 3, groups: 2", (4, 6, 6), "groups 2 must divide channels 5"),
    ("channels: 6, kernel: 3, groups: 2", (3, 6, 6), "groups 2 must divide the input channels 3"),
    ("channels: 6, kernel: 3, dilation: 0", (4, 6, 6), "dilation must be an integer or [height, width] between 1"),
    ("channels: 6, kernel: 3, stride: [1, 2, 3]", (4, 6, 6), "stride must be an integer or [height, width]"),
    ("channels: 6, kernel: 3, padding: -1", (4, 6, 6), "padding must be an integer or [height, width] between 0"),
    ("channels: 6, kernel: 3, groups: 0", (4, 6, 6), "groups must be an integer between 1"),
    ("channels: 6, kernel: 5, dilation: 2", (4, 6, 6), "does not fit"),
])
def test_bad_geometry_is_a_located_spec_error(conv, shape, message):
    with pytest.raises(SpecError) as err:
        build_graph(boundcalc.parse_spec(_spec(conv, shape), file="bad.yaml"))
    text = str(err.value)
    assert message in text and "bad.yaml:" in text and "\n" not in text
