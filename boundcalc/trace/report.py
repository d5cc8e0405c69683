"""What the tracer could not express: one row per operation (module path, op, why), carried by the exception.

The tracer collects every row before it fails (auto_LiRPA's "collect every unsupported op", but in the
exception rather than a log), so a user sees the whole list at once; ``render/trace.py`` prints the table.
"""
from __future__ import annotations

from dataclasses import dataclass

from boundcalc.errors import BoundcalcError


@dataclass(frozen=True)
class Unsupported:
    """One operation the spec format cannot say: where (``module``: the module path, ``""`` for the model's own
    forward), which op (``op``: the aten op or the nn module type) and ``why``."""

    module: str
    op: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"module": self.module or "(model)", "op": self.op, "why": self.why}


class TraceError(BoundcalcError):
    """The target cannot be traced: a bad TARGET, a target that raises or is not a module, a model that fails on
    the example input. One line, no table."""


class UnsupportedError(BoundcalcError):
    """The model ran and was captured, but some operations cannot be written as spec layers; ``rows`` lists them
    all (nothing is written)."""

    def __init__(self, rows: list[Unsupported], method: str) -> None:
        self.rows = list(rows)
        self.method = method
        ops = sorted({row.op for row in self.rows})
        super().__init__(f"{len(self.rows)} operation(s) of the model cannot be written as spec layers "
                         f"({', '.join(ops[:6])}{', …' if len(ops) > 6 else ''}; captured with {method}); "
                         "no spec was written")


class Refusal(Exception):
    """Raised inside a mapping when one node cannot be expressed; the assembler turns it into a row."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
