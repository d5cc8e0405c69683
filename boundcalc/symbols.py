"""One naming scheme for every quantity a bound can mention.

Per-layer quantities are named ``<kind>_<layer>`` (``s_fc1`` is the spectral-norm bound of layer ``fc1``);
inside a symbolic ``repeat`` they are indexed, ``s_fc[t]``. Data and universal quantities have fixed names.
Measured values (the evaluate step) use exactly these names, so plugging numbers in is a lookup.
Every symbol is created here, positive, so the same name always means the same sympy object.
"""
from __future__ import annotations

import sympy as sp

#: per-layer quantity kinds: prefix -> meaning
LAYER_KINDS: dict[str, str] = {
    "s": "spectral-norm bound ‖W‖₂ (operator norm for conv2d)",
    "f": "Frobenius-norm bound ‖W‖_F (of the full operator for conv2d; of the matrix shared by the tokens for a "
         "token-wise layer, ‖γ‖₂ for a layernorm)",
    "r": "rank bound rank(W)",
    "b": "(2,1)-norm bound ‖Wᵀ − Mᵀ‖₂,₁ (sum of row norms of W − M, of the full operator for conv2d; "
         "reference M = 0 unless --init)",
    "w": "filter-norm bound: Frobenius norm of the conv kernel tensor (weight sharing counted once)",
    "c": "bias-norm bound ‖b‖₂ of the bias as added to the layer's outputs (conv2d, batchnorm on (C, H, W): the "
         "per-channel bias repeated over the positions; a token-wise layer: the bias of one token, ‖β‖₂ for a "
         "layernorm)",
}

C1 = sp.Symbol("C1", positive=True)
C2 = sp.Symbol("C2", positive=True)

#: fixed names with their meaning (used in the assumptions block and the docs)
GLOBAL_MEANINGS: dict[str, str] = {
    "C1": "universal constant of Maurer's chain rule (value unpublished; kept symbolic)",
    "C2": "universal constant of Maurer's chain rule (value unpublished; kept symbolic)",
    "X_F": "Frobenius norm ‖X‖_F of the m×d data matrix",
    "R": "largest input norm max_i ‖x_i‖",
    "B_X": "largest token norm of the sequence data, max over samples i and tokens t of ‖x_it‖₂",
    "m": "sample size",
    "delta": "confidence parameter δ",
    "gamma": "margin γ",
    "Phi_1": "L1 path-norm ‖Φ(θ)‖₁ of the whole network: the sum over every input → output and bias → output "
             "path of the product of |weights| along it (Gonon et al. 2024; one measured number, not per layer)",
    "R_inf": "largest input coordinate max_i ‖x_i‖∞ (the B of Gonon et al. 2024)",
    "C_Phi": "the constant C of Gonon et al. 2024 Thm 3.1 for the network's DAG: "
             "√(D·ln((3+2P)K) + ln((3+2P)/(1+P)·(d_in+1)·d_out))",
}


#: names a spec's own expressions may not use: the universal constants, the data norms, and the
#: per-layer quantity names ``s_…``, ``f_…`` (a spec symbol ``C1`` would silently merge with Maurer's C1)
RESERVED_NAMES = frozenset({"C1", "C2", "X_F", "R", "B_X", "Phi_1", "R_inf", "C_Phi"})


def reserved_reason(name: str) -> str | None:
    """Why a spec may not name a symbol ``name``, or None if it may."""
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved ({GLOBAL_MEANINGS[name]})"
    kind, sep, _ = name.partition("_")
    if sep and kind in LAYER_KINDS:
        return f"names starting with '{kind}_' are reserved for the per-layer quantity {LAYER_KINDS[kind]}"
    return None


class SymbolTable:
    """Creates and remembers the symbols of one spec; integer-valued names (counts, sizes) are declared first.

    ``fixed`` names (``--set``) stand for their number wherever a symbol of that name is asked for; the names
    actually asked for are kept in :attr:`used_fixed`, so that a command can refuse a name it never used."""

    def __init__(self, integer_names: set[str] | frozenset[str] = frozenset(),
                 fixed: dict[str, sp.Expr] | None = None) -> None:
        self._integer = set(integer_names)
        self._table: dict[str, sp.Symbol] = {"C1": C1, "C2": C2}
        self.fixed: dict[str, sp.Expr] = dict(fixed or {})
        self.used_fixed: set[str] = set()
        self._indexed: dict[tuple[str, sp.Expr], sp.Indexed] = {}

    def __call__(self, name: str) -> sp.Expr:
        if name in self.fixed:
            self.used_fixed.add(name)
            return self.fixed[name]
        sym = self._table.get(name)
        if sym is None:
            if name in self._integer:
                sym = sp.Symbol(name, positive=True, integer=True)
            else:
                sym = sp.Symbol(name, positive=True)
            self._table[name] = sym
        return sym

    def indexed(self, name: str, index: sp.Expr) -> sp.Indexed:
        """``name[index]`` of the positive IndexedBase ``name``, made once (sympy takes ~0.1 ms to make one,
        as long as the rest of a layer's rule)."""
        key = (name, index)
        symbol = self._indexed.get(key)
        if symbol is None:
            symbol = self._indexed[key] = sp.IndexedBase(name, positive=True)[index]
        return symbol

    def __contains__(self, name: str) -> bool:
        return name in self._table

    def names(self) -> list[str]:
        return sorted(self._table)

    def is_integer(self, name: str) -> bool:
        return name in self._integer


def layer_symbol(table: SymbolTable, kind: str, layer: str, index: sp.Expr | None = None) -> sp.Expr:
    """The symbol for quantity ``kind`` of ``layer``; indexed by ``index`` inside a symbolic repeat."""
    if kind not in LAYER_KINDS:
        raise KeyError(f"unknown layer quantity {kind!r}")
    name = f"{kind}_{layer}"
    if index is None:
        return table(name)
    return table.indexed(name, index)


def describe(name: str) -> str:
    """Human meaning of a symbol name, for the assumptions block."""
    if name in GLOBAL_MEANINGS:
        return GLOBAL_MEANINGS[name]
    kind, _, layer = name.partition("_")
    if kind in LAYER_KINDS and layer:
        return f"{LAYER_KINDS[kind]} of layer {layer}"
    return "user symbol"
