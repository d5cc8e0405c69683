"""Hostile inputs for ``boundcalc certify`` (issue 17): labels out of range, δ and --prior-fraction outside
(0, 1), too few samples for the grid, a checkpoint that does not fit the spec, and bad option values. Each is a
``Case`` of ``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``."""
from __future__ import annotations

import numpy as np
import torch

from tests.hostile.corpus import MLP_SPEC, Case, X, Y, npz, safetensors_file


def certify_case(id: str, extra: list[str], phrase: str, data=None, ckpt=None, table: bool = False) -> Case:
    return Case(id, {"ckpt.safetensors": ckpt or safetensors_file(), "data.npz": data or npz(X=X, y=Y)},
                ["certify", MLP_SPEC, "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz", "--epochs", "1",
                 "--mc-samples", "2", *extra], phrase, table=table, kind="certify")


CASES: list[Case] = [
    certify_case("certify-label-out-of-range", [], "label 10 is out of range for a network with 10 outputs",
                 data=npz(X=X, y=np.where(Y == 0, 10, Y))),
    certify_case("certify-test-label-out-of-range", ["--data-test", "{dir}/data.npz"],
                 "label 12 is out of range", data=npz(X=X, y=np.where(Y == 1, 12, Y))),
    certify_case("certify-delta-zero", ["--delta", "0"], "--delta must be in (0, 1), got 0.0"),
    certify_case("certify-delta-one", ["--delta", "1"], "--delta must be in (0, 1), got 1.0"),
    certify_case("certify-delta-nan", ["--delta", "nan"], "--delta must be in (0, 1)"),
    certify_case("certify-prior-fraction-zero", ["--prior", "learned", "--prior-fraction", "0"],
                 "--prior-fraction must be in (0, 1), got 0.0"),
    certify_case("certify-prior-fraction-above-one", ["--prior-fraction", "1.5"],
                 "--prior-fraction must be in (0, 1), got 1.5"),
    certify_case("certify-prior-fraction-leaves-none", ["--prior", "learned", "--prior-fraction", "0.001"],
                 "leaves 0 for the prior"),
    certify_case("certify-too-few-samples", [], "too few samples for the grid",
                 data=npz(X=X[:3], y=Y[:3])),
    certify_case("certify-too-few-samples-compression", ["--method", "compression"], "too few samples for the grid",
                 data=npz(X=X[:5], y=Y[:5])),
    certify_case("certify-checkpoint-not-matching", [], "does not fit",
                 ckpt=safetensors_file(**{"2.weight": torch.zeros(16, 32)}), table=True),
    certify_case("certify-mc-samples-zero", ["--mc-samples", "0"], "--mc-samples must be between 1"),
    certify_case("certify-negative-subspace", ["--method", "compression", "--subspace", "-3"],
                 "--subspace must be ≥ 0"),
    certify_case("certify-subspace-too-large", ["--method", "compression", "--subspace", "100000"],
                 "--subspace must be between 1 and the"),
    certify_case("certify-learned-compression", ["--method", "compression", "--prior", "learned"],
                 "--prior learned is for --method gaussian"),
    certify_case("certify-nan-weights", [], "NaN/Inf value(s)",
                 ckpt=safetensors_file(**{"0.weight": torch.full((32, 64), float("nan"))})),
]
