"""Round-3 hostile inputs: ``boundcalc trace`` targets and options, and a state dict from another model given to
``evaluate`` with a traced spec. Each is a `Case` of ``tests/hostile/corpus.py``; the target files are small
Python files the case writes (trace imports and runs them: that is its documented job), none writes anything."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.hostile.corpus import Case

MODELS = '''
import sys
import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def raises():
    raise ValueError("the model cannot be built today")


def exits():
    sys.exit(3)


def not_a_module():
    return {"weights": [1, 2, 3]}


class Sorts(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return torch.sort(self.fc(x), dim=1).values * 2


def sorts():
    return Sorts()


VALUE = 3
'''


def trace_case(id: str, args: list[str], phrase: str, table: bool = False) -> Case:
    return Case(id, {"models.py": MODELS}, ["trace", *args], phrase, table=table, kind="trace")


def traced_spec(path: Path) -> None:
    """The spec that ``boundcalc trace`` writes for models.py:mlp (traced here, in the test process)."""
    import boundcalc

    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    path.write_text(boundcalc.trace_module(model, torch.randn(2, 64)).text)


def other_model(path: Path) -> None:
    """A state dict of another architecture (64 → 16 → 10), with the same tensor names."""
    save_file({"0.weight": torch.randn(16, 64), "0.bias": torch.randn(16), "2.weight": torch.randn(10, 16),
               "2.bias": torch.randn(10)}, str(path))


CASES: list[Case] = [
    trace_case("trace-target-raises", ["{dir}/models.py:raises", "--input-shape", "64"], "raised ValueError"),
    trace_case("trace-target-exits", ["{dir}/models.py:exits", "--input-shape", "64"], "raised SystemExit"),
    trace_case("trace-target-not-a-module", ["{dir}/models.py:not_a_module", "--input-shape", "64"],
               "not a torch.nn.Module"),
    trace_case("trace-target-not-callable", ["{dir}/models.py:VALUE", "--input-shape", "64"], "not a callable"),
    trace_case("trace-target-missing-attribute", ["{dir}/models.py:nope", "--input-shape", "64"],
               "has no attribute 'nope'"),
    trace_case("trace-target-missing-file", ["{dir}/absent.py:mlp", "--input-shape", "64"], "no such file"),
    trace_case("trace-target-no-callable-part", ["{dir}/models.py", "--input-shape", "64"], "no ':callable' part"),
    trace_case("trace-target-bad-callable-name", ["{dir}/models.py:1mlp", "--input-shape", "64"],
               "is not a Python name"),
    trace_case("trace-target-missing-module", ["no_such_package_xyz.models:mlp", "--input-shape", "64"],
               "no module named"),
    trace_case("trace-input-shape-non-positive", ["{dir}/models.py:mlp", "--input-shape", "3,0,8"], "positive integer"),
    trace_case("trace-input-shape-negative", ["{dir}/models.py:mlp", "--input-shape", "-64"], "positive integer"),
    trace_case("trace-input-shape-wrong-arity", ["{dir}/models.py:mlp", "--input-shape", "1,8,8,2"], "give C,H,W"),
    trace_case("trace-sequence-shape-wrong-for-the-model", ["{dir}/models.py:mlp", "--input-shape", "8,8"],
               "fails on an input of shape (8, 8)"),
    trace_case("trace-input-shape-not-integers", ["{dir}/models.py:mlp", "--input-shape", "3,8.5,8"],
               "expected integers"),
    trace_case("trace-input-shape-too-large", ["{dir}/models.py:mlp", "--input-shape", "3,4096,4096"],
               "MAX_TRACE_INPUT_VALUES"),
    trace_case("trace-input-shape-wrong-for-the-model", ["{dir}/models.py:mlp", "--input-shape", "32"],
               "fails on an input of shape (32,)"),
    trace_case("trace-unsupported-op", ["{dir}/models.py:sorts", "--input-shape", "64", "-o", "{dir}/spec.yaml"],
               "cannot be written as spec layers", table=True),
    trace_case("trace-out-is-the-target", ["{dir}/models.py:mlp", "--input-shape", "64", "-o", "{dir}/models.py"],
               "refusing to write"),
    Case("evaluate-state-dict-of-another-model", {"spec.yaml": traced_spec, "other.safetensors": other_model},
         ["evaluate", "{dir}/spec.yaml", "{dir}/other.safetensors"], "does not fit", table=True, kind="checkpoint"),
]
