"""Hostile inputs of the weight kinds (issue 16): conv2d geometry, batchnorm fields and tensors, declared biases.
Each a `Case` of ``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``: one error line, exit
code 2, no traceback, no side effect."""
from __future__ import annotations

import torch
from safetensors.torch import save_file

from tests.hostile.corpus import Case, layer_case, spec_case

IMAGE = "data: {samples: m, shape: [4, 8, 8]}\nlayers:\n"
BN_SPEC = ("data: {samples: m, dim: 4}\nlayers:\n  - {op: linear, name: fc, out: 3, param: fc.weight}\n"
           "  - {op: batchnorm, name: bn, param: bn}\n")
BIAS_SPEC = "data: {samples: m, dim: 4}\nlayers:\n  - {op: linear, name: fc, out: 3, param: fc.weight, bias: true}\n"


def tensors(drop: tuple[str, ...] = (), **overrides):
    """A linear fc (3 × 4) and a batchnorm bn (3 channels), minus ``drop``, with ``overrides``."""
    def write(path):
        full = {"fc.weight": torch.ones(3, 4), "bn.weight": torch.ones(3), "bn.bias": torch.zeros(3),
                "bn.running_mean": torch.zeros(3), "bn.running_var": torch.ones(3),
                "bn.num_batches_tracked": torch.tensor(5)}
        full.update(overrides)
        save_file({k: v for k, v in full.items() if k not in drop}, path)
    return write


def binding_case(id: str, spec: str, files, phrase: str) -> Case:
    return Case(id, {"spec.yaml": spec, "w.safetensors": files},
                ["evaluate", "{dir}/spec.yaml", "{dir}/w.safetensors", "--set", "m=10", "--set", "X_F=1",
                 "--biases", "keep"], phrase, table=True, kind="checkpoint")


def image_case(id: str, layers: str, phrase: str) -> Case:
    return spec_case(id, IMAGE + layers, phrase)


CASES: list[Case] = [
    image_case("conv-groups-not-dividing-channels", "  - {op: conv2d, channels: 5, kernel: 3, groups: 2}\n",
               "must divide channels 5"),
    image_case("conv-groups-not-dividing-inputs", "  - {op: conv2d, channels: 6, kernel: 3, groups: 3}\n",
               "must divide the input channels 4"),
    image_case("conv-groups-zero", "  - {op: conv2d, channels: 6, kernel: 3, groups: 0}\n", "groups must be"),
    image_case("conv-dilation-zero", "  - {op: conv2d, channels: 6, kernel: 3, dilation: 0}\n", "dilation must be"),
    image_case("conv-dilation-huge", "  - {op: conv2d, channels: 6, kernel: 3, dilation: [1, 100000]}\n",
               "dilation must be"),
    image_case("conv-stride-three-sides", "  - {op: conv2d, channels: 6, kernel: 3, stride: [1, 2, 3]}\n",
               "stride must be"),
    image_case("conv-padding-negative", "  - {op: conv2d, channels: 6, kernel: 3, padding: [-1, 0]}\n",
               "padding must be"),
    image_case("conv-dilated-kernel-too-big", "  - {op: conv2d, channels: 6, kernel: 3, dilation: 4}\n",
               "does not fit"),
    image_case("conv-bias-not-boolean", "  - {op: conv2d, channels: 6, kernel: 3, bias: 'yes'}\n", "bias"),
    layer_case("batchnorm-eps-zero", "  - {op: batchnorm, eps: 0}\n", "eps must be a number in (0, 1)"),
    layer_case("batchnorm-eps-negative", "  - {op: batchnorm, eps: -1e-5}\n", "eps must be a number in (0, 1)"),
    layer_case("batchnorm-eps-symbol", "  - {op: batchnorm, eps: B}\n", "eps must be a number in (0, 1)"),
    layer_case("batchnorm-fold-string", "  - {op: batchnorm, fold: maybe}\n", "fold"),
    spec_case("batchnorm-on-a-matrix", "data: {samples: m, shape: [3, 4]}\nlayers:\n  - {op: batchnorm}\n",
              "batchnorm needs a (channels)"),
    binding_case("batchnorm-missing-running-var", BN_SPEC, tensors(drop=("bn.running_var",)), "no tensor bn.running_var"),
    binding_case("batchnorm-wrong-length-mean", BN_SPEC, tensors(**{"bn.running_mean": torch.zeros(4)}),
                 "bn.running_mean has (4)"),
    binding_case("batchnorm-int-variance", BN_SPEC, tensors(**{"bn.running_var": torch.ones(3, dtype=torch.int64)}),
                 "floating point"),
    binding_case("batchnorm-without-param", BN_SPEC.replace(", param: bn}", "}"), tensors(), "needs param:"),
    binding_case("bias-declared-but-absent", BIAS_SPEC, tensors(drop=tuple(f"bn.{t}" for t in (
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"))), "declares bias: true"),
]
