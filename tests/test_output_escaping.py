"""User strings in results print as themselves: never read as rich markup, LaTeX, Markdown, a matplotlib
formula or a spreadsheet formula, and never spread over a second line (issue 14 items 4 and 5)."""
from __future__ import annotations

import csv
import json
import io
import re

import pytest
import sympy as sp
import torch
import yaml
from rich.console import Console
from safetensors.torch import save_file
from typer.testing import CliRunner

from boundcalc.cli import _progress_bar, _tracker, app
from boundcalc.render.escape import csv_cell, md_code, md_text, one_line, tex_text
from boundcalc.render.names import to_latex
from boundcalc.render.plots import per_layer_panels
from boundcalc.render.zoo import results_csv, summary_view
from boundcalc.zoo.run import ZooResult
from tests.hostile.corpus import MLP_SPEC, mlp_tensors

runner = CliRunner()
MARKUP_NAMES = ["[/x]", "[bold]x[/bold] :smile:", "[link=file:///etc/passwd]click[/link]"]
INJECTED = "x\n\\input{/etc/passwd}"


def write_spec(folder, name: str) -> str:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": name, "data": {"samples": "m", "dim": 4},
                                    "layers": [{"op": "linear", "out": 3}]}), encoding="utf-8")
    return str(path)


def rendered(renderable) -> str:
    console = Console(file=io.StringIO(), width=200)      # a default console: markup and emoji on
    console.print(renderable)
    return console.file.getvalue()


# -- rich markup ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MARKUP_NAMES)
@pytest.mark.parametrize("command", ["derive", "check", "compare"])
def test_spec_name_with_markup_prints_literally(tmp_path, name, command):
    result = runner.invoke(app, [command, write_spec(tmp_path, name)])
    assert result.exit_code == 0, result.output
    assert name in result.stdout and "Traceback" not in result.output


def test_tensor_names_and_paths_with_markup_or_controls_print_literally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run[").mkdir()
    save_file({**mlp_tensors(), "[/x] [bold]b[/bold]": torch.ones(3, 3),
               "t\x1b[2J\nerror: injected": torch.ones(3, 3)}, tmp_path / "run[/b].safetensors")
    result = runner.invoke(app, ["measure", "run[/b].safetensors"])
    assert result.exit_code == 0, result.output
    for text in ("run[/b].safetensors", "[/x] [bold]b[/bold]", "t\\x1b[2J\\nerror: injected"):
        assert text in result.stdout
    assert "\x1b" not in result.stdout
    assert not any(line.startswith("error:") for line in result.stdout.splitlines())


def test_binding_table_quotes_control_characters_in_tensor_names(tmp_path):
    save_file({**mlp_tensors(), "\x1b]0;owned\x07\nerror: injected": torch.ones(3, 3)}, tmp_path / "w.safetensors")
    result = runner.invoke(app, ["evaluate", MLP_SPEC, str(tmp_path / "w.safetensors")])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]0;owned\\x07\\nerror: injected" in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == \
        [line for line in result.stderr.splitlines() if "unused tensor" in line]


def test_progress_bar_shows_a_tensor_name_literally():
    progress = _progress_bar("measuring")
    track = _tracker(progress, "measuring")
    track(1, 2, "[/x]\nerror: injected")
    text = rendered(progress.make_tasks_table(progress.tasks))
    assert "[/x]\\nerror: injected" in text and "\nerror:" not in text


def test_zoo_summary_keeps_each_failed_model_on_one_line():
    summary = {"evaluated": 0, "models": 1, "spec": "[/s]", "bounds": [], "not_applicable": {}, "warnings": [],
               "settings": {"constants": {"C1": 1, "C2": 1}, "margin_percentile": 10, "delta": 0.05, "biases": "fold"},
               "failed": [{"id": "[/a]\nerror: injected", "file": "f.pt", "error": "boom\r\nerror: second"}]}
    text = rendered(summary_view(summary))
    assert "✗ [/a]\\nerror: injected (f.pt): boom\\r\\nerror: second" in text and "[/s]" in text
    assert not any(line.startswith("error:") for line in text.splitlines())


# -- LaTeX and Markdown -----------------------------------------------------------------------------
def test_latex_output_cannot_be_injected_through_the_spec_name(tmp_path):
    result = runner.invoke(app, ["derive", write_spec(tmp_path, INJECTED), "--format", "latex"])
    assert result.exit_code == 0, result.output
    assert not any(re.match(r"\s*\\input", line) for line in result.stdout.splitlines())
    assert "\\input{" not in result.stdout
    assert r"x\textbackslash{}n\textbackslash{}input\{/etc/passwd\}" in result.stdout.splitlines()[0]


@pytest.mark.parametrize("command", ["derive", "compare"])
def test_markdown_heading_stays_one_line(tmp_path, command):
    result = runner.invoke(app, [command, write_spec(tmp_path, INJECTED + "\n# title | cell"), "-f", "markdown"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#") and "\\input" in lines[0] and "title" in lines[0]
    assert not any(line.startswith(("\\input", "# title")) for line in lines[1:])


def test_tex_text_escapes_every_special_character():
    assert tex_text("\\ { } $ & # ^ _ % ~") == (r"\textbackslash{} \{ \} \$ \& \# \textasciicircum{} \_ \% "
                                                r"\textasciitilde{}")
    assert tex_text("a\nb\rc") == r"a\textbackslash{}nb\textbackslash{}rc"


def test_symbol_names_cannot_inject_latex():
    evil = sp.Symbol("x}\\input{/etc/passwd}\n$")
    text = to_latex(evil * sp.Symbol("s_fc1"))
    assert "\\input" not in text and "\n" not in text
    assert r"\text{x\}\textbackslash{}input\{/etc/passwd\}\textbackslash{}n\$}" in text
    assert to_latex(sp.Symbol("s_fc1")) == r"s_{\mathrm{fc1}}"            # plain names are unchanged
    assert to_latex(sp.Symbol("f_a_b")) == r"f_{\mathrm{a\_b}}"


def test_markdown_escapes():
    # the quoted newline's backslash is escaped too, so that Markdown shows it as \n
    assert md_text("a|b*c_d`e[f](g)<h>\n") == r"a\|b\*c\_d\`e\[f\](g)\<h\>\\n"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("a`b") == "``a`b``" and md_code("`a") == "`` `a ``"


# -- plots and CSV ----------------------------------------------------------------------------------
def test_plot_title_is_not_mathtext(tmp_path):
    path = tmp_path / "p.png"
    per_layer_panels(["fc1", "fc2"], {"NC1": [1.0, 2.0]}, "run $\\frac{$ on a$b$.safetensors", path)
    assert path.stat().st_size > 0


def zoo_result(**fields) -> ZooResult:
    base = dict(id="a", file="a.pt", hyperparameters={}, train_error=0.1, test_error=0.3, gap=0.2, ok=True)
    return ZooResult(**{**base, **fields})


def test_results_csv_neutralises_formulas():
    results = [zoo_result(id='=HYPERLINK("http://evil","x")', file="@SUM(A1)", ok=False, error="+1+1",
                          hyperparameters={"-col": "-2+3", "wd": -0.5, "opt": "sgd"})]
    rows = list(csv.reader(io.StringIO(results_csv(results))))
    head, row = rows[0], dict(zip(rows[0], rows[1]))
    assert "'-col" in head
    assert row["id"] == '\'=HYPERLINK("http://evil","x")' and row["file"] == "'@SUM(A1)" and row["error"] == "'+1+1"
    assert row["'-col"] == "'-2+3"
    assert row["wd"] == "-0.5" and row["opt"] == "sgd" and row["train_error"] == "0.1"    # numbers stay numbers


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cell_quotes_each_formula_prefix(prefix):
    assert csv_cell(prefix + "cmd") == "'" + prefix + "cmd"
    assert csv_cell("safe" + prefix) == "safe" + prefix and csv_cell(-1.5) == -1.5


def test_one_line_keeps_printable_text():
    assert one_line("‖W‖₂ ≤ B, naïve 名前 [x]") == "‖W‖₂ ≤ B, naïve 名前 [x]"
    assert one_line("a\tb\x1bc\u2028d") == "a\\tb\\x1bc\\u2028d"


def test_term_table_keeps_iteration_indices():
    """Brackets in a term (``s_a[t']``, ``b_fc[t]``) are text, not rich markup tags that swallow the index
    (issue 13 item 11): every term of resnet_block prints as its JSON text does."""
    spec = str(MLP_SPEC).replace("digits_mlp", "resnet_block")
    terms = [t["expr"]["text"] for t in json.loads(runner.invoke(app, ["derive", spec, "-f", "json"]).stdout)["terms"]]
    text = runner.invoke(app, ["derive", spec], env={"COLUMNS": "4000"}).stdout
    rows = [line.split("│") for line in text.splitlines() if re.match(r"│ \d+ +│", line)]
    assert any("[t']" in term for term in terms)
    assert [row[4].strip() for row in rows] == terms          # the table's "term" column, not the headline
