"""The typer app, the output formats and the console every command prints through; ``_fail`` prints one
``error:`` line and exits with code 2."""
from __future__ import annotations

import os
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.console import Console

from boundcalc import __version__
from boundcalc.cli_errors import BoundcalcGroup
from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError


app = typer.Typer(
    cls=BoundcalcGroup,
    help="boundcalc: turn a network architecture (YAML spec) into a generalization bound.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



class Format(str, Enum):
    text = "text"
    latex = "latex"
    markdown = "markdown"
    json = "json"


class RulesName(str, Enum):
    tight = "tight"
    as_printed = "as_printed"


class GapForm(str, Enum):
    derived = "derived"
    printed = "printed"


#: width for tables written to a file or a pipe (rich would fold them at 80 columns); COLUMNS overrides it
PIPE_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    """A rich console for results; not a terminal (a file, a pipe) and no COLUMNS: PIPE_WIDTH columns.
    Strings are never read as markup or emoji codes (user text reaches tables as it is)."""
    console = Console(stderr=stderr, highlight=False, markup=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def _parse_values(items: list[str]) -> dict[str, float | int]:
    if not items:
        return {}                 # without --set, the spec modules (sympy, pydantic) are not needed
    from boundcalc.spec.assign import parse_assignments

    try:
        return parse_assignments(items)
    except BoundcalcError as err:
        _fail(str(err))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"boundcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Derive, compare and evaluate generalization bounds for neural networks."""



class ListFormat(str, Enum):
    text = "text"
    json = "json"
