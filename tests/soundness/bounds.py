"""The derived Ĝ_S bound of a small network, as a float, with the chain-rule constants set to C1 = C2 = 1.

C1 = C2 = 1 is an ASSUMPTION: Maurer's chain rule holds with universal constants C1, C2 whose values are not
published (docs/references.md §2.3). The true constants are at least 1 (with C1 < 1 the rule would bound the
complexity of a single linear layer below its exact value), and the bound increases with both, so a bound
that passes at C1 = C2 = 1 passes at the true constants. A violation at C1 = C2 = 1 therefore means either
a bug in a rule (the likely reading, to be found) or that a printed lemma is wrong — never that a tolerance
should be widened.
"""
from __future__ import annotations

import numpy as np

import boundcalc
from tests.soundness.estimators import Layer, spec_text


def derived_complexity(X: np.ndarray, layers: list[Layer], rules: str) -> float:
    spec = boundcalc.parse_spec(spec_text(X.shape[1], X.shape[0], layers))
    values = {"X_F": float(np.linalg.norm(X)), "C1": 1.0, "C2": 1.0}
    return float(boundcalc.compose_numeric(spec, values, rules=rules))
