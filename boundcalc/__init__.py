"""boundcalc: turn a network architecture into a generalization bound.

    >>> import boundcalc
    >>> spec = boundcalc.load_spec("specs/mlp3.yaml")
    >>> bound = boundcalc.derive(spec, rules="tight")
    >>> bound.complexity      # Ĝ_S ≤ … (sympy)
    >>> bound.gap             # generalization gap ≤ … with probability ≥ 1 − δ
"""
import os

# sympy memoizes expression construction in an LRU cache of 1000 entries by default; a derivation over
# hundreds of layers overflows it and slows down superlinearly (measured: 1000/100-layer time ratio 18.5
# with the default, 11.8 with a larger cache). Takes effect when boundcalc is imported before sympy.
os.environ.setdefault("SYMPY_CACHE_SIZE", "100000")

__version__ = "0.1.0"

#: public name -> module it lives in; imported on first use (PEP 562), so that ``boundcalc measure`` on a
#: safetensors file does not pay for sympy, networkx and pydantic (about 0.5 s) it never uses
_LAZY = {"Bound": "boundcalc.bound", "Term": "boundcalc.bound", "RULE_SETS": "boundcalc.calculus.rules",
         "derive": "boundcalc.derivation", "compose_numeric": "boundcalc.derivation", "load_spec": "boundcalc.spec.load",
         "parse_spec": "boundcalc.spec.load", "Spec": "boundcalc.spec.load", "BoundcalcError": "boundcalc.errors",
         "SpecError": "boundcalc.errors", "DeriveError": "boundcalc.errors", "ExpressionError": "boundcalc.errors",
         # a torch model to a spec, and every bound on it with no file (boundcalc.trace.api)
         "spec_from_module": "boundcalc.trace.api", "trace_module": "boundcalc.trace.api",
         "evaluate_model": "boundcalc.trace.api"}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'boundcalc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
