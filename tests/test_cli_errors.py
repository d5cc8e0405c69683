"""Option and usage errors as one ``error:`` line with exit code 2, in process and in a real interpreter; the
error-line printer keeps any message on one line; ``--help`` and a bare ``boundcalc`` are typer's own."""
from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.core import TyperGroup
from typer.testing import CliRunner

from boundcalc.cli import app
from boundcalc.cli_errors import BoundcalcGroup, error_line, fail
from boundcalc.errors import BoundcalcError
from tests.hostile import round2_output
from tests.hostile.test_cli_corpus import snapshot, write_files

runner = CliRunner()
CLI = Path(__file__).resolve().parents[1] / "cli.py"

#: option errors on several commands, each also run in a fresh interpreter (`python cli.py …`; about 2.5 s
#: each, most of it importing sympy)
REAL_PROCESS_IDS = ["option-format-not-a-choice", "option-workers-not-an-integer", "argument-spec-missing",
                    "option-unknown-near-miss", "command-unknown", "option-data-missing"]
REAL_PROCESS = [c for c in round2_output.CASES if c.id in REAL_PROCESS_IDS]


def test_every_real_process_case_exists():
    assert len(REAL_PROCESS) == len(REAL_PROCESS_IDS)


@pytest.mark.parametrize("case", REAL_PROCESS, ids=[c.id for c in REAL_PROCESS])
def test_option_error_in_a_real_process(case, tmp_path):
    write_files(tmp_path, case)
    before = snapshot(tmp_path)
    args = [a.replace("{dir}", str(tmp_path)) for a in case.args]
    proc = subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and case.phrase in lines[0], proc.stderr
    assert "Usage:" not in proc.stderr and "╭" not in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args", [["--help"], ["derive", "--help"], ["zoo", "evaluate", "--help"],
                                  ["bounds", "show", "--help"], [], ["bounds"]])
def test_help_and_a_bare_command_are_typers_own(args, monkeypatch):
    ours = runner.invoke(app, args)
    monkeypatch.setattr(app.info, "cls", TyperGroup)       # the same app without the error hook
    plain = runner.invoke(app, args)
    assert ours.stdout == plain.stdout and ours.stderr == plain.stderr
    assert ours.exit_code == plain.exit_code == (0 if args and args[-1] == "--help" else 2)
    assert "Usage:" in ours.stdout and "Traceback" not in ours.stdout + ours.stderr


def test_version_and_a_result_keep_exit_code_0():
    assert runner.invoke(app, ["--version"]).exit_code == 0
    result = runner.invoke(app, ["bounds", "list", "--format", "json"])
    assert result.exit_code == 0 and result.stderr == ""


#: characters that end a line (str.splitlines), move the cursor or change the terminal
CONTROLS = ["\n", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00",
            "\x07", "\x08", "\x1b[2J", "\x1b]0;title\x07", "\x7f", "\u202e", "\u200f", "\x9b"]


@pytest.mark.parametrize("control", CONTROLS, ids=[repr(c) for c in CONTROLS])
def test_error_line_quotes_every_control_character(control):
    line = error_line(f"tensor 'a{control}error: injected' is bad")
    assert len(line.splitlines()) == 1 and line.isprintable(), repr(line)
    assert line.startswith("error: tensor 'a") and line.endswith("error: injected' is bad")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_error_line_of_any_message_is_one_printable_line(message):
    line = error_line(message)
    assert line.startswith("error: ") and line.isprintable() and len(line.splitlines()) == 1
    printable = [c for c in message if c.isprintable()]
    assert all(c in line for c in printable)      # nothing printable is dropped
    assert not any(unicodedata.category(c) == "Cc" for c in line)


def _hooked_app(raise_in_command: bool) -> typer.Typer:
    hooked = typer.Typer(cls=BoundcalcGroup, add_completion=False, pretty_exceptions_enable=False)

    @hooked.command()
    def boom() -> None:
        if raise_in_command:
            raise BoundcalcError("first line\nerror: second line")
        fail("via fail\r\nerror: second line")

    @hooked.command()
    def other() -> None:
        pass

    return hooked


@pytest.mark.parametrize("raise_in_command", [True, False])
def test_any_boundcalc_error_reaching_the_cli_is_one_line(raise_in_command):
    result = runner.invoke(_hooked_app(raise_in_command), ["boom"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "\\nerror: second line" in lines[0], lines


def test_an_unexpected_exception_is_one_line_not_a_traceback(monkeypatch, tmp_path):
    """Last resort: a bug reached by some input prints one 'internal error' line with exit code 2; the
    suite runs with BOUNDCALC_DEBUG=1 so that such bugs still fail the tests that reach them."""
    import boundcalc.cli as cli_module
    import boundcalc.spec.load as spec_load   # the command imports load_spec when it runs

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(spec_load, "load_spec", broken)
    monkeypatch.delenv("BOUNDCALC_DEBUG", raising=False)
    result = CliRunner().invoke(cli_module.app, ["check", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: internal error (ValueError: boom); please report it with the input that caused it "
        "(BOUNDCALC_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("BOUNDCALC_DEBUG", "1")
    assert isinstance(CliRunner().invoke(cli_module.app, ["check", str(tmp_path / "s.yaml")]).exception, ValueError)
