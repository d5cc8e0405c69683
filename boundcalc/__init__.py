"""boundcalc: turn a network architecture into a generalization bound.

    >>> import boundcalc
    >>> spec = boundcalc.load_spec("specs/mlp3.yaml")
    >>> bound = boundcalc.derive(spec, rules="tight")
    >>> bound.complexity      # Ĝ_S ≤ … (sympy)
    >>> bound.gap             # generalization gap ≤ … with probability ≥ 1 − δ
"""
from boundcalc.bound import Bound, Term
from boundcalc.calculus.rules import RULE_SETS
from boundcalc.derive import compose_numeric, derive
from boundcalc.errors import BoundcalcError, DeriveError, ExpressionError, SpecError
from boundcalc.spec.load import Spec, load_spec, parse_spec

__version__ = "0.1.0"
__all__ = ["Bound", "Term", "RULE_SETS", "derive", "compose_numeric", "load_spec", "parse_spec", "Spec",
           "BoundcalcError", "SpecError", "DeriveError", "ExpressionError", "__version__"]
