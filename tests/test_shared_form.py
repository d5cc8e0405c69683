"""Deep unrolled bounds are printed in the shared form: exact, and linear in the depth (issue 14 item 3)."""
import json
import random
from types import SimpleNamespace

import pytest
import sympy as sp
from typer.testing import CliRunner

import boundcalc
import boundcalc.shared_form as shared_form
from boundcalc.bound import power_of, shared_powers
from boundcalc.calculus import arith
from boundcalc.cli import app
from boundcalc.compare.table import MAX_EXPANDED_TERMS, expanded_terms
from boundcalc.spec.load import load_spec
from boundcalc.symbols import C1

SPECS = boundcalc.__path__[0] + "/../specs"
runner = CliRunner()
CHAIN = "data: {samples: m, dim: d}\nlayers:\n%s  - {op: linear, out: k, name: last}\n"
TWO_REPEATS = """
data: {samples: m, dim: d}
layers:
  - {op: linear, out: h, name: stem}
  - repeat:
      count: L
      index: t
      body:
        - {op: linear, out: h, name: a}
        - relu
  - repeat:
      count: 5
      index: u
      body:
        - {op: linear, out: h, name: p}
        - {op: relu, name: act}
        - {op: linear, out: h, name: q}
        - {op: add, name: res, inputs: [q, input]}
  - {op: linear, out: k, name: head}
"""


def resnet(blocks: int):
    return boundcalc.derive(load_spec(f"{SPECS}/resnet_block.yaml", values={"L": blocks}))


def chain(depth: int):
    layers = "".join(f"  - {{op: linear, out: h, name: l{i}}}\n  - relu\n" for i in range(1, depth))
    return boundcalc.derive(boundcalc.parse_spec(CHAIN % layers))


def expand_names(expr: sp.Expr, definitions) -> sp.Expr:
    """``expr`` with every Γ[j], Ξ[j] replaced by its definition (latest first, so each one is defined)."""
    expr = expr.replace(lambda e: isinstance(e, sp.Product) and e.function.has(shared_form.GAIN), lambda e: e.doit())
    for name, value in reversed(definitions):
        expr = expr.xreplace({name: value})
    return expr


def numeric(expr: sp.Expr, seed: int) -> float:
    """``expr`` at random positive values; a count (an integer symbol) is 3, and sums and products are done."""
    rng = random.Random(seed)
    expr = expr.xreplace({s: 3 for s in expr.free_symbols if s.is_integer}).doit()
    values = {a: rng.uniform(0.5, 2.0) for a in sorted(expr.atoms(sp.Indexed), key=str)}
    expr = expr.xreplace(values)
    return float(expr.xreplace({s: rng.uniform(0.5, 2.0) for s in sorted(expr.free_symbols, key=str)}))


@pytest.fixture
def always_shared(monkeypatch):
    monkeypatch.setattr(shared_form, "MAX_WRITTEN_NODES", 0)


@pytest.mark.parametrize("make", [lambda: resnet(5), lambda: chain(7),
                                  lambda: boundcalc.derive(boundcalc.parse_spec(TWO_REPEATS))],
                         ids=["resnet", "chain", "symbolic-then-unrolled"])
def test_shared_form_gives_every_term_back(always_shared, make):
    """Substituting the definitions into each shared term gives the written-out term (at random values), and the
    C1 power read off the shared graph is the one read off the written-out terms."""
    bound = make()
    form = bound.shared
    assert form is not None and len(form.terms) == len(bound.terms)
    for seed, (term, written) in enumerate(zip(bound.terms, form.terms)):
        full = expand_names(written, form.definitions)
        assert not full.has(shared_form.GAIN, shared_form.SHARED)
        a, b = numeric(full, seed), numeric(term.expr, seed)
        assert abs(a - b) <= 1e-9 * abs(b), (term.layer, written)
    assert shared_powers(form, C1) == [power_of(t.expr, C1) for t in bound.terms]


def test_definitions_use_only_earlier_names(always_shared):
    form = resnet(6).shared
    defined = set()
    for name, value in form.definitions:
        used = {a for a in value.atoms(sp.Indexed) if a.base in (shared_form.GAIN, shared_form.SHARED)}
        assert used <= defined, name
        defined.add(name)


def test_c1_power_of_a_deep_residual_network():
    """Stem term: C1 from the head's gain times C1² from each block's gain 1 + C1²·s_a·s_b: 2N + 1."""
    bound = resnet(60)
    assert bound.shared is not None
    assert bound.c1_power == 121


def test_written_size_counts_every_use():
    x, y, z = sp.symbols("x y z")
    gain = sp.Mul(x, y, evaluate=False)                  # 3 nodes
    local = sp.Add(x, y, z, evaluate=False)              # 4 nodes
    terms = [SimpleNamespace(factors=(gain,), local=local), SimpleNamespace(factors=(gain, gain), local=z)]
    assert shared_form.written_size(terms) == (3 + 4 + 1) + (3 + 3 + 1 + 1)


def test_runs_keep_multiplicity():
    assert shared_form.runs([5, 1, 2, 3, 7, 2]) == ((1, 2), (2, 3), (5, 5), (7, 7))


def test_shared_form_starts_above_the_documented_limit(monkeypatch):
    bound = resnet(4)
    monkeypatch.setattr(shared_form, "MAX_WRITTEN_NODES", bound.written_size)
    assert resnet(4).shared is None
    monkeypatch.setattr(shared_form, "MAX_WRITTEN_NODES", bound.written_size - 1)
    assert resnet(4).shared is not None


def test_bundled_specs_are_written_out_in_full():
    for name in ("mlp3", "resnet_block", "lowrank_mlp", "pinto_table1", "digits_mlp", "small_cnn"):
        assert boundcalc.derive(load_spec(f"{SPECS}/{name}.yaml")).shared is None


def _output(blocks: int, fmt: str) -> str:
    result = runner.invoke(app, ["derive", f"{SPECS}/resnet_block.yaml", "--set", f"L={blocks}", "-f", fmt])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("fmt", ["json", "latex", "markdown"])
def test_printed_size_grows_linearly_with_depth(fmt):
    """Written out in full, the terms of N residual blocks take O(N²)–O(N³) characters (doubling N multiplied
    the JSON by 6); the shared form is linear: doubling the depth at most ~doubles the output."""
    small, large = len(_output(16, fmt)), len(_output(32, fmt))
    assert large < 2.3 * small, (small, large)
    assert large < 150_000


def test_every_printed_expression_has_a_size_independent_of_depth(monkeypatch):
    """Each definition and each term of the shared form is O(1): its largest member does not grow from 20 to
    60 blocks, and there are O(N) of them."""
    def largest(blocks):
        form = resnet(blocks).shared
        sizes = [sp.count_ops(e, visual=False) for e in (*form.terms, *(v for _, v in form.definitions))]
        return max(sizes), len(sizes)

    (small, count_small), (large, count_large) = largest(20), largest(60)
    assert large <= small
    assert count_large <= 3.2 * count_small


def test_json_of_a_deep_spec_defines_every_name():
    data = json.loads(_output(16, "json"))
    assert data["form"]["name"] == "shared" and data["form"]["limit"] == shared_form.MAX_WRITTEN_NODES
    assert data["complexity"]["text"] == "T[1] + T[2] + … + T[34]"
    assert "Ĝ_S" in data["gap"]["text"] and r"\hat{\mathcal G}_S" in data["gap"]["latex"]
    names = {d["name"]["text"] for d in data["definitions"]}
    used = set()
    for item in data["terms"] + [d["expr"] for d in data["definitions"]]:
        text = item["expr"]["text"] if "expr" in item else item["text"]
        used |= {f"{n}[{i}]" for n, i in _names_in(text)}
    assert used and used <= names
    assert data["c1_power"]["text"] == "33"


def _names_in(text: str):
    import re

    for base, index in re.findall(r"([ΓΞ])\[(\d+)\]", text):
        yield base, index
    for first, last in re.findall(r"Product\(Γ\[j\], \(j, (\d+), (\d+)\)\)", text):
        yield from (("Γ", str(i)) for i in range(int(first), int(last) + 1))


def test_text_view_shows_the_names_unmangled():
    """rich must not read Γ[j] as a markup tag."""
    text = _output(16, "text")
    assert "Product(Γ[j], (j, " in text and "Named sub-expressions" in text
    assert "Ξ[1]" in text and "more named sub-expressions" in text


def test_compare_and_bounds_show_on_a_deep_spec(tmp_path):
    spec = tmp_path / "deep.yaml"
    spec.write_text(open(f"{SPECS}/resnet_block.yaml").read().replace("count: L", "count: 40"))
    result = runner.invoke(app, ["compare", str(spec), "-f", "json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout)["bounds"] if r["key"] == "pinto2024_tight")
    assert row["applies"] and row["complexity"] is None and "not analysed" in row["order_note"]
    assert str(shared_form.MAX_WRITTEN_NODES) in row["order_note"]
    result = runner.invoke(app, ["bounds", "show", "pinto2024_tight", "--spec", str(spec)])
    assert result.exit_code == 0 and "not written out" in result.stdout


def test_expanded_terms_bounds_the_expansion():
    a, b, c, d = sp.symbols("a b c d")
    assert expanded_terms((a + b) * (c + d)) == 4
    assert expanded_terms((a + b) ** 3 + c) == 9
    gains = sp.Mul(*(1 + sp.Symbol(f"x{i}") for i in range(30)), evaluate=False)
    assert expanded_terms(gains) == MAX_EXPANDED_TERMS + 1     # Π(1 + x_i) over 30 blocks: 2^30 monomials


def test_check_lists_unrolled_residual_blocks():
    result = runner.invoke(app, ["check", f"{SPECS}/resnet_block.yaml", "--set", "L=3"])
    assert result.exit_code == 0, result.output
    assert "res[3]" in result.stdout and "b[3], res[2]" in result.stdout


def test_linear_coefficient_reads_the_tree():
    p, x, y = sp.symbols("p x y", positive=True)
    expr = sp.Add(sp.Mul(2, p, x, evaluate=False), y, p, evaluate=False)      # 2·p·x + y + p
    assert sp.expand(arith.linear_coefficient(expr, p) - (2 * x + 1)) == 0
    assert arith.linear_coefficient(sp.Mul(p, p, evaluate=False), p) is None      # p²
    assert arith.linear_coefficient(sp.sqrt(p) + x, p) is None
    assert arith.linear_coefficient(x * y, p) == 0


def test_substitute_keeps_the_value_shared():
    """A placeholder's value stays one shared object in the result (xreplace flattened it into the product)."""
    p, x, y = sp.symbols("p x y", positive=True)
    value = sp.Mul(y, sp.Add(x, 1, evaluate=False), evaluate=False)
    out = arith.substitute(sp.Mul(2, x, p), {p: value})
    assert any(arg is value for arg in out.args)
    assert sp.expand(out - 2 * x * y * (x + 1)) == 0
