"""The README's command table lists every option of every command (issue: "not every option is listed")."""
from __future__ import annotations

from pathlib import Path

import pytest
import typer

from boundcalc.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def commands(group, path=()):
    for name, sub in getattr(group, "commands", {}).items():
        if hasattr(sub, "commands"):
            yield from commands(sub, path + (name,))
        else:
            yield path + (name,), sub


COMMANDS = list(commands(typer.main.get_command(app)))


def table_row(path: tuple[str, ...]) -> str:
    prefix = "| `boundcalc " + " ".join(path)
    rows = [line for line in README.splitlines() if line.startswith(prefix + " ") or line.startswith(prefix + "`")]
    assert rows, f"no row for boundcalc {' '.join(path)} in the README's command table"
    return rows[0]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_is_in_its_command_row(path, command):
    row = table_row(path)
    for param in command.params:
        names = [o for o in [*param.opts, *param.secondary_opts] if o.startswith("--") and o != "--help"]
        if names:
            assert any(n in row for n in names), f"boundcalc {' '.join(path)}: {names[0]} is not in its README row"
