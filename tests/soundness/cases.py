"""The classes the soundness tests check, shared with ``report.py`` so that the README's figures come from
exactly the tested cases."""
from __future__ import annotations

import numpy as np

from tests.soundness.estimators import Layer, random_network

#: one linear layer: (m, d, layer)
ONE_LAYER = [(20, 6, Layer(4, 1.5, 1)), (30, 8, Layer(8, 0.7, 3)), (10, 5, Layer(3, 2.0, 3)),
             (50, 3, Layer(8, 1.0, 2)), (5, 8, Layer(1, 0.9, 1))]
#: deep networks: (seed, depth), three random networks per depth
DEEP = [(seed, depth) for depth in (2, 3, 4) for seed in range(3)]
DEEP_SAMPLES = 12


def one_layer_data(m: int, d: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(m, d))


def deep_case(seed: int, depth: int) -> tuple[np.ndarray, list[Layer]]:
    """Data (DEEP_SAMPLES × d, standard normal) and the layers of one random network."""
    rng = np.random.default_rng(100 * depth + seed)
    d, layers = random_network(rng, depth)
    return rng.normal(size=(DEEP_SAMPLES, d)), layers
