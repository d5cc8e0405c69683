"""Round-2 hostile inputs (specs and --set): each a `Case` of ``tests/hostile/corpus.py``, run by
``tests/hostile/test_cli_corpus.py``: one error line, exit code 2, no traceback, no side effect."""
from __future__ import annotations

from tests.hostile.corpus import MLP_SPEC, Case, layer_case, spec_case

LOWRANK = MLP_SPEC.replace("digits_mlp", "lowrank_mlp")
MLP3 = MLP_SPEC.replace("digits_mlp", "mlp3")
HEAD = "data: {samples: m, dim: 4}\nlayers:\n"


def set_case(id: str, spec: str, assignment: str, phrase: str, command: str = "derive") -> Case:
    return Case(id, {}, [command, spec, "--set", assignment], phrase, kind="option")


CASES: list[Case] = [
    # sizes: positive integers only
    layer_case("size-tiny-width", "  - {op: linear, out: 0.001}\n", "positive integer"),
    layer_case("size-fractional-width", "  - {op: linear, out: 2.5}\n", "positive integer"),
    layer_case("size-fractional-rank", "  - {op: linear, out: 4, rank: 0.01}\n", "positive integer"),
    layer_case("size-symbolic-fraction", "  - {op: linear, out: h/2}\n", "integer-valued"),
    layer_case("size-conv-channels", "  - {op: conv2d, channels: 1.5, kernel: 3}\n", "positive integer"),
    spec_case("size-fractional-samples", "data: {samples: 0.5, dim: 4}\nlayers: [relu]\n", "positive integer"),
    spec_case("size-fractional-shape", "data: {samples: m, shape: [1, 7.5, 8]}\nlayers: [relu]\n",
              "positive integer"),
    set_case("set-fractional-width", LOWRANK, "h=0.5", "positive integer"),
    set_case("set-fractional-depth", LOWRANK, "L=3.5", "positive integer"),
    # YAML 1.1 implicit forms
    layer_case("yaml-sexagesimal", "  - {op: linear, out: 1:30}\n", "plain decimal"),
    layer_case("yaml-octal", "  - {op: linear, out: 010}\n", "plain decimal"),
    layer_case("yaml-hex", "  - {op: linear, out: 0x10}\n", "plain decimal"),
    layer_case("yaml-underscore", "  - {op: linear, out: 1_000}\n", "plain decimal"),
    layer_case("yaml-inf", "  - {op: linear, out: 4, spectral: .inf}\n", "plain decimal"),
    layer_case("yaml-kernel-sexagesimal", "  - {op: conv2d, channels: 2, kernel: 1:3}\n", "plain decimal"),
    # undefined, infinite or huge values
    layer_case("expr-hidden-division-by-zero", "  - {op: linear, out: 4, spectral: 'B/(log(4)-2*log(2))'}\n",
               "division by zero"),
    layer_case("expr-nested-powers", "  - {op: linear, out: 4, spectral: '((((9**64)**64)**64)**64)**64'}\n",
               "outside 1e-300"),
    layer_case("expr-nested-exp", "  - {op: linear, out: 4, spectral: 'exp(exp(exp(100)))'}\n", "outside 1e-300"),
    layer_case("expr-symbolic-power-tower", "  - {op: linear, out: 4, spectral: '(B**64)**64'}\n", "exponent"),
    layer_case("expr-imaginary", "  - {op: linear, out: 4, spectral: 'sqrt(-B)'}\n", "not a real number"),
    layer_case("expr-4300-digits", "  - {op: linear, out: 4, spectral: '(9**64)**64*9**64'}\n", "outside 1e-300"),
    # reserved names and lookalikes
    layer_case("reserved-C1", "  - {op: linear, out: 4, spectral: C1**5}\n", "reserved"),
    layer_case("reserved-layer-quantity", "  - {op: linear, out: 4, spectral: s_fc9}\n", "reserved"),
    layer_case("unicode-math-bold", "  - {op: linear, out: 4, spectral: 𝐁}\n", "non-ASCII"),
    spec_case("unicode-declared-symbol", "symbols: [𝐁]\n" + HEAD + "  - relu\n", "plain ASCII name"),
    # graph shape
    layer_case("two-inputs-to-linear", "  - {op: linear, name: a, out: 4}\n"
               "  - {op: linear, name: b, out: 4, inputs: [a, a]}\n", "takes one input"),
    layer_case("two-inputs-to-relu", "  - {op: linear, name: a, out: 4}\n  - {op: linear, name: b, out: 4}\n"
               "  - {op: relu, inputs: [a, b]}\n", "takes one input"),
    # graph size
    spec_case("graph-long-chain", HEAD + "  - relu\n" * 6000, "limit is 5000"),
    layer_case("graph-repeat-unrolls-past-limit", "  - repeat: {count: 3000, index: t, body: [relu, relu]}\n",
               "limit is 5000"),
    set_case("set-huge-depth", LOWRANK, "L=10000", "too large to unroll"),
    # --set names the bound does not contain, and bad values
    set_case("set-unknown-lowercase", LOWRANK, "l=4", "Did you mean 'L'?"),
    set_case("set-unknown-name", MLP3, "Q=3", "no symbol 'Q'"),
    set_case("set-unknown-data-symbol", MLP3, "R=1", "no symbol 'R'"),
    set_case("set-unknown-on-check", MLP3, "s_fc1=2", "no symbol 's_fc1'", command="check"),
    set_case("set-unknown-on-compare", MLP3, "Q=3", "no symbol 'Q'", command="compare"),
    set_case("set-zero-norm", MLP3, "s_fc1=0", "must be positive"),
    set_case("set-fractional-rank", MLP3, "r_fc1=0.5", "positive integer"),
    set_case("set-huge-value", MLP3, "s_fc1=1e300", "outside the accepted range"),
    set_case("set-non-ascii-name", MLP3, "𝐁=1", "plain ASCII name"),
]
