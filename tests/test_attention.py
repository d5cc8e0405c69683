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
