"""The ``attention`` composite and ``softmax_mix``: the forward pass equals torch's nn.MultiheadAttention, the
packed in_proj is bound by row slices, the rule's constants by hand and the softmax fact it rests on."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import boundcalc
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.forward import forward
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.measure.run import bind_and_measure

PACKED = """data: {{samples: m, tokens: {T}, dim: {d}}}
layers:
  - {{op: attention, name: att, heads: {h}, dim: {d}, causal: {causal}, param: mha}}
  - {{op: token_mean, name: pool}}
  - {{op: linear, name: head, out: 2, bias: false, param: head.weight}}
loss: {{margin: gamma}}
"""
EXPLICIT = """data: {{samples: m, tokens: {T}, dim: {d}}}
layers:
  - {{op: attention, name: att, heads: {h}, dim: {d}, causal: {causal}, q: wq.weight, k: wk.weight,
     v: wv.weight, o: wo.weight}}
  - {{op: token_mean, name: pool}}
  - {{op: linear, name: head, out: 2, bias: false, param: head.weight}}
loss: {{margin: gamma}}
"""


def _mha(d: int, h: int, seed: int) -> torch.nn.MultiheadAttention:
    torch.manual_seed(seed)
    mha = torch.nn.MultiheadAttention(d, h, batch_first=True).double().eval()
    with torch.no_grad():      # non-zero biases (torch starts them at 0)
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    return mha


def _torch_out(mha, head, x, causal):
    T = x.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        y, _ = mha(x, x, x, need_weights=False, attn_mask=mask)
        return head(y.mean(dim=1))


def _tensors(mha, head, packed: bool) -> dict:
    if packed:
        out = {f"mha.{n}": t for n, t in mha.state_dict().items()}
    else:
        d = mha.embed_dim
        w, b = mha.in_proj_weight.detach(), mha.in_proj_bias.detach()
        out = {f"w{r}.{kind}": (w if kind == "weight" else b)[i * d:(i + 1) * d]
               for i, r in enumerate("qkv") for kind in ("weight", "bias")}
        out.update({"wo.weight": mha.out_proj.weight.detach(), "wo.bias": mha.out_proj.bias.detach()})
    out["head.weight"] = head.weight.detach()
    return {n: t.contiguous().clone() for n, t in out.items()}


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("T,d,h,causal,seed", [(5, 4, 1, False, 0), (6, 6, 2, True, 1), (3, 8, 2, False, 2),
                                               (4, 6, 1, True, 3)])
def test_forward_pass_equals_torch_multihead_attention(tmp_path, packed, T, d, h, causal, seed):
    mha = _mha(d, h, seed)
    head = torch.nn.Linear(d, 2, bias=False).double()
    save_file(_tensors(mha, head, packed), tmp_path / "m.safetensors")
    text = (PACKED if packed else EXPLICIT).format(T=T, d=d, h=h, causal=str(causal).lower())
    (tmp_path / "s.yaml").write_text(text)
    spec = boundcalc.load_spec(tmp_path / "s.yaml")
    model = bind_and_measure(spec, open_checkpoint(tmp_path / "m.safetensors"), MeasureOptions(), biases="keep")
    x = torch.randn(9, T, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    got = forward(model.forward_graph, x, model.weights, model.biases)
    want = _torch_out(mha, head, x, causal)
    assert float((got - want).abs().max()) < 1e-10
    assert sorted(model.weights) == ["att", "att.k", "att.q", "att.v", "head"]
    if packed:   # the three row blocks of one tensor
        w = mha.in_proj_weight.detach()
        assert torch.equal(model.weights["att.k"], w[d:2 * d]) and torch.equal(model.biases["att.v"],
                                                                                mha.in_proj_bias.detach()[2 * d:])


def test_softmax_mix_forward_by_hand():
    """One head, T = 2, scale 1: the weights of a row are e^{q·k_s}/Σ; causal row 1 sees only token 1."""
    from boundcalc.ops import OPS

    q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    k = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
    v = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]], dtype=torch.float64)
    params = {"heads": 1, "causal": False, "scale": 1}
    got = OPS["softmax_mix"].forward("m", params, [q, k, v])[0].numpy()
    s = np.array([[1.0, 0.0], [2.0, 2.0]])
    a = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    assert np.allclose(got, a @ v[0].numpy(), atol=1e-15)
    causal = OPS["softmax_mix"].forward("m", {**params, "causal": True}, [q, k, v])[0].numpy()
    assert np.allclose(causal[0], [1.0, 2.0]) and np.allclose(causal[1], a[1] @ v[0].numpy())


def test_shapes_of_the_expanded_attention():
    spec = boundcalc.parse_spec("data: {tokens: T, dim: 8}\nlayers:\n  - {op: attention, heads: 2, dim: 8, "
                                "head_dim: 3}\n  - token_mean\n")
    from boundcalc.graph import build_graph

    graph = build_graph(spec)
    shapes = {n: graph.nodes[n]["shape"] for n in graph}
    assert [str(d) for d in shapes["attn1.q"]] == ["T", "6"] and [str(d) for d in shapes["attn1"]] == ["T", "8"]
    assert [str(d) for d in shapes["attn1.mix"]] == ["T", "6"]


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_change_in_l1_is_at_most_half_the_spread_of_the_score_change():
    """The fact the attention rule rests on (docs/references.md §3.10): with J = diag(p) − ppᵀ, ‖Jδ‖₁ =
    Σ p_i·|δ_i − E_p δ| ≤ (max δ − min δ)/2 (the mean absolute deviation of a variable in [a, b]); along the
    segment, ‖Δp‖₁ ≤ (max δ − min δ)/2 ≤ ‖δ‖₂/√2, so the contract's √2 holds with a factor 2 to spare.
    Checked on random pairs (plain numpy), and 1/√2 is approached (two equal scores, δ = (ε, −ε))."""
    rng = np.random.default_rng(0)
    worst_spread, worst_l2 = 0.0, 0.0
    for n in (2, 3, 5, 17):
        s = rng.normal(size=(4000, n)) * rng.choice([0.1, 1, 5], size=(4000, 1))
        d = rng.normal(size=(4000, n)) * rng.choice([1e-3, 0.3, 3, 30], size=(4000, 1))
        change = np.abs(_softmax(s + d) - _softmax(s)).sum(axis=1)
        worst_spread = max(worst_spread, float((change / (d.max(axis=1) - d.min(axis=1))).max()))
        worst_l2 = max(worst_l2, float((change / np.linalg.norm(d, axis=1)).max()))
    assert worst_spread <= 0.5 + 1e-12 and worst_l2 <= 2 ** -0.5 + 1e-12
    eps = 1e-6
    tight = np.abs(_softmax(np.array([eps, -eps])) - 0.5).sum() / (eps * np.sqrt(2))
    assert abs(tight - 2 ** -0.5) < 1e-6


@pytest.mark.parametrize("layer,needle", [
    ("{op: attention, heads: 3, dim: 4, param: mha}", "does not divide"),
    ("{op: attention, heads: 2, dim: 4, q: a, k: b}", "needs all of q, k, v, o"),
    ("{op: attention, heads: 2, dim: 4, param: mha, q: a, k: b, v: c, o: d}", "not both"),
    ("{op: attention, heads: 2, dim: 4, head_dim: 3, param: mha}", "packed in_proj"),
    ("{op: attention, heads: 0, dim: 4}", "heads must be positive"),
    ("{op: attention, heads: 2, dim: 4, inputs: [nowhere]}", "nowhere"),
    ("{op: softmax_mix, heads: 2, inputs: [input, input, input], scale: -1}", "scale must be a number > 0"),
    ("{op: softmax_mix, heads: 2, inputs: [input, input, input], scale: sqrt(x)}", "scale must be a number > 0"),
    ("{op: softmax_mix, heads: 2, inputs: [input, input]}", "inputs: [q, k, v]"),
    ("{op: linear, out: 4, param: w, rows: [4, 2]}", "0 ≤ start < stop"),
    ("{op: linear, out: 4, param: w, rows: [0, 3]}", "select 3 rows"),
    ("{op: linear, out: 4, rows: [0, 4]}", "rows needs param"),
])
def test_hostile_attention_fields_are_one_error_line(tmp_path, layer, needle):
    import subprocess
    import sys

    (tmp_path / "s.yaml").write_text(f"data: {{tokens: 3, dim: 4}}\nlayers:\n  - {layer}\n  - token_mean\n")
    run = subprocess.run([sys.executable, "-m", "boundcalc", "derive", str(tmp_path / "s.yaml")],
                         capture_output=True, text=True, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert needle in lines[0]


def test_causal_flag_on_a_non_square_mask_and_vectors_are_refused():
    """No spec op changes the number of tokens today, so the kind's own shape check is called directly."""
    from boundcalc.errors import SpecError
    from boundcalc.ops import OPS

    def fail(message):
        return SpecError(message)

    kind, params = OPS["softmax_mix"], {"heads": 1, "causal": True, "scale": None}
    assert kind.output_shape(params, [(4, 6), (4, 6), (4, 2)], fail, ("q", "k", "v")) == (4, 2)
    with pytest.raises(SpecError, match="causal mask needs a square score matrix"):
        kind.output_shape(params, [(3, 6), (4, 6), (4, 2)], fail, ("q", "k", "v"))
    with pytest.raises(SpecError, match="keys 'k' have 4 tokens but the values 'v' 5"):
        kind.output_shape(params, [(4, 6), (4, 6), (5, 2)], fail, ("q", "k", "v"))
    with pytest.raises(SpecError, match="reads \\(tokens, width\\) inputs"):
        kind.output_shape(params, [(6,), (4, 6), (4, 2)], fail, ("q", "k", "v"))
    with pytest.raises(SpecError, match="need one width"):
        kind.output_shape(params, [(4, 6), (4, 4), (4, 2)], fail, ("q", "k", "v"))
