"""Deep networks: the running minimum of eq. (4) built flat (the same Min as sympy's), as_printed against
eq. (4) written out by hand for several depths, numbers beyond the float range, closed forms built on the
measured numbers, and evaluate on a 1000-layer chain against numpy in log space."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

import boundcalc
from boundcalc.bounds import REGISTRY, Applied, NetworkView
from boundcalc.bounds.examples import generic_specs
from boundcalc.calculus.minimum import flat_min, running_min
from boundcalc.cli import app
from boundcalc.evaluate import MeasuredQuantities
from boundcalc.numerics import log_value
from tests.conftest import evaluate, random_values
from tests.helpers import write_deep_chain


def P(name):
    return sp.Symbol(name, positive=True)


a, b, c = P("a"), P("b"), P("c")
r = sp.IndexedBase("r_fc", positive=True)
MIN_CASES = [(a, b, c), (c, b, a), (a, 2 * a, b), (2 * a, a, b), (a, a, a), (4, a, 3, b, 5), (a / 2, a, 4, 2),
             (a + 1, a, b, a / 3), (r[1], r[2], r[1]), (sp.Min(a, b), c, a), (r[1], a, sp.sqrt(2), 1)]


@pytest.mark.parametrize("args", MIN_CASES, ids=str)
def test_flat_min_is_the_min_sympy_builds(args):
    want = sp.Min(*args)
    assert flat_min(*args) == want and sp.srepr(flat_min(*args)) == sp.srepr(want)
    minimum = None
    for arg in args:                      # built one argument at a time, as layer after layer
        minimum = running_min(minimum, arg)
    assert sp.srepr(minimum) == sp.srepr(want)


def chain(ranks: list[str]) -> str:
    layers = []
    for i, rank in enumerate(ranks, 1):
        rank_field = f", rank: {rank}" if rank else ""
        layers.append(f"  - {{op: linear, name: fc{i}, out: h{i}{rank_field}}}")
    return "data: {samples: m, dim: d}\nlayers:\n" + "\n  - relu\n".join(layers) + "\n"


def eq4_by_hand(depth: int, ranks: list[sp.Expr]) -> sp.Expr:
    """Pinto et al. eq. (4) for a depth-L chain, 𝔯_i = min_{j≤i} rank W_j (sympy's own Min), κ_i = Π_{j≠i} s_j:
    (‖X‖_F/m)·{ f1√h1·Π_{i≥2} C1 s_i + Σ_{i≥2} C1^(L−i)·C2·2√(2𝔯_i)·κ_i·f_i√h_i }."""
    X, m, C1, C2 = P("X_F"), P("m"), P("C1"), P("C2")
    s = [P(f"s_fc{i}") for i in range(1, depth + 1)]
    f = [P(f"f_fc{i}") for i in range(1, depth + 1)]
    h = [P(f"h{i}") for i in range(1, depth + 1)]
    total = f[0] * sp.sqrt(h[0]) * sp.Mul(*(C1 * si for si in s[1:]))
    for i in range(2, depth + 1):
        kappa = sp.Mul(*(s[j] for j in range(depth) if j != i - 1))
        total += C1 ** (depth - i) * C2 * 2 * sp.sqrt(2 * sp.Min(*ranks[:i])) * kappa * f[i - 1] * sp.sqrt(h[i - 1])
    return X / m * total


RANK_SPECS = {   # the ranks each layer declares ("" = its own symbol r_fc<i>)
    "symbols": lambda L: [""] * L,
    "numbers": lambda L: [str(5 - i % 3) for i in range(L)],
    "shared symbol": lambda L: ["r" if i % 2 else "2*r" for i in range(L)],
    "mixed": lambda L: ["", "3", "r"] * 2,
}


@pytest.mark.parametrize("depth", [2, 3, 4, 6])
@pytest.mark.parametrize("kind", sorted(RANK_SPECS))
def test_as_printed_equals_eq4_by_hand_at_several_depths(depth, kind):
    declared = RANK_SPECS[kind](depth)[:depth]
    ranks = [sp.sympify(x, locals={"r": P("r")}) if x else P(f"r_fc{i}") for i, x in enumerate(declared, 1)]
    bound = boundcalc.derive(boundcalc.parse_spec(chain(declared)), rules="as_printed")
    expected = eq4_by_hand(depth, ranks)
    for seed in range(3):
        values = random_values(bound.complexity, expected, seed=seed, low=0.5, high=20)
        assert evaluate(bound.complexity, values) == pytest.approx(evaluate(expected, values), rel=1e-12)
    # each disturbance term carries the Min that sympy itself builds over the ranks so far
    for term, i in zip(bound.terms[1:], range(2, depth + 1)):
        want = sp.Min(*ranks[:i])
        if isinstance(want, sp.Min):
            assert want in term.expr.atoms(sp.Min)


def test_numbers_beyond_the_float_range_are_evaluated_in_log_space():
    assert log_value(sp.Float(3) ** 1000, {}) == (1, pytest.approx(1000 * math.log(3), rel=1e-14))
    assert log_value(sp.Float(3) ** -1000, {}) == (1, pytest.approx(-1000 * math.log(3), rel=1e-14))
    assert log_value(-sp.Integer(7) ** 500, {}) == (-1, pytest.approx(500 * math.log(7), rel=1e-14))


@pytest.mark.parametrize("spec", generic_specs(), ids=lambda s: s.name)
def test_closed_forms_built_on_measured_numbers_equal_the_symbolic_formulas(spec):
    symbolic = NetworkView(spec)
    names = set()
    for key, entry in REGISTRY.items():
        applied = entry.apply(symbolic)
        if isinstance(applied, Applied):
            names |= {str(x) for x in applied.formula.gap.free_symbols | applied.formula.gap.atoms(sp.Indexed)}
    rng = np.random.default_rng(0)
    values = {name: float(rng.uniform(0.5, 3.0)) for name in sorted(names)}
    values.update(delta=0.05, m=500.0)
    measured = NetworkView(spec, symbolic.graph, MeasuredQuantities(spec.symbols, values))
    checked = 0
    for key, entry in REGISTRY.items():
        if entry.numeric is not None:     # evaluated by its own hook, not from the formula
            continue
        want, got = entry.apply(symbolic), entry.apply(measured)
        assert type(want) is type(got)
        if isinstance(want, Applied):
            assert log_value(got.formula.gap, values) == pytest.approx(log_value(want.formula.gap, values), rel=1e-12)
            assert log_value(got.formula.complexity, values) == pytest.approx(
                log_value(want.formula.complexity, values), rel=1e-12)
            checked += 1
    assert checked >= 3


def test_evaluate_on_a_1000_layer_chain_matches_numpy_in_log_space(tmp_path):
    depth = 1000
    weights = write_deep_chain(tmp_path, depth)
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "deep.yaml"), str(tmp_path / "deep.safetensors"),
                                      "--data", str(tmp_path / "train.npz"), "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    bounds = {b["key"]: b for b in report["bounds"]}
    for b in bounds.values():
        assert not b["applies"] or math.isfinite(b["gap_log10"])
    x = np.load(tmp_path / "train.npz")["X"]
    m, gamma = len(x), report["values"]["gamma"]
    log_s = np.log([np.linalg.norm(w, 2) for w in weights])
    f = np.array([np.linalg.norm(w) for w in weights])
    widths = np.array([3.0] * (depth - 1) + [2.0])
    ranks = np.array([np.linalg.matrix_rank(w) for w in weights], dtype=float)
    # eq. (4) with C1 = C2 = 1: (‖X‖_F/m)·Π s·{f1√h1/s1 + Σ_{i≥2} 2√(2·min_{j≤i} r_j)·f_i√h_i/s_i}; tight: no √(2𝔯)
    per_layer = f * np.sqrt(widths) / np.exp(log_s)
    diameter = {"pinto2024": 2 * np.sqrt(2 * np.minimum.accumulate(ranks)), "pinto2024_tight": 2 * np.ones(depth)}
    for key, factor in diameter.items():
        log_g = math.log(np.linalg.norm(x) / m) + log_s.sum() + math.log(per_layer[0] + (factor * per_layer)[1:].sum())
        log_gap = log_g + math.log(2 * math.sqrt(math.pi) * math.sqrt(2) / gamma)   # + 3√(log(2/δ)/2m): negligible
        assert bounds[key]["complexity_log10"] == pytest.approx(log_gap / math.log(10), abs=1e-9)
    # Neyshabur et al. 2015: 2^(L−1)·Π‖W_i‖_F·R/(γ√m), about 10^700: beyond the float range
    log_n15 = ((depth - 1) * math.log(2) + np.log(f).sum() + math.log(np.linalg.norm(x, axis=1).max())
               - math.log(gamma * math.sqrt(m)))
    assert bounds["neyshabur2015"]["complexity_log10"] == pytest.approx(log_n15 / math.log(10), abs=1e-9)
    assert bounds["neyshabur2015"]["complexity_log10"] > 400 and bounds["neyshabur2015"]["complexity"] is None
