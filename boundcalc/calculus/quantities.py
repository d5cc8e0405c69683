"""What a chain-rule rule reads: the layer it handles (:class:`Node`) and its quantities (:class:`SymbolicQuantities`
gives sympy symbols when deriving, :class:`NumericQuantities` floats when evaluating)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from boundcalc.calculus.minimum import running_min
from boundcalc.errors import DeriveError
from boundcalc.symbols import SymbolTable, layer_symbol

#: per-layer quantity kind -> the spec/regime parameter that fixes it (else the layer's symbol is used)
PARAM_KEYS = {"s": "spectral", "f": "frobenius", "r": "rank", "b": "row_norm", "w": "filter_norm"}


@dataclass(frozen=True)
class Node:
    """What a rule may know about the layer it handles."""

    name: str                 # display name, e.g. "fc2" or "mid[t]"
    base: str                 # spec name, used for symbols
    op: str
    params: dict[str, Any]
    index: sp.Expr | None     # repeat iteration (None outside repeats)
    out_shape: tuple
    in_shapes: tuple = ()     # per-sample shapes of the inputs, in order


class SymbolicQuantities:
    """Layer quantities as sympy expressions: the spec's value if given, else the layer's symbol."""

    #: the sample count m (the spec's value or symbol), set by the caller; rules read it through :meth:`samples`
    sample_count: Any = None

    def __init__(self, table: SymbolTable) -> None:
        self.table = table
        self.C1, self.C2 = table("C1"), table("C2")

    def samples(self) -> Any:
        """m, as this object's kind of value (a rule that needs it fails loudly when the caller gave none)."""
        if self.sample_count is None:
            raise DeriveError("internal: the sample count was not given to the rules")
        return self.value(self.sample_count)

    def layer(self, kind: str, node: Node) -> Any:
        given = node.params.get(PARAM_KEYS.get(kind, ""))
        if given is None:
            given = layer_symbol(self.table, kind, node.base, node.index)
        return self.value(given)

    def value(self, expr: Any) -> Any:
        return expr

    def minimum(self, previous: Any, value: Any) -> Any:
        """min(previous, value) (``previous`` None: none yet); symbolically one flat Min per call, built in
        O(log n) sympy work however many arguments ``previous`` has (:mod:`boundcalc.calculus.minimum`)."""
        return running_min(previous, value)


class NumericQuantities(SymbolicQuantities):
    """Layer quantities as floats, looked up by symbol name (``s_fc1``, ``s_mid[3]``, ``X_F``, ``C1``)."""

    def __init__(self, table: SymbolTable, values: dict[str, float]) -> None:
        super().__init__(table)
        self.values = dict(values)
        self.C1, self.C2 = float(values["C1"]), float(values["C2"])

    def value(self, expr: Any) -> float:
        if isinstance(expr, (int, float)):
            return float(expr)
        if isinstance(expr, (sp.Symbol, sp.Indexed)):   # the common case: a plain dict lookup
            return self._lookup(expr)
        expr = sp.sympify(expr)
        expr = sp.sympify(expr.xreplace({a: self._lookup(a) for a in expr.atoms(sp.Indexed)}))
        return float(expr.xreplace({a: self._lookup(a) for a in expr.free_symbols}))

    def minimum(self, previous: Any, value: Any) -> Any:
        return value if previous is None else min(previous, value)

    def _lookup(self, atom: sp.Basic) -> float:
        key = str(atom)
        if key not in self.values:
            raise DeriveError(f"no value given for {key}")
        return float(self.values[key])


def output_width(node: Node) -> Any:
    """h_out: the number of output coordinates per sample (channels·height·width for conv2d)."""
    return sp.Mul(*node.out_shape)
