"""Tracing sequence models (issue 19, item 4): token-wise Linear, LayerNorm and the token mean, a hand-written
softmax attention, nn.MultiheadAttention and nn.TransformerEncoderLayer (pre- and post-norm, ReLU and GELU, one
and two layers) traced with ``--input-shape T,d``. Each spec binds the model's state dict by name, its forward
pass on fresh random sequences equals the torch model's eval-mode output to 1e-4 relative (the reference is
``model(x)``, not boundcalc's code), and ``evaluate --biases keep`` on the model's own predictions reports
train error 0. What the spec cannot say (cross-attention, a key_padding_mask, a non-causal attn_mask) is the
table of unsupported operations and exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.measure.batchnorm import bound_tensors
from boundcalc.measure.binding import bind, concrete_graph
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.forward import forward
from boundcalc.spec.load import load_spec
from boundcalc.trace.driver import parse_input_shape
from boundcalc.trace.report import TraceError
from tests.test_trace_roundtrip import random_inputs, traced_files

runner = CliRunner()
#: one sample: T = 5 tokens of 6 features (the models embed them to width 8)
SHAPE = (5, 6)
ENCODERS = ["encoder_post_norm_relu", "encoder_pre_norm_gelu", "encoder_two_layers_pre_norm_relu",
            "encoder_two_layers_post_norm_gelu"]
MODELS = ["layernorm_tokens", "hand_attention", "hand_attention_one_head", "mha", "mha_causal",
          "mha_need_weights_unused", "mha_without_bias", "encoder_causal", *ENCODERS]


def spec_layers(path) -> list[dict]:
    return yaml.safe_load(path.read_text())["layers"]


@pytest.mark.parametrize("factory", MODELS)
def test_spec_forward_equals_the_model(tmp_path, factory):
    model, spec_path, weights = traced_files(tmp_path, factory, SHAPE)
    assert yaml.safe_load(spec_path.read_text())["data"] == {"samples": "m", "tokens": 5, "dim": 6}
    spec = load_spec(spec_path)
    checkpoint = open_checkpoint(weights)
    graph = concrete_graph(spec)
    binding = bind(spec, checkpoint, graph)
    assert not binding.problems and not binding.unused, binding.rows
    x = random_inputs(SHAPE, n=16, seed=11)
    with torch.no_grad():
        expected = model(x).double()
    plan, w, b = bound_tensors(spec, graph, binding, checkpoint)
    got = forward(plan.graph, x, w, b)
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


@pytest.mark.parametrize("factory", ["hand_attention", "mha", *ENCODERS])
def test_evaluate_on_the_models_own_predictions_reports_train_error_zero(tmp_path, factory):
    model, spec_path, weights = traced_files(tmp_path, factory, SHAPE)
    x = random_inputs(SHAPE, n=40, seed=5)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    assert len(set(y.tolist())) > 1          # not one class for every sample (error 0 would then say little)
    np.savez(tmp_path / "train.npz", X=x.numpy(), y=y.numpy())
    result = runner.invoke(app, ["evaluate", str(spec_path), str(weights), "--data", str(tmp_path / "train.npz"),
                                 "--format", "json", "--biases", "keep"])
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["data"]["train"]["error"] == 0.0 and report["data"]["m"] == 40


def test_hand_written_attention_becomes_linear_q_k_v_softmax_mix_and_output_linear(tmp_path):
    _, two_heads, _ = traced_files(tmp_path, "hand_attention", SHAPE)
    layers = spec_layers(two_heads)
    assert [l["op"] for l in layers] == ["linear"] * 4 + ["softmax_mix", "linear", "token_mean", "linear"]
    mix = layers[4]
    assert mix["heads"] == 2 and "scale" not in mix and mix["inputs"] == ["body_q", "body_k", "body_v"]
    assert [l["param"] for l in layers[1:4]] == ["body.q.weight", "body.k.weight", "body.v.weight"]
    assert layers[5]["param"] == "body.o.weight"
    (tmp_path / "one").mkdir()
    _, one_head, _ = traced_files(tmp_path / "one", "hand_attention_one_head", SHAPE)
    mix = spec_layers(one_head)[4]
    assert mix["op"] == "softmax_mix" and mix["heads"] == 1 and mix["scale"] == pytest.approx(0.3)


def test_multihead_attention_is_the_attention_composite_bound_by_its_prefix(tmp_path):
    _, plain, _ = traced_files(tmp_path, "mha", SHAPE)
    attention = spec_layers(plain)[1]
    assert attention == {"op": "attention", "name": "body_attn", "heads": 2, "dim": 8, "param": "body.attn"}
    for factory, field in (("mha_causal", "causal"), ("encoder_causal", "causal"), ("mha_without_bias", "bias")):
        (tmp_path / factory).mkdir()
        _, path, _ = traced_files(tmp_path / factory, factory, SHAPE)
        attention = next(l for l in spec_layers(path) if l["op"] == "attention")
        assert attention[field] is (field == "causal"), (factory, attention)


@pytest.mark.parametrize("factory, activation, pre_norm", [("encoder_post_norm_relu", "relu", False),
                                                           ("encoder_pre_norm_gelu", "gelu", True)])
def test_encoder_layer_becomes_layernorm_attention_add_linear_activation(tmp_path, factory, activation, pre_norm):
    _, spec_path, _ = traced_files(tmp_path, factory, SHAPE)
    ops = [l["op"] for l in spec_layers(spec_path) if l["op"] != "dropout"]
    block = ["attention", "add", "layernorm", "linear", activation, "linear", "add", "layernorm"] if not pre_norm \
        else ["layernorm", "attention", "add", "layernorm", "linear", activation, "linear", "add"]
    assert ops == ["linear", *block, "token_mean", "linear"]


@pytest.mark.parametrize("factory, needle", [
    ("mha_cross", "cross-attention"),
    ("mha_key_padding_mask", "key_padding_mask"),
    ("mha_attn_mask", "attn_mask"),
    ("hand_attention_causal_mask", "masked_fill"),
])
def test_what_the_spec_cannot_say_is_the_table_and_exit_2(tmp_path, factory, needle):
    from tests import trace_models

    result = runner.invoke(app, ["trace", f"{trace_models.__file__}:{factory}", "--input-shape", "5,6", "-o",
                                 str(tmp_path / "spec.yaml")])
    assert result.exit_code == 2, result.stdout + result.stderr
    text = " ".join((result.stdout + result.stderr).split())
    assert "cannot express" in text and needle in text
    assert "body.attn" in text or factory.startswith("hand")
    assert "Traceback" not in text and not (tmp_path / "spec.yaml").exists()


def test_input_shape_of_two_numbers_is_a_sequence():
    assert parse_input_shape("5, 6") == (5, 6)
    with pytest.raises(TraceError, match="T,D"):
        parse_input_shape("1,2,3,4")
    with pytest.raises(TraceError, match="positive"):
        parse_input_shape("0,6")
