"""Symbolic sizes read from a checkpoint: repeat counts from the number of weight tensors, widths from their
shapes; the result equals giving the same numbers with --set, and what cannot be inferred is an error."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.errors import BoundcalcError
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.infer import concrete_spec
from boundcalc.spec.load import load_spec, parse_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()


def chain(path: Path, widths: list[int]) -> Path:
    """A bias-free chain checkpoint with layer widths d → widths[0] → …, tensors named in order."""
    gen = torch.Generator().manual_seed(0)
    save_file({f"l{i:02d}.weight": torch.randn(o, n, generator=gen) / n ** 0.5
               for i, (n, o) in enumerate(zip(widths, widths[1:]))}, path)
    return path


def infer(spec_text_or_path, ckpt: Path, values=None):
    if isinstance(spec_text_or_path, Path):
        load = lambda v: load_spec(spec_text_or_path, values=v)  # noqa: E731
    else:
        load = lambda v: parse_spec(spec_text_or_path, values=v)  # noqa: E731
    return concrete_spec(load, open_checkpoint(ckpt), values or {})


def test_lowrank_mlp_sizes_and_depth(tmp_path):
    # 12 → 16 → 16 → 16 → 16 → 16 → 5: fc_in, 4 hidden (count L − 2 = 4), head
    spec, inferred = infer(SPECS / "lowrank_mlp.yaml", chain(tmp_path / "c.safetensors", [12, 16, 16, 16, 16, 16, 5]))
    assert inferred == {"L": 6, "d": 12, "h": 16, "k": 5}
    assert spec.data.shape == (12,)


def test_set_values_are_kept_and_a_conflict_is_a_binding_error(tmp_path):
    ckpt = chain(tmp_path / "c.safetensors", [12, 16, 16, 5])
    _, inferred = infer(SPECS / "lowrank_mlp.yaml", ckpt, {"h": 16})
    assert "h" not in inferred and inferred["L"] == 3
    result = runner.invoke(app, ["measure", str(ckpt), "--spec", str(SPECS / "lowrank_mlp.yaml"), "--set", "h=8"])
    assert result.exit_code == 2 and "shape" in result.stderr


@pytest.mark.parametrize("text,widths,phrase", [
    ("data: {samples: m, dim: d}\nlayers:\n  - repeat: {count: L, index: t, body: [{op: linear, name: a, out: h}, "
     "relu, {op: linear, name: b, out: h}]}\n", [4, 4, 4, 4], "cannot infer the count"),
    ("data: {samples: m, dim: d}\nlayers:\n  - repeat: {count: L, index: t, body: [{op: linear, name: a, out: d}]}\n"
     "  - repeat: {count: K, index: u, body: [{op: linear, name: b, out: d}]}\n", [4, 4, 4], "only one"),
    ("data: {samples: m, dim: d}\nlayers:\n  - {op: linear, name: a, out: 2*h}\n", [4, 5], "no single positive"),
])
def test_what_cannot_be_inferred(tmp_path, text, widths, phrase):
    with pytest.raises(BoundcalcError, match=phrase):
        infer(text, chain(tmp_path / "c.safetensors", widths))


def test_conv_input_size_still_needs_set(tmp_path):
    text = ("data: {samples: m, shape: [1, H, H]}\nlayers:\n  - {op: conv2d, name: c, channels: ch, kernel: 3, padding: 1}\n"
            "  - flatten\n  - {op: linear, name: fc, out: 10}\n")
    save_file({"c.weight": torch.randn(4, 1, 3, 3), "fc.weight": torch.randn(10, 256)}, tmp_path / "k.safetensors")
    spec, inferred = infer(text, tmp_path / "k.safetensors")
    assert inferred == {"ch": 4}          # H cannot come from a kernel; the binding then asks for it
    (tmp_path / "s.yaml").write_text(text)
    result = runner.invoke(app, ["measure", str(tmp_path / "k.safetensors"), "--spec", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2 and "--set H" in result.stderr


def test_evaluate_with_inferred_sizes_equals_evaluate_with_set(tmp_path):
    ckpt = chain(tmp_path / "c.safetensors", [12, 16, 16, 16, 5])
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(80, 12)), y=rng.integers(0, 5, 80))
    base = ["evaluate", str(SPECS / "lowrank_mlp.yaml"), str(ckpt), "--data", str(tmp_path / "d.npz"),
            "--margin-percentile", "90", "-f", "json"]
    inferred = runner.invoke(app, base)
    given = runner.invoke(app, base + ["--set", "L=4", "--set", "h=16", "--set", "d=12", "--set", "k=5"])
    assert inferred.exit_code == 0 and given.exit_code == 0, inferred.output + given.output
    a, b = json.loads(inferred.stdout), json.loads(given.stdout)
    assert [x["gap_log10"] for x in a["bounds"]] == [x["gap_log10"] for x in b["bounds"]]
    assert "h = 16 (inferred from the checkpoint's tensor shapes)" in a["assumptions"]


def test_token_wise_linear_reads_its_input_width_from_the_last_axis(tmp_path):
    """A linear on (T, d) has weight (h, d): d and h come from the tensor, never T (which the weights cannot tell)."""
    text = ("data: {samples: m, tokens: T, dim: d}\nlayers:\n  - {op: linear, out: h}\n  - token_mean\n"
            "  - {op: linear, out: k}\n")
    spec, inferred = infer(text, chain(tmp_path / "c.safetensors", [6, 5, 3]), {"T": 7})
    assert inferred == {"d": 6, "h": 5, "k": 3}
    assert spec.data.shape == (7, 6)


def test_grouped_conv_input_channels_are_groups_times_the_kernels(tmp_path):
    """conv2d with groups g has weight (c_out, c_in/g, k, k): the input channels are g·(its second dimension)."""
    save_file({"c.weight": torch.randn(4, 3, 3, 3), "fc.weight": torch.randn(2, 4 * 4 * 4)}, tmp_path / "g.safetensors")
    text = ("data: {samples: m, shape: [c, 6, 6]}\nlayers:\n  - {op: conv2d, channels: 4, kernel: 3, groups: 2}\n"
            "  - flatten\n  - {op: linear, out: 2}\n")
    _, inferred = infer(text, tmp_path / "g.safetensors")
    assert inferred == {"c": 6}
