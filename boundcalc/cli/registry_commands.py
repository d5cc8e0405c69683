"""``boundcalc bounds list|show``: the registry of published bounds."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError
from boundcalc.cli.common import app, ListFormat, _console, _parse_values


bounds_app = typer.Typer(help="The registry of published bounds.", no_args_is_help=True)
app.add_typer(bounds_app, name="bounds")


@bounds_app.command("list")
def bounds_list(
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
) -> None:
    """List the registered bounds with status and citation."""
    from boundcalc.bounds import REGISTRY
    from boundcalc.render import compare as view

    entries = list(REGISTRY.values())
    if format is ListFormat.json:
        typer.echo(json.dumps(view.registry_dicts(entries), indent=2, ensure_ascii=False))
    else:
        _console().print(view.registry_table(entries))


@bounds_app.command("show")
def bounds_show(
    key: Annotated[str, typer.Argument(help="Bound key, e.g. bartlett2017.")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Build the formula on this spec (default: a "
                                                 "generic 3-layer MLP, or a small CNN for conv-only bounds).")] = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol of the --spec to a number, e.g. "
                                            "--set L=4 or --set s_fc1=2. Repeatable.")] = [],
) -> None:
    """Show one bound: formula (text and LaTeX), assumptions, derivation and caveats."""
    from boundcalc.bounds import NetworkView, get_entry
    from boundcalc.bounds.base import Applied
    from boundcalc.bounds.examples import generic_specs
    from boundcalc.spec.assign import check_used
    from boundcalc.spec.load import load_spec
    from boundcalc.render import compare as view

    try:
        entry = get_entry(key)
        if set_ and spec is None:
            raise BoundcalcError("--set needs --spec (the generic example networks take no values)")
        specs = [load_spec(spec, values=_parse_values(set_))] if spec is not None else generic_specs()
        for candidate in specs:
            result = entry.apply(NetworkView(candidate))
            if isinstance(result, Applied):
                break
        if spec is not None:
            check_used(specs[0])
    except BoundcalcError as err:
        _fail(str(err))
    label = str(spec) if spec is not None else candidate.name
    if format is ListFormat.json:
        typer.echo(json.dumps(view.entry_dict(entry, result, label), indent=2, ensure_ascii=False))
    else:
        _console().print(view.entry_view(entry, result, label))


