"""Hostile specs and checkpoints for sequence data, layernorm and token_mean (issue 19): each a `Case` of
``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``: one error line, exit code 2, no
traceback, no side effect."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.hostile.corpus import Case, spec_case

SEQUENCE = "data: {samples: m, tokens: 5, dim: 4}\nlayers:\n"
LN_SPEC = SEQUENCE + "  - {op: layernorm, name: ln, param: ln}\n  - token_mean\n  - {op: linear, name: head, out: 2}\n"


def sequence_case(id: str, layers: str, phrase: str) -> Case:
    return spec_case(id, SEQUENCE + layers, phrase)


def layernorm_checkpoint(length: int):
    """γ of ``length`` entries (the spec's d is 4) and β of 4, and the head's weight."""
    def write(path: Path) -> None:
        save_file({"ln.weight": torch.ones(length), "ln.bias": torch.zeros(4), "head.weight": torch.ones(2, 4)}, path)
    return write


CASES = [
    sequence_case("layernorm-eps-zero", "  - {op: layernorm, eps: 0}\n", "eps must be a number > 0"),
    sequence_case("layernorm-eps-negative", "  - {op: layernorm, eps: -1e-5}\n", "eps must be a number > 0"),
    sequence_case("layernorm-eps-symbol", "  - {op: layernorm, eps: e}\n", "eps must be a number > 0"),
    sequence_case("layernorm-eps-injection", "  - {op: layernorm, eps: \"__import__('os').getcwd()\"}\n",
                  "attribute access"),
    sequence_case("layernorm-affine-string", "  - {op: layernorm, affine: 'yes'}\n", "affine"),
    spec_case("tokens-zero", "data: {samples: m, tokens: 0, dim: 4}\nlayers: [relu]\n", "tokens must be positive"),
    spec_case("tokens-fraction", "data: {samples: m, tokens: 2.5, dim: 4}\nlayers: [relu]\n",
              "tokens must be a positive integer"),
    spec_case("tokens-half-symbol", "data: {samples: m, tokens: T/2, dim: 4}\nlayers: [relu]\n", "integer-valued"),
    spec_case("tokens-without-dim", "data: {samples: m, tokens: 4, shape: [2, 3]}\nlayers: [relu]\n",
              "'tokens' needs 'dim'"),
    sequence_case("sequence-add-dim-mismatch", "  - {op: linear, name: a, out: 3}\n  - {op: add, inputs: [a, input]}\n",
                  "width mismatch at add"),
    spec_case("layernorm-on-image", "data: {samples: m, shape: [2, 4, 4]}\nlayers:\n  - layernorm\n",
              "layernorm needs a (dim) or (tokens, dim) input"),
    spec_case("token-mean-on-vector", "data: {samples: m, dim: 4}\nlayers:\n  - token_mean\n",
              "token_mean needs a (tokens, dim) input"),
    Case("layernorm-weight-dim-mismatch", {"spec.yaml": LN_SPEC, "w.safetensors": layernorm_checkpoint(3)},
         ["evaluate", "{dir}/spec.yaml", "{dir}/w.safetensors", "--biases", "keep"], "does not fit", table=True,
         kind="checkpoint"),
    Case("tokens-symbolic-with-checkpoint", {"spec.yaml": LN_SPEC.replace("tokens: 5", "tokens: T"),
                                             "w.safetensors": layernorm_checkpoint(4)},
         ["evaluate", "{dir}/spec.yaml", "{dir}/w.safetensors", "--biases", "keep"], "--set T=", kind="checkpoint"),
    Case("tokens-set-fraction-with-checkpoint", {"spec.yaml": LN_SPEC.replace("tokens: 5", "tokens: T"),
                                                 "w.safetensors": layernorm_checkpoint(4)},
         ["evaluate", "{dir}/spec.yaml", "{dir}/w.safetensors", "--biases", "keep", "--set", "T=2.5"],
         "tokens must be a positive integer", kind="checkpoint"),
]
