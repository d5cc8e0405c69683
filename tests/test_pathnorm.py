"""The L1 path-norm and the bound of Gonon et al. (2024) against independent numbers: brute-force enumeration of
every input → output and bias → output path on tiny DAGs written out neuron by neuron (plain Python), the
constant C by hand, and the bound on the digits MLP against a plain numpy computation."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from pydantic import StrictInt
from typer.testing import CliRunner

import boundcalc
from boundcalc.bounds import REGISTRY, Applied, Inapplicable, NetworkView
from boundcalc.cli import app
from boundcalc.errors import DeriveError
from boundcalc.graph.build import build_graph
from boundcalc.ops import OpKind, register, unregister
from boundcalc.ops.pooling import window_sum
from boundcalc.pathnorm import PathStructure, path_norm, path_structure
from boundcalc.spec.model import LayerFields

SPECS = Path(__file__).resolve().parents[1] / "specs"


# -- brute force: explicit neurons, explicit edges, every path enumerated --------------------------------------
class Dag:
    """Neurons named by tuples; ``edge(u, v, w)`` adds u → v of weight w, ``bias(v, b)`` gives v a bias."""

    def __init__(self):
        self.succ: dict = {}
        self.biases: dict = {}

    def edge(self, u, v, w):
        self.succ.setdefault(u, []).append((v, float(w)))

    def bias(self, v, b):
        self.biases[v] = float(b)

    def path_norm(self, inputs, outputs) -> float:
        """Σ over every path from an input (or from a neuron's bias) to an output of Π |weights| (× |bias|)."""
        outputs = set(outputs)
        total = 0.0
        starts = [(u, 1.0) for u in inputs] + [(v, abs(b)) for v, b in self.biases.items()]
        for start, head in starts:
            stack = [(start, head)]
            while stack:                       # depth-first: one stack entry per partial path
                node, product = stack.pop()
                if node in outputs:
                    total += product
                for nxt, w in self.succ.get(node, []):
                    stack.append((nxt, product * abs(w)))
        return total


def dense(dag, w, b, src, dst):
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            dag.edge(src(j), dst(i), w[i, j])
        if b is not None:
            dag.bias(dst(i), b[i])


def rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).normal(size=shape)


def graph_of(text):
    return build_graph(boundcalc.parse_spec(text))


def tensors(arrays):
    return {k: torch.tensor(v) for k, v in arrays.items()}


MLP = """
name: t
data: {samples: 10, dim: 2}
layers:
  - {op: linear, name: fc1, out: 3}
  - relu
  - {op: linear, name: fc2, out: 2}
loss: {margin: 1}
"""


def test_mlp_with_biases_against_every_path():
    w1, b1, w2, b2 = rand(3, 2), rand(3), rand(2, 3, seed=1), rand(2, seed=1)
    dag = Dag()
    dense(dag, w1, b1, lambda j: ("x", j), lambda i: ("h", i))
    dense(dag, w2, b2, lambda j: ("h", j), lambda i: ("o", i))
    want = dag.path_norm([("x", 0), ("x", 1)], [("o", 0), ("o", 1)])
    got = path_norm(graph_of(MLP), tensors({"fc1": w1, "fc2": w2}), tensors({"fc1": b1, "fc2": b2}))
    assert got == pytest.approx(want, rel=1e-12)
    # the bias paths are counted: without them the value drops by Σ_k |b2_k| + Σ_{k,j} |w2_kj||b1_j|
    no_bias = path_norm(graph_of(MLP), tensors({"fc1": w1, "fc2": w2}))
    assert want - no_bias == pytest.approx(np.abs(b2).sum() + (np.abs(w2) @ np.abs(b1)).sum(), rel=1e-12)
    assert path_structure(graph_of(MLP), 2) == PathStructure(2, 1, 0, 2, 2)


RESIDUAL = """
name: t
data: {samples: 10, dim: 3}
layers:
  - {op: linear, name: a, out: 3}
  - relu
  - {op: linear, name: b, out: 3}
  - {op: add, name: s, inputs: [b, input]}
  - relu
  - {op: linear, name: out, out: 2}
loss: {margin: 1}
"""


def test_residual_block_against_every_path():
    wa, ba, wb, bb, wo, bo = rand(3, 3), rand(3), rand(3, 3, seed=2), rand(3, seed=2), rand(2, 3, seed=3), rand(2)
    dag = Dag()
    dense(dag, wa, ba, lambda j: ("x", j), lambda i: ("a", i))
    dense(dag, wb, bb, lambda j: ("a", j), lambda i: ("b", i))
    for i in range(3):                          # the sum neurons: edges of weight 1 from b and from the input
        dag.edge(("b", i), ("s", i), 1.0)
        dag.edge(("x", i), ("s", i), 1.0)
    dense(dag, wo, bo, lambda j: ("s", j), lambda i: ("o", i))
    want = dag.path_norm([("x", i) for i in range(3)], [("o", 0), ("o", 1)])
    got = path_norm(graph_of(RESIDUAL), tensors({"a": wa, "b": wb, "out": wo}),
                    tensors({"a": ba, "b": bb, "out": bo}))
    assert got == pytest.approx(want, rel=1e-12)
    # depth: x → a → b(+skip) → out, the add joined into b's neurons (3 edges on the longest path)
    assert path_structure(graph_of(RESIDUAL), 3).depth == 3


CONV = """
name: t
data: {samples: 10, shape: [1, 4, 4]}
layers:
  - {op: conv2d, name: conv, channels: 2, kernel: 3, padding: 1}
  - relu
  - {op: avgpool, kernel: 2}
  - flatten
  - {op: linear, name: fc, out: 3}
loss: {margin: 1}
"""


def test_conv_with_avgpool_against_every_path():
    k, bc, wf = rand(2, 1, 3, 3), rand(2), rand(3, 8, seed=4)
    dag = Dag()
    for o in range(2):
        for i in range(4):
            for j in range(4):
                dag.bias(("c", o, i, j), bc[o])
                for di in range(3):
                    for dj in range(3):
                        si, sj = i + di - 1, j + dj - 1
                        if 0 <= si < 4 and 0 <= sj < 4:
                            dag.edge(("x", 0, si, sj), ("c", o, i, j), k[o, 0, di, dj])
        for i in range(2):
            for j in range(2):
                for a in range(2):
                    for b in range(2):
                        dag.edge(("c", o, 2 * i + a, 2 * j + b), ("p", o, i, j), 0.25)
    for q in range(3):
        for flat in range(8):
            o, rest = divmod(flat, 4)
            dag.edge(("p", o, *divmod(rest, 2)), ("o", q), wf[q, flat])
    want = dag.path_norm([("x", 0, i, j) for i in range(4) for j in range(4)], [("o", q) for q in range(3)])
    got = path_norm(graph_of(CONV), tensors({"conv": k, "fc": wf}), tensors({"conv": bc}))
    assert got == pytest.approx(want, rel=1e-12)
    assert path_structure(graph_of(CONV), 16) == PathStructure(3, 1, 0, 16, 3)


# -- max-pooling: a kind declared here with the pending semantics, checked against per-window edges ---------------
class MaxPoolTestFields(LayerFields):
    op: Literal["maxpool_test"]
    kernel: StrictInt
    stride: StrictInt
    padding: StrictInt = 0


class MaxPoolTest(OpKind):
    name = "maxpool_test"
    fields = MaxPoolTestFields
    input_rank = 3
    path_role = "max"

    def params(self, reader, model, path):
        return {"kernel": model.kernel, "stride": model.stride, "padding": model.padding}

    def output_shape(self, params, shapes, fail, sources=()):
        c, h, w = shapes[0]
        k, s, p = params["kernel"], params["stride"], params["padding"]
        return (c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)

    def path_forward(self, name, params, inputs, weight=None, bias=None):
        return window_sum(inputs[0], params)


@pytest.fixture
def maxpool_kind():
    kind = register(MaxPoolTest())
    yield kind
    unregister(kind.name)


MAXPOOL = """
name: t
data: {samples: 10, shape: [2, 5, 5]}
layers:
  - {op: maxpool_test, kernel: 3, stride: 2, padding: 1}
  - flatten
  - {op: linear, name: fc, out: 4}
loss: {margin: 1}
"""


def test_maxpool_as_explicit_window_edges(maxpool_kind):
    wf, bf = rand(4, 18, seed=5), rand(4, seed=5)
    dag = Dag()
    for c in range(2):
        for i in range(3):
            for j in range(3):
                for a in range(3):
                    for b in range(3):
                        si, sj = 2 * i + a - 1, 2 * j + b - 1
                        if 0 <= si < 5 and 0 <= sj < 5:     # padding positions are not neurons
                            dag.edge(("x", c, si, sj), ("m", c, i, j), 1.0)
    dense(dag, wf, bf, lambda flat: ("m", flat // 9, *divmod(flat % 9, 3)), lambda q: ("o", q))
    want = dag.path_norm([("x", c, i, j) for c in range(2) for i in range(5) for j in range(5)],
                         [("o", q) for q in range(4)])
    graph = graph_of(MAXPOOL)
    assert path_norm(graph, tensors({"fc": wf}), tensors({"fc": bf})) == pytest.approx(want, rel=1e-12)
    assert path_structure(graph, 50) == PathStructure(2, 9, 1, 50, 4)     # D = 2, K = 3·3, P = 1


# -- refusals -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["tanh", "{op: leaky_relu, slope: 0.1}"])
def test_kinds_outside_the_model_are_refused(activation):
    spec = boundcalc.parse_spec(MLP.replace("  - relu", f"  - {activation}"))
    result = REGISTRY["gonon2024"].apply(NetworkView(spec))
    assert isinstance(result, Inapplicable) and ("tanh" in result.reason or "leaky_relu" in result.reason)
    with pytest.raises(DeriveError, match="outside the DAG ReLU model"):
        path_norm(build_graph(spec), tensors({"fc1": rand(3, 2), "fc2": rand(2, 3)}))


# -- the constant C and the formula -----------------------------------------------------------------------------
def test_constant_by_hand():
    # D = 3, P = 1, K = 9, d_in = 64, d_out = 10: C² = 3·ln(5·9) + ln(5/2·65·10)
    c = float(PathStructure(3, 9, 1, 64, 10).constant())
    assert c == pytest.approx(math.sqrt(3 * math.log(45) + math.log(1625)), rel=1e-14)
    assert c == pytest.approx(4.33742, abs=1e-5)    # 3·3.806662 + 7.393263 = 18.813249
    # the authors' ResNet-18 on ImageNet (their compute_1st_part_bound_resnets.py: D = 18, P = 1, K = 9)
    resnet = float(PathStructure(18, 9, 1, 224 * 224 * 3, 1000).constant())
    assert resnet == pytest.approx(9.39499, abs=1e-5)   # 18·3.806662 + ln(2.5·150529·1000) = 68.51992 + 19.74582
    # no max-pooling: P = 0, K = 1, so C² = D·ln 3 + ln(3·(d_in+1)·d_out)
    assert float(PathStructure(3, 1, 0, 64, 10).constant()) == pytest.approx(3.29718, abs=1e-5)


def test_the_symbolic_formula_keeps_the_path_norm_a_symbol():
    spec = boundcalc.parse_spec(MLP)
    result = REGISTRY["gonon2024"].apply(NetworkView(spec))
    assert isinstance(result, Applied) and result.entry.status == "derived"
    names = {str(s) for s in result.formula.gap.free_symbols}
    assert {"Phi_1", "R_inf"} <= names
    values = {spec.symbols("Phi_1"): 7.0, spec.symbols("R_inf"): 0.5}      # B = max(1, 0.5) = 1; margin 1: 𝓛 = √2; m = 10; δ = the spec's
    c = math.sqrt(2 * math.log(3) + math.log(3 * 3 * 2))
    want = 4 * c * 1 * math.sqrt(2) * 7 / math.sqrt(10)
    assert float(result.formula.complexity.subs(values)) == pytest.approx(want, rel=1e-12)


def test_resnet_block_with_symbolic_depth():
    spec = boundcalc.parse_spec((SPECS / "resnet_block.yaml").read_text())
    structure = path_structure(build_graph(spec), spec.symbols("d"))
    # stem (1) + L blocks of 2 (a; b with the skip joined) + head (1)
    assert (structure.depth - (2 * spec.symbols("L") + 2)).expand() == 0


# -- the bound on the digits MLP against plain numpy -------------------------------------------------------------
def test_bound_on_the_digits_mlp_against_numpy(digits):
    root = digits["root"]
    result = CliRunner().invoke(app, ["evaluate", str(SPECS / "digits_mlp.yaml"), str(root / "mlp.pt"), "--data",
                                      str(root / "train.npz"), "-f", "json", "--bounds", "gonon2024"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (bound,) = report["bounds"]
    state = {k: v.detach().double().numpy() for k, v in digits["mlp"].state_dict().items()}
    h = np.ones(64)
    for layer in ("0", "2", "4"):       # |W| h + |b|: the sum of the paths into each neuron
        h = np.abs(state[f"{layer}.weight"]) @ h + np.abs(state[f"{layer}.bias"])
    r = h.sum()
    m, gamma, delta = 1200, report["data"]["train"]["gamma"], report["values"]["delta"]
    b = max(1.0, np.abs(digits["x"]).max())
    c = math.sqrt(3 * math.log(3) + math.log(3 * 65 * 10))
    complexity = 4 * c * b * (math.sqrt(2) / gamma) * r / math.sqrt(m)
    assert bound["complexity"] == pytest.approx(complexity, rel=1e-9)
    assert bound["gap"] == pytest.approx(complexity + math.sqrt(math.log(1 / delta) / (2 * m)), rel=1e-9)


# -- the ResNet statement of every entry -------------------------------------------------------------------------
def test_every_entry_says_whether_it_covers_a_bn_folded_resnet():
    for key, entry in REGISTRY.items():
        assert entry.resnet.startswith(("yes", "no", "not")), key
    result = CliRunner().invoke(app, ["bounds", "list", "--format", "json"])
    listed = {row["key"]: row["resnet"] for row in json.loads(result.stdout)}
    assert listed == {key: entry.resnet for key, entry in REGISTRY.items()}
    shown = CliRunner().invoke(app, ["bounds", "show", "gonon2024"])
    assert "BN-folded ResNet: yes" in " ".join(shown.stdout.split())


def test_an_overflowing_pass_is_an_evaluation_error_not_inf():
    from boundcalc.numerics import EvaluationError

    huge = {"fc1": torch.full((3, 2), 1e200, dtype=torch.float64), "fc2": torch.full((2, 3), 1e200, dtype=torch.float64)}
    with pytest.raises(EvaluationError, match="overflows"):
        path_norm(graph_of(MLP), huge)
