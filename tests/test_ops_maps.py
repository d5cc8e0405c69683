"""The parameter-free kinds of issue 16 against independent numbers: activation constants against scipy's
maximisers and the numerical largest slope for several parameters, φ(0) against torch, pooling constants against
the spectral norm of the dense pooling matrix (numpy) and, for maxpool, random pairs, a constructed bump and a
hand count; concat shapes; spec errors, one located SpecError each."""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from scipy import optimize, special, stats

import boundcalc
from boundcalc.graph import build_graph
from boundcalc.ops import OPS
from tests.test_op_registry import _max_slope


def _rho(op: str, params: dict, in_shape=None) -> float:
    return float(OPS[op].lipschitz_at("t", params, lambda v: v, in_shape))


# -- activations -------------------------------------------------------------------------------------------
def _sup_abs(derivative, low=-10.0, high=10.0) -> float:
    """sup |φ'| by scipy: the best of a bounded search for the max and the min of φ' from a coarse grid."""
    grid = np.linspace(low, high, 2001)
    best = 0.0
    for sign in (1, -1):
        x0 = grid[np.argmax(sign * derivative(grid))]
        res = optimize.minimize_scalar(lambda x: -sign * derivative(x), bounds=(x0 - 0.02, x0 + 0.02),
                                       method="bounded", options={"xatol": 1e-12})
        best = max(best, abs(derivative(res.x)))
    return best


def _sigmoid(x):
    return special.expit(x)


DERIVATIVES = {
    "gelu": lambda x: stats.norm.cdf(x) + x * stats.norm.pdf(x),
    "silu": lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
    "gelu_tanh": lambda x: _gelu_tanh_derivative(x),
}


def _gelu_tanh_derivative(x):
    c = math.sqrt(2 / math.pi)
    u = c * (x + 0.044715 * x ** 3)
    return 0.5 * (1 + np.tanh(u)) + 0.5 * x * (1 - np.tanh(u) ** 2) * c * (1 + 3 * 0.044715 * x ** 2)


@pytest.mark.parametrize("op,params,key", [("gelu", {"approximate": "none"}, "gelu"),
                                           ("gelu", {"approximate": "tanh"}, "gelu_tanh"),
                                           ("silu", {}, "silu")])
def test_smooth_constants_are_scipys_maximum_of_the_derivative(op, params, key):
    assert _rho(op, params) == pytest.approx(_sup_abs(DERIVATIVES[key]), rel=1e-12)


def test_numeric_constants_are_rounded_up():
    """The declared decimals are ≥ the maxima found by mpmath at 40 digits from φ'' = 0 (independently here)."""
    mp.mp.dps = 40
    sigma = lambda x: 1 / (1 + mp.exp(-x))                                           # noqa: E731
    silu = lambda x: x * sigma(x)                                                    # noqa: E731
    c = mp.sqrt(2 / mp.pi)
    gelu_tanh = lambda x: x / 2 * (1 + mp.tanh(c * (x + mp.mpf("0.044715") * x ** 3)))   # noqa: E731
    for op, params, phi, start in (("silu", {}, silu, 2.4), ("gelu", {"approximate": "tanh"}, gelu_tanh, 1.4)):
        top = mp.diff(phi, mp.findroot(lambda x: mp.diff(phi, x, 2), start))
        declared = OPS[op].lipschitz("t", params, lambda v: v)
        assert mp.mpf(str(declared)) >= top and mp.mpf(str(declared)) - top < mp.mpf("1e-17")


def test_gelu_constant_in_closed_form():
    """Φ(√2) + √2·ϕ(√2), by scipy, against the declared (1 + erf 1)/2 + 1/(e√π)."""
    assert _rho("gelu", {"approximate": "none"}) == pytest.approx(
        stats.norm.cdf(math.sqrt(2)) + math.sqrt(2) * stats.norm.pdf(math.sqrt(2)), rel=1e-15)


@pytest.mark.parametrize("op,params,rho,at_zero", [
    ("elu", {"alpha": sp.Float(0.5)}, 1.0, 0.0), ("elu", {"alpha": sp.Integer(1)}, 1.0, 0.0),
    ("elu", {"alpha": sp.Integer(3)}, 3.0, 0.0),
    ("softplus", {"beta": sp.Float(0.5)}, 1.0, 2 * math.log(2)), ("softplus", {"beta": sp.Integer(1)}, 1.0, math.log(2)),
    ("softplus", {"beta": sp.Integer(5)}, 1.0, math.log(2) / 5),
    ("sigmoid", {}, 0.25, 0.5), ("hardswish", {}, 1.5, 0.0), ("dropout", {"p": sp.Float(0.9)}, 1.0, 0.0),
    ("gelu", {"approximate": "tanh"}, None, 0.0)])
def test_constant_is_the_largest_slope_and_phi_zero_is_torchs(op, params, rho, at_zero):
    kind = OPS[op]
    declared = _rho(op, params)
    if rho is not None:
        assert declared == pytest.approx(rho, rel=1e-15)          # the hand value
    slope = _max_slope(kind, params)
    assert declared * (1 - 1e-6) <= slope <= declared * (1 + 1e-8)
    zero = float(kind.forward("t", params, [torch.zeros(1, 1, dtype=torch.float64)]))
    assert zero == pytest.approx(at_zero, abs=1e-15)
    assert float(kind.at_zero(params)) == pytest.approx(zero, abs=1e-15)


# -- maxpool ------------------------------------------------------------------------------------------------
def _windows_per_input(n: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """Windows containing each input of an n × n map, by torch: max-pooling a one-hot map gives 1 exactly in the
    windows that contain the hot input (−∞ padding; every window holds a real input)."""
    eye = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    return F.max_pool2d(eye, k, s, p, d).reshape(n * n, -1).sum(1).numpy()


@pytest.mark.parametrize("n,k,s,p,d", [(7, 3, 2, 1, 1), (8, 2, 2, 0, 1), (6, 3, 1, 1, 1), (9, 3, 2, 0, 2),
                                       (10, 2, 1, 0, 3), (7, 3, 3, 1, 1), (11, 5, 2, 2, 1)])
def test_maxpool_constant_is_the_root_of_the_most_windows(n, k, s, p, d):
    params = {"kernel": k, "stride": s, "padding": (p, p), "dilation": (d, d)}
    counts = _windows_per_input(n, k, s, p, d)
    declared = _rho("maxpool", params, (1, n, n))
    assert declared == pytest.approx(math.sqrt(counts.max()), rel=1e-15)
    assert _rho("maxpool", params, (1, sp.Symbol("h"), sp.Symbol("h"))) >= declared      # size-free bound
    i = int(counts.argmax())                                              # the bump attains it
    bump = torch.zeros(1, 1, n, n, dtype=torch.float64)
    bump.view(-1)[i] = 1e-3
    moved = F.max_pool2d(bump, k, s, p, d) - F.max_pool2d(torch.zeros_like(bump), k, s, p, d)
    assert float(moved.norm() / bump.norm()) == pytest.approx(declared, rel=1e-12)
    gen = torch.Generator().manual_seed(n * k + s)
    x, y = (torch.randn(2000, 1, n, n, generator=gen, dtype=torch.float64) for _ in range(2))
    y = x + 0.1 * y
    ratio = ((F.max_pool2d(x, k, s, p, d) - F.max_pool2d(y, k, s, p, d)).flatten(1).norm(dim=1)
             / (x - y).flatten(1).norm(dim=1))
    assert float(ratio.max()) <= declared * (1 + 1e-12)


def test_maxpool_hand_counts():
    """Kernel 3, stride 2: two windows per axis overlap at every odd input, so 4 windows and ρ = 2; kernel 2,
    stride 2 tiles (ρ = 1); kernel 3, stride 1: three per axis (ρ = 3); kernel 3, stride 2, dilation 2: inputs
    2t, 2t + 2, 2t + 4 in window t, so input 4 is in windows 0, 1, 2 (ρ = 3)."""
    one = {"padding": (0, 0), "dilation": (1, 1)}
    assert _rho("maxpool", {"kernel": 3, "stride": 2, **one}, (1, 9, 9)) == 2
    assert _rho("maxpool", {"kernel": 3, "stride": 2, "padding": (1, 1), "dilation": (1, 1)}, (1, 7, 7)) == 2
    assert _rho("maxpool", {"kernel": 2, "stride": 2, **one}, (1, 8, 8)) == 1
    assert _rho("maxpool", {"kernel": 3, "stride": 1, **one}, (1, 8, 8)) == 3
    assert _rho("maxpool", {"kernel": 3, "stride": 2, "padding": (0, 0), "dilation": (2, 2)}, (1, 9, 9)) == 3
    assert _rho("maxpool", {"kernel": 3, "stride": 2, **one}) == 2          # no input size: the size-free bound


# -- linear pooling -----------------------------------------------------------------------------------------
def _dense(pool, n_h: int, n_w: int) -> np.ndarray:
    """The pooling's matrix on one channel, column by column from torch applied to the basis."""
    eye = torch.eye(n_h * n_w, dtype=torch.float64).reshape(n_h * n_w, 1, n_h, n_w)
    return pool(eye).reshape(n_h * n_w, -1).numpy().T


AVG_CASES = [(6, 6, 2, 2, 0, True), (7, 7, 3, 2, 1, True), (7, 7, 3, 2, 1, False), (5, 5, 3, 1, 1, False),
             (8, 6, 4, 2, 2, False), (6, 6, 2, 1, 1, False), (9, 9, 3, 3, 1, False), (5, 9, 2, 2, 1, True)]


@pytest.mark.parametrize("n_h,n_w,k,s,p,include", AVG_CASES)
def test_avgpool_constant_bounds_the_dense_norm(n_h, n_w, k, s, p, include):
    norm = np.linalg.norm(_dense(lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=include), n_h, n_w), 2)
    params = {"kernel": k, "stride": s, "padding": (p, p), "count_include_pad": include}
    declared = _rho("avgpool", params, (1, n_h, n_w))
    assert norm <= declared * (1 + 1e-12)
    assert _rho("avgpool", params, (1, sp.Symbol("h"), sp.Symbol("w"))) >= declared * (1 - 1e-12)


def test_excluding_the_padding_can_exceed_the_padded_constant():
    """Without count_include_pad a border window averages fewer inputs: kernel 2, stride 2, padding 1 on 6 × 6
    has corner windows of one input (weight 1), so ‖P‖₂ = 1 > ⌈k/s⌉/k = 1/2: the padded constant would be wrong
    there, and the declared one is not."""
    norm = np.linalg.norm(_dense(lambda x: F.avg_pool2d(x, 2, 2, 1, count_include_pad=False), 6, 6), 2)
    assert norm == pytest.approx(1.0, rel=1e-12)
    params = {"kernel": 2, "stride": 2, "padding": (1, 1), "count_include_pad": False}
    assert _rho("avgpool", params, (1, 6, 6)) >= 1.0


def test_avgpool_without_padding_keeps_its_constant():
    """The old fields (kernel, stride) give the old ⌈k/s⌉/k, as an exact rational."""
    spec = boundcalc.parse_spec("data: {samples: m, shape: [2, 8, 8]}\nlayers:\n  - {op: avgpool, kernel: 3, "
                                "stride: 2}\n  - flatten\n  - {op: linear, out: 2}\n")
    layer = next(a["layer"] for _, a in build_graph(spec).nodes(data=True) if a["op"] == "avgpool")
    assert OPS["avgpool"].lipschitz_at("p", layer.params, lambda v: v, (2, 8, 8)) == sp.Rational(2, 3)


@pytest.mark.parametrize("n_h,n_w,o_h,o_w", [(6, 6, 1, 1), (6, 6, 2, 3), (7, 5, 3, 2), (4, 4, 6, 6),
                                             (9, 9, 4, 4), (5, 7, 5, 7)])
def test_adaptive_avgpool_constant_bounds_the_dense_norm(n_h, n_w, o_h, o_w):
    norm = np.linalg.norm(_dense(lambda x: F.adaptive_avg_pool2d(x, (o_h, o_w)), n_h, n_w), 2)
    declared = _rho("adaptive_avgpool", {"output": (o_h, o_w)}, (1, n_h, n_w))
    assert norm <= declared * (1 + 1e-12)
    if n_h % o_h == 0 and n_w % o_w == 0:               # disjoint windows of one size: exact
        assert declared == pytest.approx(norm, rel=1e-12)


def test_global_mean_constant():
    h, w = sp.symbols("h w", positive=True, integer=True)
    assert _rho("adaptive_avgpool", {"output": (1, 1)}, (3, 4, 9)) == pytest.approx(1 / 6, rel=1e-15)
    symbolic = OPS["adaptive_avgpool"].lipschitz_at("g", {"output": (1, 1)}, lambda v: v, (3, h, w))
    assert sp.simplify(symbolic - 1 / sp.sqrt(h * w)) == 0
    with pytest.raises(boundcalc.DeriveError, match="numeric input size"):
        OPS["adaptive_avgpool"].lipschitz_at("g", {"output": (2, 2)}, lambda v: v, (3, h, w))


# -- concat --------------------------------------------------------------------------------------------------
def test_concat_shapes_and_a_located_mismatch():
    head = "data: {samples: m, shape: [2, 6, 6]}\nlayers:\n"
    spec = boundcalc.parse_spec(head + "  - {op: conv2d, name: a, channels: 3, kernel: 3, padding: 1}\n"
                                "  - {op: concat, name: c, inputs: [a, input]}\n  - flatten\n  - {op: linear, out: 2}\n")
    assert tuple(build_graph(spec).nodes["c"]["shape"]) == (5, 6, 6)
    bad = head + "  - {op: conv2d, name: a, channels: 3, kernel: 3}\n  - {op: concat, inputs: [a, input]}\n"
    with pytest.raises(boundcalc.SpecError, match="size mismatch at concat") as info:
        build_graph(boundcalc.parse_spec(bad))
    assert info.value.line == 4


# -- spec errors ---------------------------------------------------------------------------------------------
IMAGE = "data: {samples: m, shape: [1, 8, 8]}\nlayers:\n"
VECTOR = "data: {samples: m, dim: 4}\nlayers:\n"
ERRORS = [
    ("maxpool-negative-kernel", IMAGE + "  - {op: maxpool, kernel: -1}\n", "kernel must be between 1"),
    ("maxpool-stride-zero", IMAGE + "  - {op: maxpool, kernel: 2, stride: 0}\n", "stride must be between 1"),
    ("maxpool-padding-over-half", IMAGE + "  - {op: maxpool, kernel: 3, padding: 2}\n", "more than half the kernel"),
    ("maxpool-dilation-zero", IMAGE + "  - {op: maxpool, kernel: 3, dilation: 0}\n", "dilation must be between 1"),
    ("maxpool-three-entries", IMAGE + "  - {op: maxpool, kernel: [2, 2, 2]}\n", "int or [height, width]"),
    ("maxpool-too-large", IMAGE + "  - {op: maxpool, kernel: 9}\n", "does not fit"),
    ("avgpool-padding-over-half", IMAGE + "  - {op: avgpool, kernel: 2, padding: 2}\n", "more than half the kernel"),
    ("avgpool-negative-padding", IMAGE + "  - {op: avgpool, kernel: 2, padding: -1}\n", "padding must be between 0"),
    ("adaptive-output-zero", IMAGE + "  - {op: adaptive_avgpool, output: 0}\n", "output must be between 1"),
    ("adaptive-output-list", IMAGE + "  - {op: adaptive_avgpool, output: [2, 0]}\n", "output must be between 1"),
    ("dropout-p-one", VECTOR + "  - {op: dropout, p: 1}\n", "in [0, 1)"),
    ("dropout-p-negative", VECTOR + "  - {op: dropout, p: -0.1}\n", "in [0, 1)"),
    ("dropout-p-symbol", VECTOR + "  - {op: dropout, p: q}\n", "in [0, 1)"),
    ("elu-negative-alpha", VECTOR + "  - {op: elu, alpha: -1}\n", "alpha must be ≥ 0"),
    ("softplus-zero-beta", VECTOR + "  - {op: softplus, beta: 0}\n", "beta must be positive"),
    ("gelu-unknown-approximation", VECTOR + "  - {op: gelu, approximate: fast}\n", "approximate"),
    ("concat-one-input", VECTOR + "  - {op: concat, inputs: [input]}\n", "at least two"),
    ("maxpool-on-a-vector", VECTOR + "  - {op: maxpool, kernel: 2}\n", "[channels, height, width]"),
]


@pytest.mark.parametrize("text,phrase", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_field_is_one_located_spec_error(tmp_path, text, phrase):
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(boundcalc.SpecError) as info:
        build_graph(boundcalc.load_spec(path))
    err = info.value
    assert err.file == str(path) and err.line == 3, str(err)
    assert phrase in str(err) and "\n" not in str(err)


# -- the priors' requirements --------------------------------------------------------------------------------
MLP = "data: {samples: m, dim: 6}\nlayers:\n  - {op: linear, out: 5}\n  - %s\n  - {op: linear, out: 3}\n" \
      "loss: {margin: gamma}\n"
CNN = ("data: {samples: m, shape: [2, 8, 8]}\nlayers:\n  - {op: conv2d, channels: 3, kernel: 3, padding: 1}\n"
       "  - relu\n  - %s\n  - flatten\n  - {op: linear, out: 3}\nloss: {margin: gamma}\n")
CONCAT = ("data: {samples: m, shape: [2, 8, 8]}\nlayers:\n  - {op: conv2d, name: a, channels: 3, kernel: 3, "
          "padding: 1}\n  - relu\n  - {op: concat, inputs: [relu1, input]}\n  - flatten\n  - {op: linear, out: 3}\n"
          "loss: {margin: gamma}\n")
ALL = {"pinto2024", "pinto2024_tight", "bartlett2017", "bartlett2017_dudley", "neyshabur2018", "golowich2018",
       "neyshabur2015", "vc2019", "galanti2023"}
#: (spec, the entries that cover it); every other entry must refuse, naming the op or the reason
COVERAGE = [
    (MLP % "sigmoid", {"pinto2024_tight"}),
    (MLP % "{op: softplus, beta: 2}", {"pinto2024_tight"}),
    (MLP % "{op: lipschitz, constant: 2, at_zero: 0.5}", {"pinto2024_tight"}),
    (MLP % "gelu", {"pinto2024_tight", "bartlett2017", "bartlett2017_dudley"}),
    (MLP % "silu", {"pinto2024_tight", "bartlett2017", "bartlett2017_dudley"}),
    (MLP % "{op: elu, alpha: 2}", {"pinto2024_tight", "bartlett2017", "bartlett2017_dudley"}),
    (MLP % "hardswish", {"pinto2024_tight", "bartlett2017", "bartlett2017_dudley"}),
    (MLP % "{op: dropout, p: 0.5}", ALL - {"galanti2023"} | {"gonon2024"}),
    (CNN % "{op: maxpool, kernel: 3, stride: 2, padding: 1}", {"pinto2024_tight", "bartlett2017",
                                                               "bartlett2017_dudley", "gonon2024"}),
    (CNN % "{op: avgpool, kernel: 3, stride: 2, padding: 1}", {"pinto2024_tight", "bartlett2017",
                                                               "bartlett2017_dudley", "vc2019", "gonon2024"}),
    (CNN % "{op: adaptive_avgpool, output: 2}", {"pinto2024_tight", "bartlett2017", "bartlett2017_dudley",
                                                 "vc2019", "gonon2024"}),
    (CONCAT, {"pinto2024_tight", "vc2019", "gonon2024"}),
]


@pytest.mark.parametrize("text,covers", COVERAGE, ids=[f"case{i}" for i in range(len(COVERAGE))])
def test_each_new_kind_is_refused_by_the_entries_that_do_not_cover_it(text, covers):
    from boundcalc.bounds import REGISTRY, Applied, NetworkView

    view = NetworkView(boundcalc.parse_spec(text))
    new_ops = view.ops - {"input", "linear", "conv2d", "relu", "flatten"}
    for key, entry in REGISTRY.items():
        result = entry.apply(view)
        if key in covers:
            assert isinstance(result, Applied), (key, getattr(result, "reason", None))
        else:
            assert not isinstance(result, Applied), key
            reason = result.reason
            assert any(op in reason for op in new_ops) or "φ(0)" in reason or "chain" in reason \
                or "conv2d" in reason, (key, reason)
