"""Hostile specs for the parameter-free kinds of issue 16 (pooling, smooth activations, dropout, concat): each
a `Case` of ``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``: one error line, exit code
2, no traceback, no side effect."""
from __future__ import annotations

from tests.hostile.corpus import layer_case, spec_case

IMAGE = "data: {samples: m, shape: [2, 8, 8]}\nlayers:\n"


def image_case(id: str, layers: str, phrase: str):
    return spec_case(id, IMAGE + layers, phrase)


CASES = [
    image_case("maxpool-negative-kernel", "  - {op: maxpool, kernel: -3}\n", "kernel must be between 1"),
    image_case("maxpool-zero-stride", "  - {op: maxpool, kernel: 2, stride: 0}\n", "stride must be between 1"),
    image_case("maxpool-padding-over-half", "  - {op: maxpool, kernel: 3, padding: 2}\n", "more than half"),
    image_case("maxpool-huge-dilation", "  - {op: maxpool, kernel: 3, dilation: 100000}\n", "between 1 and 1024"),
    image_case("maxpool-float-kernel", "  - {op: maxpool, kernel: 2.5}\n", "kernel"),
    image_case("maxpool-kernel-string", "  - {op: maxpool, kernel: 'h'}\n", "kernel"),
    image_case("maxpool-kernel-triple", "  - {op: maxpool, kernel: [2, 2, 2]}\n", "int or [height, width]"),
    image_case("maxpool-window-too-big", "  - {op: maxpool, kernel: 5, dilation: 3}\n", "does not fit"),
    image_case("avgpool-padding-over-half", "  - {op: avgpool, kernel: [2, 4], padding: [1, 3]}\n", "more than half"),
    image_case("avgpool-pad-flag-string", "  - {op: avgpool, kernel: 2, count_include_pad: 'yes'}\n",
               "count_include_pad"),
    image_case("adaptive-output-zero", "  - {op: adaptive_avgpool, output: 0}\n", "output must be between 1"),
    image_case("adaptive-output-negative", "  - {op: adaptive_avgpool, output: [-1, 2]}\n", "output must be between 1"),
    image_case("concat-spatial-mismatch", "  - {op: maxpool, name: p, kernel: 2}\n  - {op: concat, inputs: [p, input]}\n",
               "size mismatch at concat"),
    image_case("concat-single-input", "  - {op: concat, inputs: [input]}\n", "at least two"),
    layer_case("dropout-p-one", "  - {op: dropout, p: 1}\n", "in [0, 1)"),
    layer_case("dropout-p-huge", "  - {op: dropout, p: 1e308}\n", "p"),
    layer_case("elu-negative-alpha", "  - {op: elu, alpha: -0.5}\n", "alpha must be ≥ 0"),
    layer_case("softplus-negative-beta", "  - {op: softplus, beta: -2}\n", "beta must be positive"),
    layer_case("gelu-bad-approximate", "  - {op: gelu, approximate: erf}\n", "approximate"),
    layer_case("maxpool-on-vector", "  - {op: maxpool, kernel: 2}\n", "[channels, height, width]"),
]
