"""Every validation error names the file, the line and the field, and says what was expected."""
import pytest
import sympy as sp

import boundcalc
from boundcalc.graph import build_graph

HEAD = "data: {samples: m, dim: d}\nlayers:\n"

CASES = [
    # (id, spec text, line, phrase)
    ("unknown-op", HEAD + "  - {op: linear, out: h}\n  - {op: lineer, out: h}\n", 4, "unknown op 'lineer'"),
    ("unknown-op-suggests", HEAD + "  - {op: rellu}\n", 3, "Did you mean 'relu'"),
    ("dangling-input", HEAD + "  - {op: linear, out: h, name: a}\n  - {op: add, inputs: [a, bb]}\n", 4,
     "input 'bb' is not a layer"),
    ("cycle", HEAD + "  - {op: linear, out: h, name: a, inputs: [b]}\n  - {op: linear, out: h, name: b, inputs: [a]}\n",
     3, "cycle"),
    ("two-outputs", HEAD + "  - {op: linear, out: h, name: a}\n  - {op: linear, out: h, name: b, inputs: [input]}\n",
     3, "two outputs"),
    ("width-mismatch", HEAD + "  - {op: linear, out: h, name: a}\n  - {op: linear, out: k, name: b}\n"
     "  - {op: add, inputs: [a, b]}\n", 5, "width mismatch at add"),
    ("negative-rank", HEAD + "  - {op: linear, out: h, rank: -2}\n", 3, "rank must be positive"),
    ("zero-width", HEAD + "  - {op: linear, out: 0}\n", 3, "out must be positive"),
    ("undeclared-index", HEAD + "  - repeat:\n      count: L\n      body: [relu]\n", 3, "declares no index"),
    ("non-integer-count", HEAD + "  - repeat:\n      count: 2.5\n      index: t\n      body: [relu]\n", 4,
     "positive integer"),
    ("unknown-field", HEAD + "  - {op: linear, out: h, spectrl: B}\n", 3, "unknown field 'spectrl'"),
    ("missing-field", HEAD + "  - {op: linear, spectral: B}\n", 3, "missing required field 'out'"),
    ("undeclared-symbol", "symbols: [B, h, m, d]\n" + HEAD + "  - {op: linear, out: h, spectral: Bb}\n", 4,
     "unknown symbol 'Bb'"),
    ("injection", HEAD + "  - {op: linear, out: \"__import__('os').system('touch x')\"}\n", 3, "are allowed, found attribute access"),
    ("duplicate-name", HEAD + "  - {op: linear, out: h, name: a}\n  - {op: linear, out: h, name: a}\n", 4,
     "duplicate layer name 'a'"),
    ("linear-after-conv", "data: {samples: m, shape: [1, 8, 8]}\nlayers:\n  - {op: conv2d, channels: 4, kernel: 3}\n"
     "  - {op: linear, out: 10}\n", 4, "add a 'flatten'"),
    ("shape-changing-repeat", "data: {samples: m, shape: [1, 8, 8]}\nlayers:\n  - repeat:\n      count: L\n"
     "      index: t\n      body:\n        - {op: conv2d, channels: 4, kernel: 3, stride: 2}\n", 3,
     "changes the shape"),
    ("yaml-syntax", HEAD + "  - {op: linear, out: h\n", 4, "YAML syntax error"),
    ("no-layers", "data: {samples: m, dim: d}\nlayers: []\n", 2, "must not be empty"),
    ("bad-delta", HEAD + "  - relu\nloss: {delta: 2}\n", 4, "delta must be in (0, 1)"),
    ("dim-and-shape", "data: {samples: m, dim: d, shape: [1, 2, 2]}\nlayers: [relu]\n", 1, "exactly one of"),
    ("python-tag", HEAD + "  - !!python/object/apply:os.system ['echo hi']\n", 3, "tag"),
    ("nested-repeat", HEAD + "  - repeat:\n      count: 2\n      index: t\n      body:\n        - repeat: {count: 2,"
     " index: u, body: [relu]}\n", 7, "nested repeat"),
]


@pytest.mark.parametrize("text,line,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_file_line_and_problem(tmp_path, text, line, phrase):
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(boundcalc.SpecError) as info:
        build_graph(boundcalc.load_spec(path))
    err = info.value
    assert err.file == str(path)
    assert err.line == line, str(err)
    assert phrase in str(err)
    assert str(err).startswith(f"{path}:{line}")
    assert "\n" not in str(err)


def test_lipschitz_activation_with_phi_zero_enters_the_anchor_term():
    """φ(0) = 1 on h coordinates and m samples: the zero network's image is the all-ones h × m matrix, of norm
    √(h·m), so the next layer (k outputs) adds the anchor term f·√k·√(h·m)/m; as_printed refuses the map."""
    spec = boundcalc.parse_spec(HEAD + "  - {op: linear, out: h}\n  - {op: lipschitz, constant: 2, at_zero: 1}\n"
                                "  - {op: linear, out: k, name: last}\n")
    bound = boundcalc.derive(spec)
    anchor = [t for t in bound.terms if t.kind == "anchor"]
    assert len(anchor) == 1 and anchor[0].layer == "last"
    h, k, m, f = (sp.Symbol(n, positive=True) for n in ("h", "k", "m", "f_last"))
    assert sp.simplify(sp.sympify(anchor[0].local).doit() - f * sp.sqrt(k) * sp.sqrt(h * m)) == 0
    with pytest.raises(boundcalc.DeriveError, match="lipschitz"):
        boundcalc.derive(spec, rules="as_printed")


def test_as_printed_lists_every_layer_outside_its_class():
    spec = boundcalc.parse_spec(HEAD + "  - {op: linear, out: h, name: a}\n  - tanh\n  - {op: linear, out: h, name: b}\n"
                                "  - {op: add, inputs: [b, a]}\n")
    with pytest.raises(boundcalc.DeriveError) as info:
        boundcalc.derive(spec, rules="as_printed")
    assert "tanh" in str(info.value) and "'add'" in str(info.value)
