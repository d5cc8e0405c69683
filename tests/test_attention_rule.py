"""The token bound (State.token_norm: the largest per-token ℓ2 norm of a layer's image) and the softmax_mix rule
(docs/references.md §3.10): every value checked against a form worked out by hand, never the code's own output."""
from __future__ import annotations

import sympy as sp

import boundcalc
from boundcalc.calculus.compose import compose_scope
from boundcalc.calculus.rules import TIGHT, SymbolicQuantities
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
