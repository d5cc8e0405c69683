"""Print how tight the derived bounds are on the classes the soundness tests check: the ratio of the bound
(C1 = C2 = 1) to the exact Monte-Carlo value (one layer) or to the projected-ascent lower estimate (depth
2–4). Run from the repository root: ``python -m tests.soundness.report``. A ratio below 1 would be a
violation; the tests fail on one."""
from __future__ import annotations

import numpy as np

from tests.soundness.bounds import derived_complexity
from tests.soundness.cases import DEEP, ONE_LAYER, deep_case, one_layer_data
from tests.soundness.estimators import deep_lower, one_layer_exact
from tests.soundness.test_deep_networks import EFFORT

RULES = ("tight", "as_printed")


def rows():
    for m, d, layer in ONE_LAYER:
        X = one_layer_data(m, d)
        estimate = one_layer_exact(X, layer, draws=4000, rng=np.random.default_rng(1))
        yield f"1 layer {d}→{layer.out}, r={layer.rank}, m={m}", "exact", estimate, [layer], X
    for seed, depth in DEEP:
        X, layers = deep_case(seed, depth)
        widths = "→".join(str(w) for w in [X.shape[1]] + [la.out for la in layers])
        ranks = ",".join(str(la.rank) for la in layers)
        estimate = deep_lower(X, layers, seed=seed, **EFFORT)
        yield f"depth {depth} {widths}, r={ranks}", "lower", estimate, layers, X


def main() -> None:
    print(f"{'class':<34} {'estimate':>9} {'±se':>7}  " + "  ".join(f"{r:>12}" for r in RULES))
    ratios = {r: [] for r in RULES}
    for name, kind, estimate, layers, X in rows():
        cells = []
        for rules in RULES:
            ratio = derived_complexity(X, layers, rules) / estimate.mean
            ratios[rules].append((kind, ratio))
            cells.append(f"{ratio:12.2f}")
        print(f"{name:<34} {estimate.mean:9.3f} {estimate.stderr:7.3f}  " + "  ".join(cells) + f"   ({kind})")
    for rules in RULES:
        for kind in ("exact", "lower"):
            values = [r for k, r in ratios[rules] if k == kind]
            print(f"{rules:>10} vs {kind} estimates: bound/estimate from {min(values):.2f} to {max(values):.2f}")


if __name__ == "__main__":
    main()
