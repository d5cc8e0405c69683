"""Small objects shared by several test modules."""
import contextlib


class WritesAFile:
    """Pickles to a call of ``exec`` that writes ``target``: a checkpoint containing it must never be
    unpickled (the tests assert that ``target`` does not exist afterwards)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


DEEP_CHAIN_SPEC = """
name: deep_chain
data: {{samples: m, dim: {width}}}
layers:
  - {{op: linear, name: fc_in, out: {width}, param: first.weight}}
  - repeat:
      count: L - 2
      index: t
      body: [relu, {{op: linear, name: fc, out: {width}, param: 'blocks.{{t}}.weight'}}]
  - relu
  - {{op: linear, name: head, out: 2, param: head.weight}}
loss: {{margin: gamma, delta: delta}}
"""


def write_deep_chain(folder, depth: int, width: int = 3, samples: int = 40) -> list:
    """``deep.yaml`` (L symbolic, read from the checkpoint), ``deep.safetensors`` and ``train.npz`` in
    ``folder`` for a ``depth``-layer bias-free chain; returns the weights (numpy, first to last). The weights
    are non-negative with spectral norm 1.5, so ReLU never cuts and the forward pass stays finite (1.5^L),
    and the labels are the network's own predictions (positive margins)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    weights = []
    for i in range(depth):
        rows = 2 if i == depth - 1 else width
        w = np.eye(rows, width) + 1e-3 * rng.random((rows, width))
        weights.append(1.5 * w / np.linalg.norm(w, 2))
    names = ["first.weight"] + [f"blocks.{t}.weight" for t in range(1, depth - 1)] + ["head.weight"]
    save_file({n: torch.from_numpy(w) for n, w in zip(names, weights)}, str(folder / "deep.safetensors"))
    x = rng.random((samples, width))
    h = x.T
    for w in weights[:-1]:
        h = np.maximum(w @ h, 0)
    np.savez(folder / "train.npz", X=x, y=(weights[-1] @ h).argmax(axis=0))
    (folder / "deep.yaml").write_text(DEEP_CHAIN_SPEC.format(width=width))
    return weights


#: the module names every study folder defines for itself (studies/<name>/run.py, models.py)
STUDY_LOCAL_MODULES = ("run", "models")


@contextlib.contextmanager
def study_imports(study):
    """Import a study's own modules (``run``, ``models``) from ``study`` and its shared ones (studies/studylib.py,
    studies/digits/tables.py, training.py): the study-local names are dropped from sys.modules before and after,
    so two studies' ``models`` never stand in for each other in one test process."""
    import importlib
    import sys

    paths = [str(study), str(study.parent), str(study.parent / "digits")]
    for name in STUDY_LOCAL_MODULES:
        sys.modules.pop(name, None)
    sys.path[:0] = paths
    try:
        yield importlib.import_module
    finally:
        for path in paths:
            sys.path.remove(path)
        for name in STUDY_LOCAL_MODULES:
            sys.modules.pop(name, None)
