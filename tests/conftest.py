import random

import pytest
import sympy as sp


def random_values(*exprs, seed: int = 0, low: float = 0.5, high: float = 2.0) -> dict:
    """One random positive number per symbol and indexed symbol appearing in ``exprs``."""
    rng = random.Random(seed)
    atoms = set()
    for e in exprs:
        atoms |= sp.sympify(e).atoms(sp.Indexed)
    values = {a: rng.uniform(low, high) for a in sorted(atoms, key=str)}
    symbols = set()
    for e in exprs:
        symbols |= sp.sympify(e).xreplace(values).free_symbols
    values.update({s: rng.uniform(low, high) for s in sorted(symbols, key=str)})
    return values


def evaluate(expr, values) -> float:
    expr = sp.sympify(expr).doit()
    expr = expr.xreplace({k: v for k, v in values.items() if isinstance(k, sp.Indexed)})
    return float(expr.xreplace({k: v for k, v in values.items() if not isinstance(k, sp.Indexed)}))


@pytest.fixture
def sym():
    return lambda name, **kw: sp.Symbol(name, positive=True, **kw)


@pytest.fixture
def spec_path():
    from pathlib import Path

    from boundcalc.spec.load import load_spec

    root = Path(__file__).resolve().parents[1] / "specs"
    return lambda name, **kw: load_spec(root / f"{name}.yaml", **kw)
