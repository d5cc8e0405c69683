"""Soundness on trained models: every bound whose constants are fully known (status exact or derived) gives
an upper bound on the test error (empirical margin risk at γ + complexity and confidence terms) that must
not be below the test error measured on held-out digits — at every margin percentile, for an MLP with
biases (folded) and a bias-free CNN. The chain-rule constants are set to C1 = C2 = 1 (an assumption, see
tests/soundness/bounds.py)."""
from pathlib import Path

import pytest

from boundcalc.evaluate import data_summary, evaluate_bounds
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.data import load_npz
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.measure.run import bind_and_measure
from boundcalc.spec.load import load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"
MODELS = [("digits_mlp", "mlp.pt", (64,)), ("digits_cnn", "cnn.safetensors", (1, 8, 8))]


@pytest.mark.parametrize("spec,ckpt,shape", MODELS)
@pytest.mark.parametrize("percentile", [5, 10, 50])
def test_exact_and_derived_bounds_are_above_the_measured_test_error(digits, spec, ckpt, shape, percentile):
    options = MeasureOptions()
    model = bind_and_measure(load_spec(SPECS / f"{spec}.yaml"), open_checkpoint(digits["root"] / ckpt), options)
    train = load_npz(digits["root"] / "train.npz", shape)
    test = load_npz(digits["root"] / "test.npz", shape)
    summary = data_summary(model, train, test, percentile=percentile)
    evaluation = evaluate_bounds(model, options, data=summary, given={}, constants={"C1": 1.0, "C2": 1.0},
                                 delta=0.05, use_init=False)
    known = [b for b in evaluation.bounds if b.applies and b.status in ("exact", "derived")]
    assert {"pinto2024_tight"} <= {b.key for b in known}
    if spec == "digits_mlp":
        assert {"pinto2024", "bartlett2017_dudley", "golowich2018"} <= {b.key for b in known}
    for bound in known:
        assert bound.test_error_bound >= summary.test.error, (bound.key, bound.test_error_bound)
        assert bound.test_error_bound >= summary.train.margin_risk
