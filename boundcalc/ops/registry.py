"""The op registry: names → kinds, in registration order. A second kind under a taken name fails at import.

    >>> from boundcalc.ops import op_kind, names_where
    >>> op_kind("conv2d").flags.weights
    True
    >>> sorted(names_where(lambda kind: kind.flags.weights))
    ['batchnorm', 'conv2d', 'linear']
"""
from __future__ import annotations

from collections.abc import Callable

from boundcalc.ops.base import OpKind

OPS: dict[str, OpKind] = {}


def register(kind: OpKind) -> OpKind:
    """Add ``kind`` under its name; ValueError if the name is taken (two modules declaring one op)."""
    if kind.name in OPS:
        raise ValueError(f"duplicate op kind {kind.name!r}: declared by {type(OPS[kind.name]).__module__} and "
                         f"{type(kind).__module__}")
    OPS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register a kind of their own)."""
    OPS.pop(name, None)


def op_kind(name: str) -> OpKind:
    """The kind registered as ``name`` (KeyError for an unknown name: specs are validated before this)."""
    return OPS[name]


def names_where(test: Callable[[OpKind], bool]) -> frozenset[str]:
    """Names of the registered kinds for which ``test(kind)`` holds (flag queries: what bounds cover)."""
    return frozenset(name for name, kind in OPS.items() if test(kind))
