"""The CLI through typer's CliRunner: every format, errors as one line with exit code 2."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from boundcalc.cli import app

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_every_bundled_spec_derives_as_json(spec):
    result = runner.invoke(app, ["derive", str(SPECS / spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("spec", "rules", "complexity", "gap", "terms", "assumptions"):
        assert key in data
    assert data["complexity"]["text"] and data["complexity"]["latex"]
    assert data["terms"] and all(t["rule"] and t["expr"]["latex"] for t in data["terms"])
    assert any("C1" in a for a in data["assumptions"])


def test_text_format_shows_terms_and_assumptions():
    result = runner.invoke(app, ["derive", str(SPECS / "mlp3.yaml")])
    assert result.exit_code == 0, result.output
    for phrase in ("Ĝ_S ≤", "gap ≤", "disturbance", "fc3", "image-norm", "Assumptions", "Caveats", "typo"):
        assert phrase in result.stdout


def test_latex_format():
    result = runner.invoke(app, ["derive", str(SPECS / "mlp3.yaml"), "-f", "latex", "--rules", "as_printed"])
    assert result.exit_code == 0, result.output
    assert r"\begin{align}" in result.stdout and r"\hat{\mathcal G}_S" in result.stdout
    assert r"s_{\mathrm{fc1}}" in result.stdout and "Lemma 5" in result.stdout


def test_markdown_format():
    result = runner.invoke(app, ["derive", str(SPECS / "resnet_block.yaml"), "-f", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Bound for `resnet_block`")
    assert "| # | layer |" in result.stdout and "$$" in result.stdout


def test_set_unrolls_a_symbolic_count():
    result = runner.invoke(app, ["derive", str(SPECS / "lowrank_mlp.yaml"), "--set", "L=4", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "Sum" not in data["complexity"]["text"]
    assert [t["layer"] for t in data["terms"]] == ["fc_in", "fc[1]", "fc[2]", "head"]


def test_gap_printed_option():
    result = runner.invoke(app, ["derive", str(SPECS / "mlp3.yaml"), "--gap", "printed", "-f", "json"])
    assert json.loads(result.stdout)["gap_form"] == "printed"


def test_bad_spec_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {samples: m, dim: d}\nlayers:\n  - {op: conv3d}\n")
    result = runner.invoke(app, ["derive", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bad.yaml:3" in result.stderr and "unknown op 'conv3d'" in result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize("args,phrase", [
    (["derive", "no/such/file.yaml"], "cannot read the spec"),
    (["derive", str(SPECS / "mlp3.yaml"), "--set", "L"], "NAME=NUMBER"),
    (["derive", str(SPECS / "mlp3.yaml"), "--set", "L=abc"], "not a number"),
    (["derive", str(SPECS / "pinto_table1.yaml"), "--set", "L=0"], "positive integer"),
])
def test_bad_invocations_exit_2(args, phrase):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert phrase in result.stderr


def test_check_and_rules_commands():
    result = runner.invoke(app, ["check", str(SPECS / "small_cnn.yaml")])
    assert result.exit_code == 0 and "conv2" in result.stdout
    assert "(16, 4, 4)" in result.stdout
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0 and "as_printed" in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "boundcalc" in result.stdout


def test_compare_text_reproduces_table1_and_lists_reasons():
    result = runner.invoke(app, ["compare", str(SPECS / "pinto_table1.yaml"), "--regime", "uniform", "--orders"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for phrase in ("C1**L*L*sqrt(h)*r", "L**(3/2)*sqrt(h)*sqrt(r)", "sqrt(L)*r**(L/2)", "order (up to constants)",
                   "Not applicable", "galanti2023", "Crossovers", "s_i → B", "Caveats"):
        assert phrase in result.stdout, phrase


@pytest.mark.parametrize("fmt", ["json", "markdown", "latex"])
def test_compare_formats(fmt):
    result = runner.invoke(app, ["compare", str(SPECS / "resnet_block.yaml"), "-f", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        data = json.loads(result.stdout)
        rows = {b["key"]: b for b in data["bounds"]}
        assert rows["bartlett2017"]["applies"] is False and "chain" in rows["bartlett2017"]["reason"]
        assert rows["pinto2024_tight"]["applies"] is True and rows["pinto2024_tight"]["complexity"]["latex"]
    else:
        assert "pinto2024" in result.stdout


@pytest.mark.parametrize("args, phrase", [
    (["compare", str(SPECS / "mlp3.yaml"), "--bounds", "bartlet2017"], "Did you mean 'bartlett2017'"),
    (["compare", str(SPECS / "resnet_block.yaml"), "--vs", "golowich2018"], "does not apply"),
    (["bounds", "show", "nope"], "unknown bound 'nope'"),
])
def test_compare_and_bounds_errors(args, phrase):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert phrase in result.output and "Traceback" not in result.output


def test_bounds_list_and_show():
    listed = runner.invoke(app, ["bounds", "list", "-f", "json"])
    assert listed.exit_code == 0
    keys = {b["key"] for b in json.loads(listed.stdout)}
    assert {"pinto2024", "pinto2024_tight", "bartlett2017", "bartlett2017_dudley", "neyshabur2018",
            "golowich2018", "neyshabur2015", "vc2019", "galanti2023"} <= keys
    shown = runner.invoke(app, ["bounds", "show", "bartlett2017_dudley"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0
    for phrase in ("Dudley", "derived", "LaTeX", "docs/references.md §9.6", "Assumptions"):
        assert phrase in shown.stdout, phrase
    pinto = runner.invoke(app, ["bounds", "show", "pinto2024", "-f", "json"])
    data = json.loads(pinto.stdout)
    assert any("C1, C2" in c for c in data["caveats"]) and any("typo" in c for c in data["caveats"])
    conv = runner.invoke(app, ["bounds", "show", "galanti2023", "-f", "json"])
    assert json.loads(conv.stdout)["built_on"] == "generic_cnn"


def test_tables_written_to_a_pipe_are_not_folded_at_80_columns(monkeypatch):
    from rich.cells import cell_len    # terminal columns: a combining accent (R̂) takes none

    from boundcalc.cli import PIPE_WIDTH

    monkeypatch.delenv("COLUMNS", raising=False)
    wide = runner.invoke(app, ["compare", str(SPECS / "mlp3.yaml")])
    assert wide.exit_code == 0
    widths = [cell_len(line) for line in wide.stdout.splitlines()]
    assert 80 < max(widths) <= PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "80")
    narrow = runner.invoke(app, ["compare", str(SPECS / "mlp3.yaml")])
    assert max(cell_len(line) for line in narrow.stdout.splitlines()) <= 80
