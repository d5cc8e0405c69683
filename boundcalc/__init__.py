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

from boundcalc.bound import Bound, Term
from boundcalc.calculus.rules import RULE_SETS
from boundcalc.derivation import compose_numeric, derive
from boundcalc.errors import BoundcalcError, DeriveError, ExpressionError, SpecError
from boundcalc.spec.load import Spec, load_spec, parse_spec

__version__ = "0.1.0"
__all__ = ["Bound", "Term", "RULE_SETS", "derive", "compose_numeric", "load_spec", "parse_spec", "Spec",
           "BoundcalcError", "SpecError", "DeriveError", "ExpressionError", "__version__"]
