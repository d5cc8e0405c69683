"""The accepted range of every numeric option, declared once: the CLI's option objects check them as they are
parsed (typer callbacks) and the settings objects of the API and the zoo check them when built.

    >>> DELTA.problem(1.5)
    '--delta must be in (0, 1), got 1.5'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from boundcalc.errors import BoundcalcError


@dataclass(frozen=True)
class Range:
    """``low`` ≤/< value ≤/< ``high`` (None: unbounded on that side), for the option ``flag``."""

    flag: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    wording: str | None = None     # how the message states the range (default: interval notation)

    def problem(self, value: float | None) -> str | None:
        """Why ``value`` is outside the range (None: it is inside, or not given)."""
        if value is None:
            return None
        inside = isinstance(value, (int, float)) and math.isfinite(value)
        if inside and self.low is not None:
            inside = value > self.low if self.low_open else value >= self.low
        if inside and self.high is not None:
            inside = value < self.high if self.high_open else value <= self.high
        return None if inside else f"{self.flag} must be {self.wording or self._interval()}, got {value}"

    def check(self, value):
        """``value``, or BoundcalcError saying why it is out of range."""
        problem = self.problem(value)
        if problem is not None:
            raise BoundcalcError(problem)
        return value

    def callback(self, value):
        """The typer/click option callback: the same check while the command line is parsed."""
        return self.check(value)

    def _interval(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {_number(self.low)}"
        return (f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}"
                f"{')' if self.high_open else ']'}")


def _number(x: float) -> str:
    return f"{x:g}"


PERCENTILE = Range("--margin-percentile", 0, 100, low_open=True, high_open=True)
DELTA = Range("--delta", 0, 1, low_open=True, high_open=True)
ENERGY = Range("--energy", 0, 1, low_open=True)
RANK_RTOL = Range("--rank-rtol", 0, 1, high_open=True)
TAIL_K = Range("--tail-k", 0)
WORKERS = Range("--workers", 1)
WEIGHT_DECAY = Range("--weight-decay", 0, wording="a non-negative number")
