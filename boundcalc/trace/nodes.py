"""The captured graph in one form for both capture methods: a list of :class:`OpNode` in execution order.

``torch.export`` gives aten ops (``aten.conv2d``, ``aten.relu_``); ``torch.fx`` gives module calls and Python
functions. Both are brought to the aten op's name and its argument names (``input``, ``weight``, ``stride``…),
so that one mapping table (:mod:`boundcalc.trace.mapping`) reads either. Tensor arguments are :class:`Ref` (the
output of another node, or the model's input) or :class:`Param` (a parameter or buffer, by state-dict key).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the name of the model's input among the nodes (the spec's ``input``)
INPUT = "input"


@dataclass(frozen=True)
class Ref:
    """The output of the node ``name`` (``INPUT``: the model's input)."""

    name: str


@dataclass(frozen=True)
class Param:
    """A parameter or buffer of the model, by state-dict key."""

    key: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Opaque:
    """A tensor that is neither a node's output nor a parameter (a constant built in ``forward``)."""

    what: str


@dataclass
class OpNode:
    """One operation: ``op`` is the aten op's name without overload (``conv2d``; ``relu`` for ``relu_`` with
    ``in_place``), ``args`` its arguments by aten name, ``module`` the path of the module that ran it and
    ``module_type`` that module's class name; ``shape`` the output's shape including the batch axis."""

    name: str
    op: str
    args: dict[str, Any]
    module: str = ""
    module_type: str = ""
    shape: tuple[int, ...] | None = None
    in_place: bool = False
    own_module: bool = False     # the op is what its module does (an nn.ReLU), not a call inside a bigger forward

    def refs(self) -> list[str]:
        """Names of the nodes this one reads, in argument order."""
        return [v.name for v in _flat(self.args.values()) if isinstance(v, Ref)]

    def params(self) -> list[Param]:
        return [v for v in _flat(self.args.values()) if isinstance(v, Param)]


@dataclass
class Captured:
    """A captured model: its nodes, which one is the output, how it was captured (and why export was not used)."""

    nodes: list[OpNode]
    output: str
    method: str                          # "torch.export" or "torch.fx"
    note: str = ""                       # why the fallback was used
    batch: int = 2
    extra: list[str] = field(default_factory=list)


def _flat(values) -> list:
    out = []
    for value in values:
        if isinstance(value, (list, tuple)):
            out.extend(_flat(value))
        else:
            out.append(value)
    return out


def tensor_shape(value) -> tuple[int, ...] | None:
    """The concrete shape of a tensor-like meta value, None for anything else (or a symbolic size)."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return None
