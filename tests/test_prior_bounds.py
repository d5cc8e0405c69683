"""Each registry formula against numbers worked out by hand (arithmetic in the comments).

The network (spec MLP below): d = 3 inputs, m = 100 samples, fc1: 3 → 4, ReLU, fc2: 4 → 2 (k = 2 outputs),
ramp loss with margin γ = 0.5, δ = 0.1. Measured-style values: s = (2, 3), f = (3, 4), b = (5, 6),
‖X‖_F = 10, R = max ‖x_i‖ = 1.5.
"""
import math

import pytest

from boundcalc.bounds import REGISTRY, Applied, Inapplicable, NetworkView
from boundcalc.numerics import value_of
from boundcalc.spec.load import parse_spec

MLP = """
data: {samples: 100, dim: 3}
layers:
  - {op: linear, name: fc1, out: 4}
  - relu
  - {op: linear, name: fc2, out: OUT}
loss: {margin: gamma, delta: delta}
"""
VALUES = {"s_fc1": 2.0, "s_fc2": 3.0, "f_fc1": 3.0, "f_fc2": 4.0, "b_fc1": 5.0, "b_fc2": 6.0,
          "X_F": 10.0, "R": 1.5, "gamma": 0.5, "delta": 0.1, "C1": 1.0, "C2": 1.0}
M, GAMMA, DELTA = 100, 0.5, 0.1


def build(key: str, outputs: int = 2):
    spec = parse_spec(MLP.replace("OUT", str(outputs)))
    result = REGISTRY[key].apply(NetworkView(spec))
    assert isinstance(result, Applied), getattr(result, "reason", "")
    return result


def gap(key: str, outputs: int = 2) -> float:
    return value_of(build(key, outputs).formula.gap, VALUES)


# R_A = (s1·s2)·((b1/s1)^(2/3) + (b2/s2)^(2/3))^(3/2) = 6·(2.5^(2/3) + 2^(2/3))^(3/2)
R_A = 6 * (2.5 ** (2 / 3) + 2.0 ** (2 / 3)) ** 1.5


def test_bartlett_order_form():
    # ‖X‖_F·R_A·ln(W)/(γm) with W = max(3, 4, 2) = 4, plus √(ln(1/δ)/m)
    expected = 10 * R_A * math.log(4) / (GAMMA * M) + math.sqrt(math.log(1 / DELTA) / M)
    assert gap("bartlett2017") == pytest.approx(expected, rel=1e-12)
    # 2.5^(2/3) = 1.8420, 2^(2/3) = 1.5874, sum 3.4294, ^1.5 = 6.3508 → R_A = 6·6.3508 = 38.105
    assert R_A == pytest.approx(38.105, abs=0.001)


def test_bartlett_dudley_form():
    # K = (√2/γ)·‖X‖_F·√ln(2W²)·R_A = 2.828·10·√ln 32·R_A; gap = 8/m + 24·ln(m)·K/m + 3√(ln(2/δ)/(2m))
    k = math.sqrt(2) / GAMMA * 10 * math.sqrt(math.log(32)) * R_A
    expected = 8 / M + 24 * math.log(M) * k / M + 3 * math.sqrt(math.log(2 / DELTA) / (2 * M))
    assert gap("bartlett2017_dudley") == pytest.approx(expected, rel=1e-12)


def test_neyshabur2018():
    # L = 2, h = 4: core = R²·L²·h·ln(L·h)·(s1 s2)²·(f1²/s1² + f2²/s2²)
    #                    = 2.25·4·4·ln 8·36·(9/4 + 16/9) = 36·2.0794·36·4.0278 = 10854.6
    core = 2.25 * 4 * 4 * math.log(8) * 36 * (9 / 4 + 16 / 9)
    assert core == pytest.approx(10854.6, rel=1e-4)
    expected = math.sqrt((core + math.log(2 * M / DELTA)) / (GAMMA ** 2 * M))
    assert gap("neyshabur2018") == pytest.approx(expected, rel=1e-12)


def test_golowich_real_valued_output():
    # k = 1: R̂ = f1·f2·(√(2·ln2·L) + 1)·‖X‖_F/m = 12·(√(2.7726) + 1)·10/100 = 12·2.6651·0.1 = 3.1981
    rademacher = 12 * (math.sqrt(2 * math.log(2) * 2) + 1) * 10 / M
    assert rademacher == pytest.approx(3.1981, abs=1e-4)
    # gap = 2·𝓛·R̂ + 3√(ln(2/δ)/(2m)) with 𝓛 = √2/γ
    expected = 2 * (math.sqrt(2) / GAMMA) * rademacher + 3 * math.sqrt(math.log(2 / DELTA) / (2 * M))
    result = build("golowich2018", outputs=1)
    assert result.status == "exact"
    assert value_of(result.formula.gap, VALUES) == pytest.approx(expected, rel=1e-12)


def test_golowich_multiclass_is_derived_with_k_factor():
    # k = 2: gap = 2·√2·𝓛·k·R̂ + confidence (vector contraction, sum over the k outputs)
    rademacher = 12 * (math.sqrt(2 * math.log(2) * 2) + 1) * 10 / M
    expected = 2 * math.sqrt(2) * (math.sqrt(2) / GAMMA) * 2 * rademacher + 3 * math.sqrt(math.log(20) / 200)
    result = build("golowich2018", outputs=2)
    assert result.status == "derived"
    assert value_of(result.formula.gap, VALUES) == pytest.approx(expected, rel=1e-12)


def test_neyshabur2015():
    # (1/γ)·2^(L−1)·f1·f2·R/√m + √(ln(1/δ)/m) = 2·2·12·1.5/10 + √(2.3026/100) = 7.2 + 0.15174
    expected = 2 * 2 * 12 * 1.5 / 10 + math.sqrt(math.log(10) / 100)
    assert expected == pytest.approx(7.35174, abs=1e-5)
    assert gap("neyshabur2015") == pytest.approx(expected, rel=1e-12)


def test_vc2019():
    # P = 3·4 + 4·2 = 20 weights, L = 2: √(P·L·ln P·ln m/m) + √(ln(1/δ)/m)
    expected = math.sqrt(20 * 2 * math.log(20) * math.log(100) / 100) + math.sqrt(math.log(10) / 100)
    assert gap("vc2019") == pytest.approx(expected, rel=1e-12)


def test_pinto_tight_two_layers_by_hand():
    # tight rules, C1 = C2 = 1: Ĝ ≤ (1/m)·[C1·s2·f1·√h1·‖X‖_F + C2·(2·s1·‖X‖_F)·f2·√h2]
    #                              = (3·3·2·10 + 2·2·10·4·√2)/100 = (180 + 226.27)/100 = 4.0627
    g_hat = (3 * 3 * 2 * 10 + 2 * 2 * 10 * 4 * math.sqrt(2)) / 100
    assert g_hat == pytest.approx(4.0627, abs=1e-4)
    # gap = 2√π·𝓛·Ĝ + 3√(ln(2/δ)/(2m))
    expected = 2 * math.sqrt(math.pi) * (math.sqrt(2) / GAMMA) * g_hat + 3 * math.sqrt(math.log(20) / 200)
    assert gap("pinto2024_tight") == pytest.approx(expected, rel=1e-12)


def test_galanti_uses_filter_norms_and_degrees():
    # conv1: 1 → 2 channels, 3×3 kernel (deg 9) on 4×4 images; fc after flatten sees 16 positions (deg 16).
    # (1/γ)·w_conv1·f_fc·√(9·16)·√(L·ln 16)·R/√m = 2·2·5·12·√(2·2.7726)·1.5/10
    spec = parse_spec("""
data: {samples: 100, shape: [1, 4, 4]}
layers:
  - {op: conv2d, name: conv1, channels: 2, kernel: 3, padding: 1}
  - relu
  - flatten
  - {op: linear, name: fc, out: 2}
loss: {margin: gamma, delta: delta}
""")
    result = REGISTRY["galanti2023"].apply(NetworkView(spec))
    complexity = value_of(result.formula.complexity, {**VALUES, "w_conv1": 2.0, "f_fc": 5.0})
    expected = 2 * 2 * 5 * 12 * math.sqrt(2 * math.log(16)) * 1.5 / 10
    assert complexity == pytest.approx(expected, rel=1e-12)


def test_chain_only_bounds_give_reasons_on_a_residual_spec(spec_path):
    view = NetworkView(spec_path("resnet_block"))
    results = {key: entry.apply(view) for key, entry in REGISTRY.items()}
    for key in ("pinto2024", "bartlett2017", "bartlett2017_dudley", "neyshabur2018", "golowich2018",
                "neyshabur2015", "galanti2023"):
        assert isinstance(results[key], Inapplicable), key
        assert "chain networks only" in results[key].reason and "adds branches" in results[key].reason
    assert isinstance(results["pinto2024_tight"], Applied)
    assert isinstance(results["vc2019"], Applied)   # VC results hold for any feed-forward DAG


def test_margin_bounds_refuse_a_lipschitz_loss():
    spec = parse_spec(MLP.replace("OUT", "2").replace("margin: gamma", "lipschitz: 2"))
    result = REGISTRY["bartlett2017"].apply(NetworkView(spec))
    assert isinstance(result, Inapplicable) and "margin" in result.reason
