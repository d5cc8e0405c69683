"""Small generic specs that ``boundcalc bounds show KEY`` builds a formula on when no spec is given."""
from __future__ import annotations

from boundcalc.spec.load import Spec, parse_spec

MLP = """
name: generic_mlp
data: {samples: m, dim: d}
layers:
  - {op: linear, name: W1, out: h}
  - relu
  - {op: linear, name: W2, out: h}
  - relu
  - {op: linear, name: W3, out: k}
loss: {margin: gamma}
"""
CNN = """
name: generic_cnn
data: {samples: m, shape: [3, 8, 8]}
layers:
  - {op: conv2d, name: conv1, channels: 8, kernel: 3, padding: 1}
  - relu
  - {op: conv2d, name: conv2, channels: 8, kernel: 3, padding: 1}
  - relu
  - flatten
  - {op: linear, name: fc, out: k}
loss: {margin: gamma}
"""


def generic_specs() -> list[Spec]:
    return [parse_spec(MLP, file="<generic mlp>"), parse_spec(CNN, file="<generic cnn>")]
