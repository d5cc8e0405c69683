"""compare's crossover messages (issue 13 items 5-8): every message names its bound, says which variables
"same order" compares, decides conditions on the spec's domain ("never", "always", "undefined at C1 = 1"), takes
‖X‖_F ≍ √m·R in the `none` regime, and --solve-for with an unknown variable is a one-line error."""
from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.compare.crossover import crossover
from boundcalc.compare.table import compare
from boundcalc.domain import Domain
from boundcalc.errors import BoundcalcError

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()
r, h, m = (sp.Symbol(n, positive=True) for n in ("r", "h", "m"))
L = sp.Symbol("L", positive=True, integer=True)
C1 = sp.Symbol("C1", positive=True)


def crossovers(spec_path, name: str, regime: str) -> dict[str, str]:
    result = compare(spec_path(name), regime=regime)
    return {row.key: row.crossover for row in result.rows if row.applies and row.crossover}


def test_every_crossover_names_its_bound(spec_path):
    for name in ("mlp3", "lowrank_mlp", "small_cnn"):
        for regime in ("none", "uniform"):
            for key, text in crossovers(spec_path, name, regime).items():
                assert text.startswith(key), (name, regime, text)


def test_same_order_says_what_it_compared_and_what_it_held_constant(spec_path):
    # mlp3 has numeric widths and free per-layer ranks: only m grows; pinto2024 differs by √(2·min rank)
    text = crossovers(spec_path, "mlp3", "none")["pinto2024"]
    assert text.startswith("pinto2024: same order as pinto2024_tight in m (order ratio 1)")
    assert "r_fc1, r_fc2" in text and "held constant" in text


def test_the_data_norm_grows_with_m_in_the_none_regime(spec_path):
    """Neyshabur 2018 carries R/√m, the chain-rule bound X_F/m: with X_F held fixed their ratio √m gave the
    impossible crossover "m < 1". With ‖X‖_F ≍ √m·R both are 1/√m."""
    result = compare(spec_path("mlp3"), regime="none")
    rows = {row.key: row for row in result.rows if row.applies}
    for key in ("neyshabur2018", "neyshabur2015", "vc2019"):
        assert "iff m < 1" not in rows[key].crossover
        assert rows[key].crossover.startswith(f"{key}: same order as pinto2024_tight in m")
    assert rows["pinto2024_tight"].per_variable["m"] == (1 / sp.sqrt(m),)
    assert any("‖X‖_F ≍ √m·R" in a for a in result.assumptions)


def test_conditions_ruled_out_by_the_domain_are_never(spec_path):
    # pinto2024/pinto2024_tight = √r in the uniform regime: smaller iff r < 1, impossible for a rank
    assert crossovers(spec_path, "mlp3", "uniform")["pinto2024"] == \
        "pinto2024 < pinto2024_tight (up to constants): never, since it needs r < 1 and r ≥ 1"
    # vc2019/pinto2024_tight = √h/√r: smaller iff r > h, impossible for a rank (at most the layer width h)
    assert crossovers(spec_path, "mlp3", "uniform")["vc2019"].startswith(
        "vc2019 < pinto2024_tight (up to constants): never, since it needs r > h and r ≤ h")


def test_a_threshold_undefined_at_c1_equal_1_is_split_into_cases(spec_path):
    """bartlett2017/pinto2024_tight = √L/C1^L: sympy's root −W(−2 log C1)/(2 log C1) divides by log C1 = 0 at
    C1 = 1; there the ratio is √L ≥ 1 (never, with L ≥ 3 from count L − 2); for C1 > 1 it tends to 0."""
    text = crossovers(spec_path, "lowrank_mlp", "uniform")["bartlett2017"]
    assert "at C1 = 1, never, since it needs L < 1 and L ≥ 3" in text
    assert "for C1 > 1, for every L large enough" in text and "undefined at C1 = 1" in text
    assert "direction undetermined" not in text


def test_crossover_on_hand_worked_ratios():
    domain = Domain({r: sp.S.One, h: sp.S.One, L: sp.Integer(3), C1: sp.S.One}, upper={r: (h,)})
    growth = {"L": L, "h": h, "r": r}
    assert crossover(sp.sqrt(r), "a", "b", growth, None, domain) == \
        "a < b (up to constants): never, since it needs r < 1 and r ≥ 1"
    assert crossover(1 / sp.sqrt(r), "a", "b", growth, None, domain).startswith(
        "a < b (up to constants): always for r > 1")
    # r/√h < 1 iff r < √h: a real condition (√h ≥ 1, and √h ≤ h)
    assert crossover(r / sp.sqrt(h), "a", "b", growth, None, domain) == "a < b (up to constants) iff r < sqrt(h)"
    # L²/9 < 1 iff L < 3: never once L ≥ 3; 2/L < 1 iff L > 2: always
    assert "never" in crossover(L ** 2 / 9, "a", "b", growth, "L", domain)
    assert "always" in crossover(2 / L, "a", "b", growth, "L", domain)
    assert crossover(sp.S.One, "a", "b", growth, None, domain) == "a: same order as b in L, h, r (order ratio 1)"


def test_solve_for_a_variable_the_bounds_do_not_have_is_an_error(spec_path):
    with pytest.raises(BoundcalcError, match=r"--solve-for Z: not a growth variable of lowrank_mlp \(growth "
                                             r"variables: L, d, h, m, r\)"):
        compare(spec_path("lowrank_mlp"), solve_for="Z")
    result = runner.invoke(app, ["compare", str(SPECS / "lowrank_mlp.yaml"), "--solve-for", "hh"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --solve-for hh") and "Did you mean 'h'?" in lines[0]
    assert "Traceback" not in result.output
