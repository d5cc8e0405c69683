"""The resnet study: its tiny version (4 traced models, 4 epochs) runs end to end; the committed page shows the
committed outputs; the not-applicable table groups architectures by reason."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import study_imports

STUDY = Path(__file__).resolve().parents[1] / "studies" / "resnet"
RUN = STUDY / "run.py"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("resnet") / "study"
    proc = subprocess.run([sys.executable, str(RUN), "--tiny", "--out", str(out), "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


def test_tiny_study_traces_trains_and_ranks_every_applicable_bound(tiny):
    out, stdout = tiny
    specs = sorted(p.name for p in (out / "zoo").glob("*.yaml"))
    assert specs == ["cnn_w8.yaml", "cnn_w8_bn.yaml", "resnet_w8.yaml", "resnet_w8_bn.yaml"]
    resnet_bn = (out / "zoo" / "resnet_w8_bn.yaml").read_text()
    assert "traced by boundcalc trace from models.py:resnet_w8_bn" in resnet_bn
    assert "op: batchnorm" in resnet_bn and "op: add" in resnet_bn and "stride: 2" in resnet_bn
    assert "op: maxpool" in (out / "zoo" / "cnn_w8.yaml").read_text()
    markdown = (out / "results.md").read_text()
    assert "4 of 4 models evaluated" in markdown and "biases kept" in markdown
    for key in ("pinto2024_tight", "gonon2024"):
        assert re.search(rf"^\| {key} \| derived \| -?\d\.\d\d \|", markdown, re.M), key
    # the chain-only bounds are refused on the residual nets, with the reason
    assert re.search(r"^\| bartlett2017 \| resnet \| chain networks only", markdown, re.M)
    summary = json.loads((out / "results" / "summary.json").read_text())
    assert summary["settings"]["biases"] == "keep" and summary["evaluated"] == 4
    assert "written to" not in stdout        # --tiny never compares with the committed outputs


def test_tiny_refuses_to_overwrite_the_committed_outputs():
    proc = subprocess.run([sys.executable, str(RUN), "--tiny", "--regenerate"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--tiny would overwrite the committed outputs" in proc.stderr


@pytest.fixture()
def run_module():
    with study_imports(STUDY) as load:
        yield load("run")


def _result(arch, bn, reasons, gap=0.1, logs=None):
    bounds = {key: {"applies": False, "reason": why} for key, why in reasons.items()}
    bounds.update({key: {"applies": True, "gap_log10": v} for key, v in (logs or {}).items()})
    return {"ok": True, "gap": gap, "hyperparameters": {"arch": arch, "batchnorm": bn}, "bounds": bounds}


def test_not_applicable_table_groups_architectures_by_reason(run_module):
    results = [_result("cnn", "no", {"b1": "same", "b2": "x"}), _result("cnn", "yes", {"b1": "same", "b2": "y"}),
               _result("resnet", "no", {"b1": "same", "b2": "x"})]
    table = run_module.not_applicable_table(results)
    assert "| b1 | all | same |" in table
    assert "| b2 | cnn, resnet | x |" in table and "| b2 | cnn + BatchNorm | y |" in table


def test_findings_quote_means_worked_out_by_hand(run_module):
    summary = {"bounds": [{"key": "k", "kendall_tau": -0.12}, {"key": "j", "kendall_tau": 0.2}]}
    results = [_result("cnn", "no", {}, gap=0.05, logs={"k": 4.0, "j": 3.0}),
               _result("cnn", "no", {}, gap=0.07, logs={"k": 5.0, "j": 3.5}),
               _result("cnn", "yes", {}, gap=0.02, logs={"k": 6.0, "j": 4.0})]
    text = "\n".join(run_module.findings(summary, results))
    assert "τ of the applicable bounds is -0.12 to 0.20: none tracks the gap" in text
    # gaps: (0.05 + 0.07)/2 = 0.060 without, 0.020 with; k: 4.5 / 6.0; j: 3.25 → 3.25 / 4.0
    assert "mean measured gap is 0.060 without and 0.020 with" in text
    assert "`k` is 4.50 without and 6.00 with" in text and "`j` is 3.25 without and 4.00 with" in text


def test_readme_shows_the_committed_outputs():
    readme = (STUDY / "README.md").read_text()
    match = re.search("<!-- results:start -->\n(.*?)<!-- results:end -->", readme, re.S)
    assert match and match.group(1) == (STUDY / "output" / "results.md").read_text().replace("](", "](output/")
    summary = json.loads((STUDY / "output" / "results" / "summary.json").read_text())
    assert summary["evaluated"] == summary["models"] == 24
    assert {b["key"] for b in summary["bounds"]} == {"pinto2024_tight", "gonon2024"}
