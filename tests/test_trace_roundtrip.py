"""Round trips of the tracer (issue 16, "How we will check it"): trace an in-repo model → save its state dict →
the spec binds it by name with nothing written by hand (``evaluate``, ``measure --spec``) → the spec's forward pass
on fresh random inputs equals the model's eval-mode output to 1e-4 relative, and on labels that are the model's
own predictions ``evaluate`` reports train error 0.

The reference is the torch model itself (``model(x)``), not boundcalc's code. Models that need op kinds not in
this registry yet are skipped with the kinds named; they run once those kinds are registered."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import boundcalc
from boundcalc.cli import app
from boundcalc.measure.binding import bind, concrete_graph
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.batchnorm import bound_tensors
from boundcalc.measure.forward import forward
from boundcalc.ops import OPS
from boundcalc.spec.load import load_spec
from tests import trace_models

runner = CliRunner()


def needs(*kinds: str, fields: dict[str, str] | None = None):
    """Skip unless every kind is registered (and declares the given fields: kind → field)."""
    missing = [k for k in kinds if k not in OPS]
    missing += [f"{k}.{f}" for k, f in (fields or {}).items() if k in OPS and f not in OPS[k].fields.model_fields]
    return pytest.mark.skipif(bool(missing), reason=f"needs op kind(s)/field(s) {', '.join(missing)}, not registered "
                                                    "in this branch (helper-ops-maps / helper-ops-weights)")


#: (factory in tests/trace_models.py, one sample's shape, marks)
MODELS = [
    pytest.param("mlp", (64,), id="mlp-with-biases"),
    pytest.param("cnn", (1, 8, 8), id="small-cnn"),
    pytest.param("cnn_with_biases", (1, 8, 8), id="small-cnn-with-biases"),
    pytest.param("resnet_block", (1, 8, 8), id="resnet-block-downsample"),
    pytest.param("bn_pool_cnn", (1, 8, 8), id="cnn-batchnorm-maxpool",
                 marks=needs("batchnorm", "maxpool", "gelu", "adaptive_avgpool", fields={"conv2d": "bias"})),
    pytest.param("concat_block", (1, 8, 8), id="concat-block", marks=needs("concat")),
    pytest.param("resnet18_cifar", (3, 32, 32), id="resnet18-cifar", marks=needs("batchnorm", "adaptive_avgpool")),
    pytest.param("resnet18_imagenet", (3, 224, 224), id="resnet18-imagenet",
                 marks=needs("batchnorm", "maxpool", "adaptive_avgpool")),
]
#: models whose biases (if any) fold in today's pipeline, so evaluate runs with its defaults
EVALUATE = [p for p in MODELS if p.id not in ("small-cnn-with-biases",)] + [
    pytest.param("cnn_with_biases", (1, 8, 8), id="small-cnn-with-biases",
                 marks=needs(fields={"conv2d": "bias", "linear": "bias"}))]


def traced_files(folder, factory: str, shape):
    """The model, its traced spec written by the CLI (as a user would), and its state dict as safetensors."""
    model = getattr(trace_models, factory)()
    target = f"{trace_models.__file__}:{factory}"
    result = runner.invoke(app, ["trace", target, "--input-shape", ",".join(map(str, shape)), "-o",
                                 str(folder / "spec.yaml")])
    assert result.exit_code == 0, result.stdout + result.stderr
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return model, folder / "spec.yaml", folder / "model.safetensors"


def random_inputs(shape, n: int = 16, seed: int = 3) -> torch.Tensor:
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("factory, shape", MODELS)
def test_spec_forward_equals_the_model(tmp_path, factory, shape):
    model, spec_path, weights = traced_files(tmp_path, factory, shape)
    spec = load_spec(spec_path)
    checkpoint = open_checkpoint(weights)
    graph = concrete_graph(spec)
    binding = bind(spec, checkpoint, graph)
    assert not binding.problems and not binding.unused, binding.rows
    x = random_inputs(shape, n=4 if factory == "resnet18_imagenet" else 16)
    with torch.no_grad():
        expected = model(x).double()
    plan, weights, biases = bound_tensors(spec, graph, binding, checkpoint)    # batchnorms folded, as evaluate does
    got = forward(plan.graph, x, weights, biases)
    assert float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


@pytest.mark.parametrize("factory, shape", [p for p in EVALUATE if p.id != "resnet18-imagenet"])
def test_evaluate_on_the_models_own_predictions_reports_train_error_zero(tmp_path, factory, shape):
    model, spec_path, weights = traced_files(tmp_path, factory, shape)
    x = random_inputs(shape, n=40, seed=5)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    np.savez(tmp_path / "train.npz", X=x.numpy(), y=y.numpy())
    # biases of conv layers (their own, or a folded batchnorm's) do not fold into a constant input: keep them
    biases = [] if factory == "mlp" else ["--biases", "keep"]
    result = runner.invoke(app, ["evaluate", str(spec_path), str(weights), "--data", str(tmp_path / "train.npz"),
                                 "--format", "json", *biases])
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["data"]["train"]["error"] == 0.0
    assert report["data"]["m"] == 40
    if factory in ("resnet_block", "resnet18_cifar"):   # ReLU DAGs with biases (BN folded), max/avg pooling
        gonon = next(b for b in report["bounds"] if b["key"] == "gonon2024")
        assert gonon["applies"] and gonon["gap"] > 0, gonon


def test_measure_spec_binds_the_traced_spec_by_name(tmp_path):
    _, spec_path, weights = traced_files(tmp_path, "resnet_block", (1, 8, 8))
    result = runner.invoke(app, ["measure", str(weights), "--spec", str(spec_path), "--format", "json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    tensors = {item["tensor"] for item in json.loads(result.stdout)["tensors"]}
    assert tensors == {"stem.weight", "block.conv1.weight", "block.conv2.weight", "block.downsample.0.weight",
                       "fc.weight"}


def test_evaluate_model_needs_no_files_and_leaves_none(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = trace_models.mlp()
    x = random_inputs((64,), n=30, seed=7)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    evaluation = boundcalc.evaluate_model(model, x, y, X_test=x[:10], y_test=y[:10], delta=0.1)
    assert evaluation.data.train.error == 0.0 and evaluation.data.test.error == 0.0
    assert evaluation.data.m == 30
    assert any(b.applies and b.gap is not None for b in evaluation.bounds)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_model_refuses_an_unknown_setting():
    model = trace_models.mlp()
    with pytest.raises(boundcalc.BoundcalcError, match="unknown setting.*percentil"):
        boundcalc.evaluate_model(model, torch.randn(4, 64), [0, 1, 2, 3], percentil=5)
