"""What the reports say (issue 13 items 4, 11-16): one status label per bound, C1's power under the spec's
constraints, iteration indices in the term table, declared ranks, evaluate's labels, caveats, Markdown and
warnings, the zoo summary, and `check` on repeats."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from rich.console import Console
from typer.testing import CliRunner

import boundcalc
from boundcalc.bounds import REGISTRY
from boundcalc.cli import app
from boundcalc.compare.table import compare
from boundcalc.domain import Domain, simplify_extrema, spec_domain
from boundcalc.render.text import rich_view

SPECS = Path(__file__).resolve().parents[1] / "specs"
runner = CliRunner()
L = sp.Symbol("L", positive=True, integer=True)


def _text(renderable, width: int = 400) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


# -- item 4: one status label -----------------------------------------------------------------------
@pytest.mark.parametrize("rules,key", [("as_printed", "pinto2024"), ("tight", "pinto2024_tight")])
def test_derive_reports_the_status_of_its_registry_entry(rules, key):
    status = REGISTRY[key].status          # exact for eq. (4) as printed, derived for the tight rules
    result = runner.invoke(app, ["derive", str(SPECS / "mlp3.yaml"), "--rules", rules, "-f", "json"])
    data = json.loads(result.stdout)
    assert data["status"] == status and data["registry_key"] == key
    text = runner.invoke(app, ["derive", str(SPECS / "mlp3.yaml"), "--rules", rules]).stdout
    assert f"status: {status} (registry entry {key}" in text
    assert "exact up to the unknown constants" not in text


# -- item 12: C1's power under the spec's constraints --------------------------------------------------
def test_highest_power_of_c1_uses_the_repeat_count_constraint(spec_path):
    # lowrank_mlp: count L − 2 ≥ 1, so L ≥ 3 and Max(L − 1, Max(0, L − 4) + 1) = L − 1
    assert boundcalc.derive(spec_path("lowrank_mlp")).c1_power == L - 1
    assert boundcalc.derive(spec_path("lowrank_mlp"), rules="as_printed").c1_power == L - 1
    assert boundcalc.derive(spec_path("resnet_block")).c1_power == 2 * L + 1
    assert spec_domain(spec_path("lowrank_mlp")).lower_of(L) == 3


def test_max_is_decided_only_where_the_domain_allows_it():
    expr = sp.Max(L - 1, sp.Max(0, L - 4) + 1)
    assert simplify_extrema(expr, Domain({L: sp.Integer(3)})) == L - 1
    # with only L ≥ 1, L − 1 and 1 are not ordered (L = 1 vs L = 5): the Max stays
    assert simplify_extrema(expr, Domain({L: sp.S.One})) == sp.Max(1, L - 1)
    assert simplify_extrema(2 * sp.Max(L, 3) + sp.Max(L - 2, 1), Domain({L: sp.Integer(4)})) == 3 * L - 2


# -- item 11: iteration indices in the term table ------------------------------------------------------
def test_term_table_keeps_iteration_indices(spec_path):
    bound = boundcalc.derive(spec_path("resnet_block"))
    text = _text(rich_view(bound))
    table = text[text.index("Term-by-term account"):]
    assert "Product(C1**2*s_a[t']*s_b[t'] + 1, (t', 2, L))" in table
    assert "a[t] for t=2..L" in table and "s_a*s_b" not in table


# -- item 13: declared ranks -----------------------------------------------------------------------------
def test_declared_ranks_unused_by_tight_say_so_once(spec_path):
    caveats = boundcalc.derive(spec_path("lowrank_mlp")).caveats
    unused = [c for c in caveats if "declared rank" in c]
    assert len(unused) == 1 and "(fc_in, fc, head) not used: rule set tight" in unused[0]
    assert not any("declared rank" in c for c in boundcalc.derive(spec_path("lowrank_mlp"), rules="as_printed").caveats)
    assert not any("declared rank" in c for c in boundcalc.derive(spec_path("mlp3")).caveats)   # none declared
    rows = {row.key: row for row in compare(spec_path("lowrank_mlp")).rows}
    assert any("declared ranks" in c for c in rows["pinto2024_tight"].caveats)


@pytest.fixture
def rank4_spec(tmp_path):
    text = (SPECS / "digits_mlp.yaml").read_text().replace("{op: linear, name: fc2, out: 32}",
                                                              "{op: linear, name: fc2, out: 32, rank: 4}")
    path = tmp_path / "rank4.yaml"
    path.write_text(text)
    return path


def test_evaluate_warns_when_the_checkpoint_exceeds_a_declared_rank(digits, rank4_spec):
    root = digits["root"]
    result = runner.invoke(app, ["evaluate", str(rank4_spec), str(root / "mlp.pt"), "--data", str(root / "train.npz"),
                                 "-f", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    fc2 = digits["mlp"][2]
    folded = np.block([[fc2.weight.detach().double().numpy(), fc2.bias.detach().double().numpy()[:, None]],
                       [np.zeros((1, 32)), np.ones((1, 1))]])
    rank = np.linalg.matrix_rank(folded)
    (warning,) = report["warnings"]
    assert warning.startswith(f"fc2: measured rank {rank} > declared rank 4") and "folded" in warning
    assert "outside the spec's declared class" in warning
    text = runner.invoke(app, ["evaluate", str(rank4_spec), str(root / "mlp.pt"), "--data", str(root / "train.npz")])
    assert "declared rank 4" in text.stdout


def test_measure_with_a_spec_says_shapes_are_folded(digits):
    root = digits["root"]
    result = runner.invoke(app, ["measure", str(root / "mlp.pt"), "--spec", str(SPECS / "digits_mlp.yaml")],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "shape (bias folded)" in result.stdout and "33×65" in result.stdout
    assert "Shapes and norms are of the folded matrices" in result.stdout
    data = json.loads(runner.invoke(app, ["measure", str(root / "mlp.pt"), "--spec", str(SPECS / "digits_mlp.yaml"),
                                          "-f", "json"]).stdout)
    assert data["biases_folded"] is True and any("folded matrices" in m for m in data["method"])


# -- item 14: evaluate output -----------------------------------------------------------------------------
def test_evaluate_labels_caveats_and_markdown(digits):
    root = digits["root"]
    args = ["evaluate", str(SPECS / "digits_mlp.yaml"), str(root / "mlp.pt"), "--data", str(root / "train.npz"),
            "--data-test", str(root / "test.npz")]
    text = runner.invoke(app, args, env={"COLUMNS": "400"}).stdout
    assert "complexity term" in text and "2√π·𝓛·Ĝ_S" in text
    assert "[pinto2024, pinto2024_tight] C1, C2 are the universal constants" in text
    assert "[vc2019] Counts parameters, not norms" in text
    report = json.loads(runner.invoke(app, args + ["-f", "json"]).stdout)
    train, test = report["data"]["train"], report["data"]["test"]
    markdown = runner.invoke(app, args + ["-f", "markdown"]).stdout
    assert f"| train | {train['m']} | {train['error']:.4g} |" in markdown
    assert f"| test | {test['m']} | {test['error']:.4g} |" in markdown
    assert f"Measured gap (test error − train error): {test['error'] - train['error']:.4g}" in markdown
    assert "complexity term" in markdown and "[pinto2024, pinto2024_tight]" in markdown


# -- item 15: zoo summary ---------------------------------------------------------------------------------
def _summary(n: int):
    from boundcalc.render.zoo import summary_dict, summary_view
    from boundcalc.pipeline import EvaluateSettings
    from boundcalc.zoo.run import ZooResult, summarise

    results = [ZooResult(id=f"m{i}", file=f"m{i}.pt", hyperparameters={"wd": i % 2, "width": i // 2},
                         train_error=0.0, test_error=0.01 * i, gap=0.01 * i, ok=True,
                         bounds={"b": {"status": "derived", "applies": True, "reason": "", "complexity_log10": 1.0,
                                       "gap_log10": float(i), "test_error_bound": 2.0, "vacuous": True}})
               for i in range(n)]
    summary = summary_dict(results, summarise(results), EvaluateSettings(), "spec.yaml", "train.npz")
    return summary, _text(summary_view(summary))


def test_zoo_summary_shows_psi_per_hyperparameter_and_warns_on_few_models():
    summary, text = _summary(2)
    (bound,) = summary["bounds"]
    assert bound["kendall_tau"] == 1.0 and bound["kendall_tau_p_value"] == 1.0     # 2 models: τ = ±1 always
    assert "wd: 1" in text                       # ψ_wd over the one group {m0, m1} that differs only in wd
    (warning,) = summary["warnings"]
    assert "only n = 2 models for b" in warning and "not meaningful" in warning and "p-value of τ: 1" in warning
    assert warning in text
    summary, text = _summary(12)
    assert summary["warnings"] == []
    # 12 models in perfect order: p = 2/12! (the two orderings with |τ| = 1)
    assert summary["bounds"][0]["kendall_tau_p_value"] == pytest.approx(2 / 479001600)


# -- item 16: check --------------------------------------------------------------------------------------
def test_check_shows_a_repeat_with_count_index_and_body():
    result = runner.invoke(app, ["check", str(SPECS / "lowrank_mlp.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "repeat ×(L - 2), t = 1..L - 2" in out
    assert "↳ relu1[t]" in out and "↳ fc[t]" in out and "fc[t - 1] (fc_in at t = 1)" in out
    assert out.index("↳ fc[t]") < out.index("relu2")


def test_check_lists_unrolled_layers_in_graph_order():
    result = runner.invoke(app, ["check", str(SPECS / "lowrank_mlp.yaml"), "--set", "L=4"], env={"COLUMNS": "200"})
    names = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert names == ["input", "fc_in", "relu1[1]", "fc[1]", "relu1[2]", "fc[2]", "relu2", "head"]
    result = runner.invoke(app, ["check", str(SPECS / "resnet_block.yaml"), "--set", "L=2"], env={"COLUMNS": "200"})
    names = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert names == ["input", "stem", "a[1]", "act[1]", "b[1]", "res[1]", "a[2]", "act[2]", "b[2]", "res[2]", "head"]
