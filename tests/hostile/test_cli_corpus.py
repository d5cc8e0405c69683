"""Every hostile input of tests/hostile/corpus.py through the CLI: one `error:` line naming the problem,
exit code 2, no traceback, and no side effect (the folder is unchanged and no payload file exists)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from boundcalc.cli import app
from tests.hostile import (round2_files, round2_output, round2_spec, round3_certify, round3_maps, round3_trace,
                           round3_weights, round4_sequence)
from tests.hostile.corpus import CASES as ROUND1, PWNED, SUBPROCESS_IDS, Case

CASES = [*ROUND1, *round2_spec.CASES, *round2_files.CASES, *round2_output.CASES, *round3_certify.CASES,
         *round3_maps.CASES, *round3_trace.CASES, *round3_weights.CASES, *round4_sequence.CASES]

runner = CliRunner()
CLI = Path(__file__).resolve().parents[2] / "cli.py"


def write_files(folder: Path, case: Case) -> None:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def run(case: Case, folder: Path):
    write_files(folder, case)
    args = [a.replace("{dir}", str(folder)) for a in case.args]
    before = snapshot(folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = runner.invoke(app, args)
    finally:
        os.chdir(cwd)
    return result, before, snapshot(folder)


def test_corpus_is_large_and_ids_are_unique():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_line_exit_2_no_side_effect(case, tmp_path):
    result, before, after = run(case, tmp_path)
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines
    if not case.table:
        assert lines == errors, lines
    assert case.phrase in errors[0], errors[0]
    assert before == after, "the folder changed"
    assert not (tmp_path / PWNED).exists() and not (Path.cwd() / PWNED).exists()


REAL_PROCESS = [c for c in CASES if c.id in SUBPROCESS_IDS]


@pytest.mark.parametrize("case", REAL_PROCESS, ids=[c.id for c in REAL_PROCESS])
def test_hostile_input_in_a_real_process(case, tmp_path):
    write_files(tmp_path, case)
    args = [a.replace("{dir}", str(tmp_path)) for a in case.args]
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and case.phrase in errors[0], proc.stderr
    if not case.table:
        assert lines == errors, lines          # nothing else on stderr: no warnings, no progress residue
    assert snapshot(tmp_path) == before and not (tmp_path / PWNED).exists()
