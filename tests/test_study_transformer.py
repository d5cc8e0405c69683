"""The transformer study: its tiny version (2 models, 4 epochs, one small certificate) runs end to end; each
hand-written spec reproduces its model's margins (the spec's forward pass against torch's); the committed page
shows the committed outputs; the findings quote means worked out by hand."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import study_imports

STUDY = Path(__file__).resolve().parents[1] / "studies" / "transformer"
RUN = STUDY / "run.py"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("transformer") / "study"
    proc = subprocess.run([sys.executable, str(RUN), "--tiny", "--out", str(out), "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def study_modules():
    with study_imports(STUDY) as load:
        yield load("run"), load("models")


def test_tiny_study_trains_ranks_and_certifies(tiny):
    out, stdout = tiny
    assert sorted(p.name for p in (out / "zoo").glob("*.yaml")) == ["tf_d1_h1.yaml", "tf_d1_h2.yaml"]
    spec = (out / "zoo" / "tf_d1_h2.yaml").read_text()
    assert "op: attention" in spec and 'param: "blocks.{t-1}.att"' in spec and "heads: 2" in spec
    markdown = (out / "results.md").read_text()
    assert "2 of 2 models evaluated" in markdown and "biases kept" in markdown
    assert re.search(r"^\| pinto2024_tight \| derived \| -?\d\.\d\d \|", markdown, re.M)
    # the other bounds are refused with their reasons
    assert re.search(r"^\| bartlett2017 \| all \| chain networks only", markdown, re.M)
    assert re.search(r"^\| gonon2024 \| all \| does not cover ops gelu, layernorm, softmax_mix", markdown, re.M)
    # the first model is certified (tiny: only it), the second shows a dash
    certs = json.loads((out / "certificates.json").read_text())
    assert list(certs) == ["tf_d1_h1_wd0"] and 0 < certs["tf_d1_h1_wd0"]["certificate"] <= 1
    row = re.search(r"^\| tf_d1_h1_wd0 \|.*\| (\d\.\d{3}) \((\d\.\d{3})\) \|$", markdown, re.M)
    assert row and float(row.group(1)) == pytest.approx(certs["tf_d1_h1_wd0"]["certificate"], abs=5e-4)
    assert re.search(r"^\| tf_d1_h2_wd0 \|.*\| — \|$", markdown, re.M)
    assert "written to" not in stdout


def test_hand_written_spec_reproduces_the_model_margins(tiny, study_modules):
    from typer.testing import CliRunner

    from boundcalc.cli import app

    out, _ = tiny
    _, models = study_modules
    net = models.Encoder(1, 2)
    net.load_state_dict(load_file(out / "zoo" / "tf_d1_h2_wd0.safetensors"))
    net.eval()
    data = dict(__import__("numpy").load(out / "train.npz"))
    with torch.no_grad():
        logits = net(torch.from_numpy(data["X"])).double()
    y = torch.from_numpy(data["y"]).long()
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).max(1).values
    margins = true - other
    result = CliRunner().invoke(app, ["evaluate", str(out / "zoo" / "tf_d1_h2.yaml"),
                                      str(out / "zoo" / "tf_d1_h2_wd0.safetensors"), "--data", str(out / "train.npz"),
                                      "--biases", "keep", "--margin-percentile", "50", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    train = json.loads(result.stdout)["data"]["train"]
    assert train["min"] == pytest.approx(float(margins.min()), rel=1e-4)
    assert train["error"] == pytest.approx(float((margins <= 0).double().mean()), abs=1e-9)


def test_tiny_refuses_to_overwrite_the_committed_outputs():
    proc = subprocess.run([sys.executable, str(RUN), "--tiny", "--regenerate"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--tiny would overwrite the committed outputs" in proc.stderr


def _result(key, depth, heads, test_error, log):
    return {"ok": True, "id": key, "gap": 0.1, "test_error": test_error,
            "hyperparameters": {"depth": depth, "heads": heads, "weight_decay": 0.0},
            "bounds": {"k": {"applies": True, "gap_log10": log}}}


def test_findings_quote_means_worked_out_by_hand(study_modules):
    run, _ = study_modules
    summary = {"bounds": [{"key": "k", "kendall_tau": 0.1}]}
    results = [_result("a", 1.0, 1.0, 0.05, 4.0), _result("b", 1.0, 2.0, 0.07, 5.0), _result("c", 2.0, 2.0, 0.03, 7.0)]
    found = {"a": {"certificate": 0.5, "test_error": 0.1}, "c": {"certificate": 0.8, "test_error": 0.1}}
    text = "\n".join(run.findings(summary, results, found))
    assert "τ of the applicable bounds is 0.10: none tracks the gap" in text
    # depth 1: (4 + 5)/2 = 4.5, depth 2: 7; heads 1: 4, heads 2: (5 + 7)/2 = 6
    assert "`k` by depth: 4.50 at depth 1, 7.00 at depth 2." in text
    assert "`k` by heads: 4.00 at heads 1, 6.00 at heads 2." in text
    assert "by 0.500 to 0.800 (mean 0.650)" in text and "checkpoints are 0.030 to 0.070" in text


def test_readme_shows_the_committed_outputs():
    readme = (STUDY / "README.md").read_text()
    match = re.search("<!-- results:start -->\n(.*?)<!-- results:end -->", readme, re.S)
    assert match and match.group(1) == (STUDY / "output" / "results.md").read_text().replace("](", "](output/")
    summary = json.loads((STUDY / "output" / "results" / "summary.json").read_text())
    assert summary["evaluated"] == summary["models"] == 12
    assert {b["key"] for b in summary["bounds"]} == {"pinto2024_tight"}
    assert len(json.loads((STUDY / "output" / "certificates.json").read_text())) == 12
