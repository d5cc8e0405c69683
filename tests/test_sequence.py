"""Sequence data (``data: {tokens: T, dim: d}``), token-wise linear layers, layernorm and token_mean: the forward
pass against torch's own modules, the constants against numbers worked out by hand or by plain numpy/torch (never
the code's own output), the measured γ, β norms, and the bundled spec's closed form with T explicit."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from safetensors.torch import save_file

import boundcalc
from boundcalc.graph import build_graph
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.forward import forward
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.measure.run import bind_and_measure
from boundcalc.ops import OPS
from boundcalc.ops.sequence import layernorm_lipschitz

ROOT = Path(__file__).resolve().parents[1]


class SequenceNet(torch.nn.Module):
    """specs/sequence_mlp.yaml in torch: LN(gelu(W x_t + b)) + x_t, the mean over tokens, a bias-free head."""

    def __init__(self, d: int, k: int, eps: float, affine: bool = True) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(d, d)
        self.ln = torch.nn.LayerNorm(d, eps=eps, elementwise_affine=affine)
        self.head = torch.nn.Linear(d, k, bias=False)

    def forward(self, x):
        return self.head((self.ln(torch.nn.functional.gelu(self.fc(x))) + x).mean(dim=1))


SPEC = """data: {{samples: m, tokens: {T}, dim: {d}}}
layers:
  - {{op: linear, name: fc, out: {d}, bias: true, param: fc.weight}}
  - {{op: gelu, name: act}}
  - {{op: layernorm, name: ln, eps: {eps}, param: ln{affine}}}
  - {{op: add, name: res, inputs: [ln, input]}}
  - {{op: token_mean, name: pool}}
  - {{op: linear, name: head, out: {k}, param: head.weight}}
loss: {{margin: gamma}}
"""


def _net(d: int, k: int, eps: float, affine: bool, seed: int) -> SequenceNet:
    torch.manual_seed(seed)
    net = SequenceNet(d, k, eps, affine).double()
    if affine:       # trained-looking γ, β (torch starts at 1 and 0)
        with torch.no_grad():
            net.ln.weight.normal_(1.0, 0.7)
            net.ln.bias.normal_(0.0, 0.5)
    return net.eval()


def _bound_model(tmp_path, net: SequenceNet, T: int, d: int, k: int, eps: float, affine: bool):
    save_file({n: t.contiguous() for n, t in net.state_dict().items()}, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text(SPEC.format(T=T, d=d, k=k, eps=eps, affine="" if affine else ", affine: false"))
    spec = boundcalc.load_spec(tmp_path / "s.yaml")
    return bind_and_measure(spec, open_checkpoint(tmp_path / "m.safetensors"), MeasureOptions(), biases="keep")


@pytest.mark.parametrize("T,d,k,eps,affine,seed", [(5, 4, 3, 1e-5, True, 0), (1, 6, 2, 1e-3, True, 1),
                                                   (7, 3, 4, 0.5, False, 2)])
def test_forward_pass_equals_torch(tmp_path, T, d, k, eps, affine, seed):
    net = _net(d, k, eps, affine, seed)
    model = _bound_model(tmp_path, net, T, d, k, eps, affine)
    x = torch.randn(11, T, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3
    got = forward(model.forward_graph, x, model.weights, model.biases)
    with torch.no_grad():
        want = net(x)
    assert torch.allclose(got, want, rtol=0, atol=1e-6)
    assert (float((got - want).abs().max())) < 1e-12          # float64 throughout: far below 1e-6


def test_each_kind_against_its_torch_module():
    """Token-wise nn.Linear (weight (out, d) on every token), nn.LayerNorm(d) over the last axis, and the mean over
    dim 1, each on its own, through the kinds' forward passes."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 5, generator=gen, dtype=torch.float64)
    linear = torch.nn.Linear(5, 3).double()
    got = OPS["linear"].forward("fc", {}, [x], linear.weight, linear.bias)
    assert torch.allclose(got, linear(x), atol=1e-12)
    norm = torch.nn.LayerNorm(5, eps=0.01).double()
    with torch.no_grad():
        norm.weight.normal_(generator=gen)
        norm.bias.normal_(generator=gen)
    got = OPS["layernorm"].forward("ln", {"eps": sp.Float(0.01)}, [x], norm.weight, norm.bias)
    assert torch.allclose(got, norm(x), atol=1e-12)
    plain = torch.nn.LayerNorm(5, eps=0.01, elementwise_affine=False).double()
    assert torch.allclose(OPS["layernorm"].forward("ln", {"eps": sp.Float(0.01)}, [x]), plain(x), atol=1e-12)
    assert torch.allclose(OPS["token_mean"].forward("p", {}, [x]), x.mean(dim=1), atol=1e-15)


def test_shapes_of_sequence_layers():
    spec = boundcalc.parse_spec("data: {samples: m, tokens: T, dim: d}\nlayers:\n  - {op: linear, name: a, out: h}\n"
                                "  - {op: layernorm, name: ln}\n  - token_mean\n  - {op: linear, name: b, out: k}\n")
    graph = build_graph(spec)
    T, d, h, k = (sp.Symbol(n, positive=True) for n in "Tdhk")
    assert [graph.nodes[n]["shape"] for n in ("input", "a", "ln", "tokenmean1", "b")] == [(T, d), (T, h), (T, h),
                                                                                        (h,), (k,)]
    assert OPS["linear"].weight_shape({"out": h}, (T, d)) == (h, d)
    assert OPS["layernorm"].weight_shape({}, (T, h)) == (h,)
    same = boundcalc.parse_spec("data: {samples: m, shape: [T, d]}\nlayers: [token_mean]\n")
    assert same.data.shape == spec.data.shape          # shape: [T, d] is the same input


# -- the constants, by hand -----------------------------------------------------------------------------------------
def test_token_mean_constant_is_the_operator_norm_of_the_mean_matrix():
    """ρ = 1/√T against numpy's norm of the (d × T·d) matrix that averages T tokens."""
    for T, d in ((1, 3), (4, 2), (9, 5)):
        matrix = np.kron(np.ones((1, T)) / T, np.eye(d))
        rho = OPS["token_mean"].lipschitz_at("p", {}, lambda v: v, (sp.Integer(T), sp.Integer(d)))
        assert float(rho) == pytest.approx(np.linalg.norm(matrix, 2), rel=1e-12)
        assert float(rho) == pytest.approx(1 / math.sqrt(T), rel=1e-15)


def _normalise(x: np.ndarray, eps: float) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + eps)


@pytest.mark.parametrize("eps,d", [(1e-5, 2), (0.01, 5), (1.0, 8)])
def test_layernorm_normalisation_facts_numerically(eps, d):
    """1/√ε bounds every difference quotient and is approached at constant inputs (the Jacobian there is P/√ε,
    P = I − 11ᵀ/d, computed by torch's autograd); N(0) = 0; ‖N(x)‖ < √d for inputs of any size."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, d)) * rng.choice([1e-4, 1e-2, 1.0, 100.0], size=(20000, 1))
    y = x + rng.normal(size=x.shape) * rng.choice([1e-6, 1e-2, 1.0, 10.0], size=(20000, 1))
    ratios = np.linalg.norm(_normalise(x, eps) - _normalise(y, eps), axis=1) / np.linalg.norm(x - y, axis=1)
    assert ratios.max() <= 1 / math.sqrt(eps) * (1 + 1e-9)
    constant = torch.full((d,), 0.3, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(
        lambda v: torch.nn.functional.layer_norm(v, (d,), eps=eps), constant).numpy()
    assert np.linalg.norm(jacobian, 2) == pytest.approx(1 / math.sqrt(eps), rel=1e-6)
    assert np.allclose(jacobian, (np.eye(d) - 1 / d) / math.sqrt(eps), atol=1e-9 / math.sqrt(eps))
    assert np.all(np.linalg.norm(_normalise(x, eps), axis=1) < math.sqrt(d))
    assert np.all(_normalise(np.zeros((1, d)), eps) == 0)
    assert float(layernorm_lipschitz({"eps": sp.Float(eps)})) == pytest.approx(1 / math.sqrt(eps), rel=1e-12)


def test_layernorm_and_token_mean_closed_form_by_hand():
    """a (token-wise, bias-free) → layernorm (ε = 1/4, no affine) → token_mean → head, worked by hand:
    a: first-layer term f_a·√h·X_F, then N ≤ s_a·X_F; layernorm: ρ = 2, N = √(m·T·h), D = 2·√(m·T·h), anchor 0;
    token_mean: ρ = 1/√T, so D = 2·√(m·h); head: C2·2·√(m·h)·f_head·√k. Gains to the output: C1·s_head·(1/√T)·2.
    Ĝ_S = (2·C1·s_head·f_a·√h·X_F/√T + 2·C2·√(m·h)·f_head·√k)/m."""
    spec = boundcalc.parse_spec("data: {samples: m, tokens: T, dim: d}\nlayers:\n  - {op: linear, name: a, out: h}\n"
                                "  - {op: layernorm, name: ln, eps: 0.25, affine: false}\n  - token_mean\n"
                                "  - {op: linear, name: head, out: k}\n")
    C1, C2, s_head, f_a, f_head, X_F, m, T, h, k = (sp.Symbol(n, positive=True) for n in
                                                   "C1 C2 s_head f_a f_head X_F m T h k".split())
    hand = (2 * C1 * s_head * f_a * sp.sqrt(h) * X_F / sp.sqrt(T) + 2 * C2 * sp.sqrt(m * h) * f_head * sp.sqrt(k)) / m
    derived = boundcalc.derive(spec).complexity
    assert sp.simplify(derived - hand) == 0
    values = dict(C1=1.0, C2=1.0, s_head=1.2, f_a=1.5, f_head=0.7, X_F=5.0, m=10.0, T=4.0, h=3.0, k=2.0)
    number = (2 * 1.2 * 1.5 * math.sqrt(3) * 5 / 2 + 2 * math.sqrt(30) * 0.7 * math.sqrt(2)) / 10
    concrete = boundcalc.parse_spec("data: {samples: 10, tokens: 4, dim: 3}\nlayers:\n  - {op: linear, name: a, "
                                    "out: 3}\n  - {op: layernorm, name: ln, eps: 0.25, affine: false}\n  - token_mean\n"
                                    "  - {op: linear, name: head, out: 2}\n")
    assert float(boundcalc.compose_numeric(concrete, {**values, "s_a": 0.9})) == pytest.approx(number, rel=1e-12)


def test_token_wise_affine_and_layernorm_affine_by_hand():
    """fc (token-wise, bias) then layernorm (ε = 1, affine) on T tokens of d features, worked by hand:
    fc: first layer f_fc·√h·X_F and bias c_fc·√(m·T·h) (Γ·1 sums m·T draws); layernorm: ρ = 1, N = √(m·T·h),
    D = 2·√(m·T·h); its affine part (W = diag γ, one per token): disturbance C2·D·f_ln·√h, bias c_ln·√(m·T·h);
    gain of fc's terms C1·s_ln. The image norm after fc, s_fc·X_F + √(m·T)·c_fc, never reaches the bound: the
    layernorm resets it."""
    spec = boundcalc.parse_spec("data: {samples: m, tokens: T, dim: d}\nlayers:\n"
                                "  - {op: linear, name: fc, out: h, bias: true}\n  - {op: layernorm, name: ln, eps: 1}\n")
    C1, C2, f_fc, c_fc, s_ln, f_ln, c_ln, X_F, m, T, h = (sp.Symbol(n, positive=True) for n in
                                                         "C1 C2 f_fc c_fc s_ln f_ln c_ln X_F m T h".split())
    cap = sp.sqrt(m * T * h)
    hand = (C1 * s_ln * (f_fc * sp.sqrt(h) * X_F + c_fc * cap) + C2 * 2 * cap * f_ln * sp.sqrt(h) + c_ln * cap) / m
    assert sp.simplify(boundcalc.derive(spec).complexity - hand) == 0


def test_layernorm_on_the_data_uses_the_image_bound_for_the_single_point():
    """layernorm (ε = 1e-2, affine) right on the data X: N(X) is one point of norm ≤ √(m·T·d) (not ‖X‖_F/√ε), so
    the affine part's first-layer term is f_ln·√d·√(m·T·d), plus its bias c_ln·√(m·T·d); no disturbance (D = 0)."""
    spec = boundcalc.parse_spec("data: {samples: m, tokens: T, dim: d}\nlayers:\n  - {op: layernorm, eps: 0.01}\n")
    f, c, m, T, d = (sp.Symbol(n, positive=True) for n in "f_ln1 c_ln1 m T d".split())
    bound = boundcalc.derive(spec)
    assert sp.simplify(bound.complexity - (f * sp.sqrt(d) + c) * sp.sqrt(m * T * d) / m) == 0
    assert {t.kind for t in bound.terms} == {"first layer", "anchor"}


def test_token_wise_bias_shifts_the_image_norm_by_sqrt_m_T():
    """fc (token-wise, bias) → head: the head's disturbance reads D = 2·(s_fc·X_F + √(m·T)·c_fc) (‖b·1ᵀ‖_F over
    m samples of T tokens), times f_head·√k."""
    spec = boundcalc.parse_spec("data: {samples: m, tokens: T, dim: d}\nlayers:\n"
                                "  - {op: linear, name: fc, out: h, bias: true}\n  - {op: linear, name: head, out: k}\n")
    bound = boundcalc.derive(spec)
    (term,) = [t for t in bound.terms if t.layer == "head" and t.kind == "disturbance"]
    C2, s_fc, c_fc, f_head, X_F, m, T, k = (sp.Symbol(n, positive=True) for n in
                                           "C2 s_fc c_fc f_head X_F m T k".split())
    assert sp.simplify(term.local - C2 * 2 * (s_fc * X_F + sp.sqrt(m * T) * c_fc) * f_head * sp.sqrt(k)) == 0


def test_bundled_spec_shows_T_in_the_closed_form():
    spec = boundcalc.load_spec(ROOT / "specs" / "sequence_mlp.yaml")
    complexity = boundcalc.derive(spec).complexity
    T = sp.Symbol("T", positive=True)
    assert T in complexity.free_symbols
    at = {str(s): 1.7 for s in complexity.free_symbols if str(s) != "T"}
    values = [float(complexity.xreplace({s: at.get(str(s), t) for s in complexity.free_symbols}))
              for t in (1.0, 4.0, 16.0)]
    assert values[0] > values[1] > values[2]              # the fc terms fall as 1/√T (mean over more tokens)
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "derive", "specs/sequence_mlp.yaml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "sqrt(T)" in proc.stdout and "layernorm" in proc.stdout


# -- measured values -------------------------------------------------------------------------------------------------
def test_layernorm_norms_and_bias_norms_measured(tmp_path):
    """s_ln = max|γ_j|, f_ln = ‖γ‖₂, c_ln = ‖β‖₂ and c_fc = ‖b‖₂ of the shared vectors (numpy on the tensors)."""
    net = _net(4, 3, 1e-5, True, 5)
    model = _bound_model(tmp_path, net, 5, 4, 3, 1e-5, True)
    gamma, beta, bias = (t.detach().numpy() for t in (net.ln.weight, net.ln.bias, net.fc.bias))
    assert model.extra_values["s_ln"] == pytest.approx(np.abs(gamma).max(), rel=1e-15)
    assert model.extra_values["f_ln"] == pytest.approx(np.sqrt((gamma ** 2).sum()), rel=1e-14)
    assert model.extra_values["c_ln"] == pytest.approx(np.sqrt((beta ** 2).sum()), rel=1e-14)
    assert model.extra_values["c_fc"] == pytest.approx(np.sqrt((bias ** 2).sum()), rel=1e-14)
    assert "ln" not in model.measurements and set(model.measurements) == {"fc", "head"}


def test_layernorm_without_affine_binds_no_tensor(tmp_path):
    net = _net(3, 2, 0.1, False, 6)
    model = _bound_model(tmp_path, net, 2, 3, 2, 0.1, False)
    assert "ln" not in model.binding.weights and not model.binding.unused


def test_evaluate_on_own_predictions_has_train_error_zero(tmp_path):
    from boundcalc.evaluate import evaluate_checkpoint
    from boundcalc.measure.data import Dataset

    net = _net(4, 3, 1e-5, True, 7)
    save_file({n: t.contiguous() for n, t in net.state_dict().items()}, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text(SPEC.format(T=6, d=4, k=3, eps="1e-5", affine=""))
    x = torch.randn(40, 6, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    with torch.no_grad():
        y = net(x).argmax(dim=1)
    result = evaluate_checkpoint(boundcalc.load_spec(tmp_path / "s.yaml"), open_checkpoint(tmp_path / "m.safetensors"),
                                 MeasureOptions(), train=Dataset("train", x, y), test=None, percentile=10,
                                 constants={"C1": 1.0, "C2": 1.0}, delta=0.05, biases="keep")
    assert result.data.train.error == 0
    (tight,) = [b for b in result.bounds if b.key == "pinto2024_tight"]
    assert tight.applies and math.isfinite(tight.complexity)
    others = {b.key: b.reason for b in result.bounds if b.key != "pinto2024_tight"}
    assert all(reason for reason in others.values())


def test_layernorm_eps_not_positive_is_one_error_line_in_a_real_process(tmp_path):
    """The CLI corpus (tests/hostile/round4_sequence.py) runs every hostile sequence input in process; one here in a
    fresh interpreter."""
    (tmp_path / "s.yaml").write_text("data: {samples: m, tokens: T, dim: 4}\nlayers:\n  - {op: layernorm, eps: -1e-5}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "derive", str(tmp_path / "s.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {tmp_path / 's.yaml'}:3 layers[0].eps: eps must be a number > 0, "
                                        "got -1e-5"]


def test_certify_network_runs_layernorm_and_batchnorm_as_torch_does(tmp_path):
    """certify perturbs the tensors that the forward pass runs with: a layernorm's γ and β, and a batchnorm's
    (a, t) = (γ/√(σ² + ε), β − a·μ), folded into the linear layer before it or kept as its own affine layer. The
    bound network's outputs equal torch's eval-mode outputs in every case."""
    from boundcalc.certify.network import bind_network

    net = _net(4, 3, 1e-5, True, 9)
    _bound_model(tmp_path, net, 5, 4, 3, 1e-5, True)
    bound = bind_network(boundcalc.load_spec(tmp_path / "s.yaml"), open_checkpoint(tmp_path / "m.safetensors"))
    assert ("ln", "bias", "ln.bias") in {(s.node, s.role, s.tensor) for s in bound.slots}
    x = torch.randn(6, 5, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(bound.outputs(bound.trained, x), net(x), atol=1e-12)
    torch.manual_seed(3)
    bn = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).double().eval()
    with torch.no_grad():      # statistics and affine parameters far from (0, 1), so that each of them matters
        bn[1].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn[1].running_var.copy_(torch.tensor([0.25, 4.0, 1.5]))
        bn[1].weight.copy_(torch.tensor([2.0, -0.5, 1.25]))
        bn[1].bias.copy_(torch.tensor([0.1, 0.3, -0.7]))
    save_file({n: t.contiguous() for n, t in bn.state_dict().items()}, tmp_path / "bn.safetensors")
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for fold, parameters in (("false", 3 * 4 + 3 + 3 + 3), ("true", 3 * 4 + 3)):
        (tmp_path / "bn.yaml").write_text("data: {samples: m, dim: 4}\nlayers:\n  - {op: linear, out: 3, bias: true, "
                                          f"param: 0.weight}}\n  - {{op: batchnorm, param: '1', fold: {fold}}}\n")
        network = bind_network(boundcalc.load_spec(tmp_path / "bn.yaml"), open_checkpoint(tmp_path / "bn.safetensors"))
        assert network.dim == parameters
        with torch.no_grad():
            assert torch.allclose(network.outputs(network.trained, z), bn(z), atol=1e-12), fold


def test_uniform_regime_keeps_the_tokens_and_sets_the_width():
    """compare --regime uniform: every hidden width (and the input's) becomes h, the number of tokens stays T."""
    from boundcalc.compare.regime import uniform

    spec = boundcalc.load_spec(ROOT / "specs" / "sequence_mlp.yaml")
    regime = uniform(spec)
    T, h = sp.Symbol("T", positive=True), sp.Symbol("h", positive=True)
    assert regime.spec.data.shape == (T, h)
    assert build_graph(regime.spec).nodes["res"]["shape"] == (T, h)
    assert any("tokens is kept" in line for line in regime.substitutions)
