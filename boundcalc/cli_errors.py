"""How the ``boundcalc`` command line reports a failure: one line ``error: …`` on stderr, exit code 2.

:func:`print_error` is the only writer of that line: whatever a message contains, it prints as one line
(control characters quoted). :class:`BoundcalcGroup` is the root command; it turns typer/click's usage
errors (unknown option or command, bad or missing value, missing or extra argument) into that line instead
of a usage text and a boxed panel. ``--help`` is untouched.
"""
from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any, NoReturn

import typer
from typer._click.core import Context, Parameter
from typer._click.exceptions import (BadOptionUsage, BadParameter, ClickException, MissingParameter,
                                     NoArgsIsHelpError, NoSuchOption)
from typer.core import TyperGroup, TyperOption

from boundcalc.errors import BoundcalcError
from boundcalc.render.escape import one_line

#: exit code of every user error (bad spec, file, value or option), as click uses for usage errors
USAGE_EXIT = 2

#: what an option or argument of each type expects, for "'abc' is not an integer"
_EXPECTED = {int: "an integer", float: "a number", bool: "true or false"}


def error_line(message: object) -> str:
    """``error: <message>`` on one line: newlines, carriage returns, tabs, escapes and every other control
    character in the message are quoted, so no message can add a line of its own."""
    return "error: " + one_line(message)


def print_error(message: object) -> None:
    """Print :func:`error_line` on stderr."""
    typer.echo(error_line(message), err=True)


def fail(message: object) -> NoReturn:
    """Print the error line and stop with exit code 2."""
    print_error(message)
    raise typer.Exit(code=USAGE_EXIT)


def usage_message(err: ClickException) -> str:
    """The sentence for a click/typer usage error, naming the option, argument or command and what was
    expected, with click's "did you mean" when it has one."""
    command = _command_name(getattr(err, "ctx", None))
    if isinstance(err, NoSuchOption):
        return f"{command}: no such option {err.option_name}" + _did_you_mean(err.possibilities)
    if isinstance(err, MissingParameter) and err.param is not None:
        kind = "option" if isinstance(err.param, TyperOption) else "argument"
        return f"{command}: missing {kind} {_param_name(err.param)}" + _one_of(err.param)
    if isinstance(err, BadParameter) and err.param is not None:
        return f"{_param_name(err.param)}: {_bad_value(err)}"
    if isinstance(err, BadOptionUsage) and "requires" in err.message:
        return f"{err.option_name}: needs a value"
    text = _sentence(err.format_message())
    return f"{command}: {text}"


class BoundcalcGroup(TyperGroup):
    """The root command group: usage errors and any :class:`BoundcalcError` that reaches it become one
    ``error:`` line and exit code 2; everything else (``--help``, results, exit codes) is typer's."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:     # a caller that handles errors itself gets click's exceptions
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as err:
            if err.format_message().strip():    # typer's rich help has already printed itself
                typer.echo(err.format_message(), err=True)
            sys.exit(err.exit_code)
        except ClickException as err:
            print_error(usage_message(err))
            sys.exit(USAGE_EXIT)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        except BoundcalcError as err:
            print_error(err)
            sys.exit(USAGE_EXIT)
        except (RecursionError, MemoryError) as err:
            print_error(f"the input is too large or too deeply nested to process ({type(err).__name__})")
            sys.exit(USAGE_EXIT)
        except Exception as err:     # last resort: a bug that some input reached must not print a traceback
            if os.environ.get("BOUNDCALC_DEBUG"):
                raise
            print_error(f"internal error ({type(err).__name__}: {err}); please report it with the input that "
                        "caused it (BOUNDCALC_DEBUG=1 shows the traceback)")
            sys.exit(USAGE_EXIT)
        sys.exit(code if isinstance(code, int) else 0)


def _command_name(ctx: Context | None) -> str:
    """``boundcalc derive``, ``boundcalc zoo evaluate``: the command the error is about."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["boundcalc", *reversed(names)])


def _param_name(param: Parameter) -> str:
    """``--format`` for an option (its long name), ``SPEC`` for an argument."""
    if isinstance(param, TyperOption):
        return max(param.opts, key=lambda opt: (opt.startswith("--"), len(opt)))
    return (param.metavar or param.name or "argument").upper()


def _bad_value(err: BadParameter) -> str:
    """The problem with a value: ``'html' is not one of text, latex, …``, ``'abc' is not an integer``, or
    typer's own sentence when the value is not known."""
    value = _given_value(err)
    if value is None:
        return _sentence(err.message)
    choices = _choice_names(err.param)
    if choices:
        return f"{value!r} is not one of {', '.join(choices)}" + _did_you_mean(
            difflib.get_close_matches(str(value), choices, n=1))
    descriptor = getattr(err.param, "type_descriptor", None)
    expected = _EXPECTED.get(descriptor.annotation) if descriptor is not None else None
    if expected:
        return f"{value!r} is not {expected}"
    return f"{value!r}: {_sentence(err.message)}"


def _given_value(err: BadParameter) -> Any:
    """The value the user typed, from the validation error typer raised it from (None if unknown)."""
    errors = getattr(err.__cause__, "errors", None)
    if callable(errors):
        for item in errors():
            if "input" in item:
                return item["input"]
    return None


def _choice_names(param: Parameter) -> list[str]:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not descriptor.is_choice or not descriptor.choices:
        return []
    return [str(c.value if isinstance(c, Enum) else c) for c in descriptor.choices]


def _one_of(param: Parameter) -> str:
    names = _choice_names(param)
    return f" (one of {', '.join(names)})" if names else ""


def _did_you_mean(candidates: Sequence[str] | None) -> str:
    return f" (did you mean {' or '.join(sorted(candidates))}?)" if candidates else ""


def _sentence(message: str) -> str:
    """Click's sentence as a clause: "Missing command." -> "missing command", ". Did you mean x?" ->
    " (did you mean x?)", "Value error, …" -> "…"."""
    text = re.sub(r"^Value error, ", "", message.strip())
    text = re.sub(r"\.?\s*Did you mean (.*?)\??$", r" (did you mean \1?)", text)
    text = re.sub(r"^Got unexpected", "unexpected", text)
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]
