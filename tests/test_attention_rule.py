"""The token bound (State.token_norm: the largest per-token ℓ2 norm of a layer's image) and the softmax_mix rule
(docs/references.md §3.10): every value checked against a form worked out by hand, never the code's own output."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import boundcalc
from boundcalc.calculus.compose import compose_scope
from boundcalc.calculus.rules import TIGHT
from boundcalc.calculus.quantities import SymbolicQuantities
from boundcalc.derivation import data_state
from boundcalc.graph import build_graph

B = sp.Symbol("B_X", positive=True)


def _token_bound(text: str):
    """The token bound at the output of ``text``'s network when the data's tokens have norm ≤ B_X."""
    spec = boundcalc.parse_spec(text)
    q = SymbolicQuantities(spec.symbols)
    q.sample_count = spec.data.samples
    return compose_scope(build_graph(spec), data_state(spec.data.norm, token_norm=B), TIGHT, q).state.token_norm


def _syms(names: str):
    return (sp.Symbol(n, positive=True) for n in names.split())


HEAD = "data: {samples: m, tokens: T, dim: d}\nlayers:\n"


def test_token_wise_affine_then_gelu_by_hand():
    """‖W x_t + b‖ ≤ s·B + c, then gelu (ρ = sup|gelu'| = (1 + erf 1)/2 + 1/(e√π), gelu(0) = 0) scales it."""
    got = _token_bound(HEAD + "  - {op: linear, name: fc, out: h, bias: true}\n  - {op: gelu, name: act}\n")
    s, c = _syms("s_fc c_fc")
    rho = (1 + sp.erf(1)) / 2 + 1 / (sp.E * sp.sqrt(sp.pi))
    assert abs(float((got - rho * (s * B + c)).subs({s: 1.3, c: 0.4, B: 2.0}))) < 1e-12


def test_layernorm_resets_the_token_bound():
    """γ ⊙ N(x_t) + β: ‖N(x_t)‖ < √d whatever x_t, so ≤ ‖γ‖∞·√d + ‖β‖₂ (s_ln, c_ln); affine: false gives √d."""
    got = _token_bound(HEAD + "  - {op: linear, name: fc, out: 5}\n  - {op: layernorm, name: ln}\n")
    s, c = _syms("s_ln c_ln")
    assert sp.simplify(got - (s * sp.sqrt(5) + c)) == 0
    plain = _token_bound(HEAD + "  - {op: linear, name: fc, out: 5}\n  - {op: layernorm, name: ln, affine: false}\n")
    assert sp.simplify(plain - sp.sqrt(5)) == 0


def test_residual_add_sums_the_token_bounds():
    """x + W2·relu(W1·LN(x)): B + s2·s1·√d (the fork at the input keeps B_X, the layernorm branch its reset)."""
    got = _token_bound(HEAD + "  - {op: layernorm, name: ln, affine: false}\n  - {op: linear, name: a, out: h}\n"
                       "  - relu\n  - {op: linear, name: b, out: d}\n  - {op: add, name: res, inputs: [b, input]}\n")
    s_a, s_b, d = _syms("s_a s_b d")
    assert sp.simplify(got - (B + s_b * s_a * sp.sqrt(d))) == 0


def test_shifted_map_adds_its_value_at_zero_per_token():
    """sigmoid (ρ = 1/4, σ(0) = 1/2) on (T, 3): ρ·B + (1/2)·√3."""
    got = _token_bound("data: {samples: m, tokens: T, dim: 3}\nlayers:\n  - sigmoid\n")
    assert sp.simplify(got - (B / 4 + sp.sqrt(3) / 2)) == 0


def test_the_bound_stops_where_the_samples_stop_being_sequences():
    """token_mean gives vectors: no token bound after it (nor after the head that reads them)."""
    assert _token_bound(HEAD + "  - token_mean\n  - {op: linear, name: head, out: 2}\n") is None
    assert _token_bound(HEAD + "  - {op: linear, name: a, out: h}\n  - token_mean\n") is None


def test_a_derivation_without_attention_does_not_track_it():
    """No layer reads the bound, so B_X does not enter (sequence_mlp's outputs stay as they were)."""
    spec = boundcalc.parse_spec(HEAD + "  - {op: linear, name: a, out: h}\n  - token_mean\n")
    assert "B_X" not in {s.name for s in boundcalc.derive(spec).complexity.free_symbols}


def test_a_symbolic_repeat_solves_the_token_bound_as_a_recurrence():
    """L pre-norm blocks x ↦ x + W_t·LN(x) (LN without affine, W_t of spectral norm s_a[t]): B(t) = B(t−1) +
    s_a[t]·√d, so B(L) = B_X + √d·Σ_{t=1..L} s_a[t]; checked at L = 1..4 against that sum."""
    got = _token_bound(HEAD + "  - repeat:\n      name: blocks\n      count: L\n      index: t\n      body:\n"
                       "        - {op: layernorm, name: ln, affine: false}\n        - {op: linear, name: a, out: d}\n"
                       "        - {op: add, name: res, inputs: [a, input]}\n")
    by_name = {x.name: x for x in got.free_symbols if isinstance(x, sp.Symbol)}
    s = sp.IndexedBase("s_a", positive=True)
    for n in range(1, 5):
        values = {s[i]: 0.5 + i for i in range(1, n + 1)}
        hand = 1.5 + 2.0 * sum(values.values())
        at_n = got.subs(by_name["L"], n).doit().xreplace(values)
        assert abs(float(at_n.subs({by_name["d"]: 4.0, B: 1.5})) - hand) < 1e-9


def _mix_node(T: int, width: int, heads: int):
    from boundcalc.calculus.quantities import Node

    return Node(name="mix", base="mix", op="softmax_mix", params={"heads": sp.Integer(heads), "causal": False,
                "scale": None}, index=None, out_shape=(T, width), in_shapes=((T, width),) * 3)


def _numeric_state(token_norm: float, anchor: float = 0.0, lipschitz: float = 1.0):
    from boundcalc.calculus.state import State

    return State(width=1.0, diameter=1.0, image_norm=1.0, anchor=anchor, lipschitz=lipschitz, min_rank=None,
                 single_point=False, diameter_rule="", token_norm=token_norm)


def test_softmax_mix_constants_on_a_tiny_case_by_hand():
    """T = 4, width 4, 2 heads (d_k = 2, scale 1/√2), B_q = 1.5, B_k = 0.5, B_v = 2, m = 3:
    L = √4·√(1 + (1/2)·4·(2.25 + 0.25)/2) = 2·√3.5; token bound √2·2; image norm √(3·4)·2√2 = √96;
    diameter 2·√96; anchor √T·0.7 = 1.4; Lipschitz L·(1 + 2 + 3)."""
    from boundcalc.calculus.attention_rule import softmax_mix_tight
    from boundcalc.calculus.quantities import NumericQuantities
    from boundcalc.symbols import SymbolTable

    q = NumericQuantities(SymbolTable(), {"C1": 1.0, "C2": 1.0})
    q.sample_count = 3
    inputs = [_numeric_state(1.5, lipschitz=1.0), _numeric_state(0.5, lipschitz=2.0),
              _numeric_state(2.0, anchor=0.7, lipschitz=3.0)]
    out = softmax_mix_tight(_mix_node(4, 4, 2), q, inputs)
    L = 2 * 3.5 ** 0.5
    assert out.gains == pytest.approx((L, L, L), rel=1e-12)
    assert out.state.token_norm == pytest.approx(2 * 2 ** 0.5, rel=1e-12)
    assert out.state.image_norm == pytest.approx(96 ** 0.5, rel=1e-12)
    assert out.state.diameter == pytest.approx(2 * 96 ** 0.5, rel=1e-12)
    assert out.state.anchor == pytest.approx(1.4, rel=1e-12)
    assert out.state.lipschitz == pytest.approx(6 * L, rel=1e-12)
    assert out.terms == ()


def test_softmax_mix_constant_exceeds_the_largest_numerical_slope():
    """The constant against plain numpy: for random pairs (Q, K, V), (Q′, K′, V′) with tokens on the spheres of
    radii B_q, B_k, B_v (and random nearby pairs), ‖φ(·) − φ(·′)‖_F / ‖Δ‖_F never exceeds L = √T·√(1 +
    scale²·B_v²·(B_q² + B_k²)/2); 1 head, causal or not."""
    rng = np.random.default_rng(0)
    T, w, B = 5, 3, (2.0, 1.5, 1.0)
    scale = 1 / np.sqrt(w)
    L = np.sqrt(T) * np.sqrt(1 + scale ** 2 * B[2] ** 2 * (B[0] ** 2 + B[1] ** 2) / 2)

    def mix(Q, K, V, causal):
        S = scale * Q @ K.T
        if causal:
            S = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, S)
        A = np.exp(S - S.max(axis=1, keepdims=True))
        return (A / A.sum(axis=1, keepdims=True)) @ V

    def on_spheres():
        Z = rng.normal(size=(3, T, w))
        return [b * z / np.linalg.norm(z, axis=1, keepdims=True) for b, z in zip(B, Z)]

    worst = 0.0
    for trial in range(3000):
        a = on_spheres()
        b = on_spheres() if trial % 2 else [x + 1e-4 * rng.normal(size=x.shape) for x in a]
        b = [x * np.minimum(1, r / np.linalg.norm(x, axis=1, keepdims=True)) for x, r in zip(b, B)]
        causal = trial % 3 == 0
        delta = np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b)))
        worst = max(worst, np.linalg.norm(mix(*a, causal) - mix(*b, causal)) / delta)
    assert 0.2 * L < worst <= L


def test_derive_layernorm_then_attention_shows_sqrt_T_by_hand():
    """LN (ε = 1, no affine) → attention (1 head, no biases) → token_mean → head, by hand: after N the tokens
    have norm ≤ √d and the single point has norm √(m·T·d); q, k, v add first-layer terms f·√d·√(m·T·d) and
    token bounds s·√d; the mix has L = √T·√(1 + s_v²·d·(s_q² + s_k²)/2) (scale² = 1/d), image √(m·T)·s_v·√d;
    the output linear adds C2·2·√(m·T·d)·s_v·f_o·√d; token_mean divides by √T; the head adds
    C2·2·s_o·√(m·d)·s_v·f_head·√k."""
    spec = boundcalc.parse_spec(HEAD + "  - {op: layernorm, name: ln, eps: 1, affine: false}\n"
                                "  - {op: attention, name: att, heads: 1, dim: d, bias: false}\n"
                                "  - token_mean\n  - {op: linear, name: head, out: k}\n")
    C1, C2, m, T, d, k = _syms("C1 C2 m T d k")
    s_q, s_k, s_v, s_o, f_q, f_k, f_v, f_o, s_h, f_h = _syms(
        "s_att.q s_att.k s_att.v s_att f_att.q f_att.k f_att.v f_att s_head f_head")
    L = sp.sqrt(T) * sp.sqrt(1 + s_v ** 2 * d * (s_q ** 2 + s_k ** 2) / 2)
    mix_width = L * (f_q + f_k + f_v) * sp.sqrt(d) * sp.sqrt(m * T * d)
    out_width = C1 * s_o * mix_width + C2 * 2 * sp.sqrt(m * T * d) * s_v * f_o * sp.sqrt(d)
    hand = (C1 * s_h * out_width / sp.sqrt(T) + C2 * 2 * s_o * sp.sqrt(m * d) * s_v * f_h * sp.sqrt(k)) / m
    derived = boundcalc.derive(spec).complexity
    values = dict(zip((C1, C2, m, T, d, k, s_q, s_k, s_v, s_o, f_q, f_k, f_v, f_o, s_h, f_h),
                      (1.3, 0.7, 50, 16, 4, 3, 0.9, 1.1, 0.8, 1.2, 1.5, 1.7, 1.4, 2.0, 0.6, 1.0)))
    by_name = {str(x): x for x in derived.free_symbols}
    assert set(by_name) == {str(x) for x in values}
    got = float(derived.xreplace({by_name[str(x)]: v for x, v in values.items()}))
    assert got == pytest.approx(float(hand.xreplace(values)), rel=1e-12)


RAW_STREAM = HEAD + ("  - repeat:\n      name: blocks\n      count: L\n      index: t\n      body:\n"
                     "        - {op: attention, name: att, heads: 1, dim: d}\n"
                     "        - {op: add, name: res, inputs: [att, input]}\n"
                     "  - token_mean\n  - {op: linear, name: head, out: k}\n")


def test_attention_on_the_raw_stream_of_a_symbolic_repeat_is_refused_with_the_reason(tmp_path):
    """B_q then depends on the repeat's entering token bound, and L is not linear in it: one error line, exit 2;
    with a numeric count (unrolled) the same network derives, √T in its closed form."""
    import subprocess
    import sys

    path = tmp_path / "raw.yaml"
    path.write_text(RAW_STREAM)
    run = subprocess.run([sys.executable, "-m", "boundcalc", "derive", str(path)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == ""
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: layer att.mix[1]: softmax_mix") and "symbolic repeat" in line
    unrolled = boundcalc.derive(boundcalc.parse_spec(RAW_STREAM, values={"L": 2})).complexity
    assert "T" in {str(x) for x in unrolled.free_symbols} and "B_X" in {str(x) for x in unrolled.free_symbols}


def test_as_printed_still_refuses_attention():
    spec = boundcalc.parse_spec(HEAD + "  - {op: attention, name: att, heads: 1, dim: d}\n")
    with pytest.raises(boundcalc.errors.DeriveError):
        boundcalc.derive(spec, rules="as_printed")


def test_bundled_transformer_closed_form_equals_the_unrolled_derivation():
    """specs/transformer.yaml (pre-norm blocks, depth L and tokens T symbols) derives; its closed form at L = 1..3
    equals the unrolled derivation's, with T in it; B_X is not: every attention reads a layernorm's output, whose
    token bound ‖γ‖∞·√h + ‖β‖₂ does not depend on the data."""
    import math
    from pathlib import Path

    from boundcalc.numerics import log_value
    from tests.conftest import evaluate, random_values

    path = Path(__file__).resolve().parents[1] / "specs" / "transformer.yaml"
    closed = boundcalc.derive(boundcalc.load_spec(path)).complexity
    names = {str(x) for x in closed.free_symbols}
    assert {"T", "L"} <= names and "B_X" not in names
    L = next(x for x in closed.free_symbols if str(x) == "L")
    for count in (1, 2, 3):
        unrolled = boundcalc.derive(boundcalc.load_spec(path, values={"L": count})).complexity
        at_count = closed.xreplace({L: count}).doit()
        values = random_values(at_count, unrolled, seed=count)
        want = evaluate(unrolled, values)
        assert evaluate(at_count, values) == pytest.approx(want, rel=1e-9)
        sign, log = log_value(closed, {**{str(k): v for k, v in values.items()}, "L": count})
        assert sign == 1 and math.exp(log) == pytest.approx(want, rel=1e-9)


def test_evaluate_fills_B_X_from_the_data_and_the_tight_bound_applies(tmp_path):
    """An nn.MultiheadAttention checkpoint, attention read straight from the data (no layernorm): B_X enters, and
    evaluate fills it with max over samples and tokens of ‖x_it‖₂ (numpy), and the tight bound applies, finite."""
    import math

    import torch
    from safetensors.torch import save_file

    from boundcalc.evaluate import evaluate_checkpoint
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.data import Dataset
    from boundcalc.measure.quantities import MeasureOptions

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(4, 2, batch_first=True).double().eval()
    head = torch.nn.Linear(4, 3, bias=False).double()
    tensors = {f"mha.{n}": t for n, t in mha.state_dict().items()} | {"head.weight": head.weight.detach()}
    save_file({n: t.contiguous().clone() for n, t in tensors.items()}, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text("data: {samples: m, tokens: 5, dim: 4}\nlayers:\n"
                                     "  - {op: attention, name: att, heads: 2, dim: 4, param: mha}\n"
                                     "  - token_mean\n  - {op: linear, name: head, out: 3, param: head.weight}\n"
                                     "loss: {margin: gamma}\n")
    x = 3 * torch.randn(30, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = head(mha(x, x, x, need_weights=False)[0].mean(dim=1)).argmax(dim=1)
    result = evaluate_checkpoint(boundcalc.load_spec(tmp_path / "s.yaml"), open_checkpoint(tmp_path / "m.safetensors"),
                                 MeasureOptions(), train=Dataset("train", x, y), test=None, percentile=10,
                                 constants={"C1": 1.0, "C2": 1.0}, delta=0.05, biases="keep")
    want = float(np.linalg.norm(x.numpy(), axis=2).max())
    assert result.data.max_token_norm == pytest.approx(want, rel=1e-12)
    (tight,) = [b for b in result.bounds if b.key == "pinto2024_tight"]
    assert tight.applies and math.isfinite(tight.complexity) and tight.complexity > 0


def test_two_heads_can_reach_sqrt_heads_times_B_v():
    """v_1 = (B, 0), v_2 = (0, B) (both of norm B); scores that send head 1 to token 1 and head 2 to token 2 give an
    output token of norm ≈ √2·B: the token bound √heads·B_v is needed (B_v alone is not a bound)."""
    import torch

    from boundcalc.ops import OPS

    B = 3.0
    v = torch.tensor([[[B, 0.0], [0.0, B]]], dtype=torch.float64)
    q = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)   # head j scores key j high: token j
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    out = OPS["softmax_mix"].forward("m", {"heads": 2, "causal": False, "scale": 40}, [q, k, v])[0].numpy()
    assert np.linalg.norm(out[0]) > 0.999 * np.sqrt(2) * B
