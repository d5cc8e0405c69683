"""The digits study: its tiny version (4 models, 1 epoch) runs end to end and is reproducible byte for byte;
its findings quote its own tables; the committed page shows the committed outputs."""
import csv
import filecmp
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[1] / "studies" / "digits"
RUN = STUDY / "run.py"


def run_tiny(out: Path, workers: int, threads: int) -> None:
    """The tiny study, started with ``threads`` OpenMP threads in its environment (as a user's shell may have)."""
    proc = subprocess.run([sys.executable, str(RUN), "--tiny", "--out", str(out), "--workers", str(workers)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    assert proc.returncode == 0, proc.stderr[-2000:]


def files(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The tiny study twice: with 1 worker and 1 thread, and with 2 workers and 2 threads into a folder at
    another depth (2 threads gave other weights before training was pinned to one thread)."""
    first = tmp_path_factory.mktemp("one") / "study"
    second = tmp_path_factory.mktemp("two") / "nested" / "elsewhere"
    run_tiny(first, 1, threads=1)
    run_tiny(second, 2, threads=2)
    return first, second


def test_tiny_study(tiny_runs):
    out = tiny_runs[0]
    markdown = (out / "results.md").read_text()
    assert "4 of 4 models evaluated" in markdown
    for key in ("pinto2024", "pinto2024_tight", "golowich2018", "bartlett2017_dudley"):
        assert f"| {key} |" in markdown
    assert "Rank collapse against weight decay" in markdown and "Low-rank variants" in markdown
    with open(out / "results" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["rank"] for r in rows} == {"full", "2.0"}
    assert (out / "collapse_vs_weight_decay.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "plots" / "pinto2024_tight.png").is_file()
    assert (out / "findings.md").read_text().count("**") >= 6


def test_tiny_study_is_byte_identical_across_runs_threads_workers_and_folders(tiny_runs):
    first, second = tiny_runs
    assert files(first) == files(second)
    assert len(files(first)) >= 20          # tables, findings, results, plots, zoo checkpoints, data
    differ = [str(p) for p in files(first) if not filecmp.cmp(first / p, second / p, shallow=False)]
    assert differ == []
    assert str(first) not in (first / "results" / "results.json").read_text()


def test_study_refuses_to_overwrite_the_committed_outputs_with_the_tiny_grid():
    before = {p: (STUDY / "output" / p).read_bytes() for p in files(STUDY / "output")}
    proc = subprocess.run([sys.executable, str(RUN), "--tiny", "--regenerate"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--tiny would overwrite the committed outputs" in proc.stderr
    assert {p: (STUDY / "output" / p).read_bytes() for p in files(STUDY / "output")} == before


# -- findings from tables: hand-made inputs, numbers worked out by hand -----------------------------------------

def _bound(key, status, tau, psi, per, non_vacuous):
    return {"key": key, "status": status, "models": 4, "kendall_tau": tau, "kendall_tau_p_value": 0.5, "psi": psi,
            "psi_by_hyperparameter": per, "non_vacuous_fraction": non_vacuous}


def _model(model_id, wd, rank, train, gap, logs):
    return {"id": model_id, "ok": True, "train_error": train, "gap": gap,
            "hyperparameters": {"weight_decay": wd, "width": 64.0, "depth": 3.0, "rank": rank},
            "bounds": {k: {"gap_log10": v} for k, v in logs.items()}}


def _layer(ratio):
    return {"ratio": ratio, "k": 10}


@pytest.fixture()
def findings_module():
    sys.path.insert(0, str(STUDY))
    try:
        yield importlib.import_module("findings")
    finally:
        sys.path.remove(str(STUDY))


def test_findings_quote_the_tables_as_shown(findings_module):
    keys = ("pinto2024", "pinto2024_tight", "bartlett2017", "neyshabur2018", "vc2019")
    summary = {"evaluated": 4, "models": 4, "failed": [], "bounds": [
        _bound("pinto2024", "exact", 0.4049, 0.30, {"weight_decay": 0.7, "rank": -1.0}, 0.0),
        _bound("pinto2024_tight", "derived", 0.8951, 0.61, {"weight_decay": 0.1, "rank": 1.0}, 0.0),
        _bound("bartlett2017", "order", 0.6, 0.5, {"weight_decay": 0.7, "rank": 1.0}, None),
        _bound("neyshabur2018", "order", 0.7, 0.5, {"weight_decay": 0.7, "rank": 1.0}, None),
        _bound("vc2019", "order", 0.1, 0.0, {"weight_decay": 0.0, "rank": 0.0}, None)]}
    logs = lambda *v: dict(zip(keys, v))  # noqa: E731
    results = [_model("full0", 0.0, "full", 0.0, 0.05, logs(4.0, 3.0, 3.1, 3.2, 1.9)),
               _model("full1", 0.001, "full", 0.0, 0.06, logs(3.9, 2.9, 3.0, 3.0, 1.9)),
               _model("r2", 0.0, 2.0, 0.004, 0.12, logs(4.8, 4.5, 4.44, 4.4, 1.9)),
               _model("r2b", 0.001, 2.0, 0.002, 0.10, logs(4.3, 4.0, 3.93, 3.97, 1.9))]
    records = [{"weight_decay": 0.0, "rank": 64.0, "dist_k": 3.874, "tcv": 1397.0, "nc1": 0.8,
                "layers": [_layer(0.0), _layer(0.0)]},
               {"weight_decay": 0.01, "rank": 48.04, "dist_k": 0.1581, "tcv": 635.24, "nc1": 1.1,
                "layers": [_layer(1.14e-5), _layer(3.4e-7)]}]
    text = findings_module.findings_markdown(summary, results, records)
    # τ cells 0.40, 0.90, 0.60, 0.70 (two decimals, as the table shows them); VC excluded from the norm bounds
    assert "every norm-based bound correlates positively with the measured gap: τ is 0.40 to 0.90" in text
    assert "(highest: `pinto2024_tight`)" in text
    assert "`vc2019` sees nothing but the parameter count: τ = 0.10, below every norm-based bound" in text
    assert "weight decay: followed by `pinto2024` (0.70)" in text and "`pinto2024_tight` (0.10)" in text
    assert "ranked backwards by `pinto2024` (-1.00)" in text
    # mean gaps of the full-rank models per λ: 0.050 and 0.060; training error 0.000 both: no underfit claim
    assert "λ = 0: 0.050, 0.001: 0.060" in text and "underfit" not in text
    # exact/derived bounds never non-vacuous; their log10 gap bounds over all models: 2.90 to 4.80
    assert "No exact or derived bound is non-vacuous" in text and "2.90 to 4.80 over all models" in text
    # rank 64.0 → 48.0; dist_K cells 3.87 → 0.158: 3.87/0.158 = 24.5 → "24-fold"; TCV 1397 → 635.2: 2.2-fold
    assert "mean numeric rank 64.0 → 48.0" in text and "falls 24-fold (dist_K 3.87 → 0.158)" in text
    assert "falls 2.2-fold (1397 → 635.2)" in text
    assert "of order 10⁻⁷ to 10⁻⁵" in text
    # low rank: per model, spread of (tight, bartlett, neyshabur): r2 4.50−4.40 = 0.10, r2b 4.00−3.93 = 0.07
    assert "lie within 0.10 of each other" in text
    # pinto2024 − tight: 0.30 on both
    assert "`pinto2024` is 0.30 above `pinto2024_tight`" in text
    assert "`pinto2024` is the highest on 2 of 2 (log10 4.30 to 4.80)" in text
    assert "every norm-based bound is larger on every factorized model" in text
    assert "training error is at most 0.004 (full-rank: 0.000)" in text
    assert "measured gap is 0.100 to 0.120 against 0.050 to 0.060" in text


# -- the committed page ----------------------------------------------------------------------------------------

def _section(text: str, name: str) -> str:
    match = re.search(f"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"no {name} markers in the README"
    return match.group(1)


def test_readme_shows_the_committed_outputs():
    readme = (STUDY / "README.md").read_text()
    for name in ("findings", "results"):
        generated = (STUDY / "output" / f"{name}.md").read_text()
        assert _section(readme, name) == generated.replace("](", "](output/")


def test_committed_tables_agree_with_the_committed_summary():
    summary = json.loads((STUDY / "output" / "results" / "summary.json").read_text())
    results = (STUDY / "output" / "results.md").read_text()
    for bound in summary["bounds"]:
        row = next(line for line in results.splitlines() if line.startswith(f"| {bound['key']} |"))
        assert row.split(" | ")[2] == f"{bound['kendall_tau']:.2f}"
    assert f"{summary['evaluated']} of {summary['models']} models evaluated" in results
    assert "/" not in summary["data"]
