"""``boundcalc trace``: a PyTorch model (the user's own code, imported and run) → a spec file."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from boundcalc.cli.common import ListFormat, _console, app
from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError

TARGET_HELP = ("path/to/file.py:callable or package.module:callable; the callable is called with no arguments "
               "and returns a torch.nn.Module. The target is IMPORTED AND RUN: it is your own code, so trace only "
               "code you trust.")


@app.command()
def trace(
    target: Annotated[str, typer.Argument(help=TARGET_HELP)],
    input_shape: Annotated[str, typer.Option("--input-shape", help="One sample's shape: C,H,W for images, T,D for "
                                             "sequences of T tokens (data: {tokens: T, dim: D}), D for vectors (at most 2²² values, MAX_TRACE_INPUT_VALUES).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the spec here (atomically; never over "
                                                "the target file). Default: print the spec.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="The spec's name (default: the callable's "
                                                "name).")] = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
) -> None:
    """Trace a PyTorch model into a spec. TARGET is imported and run (your own code). The model is put in eval
    mode and captured with torch.export (torch.fx where export fails; the spec says which); every weight layer
    gets param: naming its state-dict key, so evaluate binds model.state_dict() with nothing written by hand.
    What a spec cannot express is listed in one table (module, op, why), exit 2, and nothing is written."""
    from boundcalc.files import refuse_overwriting, write_text_atomic
    from boundcalc.render import trace as view
    from boundcalc.trace import UnsupportedError
    from boundcalc.trace.api import trace_target
    from boundcalc.trace.target import is_file_target, split_target

    try:
        where, callable_name = split_target(target)
        if out is not None and is_file_target(where):
            refuse_overwriting([out], [where])
        traced = trace_target(target, input_shape, name=name or callable_name.rsplit(".", 1)[-1])
        if out is not None:
            write_text_atomic(out, traced.text)
    except UnsupportedError as err:
        if format is ListFormat.json:
            typer.echo(view.unsupported_json(err.rows, str(err)))
        else:
            _console(stderr=True).print(view.unsupported_table(err.rows))
        _fail(str(err))
    except BoundcalcError as err:
        _fail(str(err))
    if format is ListFormat.json:
        typer.echo(view.traced_json(traced, str(out) if out is not None else None))
    elif out is not None:
        _console().print(view.written_line(traced, str(out)))
    else:
        typer.echo(traced.text, nl=False)
