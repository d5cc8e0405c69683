"""``--set NAME=VALUE``: parse the assignments, and refuse every name the command did not use.

A value fixes a symbol wherever a symbol of that name is asked for (:class:`boundcalc.symbols.SymbolTable`):
a spec expression (``out: h``, ``count: L - 2``), a per-layer quantity (``s_fc1``), a data quantity (``X_F``)
or a universal constant (``C1``). After a command has built what it prints, :func:`check_used` refuses the
names it never asked for, with a near miss, so ``--set Q=3`` cannot exit 0 with the output unchanged.
Commands that measure (``evaluate``, ``collapse``, ``measure --spec``) take only the spec's own sizes and
symbols: :func:`check_measured` says where a measured quantity comes from instead.
"""
from __future__ import annotations

import difflib
import math

from boundcalc.errors import BoundcalcError
from boundcalc.spec.expr import NAME_PATTERN, in_accepted_range
from boundcalc.spec.load import Spec
from boundcalc.symbols import LAYER_KINDS, RESERVED_NAMES


def parse_assignments(items: list[str]) -> dict[str, int | float]:
    """``["L=4", "B=0.5"]`` -> ``{"L": 4, "B": 0.5}``; raises :class:`BoundcalcError` naming the bad item."""
    values: dict[str, int | float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not NAME_PATTERN.match(name):
            raise BoundcalcError(f"--set expects NAME=NUMBER with a plain ASCII name, got {item!r}")
        values[name] = _number(name, raw)
        _check_quantity(name, values[name])
    return values


def _number(name: str, raw: str) -> int | float:
    if len(raw) > 40:
        raise BoundcalcError(f"--set {name}: value longer than 40 characters")
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        raise BoundcalcError(f"--set {name}: {raw!r} is not a number") from None
    if not math.isfinite(number):
        raise BoundcalcError(f"--set {name}: {raw!r} is not finite")
    if not in_accepted_range(number):
        raise BoundcalcError(f"--set {name}: {raw!r} is outside the accepted range 1e-15..1e15")
    return number


def check_used(spec: Spec) -> None:
    """Refuse a ``--set`` name that neither the spec nor anything built on it asked for."""
    table = spec.symbols
    unused = sorted(set(table.fixed) - table.used_fixed)
    if unused:
        name = unused[0]
        known = sorted(set(table.names()) | table.used_fixed)
        close = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(name, known, n=1)
        raise BoundcalcError(f"--set {name}: no symbol {name!r} in this spec or its bounds (symbols: "
                             f"{', '.join(known) or 'none'})" + (f". Did you mean {close[0]!r}?" if close else ""))


def _check_quantity(name: str, value: int | float) -> None:
    """Norms, data norms and constants are positive, ranks positive integers (spec symbols are checked where
    the spec uses them: a width must be a positive integer, δ in (0, 1) …)."""
    kind = name.partition("_")[0] if "_" in name else None
    if name in RESERVED_NAMES or kind in LAYER_KINDS:
        if not value > 0:
            raise BoundcalcError(f"--set {name}: must be positive, got {value}")
        if kind == "r" and not float(value).is_integer():
            raise BoundcalcError(f"--set {name}: a rank must be a positive integer, got {value}")


def check_measured(values: dict[str, int | float], spec_data_names: frozenset[str], has_data: bool) -> None:
    """For commands that measure: refuse ``--set`` of what the checkpoint, the data or an option gives."""
    for name in values:
        kind = name.partition("_")[0] if "_" in name else None
        if kind in LAYER_KINDS:
            raise BoundcalcError(f"--set {name}: per-layer quantities are measured from the checkpoint; --set fixes "
                                 "the spec's own sizes and symbols")
        if name in ("C1", "C2"):
            raise BoundcalcError(f"--set {name}: give Maurer's constants with --const {name}=…")
        if has_data and name in ("X_F", "R", "B_X"):
            raise BoundcalcError(f"--set {name}: the input norms are measured from --data; it cannot be --set too")
        if name == "delta" and name in spec_data_names:
            raise BoundcalcError("--set delta: give the confidence parameter with --delta")
        if has_data and name in spec_data_names:
            raise BoundcalcError(f"--set {name}: the spec's {name!r} is measured from --data (sample size, input "
                                 "norm, margin γ at --margin-percentile, δ from --delta); it cannot be --set too")
