"""batchnorm in eval mode: folding into the preceding linear or conv layer against torch's own modules in eval mode
(1e-10 in float64), the unfolded affine layer and its norms against the dense diagonal operator, binding of the
four tensors (num_batches_tracked not unused), and the bounds with --biases keep."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import boundcalc
from boundcalc.errors import BoundcalcError, SpecError
from boundcalc.evaluate import evaluate_checkpoint
from boundcalc.measure.binding import BindingError
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.data import Dataset
from boundcalc.measure.forward import forward
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.measure.run import bind_and_measure


def _randomise_statistics(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every batchnorm gets random γ, β, running mean and variance (so folding is not the identity)."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = module.num_features
            module.weight.data = torch.randn(n, generator=gen, dtype=torch.float64) * 2
            module.bias.data = torch.randn(n, generator=gen, dtype=torch.float64)
            module.running_mean.data = torch.randn(n, generator=gen, dtype=torch.float64)
            module.running_var.data = torch.rand(n, generator=gen, dtype=torch.float64) * 3 + 0.1
            module.num_batches_tracked.fill_(7)
    return model.eval()


def _mlp():
    torch.manual_seed(0)
    return _randomise_statistics(torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                                                     torch.nn.Linear(4, 3)).double(), 1)


def _cnn(bias: bool = False):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=bias),
                              torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
                              torch.nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3, bias=True),
                              torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6 * 4 * 4, 3))
    return _randomise_statistics(net.double(), 2)


MLP_SPEC = """data: {{samples: m, dim: 5}}
layers:
  - {{op: linear, name: fc1, out: 4, param: 0.weight, bias: true}}
  - {{op: batchnorm, name: bn1, param: '1'{bn}}}
  - relu
  - {{op: linear, name: fc2, out: 3, param: 3.weight, bias: true}}
loss: {{margin: gamma}}
"""
CNN_SPEC = """data: {{samples: m, shape: [4, 8, 8]}}
layers:
  - {{op: conv2d, name: c1, channels: 6, kernel: 3, stride: 2, padding: 1, groups: 2, param: 0.weight{bias}}}
  - {{op: batchnorm, name: bn1, param: '1'{bn}}}
  - relu
  - {{op: conv2d, name: c2, channels: 6, kernel: 3, padding: 2, dilation: 2, groups: 3, param: 3.weight, bias: true}}
  - {{op: batchnorm, name: bn2, param: '4'{bn}}}
  - relu
  - flatten
  - {{op: linear, name: head, out: 3, param: 7.weight, bias: true}}
loss: {{margin: gamma}}
"""


def _bound(tmp_path, net, text, biases="keep"):
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text(text)
    spec = boundcalc.load_spec(tmp_path / "s.yaml")
    return bind_and_measure(spec, open_checkpoint(tmp_path / "m.safetensors"), MeasureOptions(), biases=biases)


@pytest.mark.parametrize("fold", [True, False])
def test_linear_batchnorm_equals_the_torch_module_in_eval_mode(tmp_path, fold):
    net = _mlp()
    model = _bound(tmp_path, net, MLP_SPEC.format(bn="" if fold else ", fold: false"))
    x = torch.randn(11, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = forward(model.forward_graph, x, model.weights, model.biases)
    assert torch.allclose(got, net(x).detach(), rtol=0, atol=1e-10)
    folded_note = any("batchnorm bn1 folded into fc1" in n for n in model.notes)
    assert folded_note == fold
    if fold:     # the folded weight is diag(γ/√(σ²+ε))·W, computed here from the module's tensors
        bn = net[1]
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        assert torch.allclose(model.weights["fc1"], a[:, None] * net[0].weight, rtol=0, atol=1e-12)
        assert "bn1" not in model.weights


@pytest.mark.parametrize("bias", [False, True])
def test_conv_batchnorm_with_stride_and_groups_equals_the_torch_module(tmp_path, bias):
    net = _cnn(bias)
    model = _bound(tmp_path, net, CNN_SPEC.format(bias=", bias: true" if bias else "", bn=""))
    x = torch.randn(5, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    got = forward(model.forward_graph, x, model.weights, model.biases)
    assert torch.allclose(got, net(x).detach(), rtol=0, atol=1e-10)
    assert {n for n in model.notes if "folded into" in n} == {
        n for n in model.notes if n.startswith("batchnorm bn1 folded into c1") or n.startswith("batchnorm bn2 folded "
                                                                                               "into c2")}
    assert len([n for n in model.notes if "folded into" in n]) == 2


def test_unfolded_batchnorm_norms_against_the_dense_diagonal_operator(tmp_path):
    net = _cnn()
    model = _bound(tmp_path, net, CNN_SPEC.format(bias="", bn=", fold: false"))
    x = torch.randn(5, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(forward(model.forward_graph, x, model.weights, model.biases), net(x).detach(), atol=1e-10)
    bn = net[4]                                     # after c2: 6 channels × 4 × 4 positions
    a = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    t = bn.bias.detach().numpy() - a * bn.running_mean.numpy()
    operator = np.diag(np.repeat(a, 16))            # the map on the flattened (6, 4, 4) input
    shift = np.repeat(t, 16)
    values = model.extra_values
    assert values["s_bn2"] == pytest.approx(np.linalg.norm(operator, 2), rel=1e-12)
    assert values["f_bn2"] == pytest.approx(np.linalg.norm(operator), rel=1e-12)
    assert values["c_bn2"] == pytest.approx(np.linalg.norm(shift), rel=1e-12)
    assert any("batchnorm bn2 not folded (fold: false)" in n for n in model.notes)


def test_batchnorm_after_an_add_is_an_affine_layer(tmp_path):
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 4, bias=False).double()
    bn = _randomise_statistics(torch.nn.BatchNorm1d(4).double(), 5)
    save_file({"fc.weight": lin.weight.detach().contiguous(),
               **{f"bn.{k}": v.contiguous() for k, v in bn.state_dict().items()}}, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text("data: {samples: m, dim: 4}\nlayers:\n"
                                     "  - {op: linear, name: fc, out: 4, param: fc.weight}\n"
                                     "  - {op: add, name: res, inputs: [fc, input]}\n"
                                     "  - {op: batchnorm, name: bn, param: bn}\n")
    model = bind_and_measure(boundcalc.load_spec(tmp_path / "s.yaml"), open_checkpoint(tmp_path / "m.safetensors"),
                             MeasureOptions(), biases="keep")
    x = torch.randn(6, 4, dtype=torch.float64)
    assert torch.allclose(forward(model.forward_graph, x, model.weights, model.biases),
                          bn(x + lin(x)).detach(), atol=1e-10)
    assert any("not folded (its input is not a linear or conv2d layer" in n for n in model.notes)


def test_missing_batchnorm_tensor_and_missing_bias_are_binding_problems(tmp_path):
    net = _mlp()
    state = {k: v.contiguous() for k, v in net.state_dict().items() if k not in ("1.running_var", "3.bias")}
    save_file(state, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text(MLP_SPEC.format(bn=""))
    with pytest.raises(BindingError) as err:
        bind_and_measure(boundcalc.load_spec(tmp_path / "s.yaml"), open_checkpoint(tmp_path / "m.safetensors"),
                         MeasureOptions(), biases="keep")
    message = str(err.value)
    assert "no tensor 1.running_var" in message and "declares bias: true" in message and "\n" not in message


def test_bad_eps_is_a_spec_error():
    for eps in (0, -1e-5, 2):
        with pytest.raises(SpecError, match="eps must be a number in"):
            boundcalc.parse_spec(f"data: {{dim: 3}}\nlayers:\n  - {{op: batchnorm, eps: {eps}}}\n")


def _digits_like(net, n=40, seed=0):
    x = torch.randn(n, 4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return Dataset("synthetic", x, net(x).argmax(1))


def test_keep_gives_the_tight_bound_and_bias_free_entries_refuse(tmp_path):
    net = _cnn(bias=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "m.safetensors")
    (tmp_path / "s.yaml").write_text(CNN_SPEC.format(bias=", bias: true", bn=""))
    spec = boundcalc.load_spec(tmp_path / "s.yaml")
    checkpoint = open_checkpoint(tmp_path / "m.safetensors")
    with pytest.raises(BoundcalcError, match="--biases keep"):
        bind_and_measure(spec, checkpoint, MeasureOptions(), biases="fold")
    result = evaluate_checkpoint(spec, checkpoint, MeasureOptions(), train=_digits_like(net), test=None,
                                 percentile=10, constants={"C1": 1.0, "C2": 1.0}, delta=0.05, biases="keep")
    by_key = {b.key: b for b in result.bounds}
    assert by_key["pinto2024_tight"].applies and by_key["pinto2024_tight"].complexity > 0
    assert result.data.train.error == 0
    assert result.values["c_head"] == pytest.approx(float(net[7].bias.detach().norm()), rel=1e-12)
    refused = [b for b in result.bounds if not b.applies]
    assert refused and all("bias" in b.reason or "does not cover" in b.reason or "chain" in b.reason
                           or "conv" in b.reason for b in refused)
    assert not by_key["pinto2024"].applies and "bias" in by_key["pinto2024"].reason
