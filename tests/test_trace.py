"""The tracer's mapping, one behaviour per test: each model is a few lines of torch, and the expected layers are
written out by hand. Rows of what cannot be expressed are pinned by their phrases."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import boundcalc
from boundcalc.ops import OPS
from boundcalc.trace import UnsupportedError
from boundcalc.trace import capture as capture_module
from boundcalc.trace import mapping


def layers(model, shape):
    traced = boundcalc.trace_module(model, torch.randn(2, *shape))
    return [(l.kind, l.name, l.fields, l.inputs) for l in traced.layers], traced


def refused(model, shape) -> list:
    with pytest.raises(UnsupportedError) as info:
        boundcalc.trace_module(model, torch.randn(2, *shape))
    return info.value.rows


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False), nn.ReLU()

    def forward(self, x):
        return self.act(self.fc2(self.act(self.fc1(x))) + x)


def test_residual_add_reads_the_input_and_relu_module_reused_gets_unique_names():
    got, traced = layers(Residual(), (4,))
    assert got == [("linear", "fc1", {"out": 4, "param": "fc1.weight"}, ["input"]),
                   ("relu", "act", {}, ["fc1"]),
                   ("linear", "fc2", {"out": 4, "param": "fc2.weight"}, ["act"]),
                   ("add", "add", {}, ["fc2", "input"]),
                   ("relu", "act_2", {}, ["add"])]
    assert "inputs: [fc2, input]" in traced.text and traced.method == "torch.export"


def test_conv_same_padding_stride_view_flatten_and_leaky_slope():
    model = nn.Sequential(nn.Conv2d(2, 3, 5, padding="same", bias=False), nn.LeakyReLU(0.2),
                          nn.Conv2d(3, 4, 3, stride=2, bias=False), nn.Flatten(), nn.Linear(4 * 3 * 3, 2, bias=False))
    got, _ = layers(model, (2, 8, 8))
    assert [(k, f) for k, _, f, _ in got] == [
        ("conv2d", {"channels": 3, "kernel": 5, "padding": 2, "param": "0.weight"}),
        ("leaky_relu", {"slope": 0.2}), ("conv2d", {"channels": 4, "kernel": 3, "stride": 2, "param": "2.weight"}),
        ("flatten", {}), ("linear", {"out": 2, "param": "4.weight"})]


def test_the_fx_fallback_gives_the_same_layers_and_says_so(monkeypatch):
    exported, _ = layers(Residual(), (4,))

    def refuse(*args):
        raise RuntimeError("export refused")

    monkeypatch.setattr(capture_module, "capture_export", refuse)
    got, traced = layers(Residual(), (4,))
    assert got == exported
    assert traced.method == "torch.fx" and "export refused" in traced.note and "torch.fx" in traced.text


#: an operator torch.export cannot run (it has a CPU kernel but no fake-tensor kernel), while torch.fx records it
_NO_FAKE = torch.library.Library("boundcalc_test_fx", "DEF")
_NO_FAKE.define("double(Tensor x) -> Tensor")
_NO_FAKE.impl("double", lambda x: 2 * x, "CPU")


class CustomOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(torch.ops.boundcalc_test_fx.double(x))


def test_export_failing_on_its_own_falls_back_to_fx_which_names_the_op():
    with pytest.raises(Exception, match="boundcalc_test_fx"):   # export fails by itself, not forced
        torch.export.export(CustomOp().eval(), (torch.randn(2, 4),), strict=False)
    with pytest.raises(UnsupportedError) as info:
        boundcalc.trace_module(CustomOp(), torch.randn(2, 4))
    (row,) = info.value.rows
    assert row.op == "double" and "captured with torch.fx" in str(info.value)


def test_dropout_is_the_identity_when_no_dropout_kind_is_registered(monkeypatch):
    monkeypatch.delitem(OPS, "dropout", raising=False)
    got, _ = layers(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.3), nn.Linear(3, 2)), (3,))
    assert [k for k, *_ in got] == ["linear", "identity", "linear"]


def test_an_unregistered_kind_is_a_row_not_a_layer(monkeypatch):
    monkeypatch.delitem(OPS, "avgpool")
    rows = refused(nn.Sequential(nn.AvgPool2d(2), nn.Flatten()), (1, 4, 4))
    assert [(r.module, r.op) for r in rows] == [("0", "avg_pool2d (AvgPool2d)")]
    assert "'avgpool' is not registered" in rows[0].why


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return torch.sort(self.fc(self.fc(x)) * self.scale, dim=1).values


def test_every_problem_is_one_row_weight_sharing_and_unknown_ops():
    rows = refused(Odd(), (4,))
    whys = " | ".join(f"{r.op}: {r.why}" for r in rows)
    assert "fc.weight, fc.bias used by 2 operations (weight sharing)" in whys
    assert "mul" in whys and "sort" in whys and len(rows) >= 4


class ViewThenInPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, bias=False)

    def forward(self, x):
        y = self.conv(x)
        flat = y.flatten(1)
        y.relu_()
        return flat


def test_an_in_place_change_seen_through_an_earlier_view_is_refused():
    rows = refused(ViewThenInPlace(), (1, 5, 5))
    assert any("reads through a view taken before the change" in r.why for r in rows)


class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


def test_a_data_dependent_branch_names_its_module_and_both_captures():
    (row,) = refused(nn.Sequential(nn.Linear(4, 4), Branch()), (4,))
    assert row.module == "1" and "torch.export" in row.why and "torch.fx" in row.why


def test_the_forward_check_catches_a_layer_that_is_not_the_op(monkeypatch):
    """A deliberately wrong mapping (leaky slope doubled) must be caught by the numeric check, not written."""
    monkeypatch.setitem(__import__("boundcalc.trace.table", fromlist=["CONVERTERS"]).CONVERTERS, "leaky_relu",
                        mapping._activation("leaky_relu", lambda n: {"slope": 2 * n.args["negative_slope"]}))
    (row,) = refused(nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(0.2), nn.Linear(3, 2)), (3,))
    assert row.op == "(forward check)" and "differs from the model's output" in row.why


def test_parameter_keys_that_yaml_would_misread_are_quoted_and_still_bind():
    model = nn.Sequential()
    model.add_module("1e3", nn.Linear(3, 3))
    model.add_module("true", nn.ReLU())
    model.add_module("no", nn.Linear(3, 2))
    traced = boundcalc.trace_module(model, torch.randn(2, 3))
    assert traced.forward_error < 1e-6
    assert [l.params[0] for l in traced.layers if l.params] == ["1e3.weight", "no.weight"]


def test_conv_dilation_is_written_only_if_the_kind_declares_it():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2, bias=False), nn.Flatten())
    if "dilation" in OPS["conv2d"].fields.model_fields:
        got, _ = layers(model, (1, 7, 7))
        assert got[0][2]["dilation"] == 2
    else:
        (row,) = refused(model, (1, 7, 7))
        assert "dilation" in row.why


def test_tracing_a_file_writes_no_bytecode_next_to_it(tmp_path):
    from boundcalc.trace.api import trace_target

    (tmp_path / "net.py").write_text("import torch\ndef make():\n    return torch.nn.Linear(3, 2)\n")
    traced = trace_target(f"{tmp_path}/net.py:make", "3")
    assert [l.kind for l in traced.layers] == ["linear"] and sorted(p.name for p in tmp_path.iterdir()) == ["net.py"]
