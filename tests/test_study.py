"""The digits study's tiny version (4 models, 1 epoch) runs end to end: it trains, builds a zoo, calls
`boundcalc zoo evaluate` and `boundcalc collapse`, and writes its tables and figures."""
import csv
import subprocess
import sys
from pathlib import Path

STUDY = Path(__file__).resolve().parents[1] / "studies" / "digits" / "run.py"


def test_tiny_study(tmp_path):
    proc = subprocess.run([sys.executable, str(STUDY), "--tiny", "--out", str(tmp_path), "--workers", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    markdown = (tmp_path / "results.md").read_text()
    assert "4 of 4 models evaluated" in markdown
    for key in ("pinto2024", "pinto2024_tight", "golowich2018", "bartlett2017_dudley"):
        assert f"| {key} |" in markdown
    assert "Rank collapse against weight decay" in markdown and "Low-rank variants" in markdown
    with open(tmp_path / "results" / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {r["rank"] for r in rows} == {"full", "2.0"}
    assert (tmp_path / "collapse_vs_weight_decay.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plots" / "pinto2024_tight.png").is_file()
