"""The Python side of tracing: ``spec_from_module``, ``trace_module`` and the one-call ``evaluate_model``.

    >>> import boundcalc, torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    >>> spec = boundcalc.spec_from_module(model, torch.randn(2, 64))
    >>> evaluation = boundcalc.evaluate_model(model, X, y)          # doctest: +SKIP

``evaluate_model`` runs the same pipeline as ``boundcalc evaluate`` (:func:`boundcalc.pipeline.run_evaluation`) on
files it writes to a temporary folder (the traced spec, the state dict as safetensors, the data as .npz) and
removes afterwards; the result is the same :class:`~boundcalc.evaluate.Evaluation` the command prints.
"""
from __future__ import annotations

import tempfile
from dataclasses import fields
from pathlib import Path

from boundcalc.errors import BoundcalcError
from boundcalc.trace.driver import TracedSpec, check_input_shape, example_input, parse_input_shape, trace_model
from boundcalc.trace.target import load_model


def trace_target(target: str, input_shape: str, name: str = "model") -> TracedSpec:
    """``boundcalc trace TARGET --input-shape …``: load the user's model (imports and runs TARGET) and trace it."""
    shape = parse_input_shape(input_shape)
    model = load_model(target)
    return trace_model(model, example_input(model, shape), name=name, source=target)


def trace_module(model, example_input, name: str = "model") -> TracedSpec:
    """The traced spec of ``model`` on ``example_input`` (a tensor or array with the batch first): its YAML
    ``text``, the loaded ``spec``, the capture method and the layers. UnsupportedError lists every operation
    that cannot be expressed."""
    return trace_model(model, _batch(model, example_input), name=name, source=f"a {type(model).__name__}")


def spec_from_module(model, example_input, name: str = "model"):
    """The :class:`~boundcalc.spec.load.Spec` of ``model`` (see :func:`trace_module`; its ``.text`` is the YAML)."""
    return trace_module(model, example_input, name).spec


def evaluate_model(model, X, y, X_test=None, y_test=None, init=None, name: str = "model", **settings):
    """Every applicable bound on ``model`` with training data (X, y) and optional test data: the Evaluation of
    ``boundcalc evaluate`` without any file. ``init``: the model (or its state dict) at initialisation, for the
    bounds that use distances to it; ``settings``: :class:`~boundcalc.pipeline.EvaluateSettings` fields
    (``delta``, ``percentile``, ``keys``, ``biases``, …)."""
    from boundcalc.pipeline import EvaluateRequest, EvaluateSettings, run_evaluation

    known = {f.name for f in fields(EvaluateSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise BoundcalcError(f"evaluate_model: unknown setting(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
    if (X_test is None) != (y_test is None):
        raise BoundcalcError("evaluate_model: give both X_test and y_test, or neither")
    traced = trace_module(model, _as_tensor(X)[:2], name)
    with tempfile.TemporaryDirectory(prefix="boundcalc-") as folder:
        root = Path(folder)
        (root / "spec.yaml").write_text(traced.text, encoding="utf-8")
        _save_state(_state_dict(model), root / "model.safetensors")
        _save_data(X, y, root / "train.npz")
        if X_test is not None:
            _save_data(X_test, y_test, root / "test.npz")
        if init is not None:
            _save_state(_state_dict(init), root / "init.safetensors")
        request = EvaluateRequest(spec=root / "spec.yaml", checkpoint=root / "model.safetensors",
                                  data=root / "train.npz", data_test=root / "test.npz" if X_test is not None else None,
                                  init=root / "init.safetensors" if init is not None else None,
                                  settings=EvaluateSettings(**settings))
        evaluation, _ = run_evaluation(request)
    evaluation.spec = f"<traced {name}>"
    evaluation.checkpoint = f"<{type(model).__name__}.state_dict()>"
    return evaluation


def _batch(model, example):
    """The example as a tensor of at least two samples (export would specialise a batch of one)."""
    import torch

    x = _as_tensor(example)
    if x.dim() < 2:
        raise BoundcalcError(f"example_input has shape {tuple(x.shape)}; give a batch: (N, C, H, W) or (N, D)")
    check_input_shape(tuple(int(d) for d in x.shape[1:]))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = x.to(dtype)
    if x.shape[0] == 1:
        x = torch.cat([x, example_input(model, tuple(x.shape[1:]))[:1].to(dtype)])
    return x


def _as_tensor(value):
    import numpy as np
    import torch

    return value.detach() if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value, dtype=np.float64))


def _state_dict(source) -> dict:
    import torch

    state = source.state_dict() if isinstance(source, torch.nn.Module) else dict(source)
    return {k: v.detach().cpu().clone().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}


def _save_state(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(state, str(path))


def _save_data(X, y, path: Path) -> None:
    import numpy as np

    np.savez(path, X=_as_tensor(X).numpy(), y=np.asarray(y.detach().cpu() if hasattr(y, "detach") else y))
