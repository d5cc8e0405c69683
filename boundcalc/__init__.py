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


def spec_from_module(model, example_input, name: str = "model") -> Spec:
    """The spec of a torch ``model`` traced on ``example_input`` (batch first); see :mod:`boundcalc.trace.api`."""
    from boundcalc.trace.api import spec_from_module as run

    return run(model, example_input, name)


def trace_module(model, example_input, name: str = "model"):
    """The traced spec with its YAML ``text``, capture method and layers; see :mod:`boundcalc.trace.api`."""
    from boundcalc.trace.api import trace_module as run

    return run(model, example_input, name)


def evaluate_model(model, X, y, X_test=None, y_test=None, init=None, **settings):
    """Every applicable bound on a torch ``model`` and its data, with no file; see :mod:`boundcalc.trace.api`."""
    from boundcalc.trace.api import evaluate_model as run

    return run(model, X, y, X_test=X_test, y_test=y_test, init=init, **settings)


__all__ = ["spec_from_module", "trace_module", "evaluate_model", "Bound", "Term", "RULE_SETS", "derive", "compose_numeric", "load_spec", "parse_spec", "Spec",
           "BoundcalcError", "SpecError", "DeriveError", "ExpressionError", "__version__"]
