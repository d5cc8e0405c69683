"""The exceptions boundcalc raises for bad input.

Every user-facing failure is a :class:`BoundcalcError`; the CLI prints ``str(err)`` on one line and
exits with code 2. Structured fields (file, line, path, found, expected) let tests and ``--format json``
read the same data the sentence is built from (pattern from pint's ``errors.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


class BoundcalcError(ValueError):
    """Base class: a problem with the user's input that boundcalc reports instead of a traceback."""


class CheckpointError(BoundcalcError):
    """A weight file that cannot be read, or a tensor in it that cannot be used."""


@dataclass
class SpecError(BoundcalcError):
    """A spec that cannot be loaded: names the file, line and field, and what was expected."""

    message: str
    file: str | None = None
    line: int | None = None
    path: str | None = None
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
        head = f"{where} {self.path}: " if self.path else f"{where}: "
        tail = f" {self.hint}" if self.hint else ""
        return head + self.message + tail


@dataclass
class ExpressionError(BoundcalcError):
    """An expression string rejected by the restricted parser; `SpecError` adds file/line context."""

    message: str
    expression: str = ""

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.message} in expression {self.expression!r}" if self.expression else self.message


@dataclass
class DeriveError(BoundcalcError):
    """A valid spec that a rule set cannot handle; lists every offending layer, not just the first."""

    message: str
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return f"{self.message}: " + "; ".join(self.problems)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty): the reason a
    library gives, fit for a one-line error."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
