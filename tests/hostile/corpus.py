"""The hostile-input corpus: each case writes its files into an empty folder and names the CLI arguments
that feed them to boundcalc. ``tests/hostile/test_cli_corpus.py`` runs every case and asserts one error line,
exit code 2, no traceback and no side effect; the README's "Correctness" section counts the cases."""
from __future__ import annotations

import json
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save_file

from tests.helpers import WritesAFile

SPECS = Path(__file__).resolve().parents[2] / "specs"
MLP_SPEC = str(SPECS / "digits_mlp.yaml")
#: a file that a case's payload would create if boundcalc ever executed it
PWNED = "pwned.txt"
HEAD = "data: {samples: m, dim: 4}\nlayers:\n"


@dataclass(frozen=True)
class Case:
    """``files`` maps a file name to its content (text, bytes, or a function writing the file at a path);
    ``args`` are the CLI arguments, with ``{dir}`` standing for the case's folder; ``phrase`` must appear
    in the error line. ``table``: a binding problem, reported in a table above the error line."""

    id: str
    files: dict[str, str | bytes | Callable[[Path], None]]
    args: list[str]
    phrase: str
    table: bool = False
    kind: str = field(default="spec")


def spec_case(id: str, text: str | bytes, phrase: str) -> Case:
    return Case(id, {"spec.yaml": text}, ["derive", "{dir}/spec.yaml"], phrase)


def layer_case(id: str, layers: str, phrase: str) -> Case:
    return spec_case(id, HEAD + layers, phrase)


# -- checkpoints ------------------------------------------------------------------------------------
def mlp_tensors(**overrides) -> dict[str, torch.Tensor]:
    """Random weights with the names and shapes of specs/digits_mlp.yaml (64-32-32-10, with biases)."""
    gen = torch.Generator().manual_seed(0)
    shapes = {"0.weight": (32, 64), "0.bias": (32,), "2.weight": (32, 32), "2.bias": (32,), "4.weight": (10, 32),
              "4.bias": (10,)}
    tensors = {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}
    tensors.update(overrides)
    return {k: v for k, v in tensors.items() if v is not None}


def safetensors_file(**overrides) -> Callable[[Path], None]:
    return lambda path: save_file(mlp_tensors(**overrides), path)


def safetensors_bytes(header: dict | bytes, length: int | None = None, payload: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + payload


def truncated(path: Path) -> None:
    save_file(mlp_tensors(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def malicious_torch(path: Path) -> None:
    torch.save({"state_dict": mlp_tensors(), "hook": WritesAFile(str(path.parent / PWNED))}, path)


def malicious_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"state_dict": mlp_tensors(), "hook": WritesAFile(str(path.parent / PWNED))}))


def sharded_escape(path: Path) -> None:
    path.mkdir()
    (path / "config.json").write_text("{}")
    save_file(mlp_tensors(), path.parent / "outside.safetensors")
    index = {"weight_map": {name: "../outside.safetensors" for name in mlp_tensors()}}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))


def checkpoint_case(id: str, name: str, content, phrase: str, table: bool = False,
                    command: str = "measure") -> Case:
    args = [command, MLP_SPEC, "{dir}/" + name] if command == "evaluate" else ["measure", "{dir}/" + name]
    return Case(id, {name: content}, args, phrase, table=table, kind="checkpoint")


# -- data files ---------------------------------------------------------------------------------------
def npz(**arrays) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    return write


def data_case(id: str, content, phrase: str, extra: list[str] | None = None) -> Case:
    return Case(id, {"ckpt.safetensors": safetensors_file(), "data.npz": content},
                ["evaluate", MLP_SPEC, "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz", *(extra or [])],
                phrase, kind="data")


def option_case(id: str, extra: list[str], phrase: str) -> Case:
    rng = np.random.default_rng(0)
    return Case(id, {"ckpt.safetensors": safetensors_file(),
                     "data.npz": npz(X=rng.random((50, 64)), y=rng.integers(0, 10, 50))},
                ["evaluate", MLP_SPEC, "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz", *extra],
                phrase, kind="option")


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
rng = np.random.default_rng(0)
X, Y = rng.random((50, 64)), rng.integers(0, 10, 50)

#: float64 weights whose forward pass overflows float64 (1e200 per entry)
HUGE_WEIGHTS = {name: torch.full(shape, 1e200, dtype=torch.float64)
                for name, shape in [("0.weight", (32, 64)), ("2.weight", (32, 32)), ("4.weight", (10, 32))]}

CASES: list[Case] = [
    # -- YAML itself
    spec_case("yaml-syntax", "data: {samples: m\nlayers: [relu]\n", "YAML syntax error"),
    spec_case("yaml-tab-indent", "data:\n\tsamples: m\n", "YAML syntax error"),
    spec_case("yaml-billion-laughs", BILLION_LAUGHS, "alias bomb"),
    spec_case("yaml-deep-flow", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    spec_case("yaml-deep-block", "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "v\n", "nested deeper"),
    spec_case("yaml-python-tag", HEAD + "  - !!python/object/apply:os.system ['touch pwned.txt']\n", "tag"),
    spec_case("yaml-binary-tag", HEAD + "  - {op: linear, out: !!binary aGVsbG8=}\n", "tag"),
    spec_case("yaml-merge-key", "base: &b {samples: m, dim: 4}\ndata:\n  <<: *b\nlayers: [relu]\n", "merge keys"),
    spec_case("yaml-duplicate-key", HEAD + "  - relu\nlayers: [relu]\n", "duplicate key"),
    spec_case("yaml-empty", "", "empty"),
    spec_case("yaml-not-a-mapping", "- relu\n- relu\n", "mapping"),
    spec_case("yaml-binary-garbage", bytes(range(256)) * 4, "spec"),
    spec_case("yaml-control-character", HEAD + "  - relu\x1f\n", "special characters"),
    spec_case("yaml-too-large", "# " + "x" * 1_100_000 + "\n", "larger than"),
    spec_case("yaml-nan-width", HEAD + "  - {op: linear, out: .nan}\n", "out"),
    # -- numbers and expressions
    # Python's parser warns about this literal on stderr before failing: the warning must not reach the user
    layer_case("literal-with-parser-warning", "  - {op: linear, out: 0x1for}\n", "syntax error"),
    layer_case("huge-int-literal", "  - {op: linear, out: 100000000000000000000000000000}\n", "larger than"),
    layer_case("huge-int-power", "  - {op: linear, out: h, spectral: '10**100'}\n", "exponent"),
    layer_case("power-tower", "  - {op: linear, out: h, spectral: '9**9**9'}\n", "exponent"),
    layer_case("float-overflow", "  - {op: linear, out: h, spectral: 1e400}\n", "finite"),
    layer_case("inject-import", "  - {op: linear, out: \"__import__('os').system('touch pwned.txt')\"}\n", "attribute"),
    layer_case("inject-dunder", "  - {op: linear, out: h, spectral: '().__class__.__bases__'}\n", "attribute"),
    layer_case("inject-lambda", "  - {op: linear, out: h, spectral: '(lambda: 1)()'}\n", "lambda"),
    layer_case("inject-call", "  - {op: linear, out: h, spectral: \"open('pwned.txt', 'w')\"}\n", "open"),
    layer_case("inject-sympify", "  - {op: linear, out: h, spectral: 'Symbol(\"x\")'}\n", "Symbol"),
    layer_case("inject-string", "  - {op: linear, out: h, spectral: '\"B\"'}\n", "only numbers"),
    layer_case("expression-too-long", "  - {op: linear, out: h, spectral: '" + "+".join(["B"] * 150) + "'}\n",
               "longer than"),
    layer_case("expression-deep", "  - {op: linear, out: h, spectral: '" + "-" * 60 + "B'}\n", "nested"),
    layer_case("expression-null-byte", "  - {op: linear, out: h, spectral: \"B\\0\"}\n", "expression"),
    spec_case("unicode-lookalike", "symbols: [B, h, m]\n" + HEAD + "  - {op: linear, out: h, spectral: Β}\n", "Β"),
    # -- graph structure
    layer_case("unknown-op", "  - {op: conv3d, out: h}\n", "unknown op"),
    layer_case("cycle", "  - {op: linear, out: h, name: a, inputs: [b]}\n  - {op: linear, out: h, name: b, inputs: [a]}\n",
               "cycle"),
    layer_case("dangling-input", "  - {op: linear, out: h, name: a}\n  - {op: add, inputs: [a, ghost]}\n", "ghost"),
    layer_case("width-mismatch", "  - {op: linear, out: h, name: a}\n  - {op: linear, out: k, name: b}\n"
               "  - {op: add, inputs: [a, b]}\n", "width mismatch"),
    layer_case("negative-width", "  - {op: linear, out: -3}\n", "positive"),
    layer_case("count-fraction", "  - repeat: {count: 2.5, index: t, body: [relu]}\n", "integer"),
    layer_case("count-symbolic-fraction", "  - repeat: {count: L/2, index: t, body: [relu]}\n", "integer"),
    layer_case("count-negative", "  - repeat: {count: -1, index: t, body: [relu]}\n", "positive"),
    layer_case("count-unrolls-too-far", "  - repeat: {count: 100000000, index: t, body: [relu]}\n", "10000"),
    Case("set-count-not-integer", {"spec.yaml": (SPECS / "pinto_table1.yaml").read_text()},
         ["derive", "{dir}/spec.yaml", "--set", "L=2.5"], "integer"),
    Case("set-not-finite", {"spec.yaml": HEAD + "  - relu\n"}, ["derive", "{dir}/spec.yaml", "--set", "m=inf"],
         "not finite"),
    Case("spec-missing", {}, ["derive", "{dir}/nothing.yaml"], "cannot read"),
    Case("spec-is-a-folder", {"sub/keep.txt": "x"}, ["derive", "{dir}/sub"], "cannot read"),
    # -- checkpoints
    checkpoint_case("ckpt-empty", "w.safetensors", b"", "empty"),
    checkpoint_case("ckpt-garbage", "w.safetensors", bytes(range(256)) * 8, "w.safetensors"),
    checkpoint_case("ckpt-garbage-pt", "w.pt", bytes(range(256)) * 8, "w.pt"),
    checkpoint_case("ckpt-truncated", "w.safetensors", truncated, "w.safetensors"),
    checkpoint_case("ckpt-header-length-bomb", "w.safetensors", safetensors_bytes({}, length=2 ** 62), "w.safetensors"),
    checkpoint_case("ckpt-header-not-json", "w.safetensors", safetensors_bytes(b"{not json" + b" " * 8), "w.safetensors"),
    checkpoint_case("ckpt-offsets-outside", "w.safetensors", safetensors_bytes(
        {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}, payload=b"\0" * 16),
        "w.safetensors"),
    checkpoint_case("ckpt-malicious-torch-zip", "evil.pt", malicious_torch, "safe mode"),
    checkpoint_case("ckpt-malicious-raw-pickle", "evil.pt", malicious_pickle, "evil.pt"),
    checkpoint_case("ckpt-nan", "w.safetensors", safetensors_file(**{"2.weight": torch.full((32, 32), float("nan"))}),
                    "NaN"),
    checkpoint_case("ckpt-inf", "w.safetensors", safetensors_file(**{"4.weight": torch.full((10, 32), float("inf"))}),
                    "Inf"),
    checkpoint_case("ckpt-int-weights", "w.safetensors", safetensors_file(**{"0.weight": torch.ones(32, 64, dtype=torch.int64)}),
                    "dtype int64", table=True, command="evaluate"),
    checkpoint_case("ckpt-bool-weights", "w.safetensors", safetensors_file(**{"2.weight": torch.ones(32, 32, dtype=torch.bool)}),
                    "dtype bool", table=True, command="evaluate"),
    Case("ckpt-param-names-int-tensor", {"spec.yaml": (SPECS / "digits_mlp.yaml").read_text().replace(
        "{op: linear, name: fc1, out: 32}", "{op: linear, name: fc1, out: 32, param: 0.weight}"),
        "w.safetensors": safetensors_file(**{"0.weight": torch.ones(32, 64, dtype=torch.int32)})},
        ["evaluate", "{dir}/spec.yaml", "{dir}/w.safetensors"], "dtype int32", table=True, kind="checkpoint"),
    checkpoint_case("ckpt-shape-mismatch", "w.safetensors", safetensors_file(**{"2.weight": torch.ones(32, 16)}),
                    "does not fit", table=True, command="evaluate"),
    checkpoint_case("ckpt-missing-tensor", "w.safetensors", safetensors_file(**{"4.weight": None}),
                    "does not fit", table=True, command="evaluate"),
    checkpoint_case("ckpt-sharded-path-escape", "folder", sharded_escape, "outside"),
    checkpoint_case("ckpt-folder-without-weights", "folder", lambda p: (p.mkdir(), (p / "config.json").write_text("{}")),
                    "folder"),
    # -- data files
    data_case("data-length-mismatch", npz(X=X, y=Y[:40]), "40"),
    data_case("data-nan", npz(X=np.where(X > 0.99, np.nan, X), y=Y), "NaN"),
    *(Case(f"data-forward-overflows-{command}", {"ckpt.safetensors": safetensors_file(**HUGE_WEIGHTS),
                                                  "data.npz": npz(X=X, y=Y)},
           [command, MLP_SPEC, "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz"], "overflows float64", kind="data")
      for command in ("evaluate", "collapse")),
    data_case("data-object-array", lambda path: npz(X=np.array([WritesAFile(str(path.parent / PWNED))] * 50,
                                                             dtype=object), y=Y)(path), "data.npz"),
    data_case("data-no-X", npz(inputs=X, y=Y), "'X'"),
    data_case("data-float-labels", npz(X=X, y=Y + 0.5), "integer"),
    data_case("data-label-out-of-range", npz(X=X, y=Y + 10), "label"),
    data_case("data-wrong-features", npz(X=X[:, :60], y=Y), "(60,)"),
    data_case("data-not-npz", b"PK\x03\x04" + bytes(200), "data.npz"),
    data_case("data-empty", npz(X=np.zeros((0, 64)), y=np.zeros(0, dtype=int)), "non-empty"),
    # -- collapse and zoo inputs
    Case("collapse-one-class", {"ckpt.safetensors": safetensors_file(), "data.npz": npz(X=X, y=np.zeros(50, dtype=int))},
         ["collapse", MLP_SPEC, "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz"], "2 classes", kind="data"),
    Case("zoo-path-escape", {"zoo/models.csv": "id,file,train_error,test_error\na,../../etc/passwd,0,0\n"},
         ["zoo", "evaluate", "{dir}/zoo", "--spec", MLP_SPEC], "outside the zoo folder", kind="data"),
    Case("zoo-bad-jsonl", {"zoo/models.jsonl": '{"id": "a", "file": "a.pt"}\n[1, 2]\n'},
         ["zoo", "evaluate", "{dir}/zoo", "--spec", MLP_SPEC], "JSON object", kind="data"),
    Case("zoo-error-not-a-number", {"zoo/models.csv": "id,file,train_error,test_error\na,a.pt,nan,0\n"},
         ["zoo", "evaluate", "{dir}/zoo", "--spec", MLP_SPEC], "train_error", kind="data"),
    # -- options
    option_case("option-percentile", ["--margin-percentile", "150"], "percentile"),
    option_case("option-delta", ["--delta", "1.5"], "delta"),
    option_case("option-const-negative", ["--const", "C1=-1"], "C1"),
    option_case("option-const-unknown", ["--const", "C3=1"], "C3"),
    option_case("option-const-garbage", ["--const", "C1=abc"], "C1"),
    option_case("option-unknown-bound", ["--bounds", "pinto2042"], "pinto2042"),
]

#: cases also run in a real interpreter process (the in-process runner cannot see a crash of the process)
SUBPROCESS_IDS = ["yaml-billion-laughs", "inject-import", "literal-with-parser-warning", "ckpt-malicious-torch-zip",
                  "ckpt-truncated", "data-length-mismatch"]
