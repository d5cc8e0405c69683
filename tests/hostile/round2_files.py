"""Round-2 hostile inputs (files): cases added for issue 14's classes. Each is a `Case` of
``tests/hostile/corpus.py``, run by ``tests/hostile/test_cli_corpus.py``.

Classes: labels that wrap around in a cast and data norms past float64 (1); outputs that would overwrite an
input (2); files that are not regular (FIFO, /dev/zero), declared sizes past a limit (.npz/.npy, .pt pickle and
tensors, safetensors headers, conv power iteration, inferred repeat counts, manifest rows) (3); tracebacks from
a plain .npy, sparse or meta tensors and deep JSON (4); folder symlinks, duplicate index keys and a BOM (7).

Every payload is small: a declared size is forged in a header, a compressed member inflates only when read."""
from __future__ import annotations

import errno
import json
import os
import struct
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save_file

from tests.hostile.corpus import MLP_SPEC, SPECS, Case, X, Y, mlp_tensors, npz, safetensors_bytes, safetensors_file

ZOO = ["zoo", "evaluate", "{dir}/zoo", "--spec", MLP_SPEC, "--out", "{dir}/out"]
CSV_HEAD = "id,file,train_error,test_error\n"


# -- files that are not regular ---------------------------------------------------------------------
def fifo(path: Path) -> None:
    """A named pipe. A reader that opens it (the bug) would block forever, so a daemon thread opens the
    write end once a reader is waiting and closes it at once: the reader then sees EOF, and the case fails
    on its phrase instead of hanging the suite. After 20 s without a reader the thread gives up."""
    os.mkfifo(path)

    def unblock() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as err:
                if err.errno != errno.ENXIO:      # ENXIO: no reader yet; anything else: the folder is gone
                    return
            time.sleep(0.02)

    threading.Thread(target=unblock, daemon=True).start()


def link_to(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def spec_copy(path: Path) -> None:
    path.write_text(Path(MLP_SPEC).read_text())


# -- forged .npz / .npy ---------------------------------------------------------------------------------
def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A version-1.0 .npy header declaring ``shape``, padded as numpy pads it (no data follows)."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape})
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def forged_npz(shape: tuple[int, ...], descr: str = "<f8", payload: bytes = b"") -> Callable[[Path], None]:
    """An .npz whose X.npy header declares ``shape`` but holds only ``payload``."""
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("X.npy", npy_header(shape, descr) + payload)
            archive.writestr("y.npy", _npy(Y))
    return write


def _npy(array: np.ndarray) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def inflating_npz(rows: int, features: int = 64) -> Callable[[Path], None]:
    """A deflated X of ``rows`` × ``features`` zero bytes (uint8): a few KB on disk, rows·features once read."""
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            with archive.open("X.npy", "w", force_zip64=True) as member:
                member.write(npy_header((rows, features), "|u1"))
                block = bytes(1 << 22)
                for start in range(0, rows * features, len(block)):
                    member.write(block[:min(len(block), rows * features - start)])
            archive.writestr("y.npy", _npy(np.zeros(rows, dtype=np.uint8)))
    return write


def many_members(path: Path) -> None:
    arrays = {"X": X, "y": Y, **{f"extra{i}": np.zeros(1) for i in range(100)}}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


# -- forged checkpoints -----------------------------------------------------------------------------------
def torch_file(**overrides) -> Callable[[Path], None]:
    return lambda path: torch.save(mlp_tensors(**overrides), path)


def pickle_bomb(path: Path) -> None:
    """A torch-zip layout whose data.pkl declares 17 MB (deflated zeros: a 20 KB file)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", bytes(17 << 20))
        archive.writestr("archive/version", "3\n")


def many_tensors(count: int) -> Callable[[Path], None]:
    """A safetensors file with ``count`` one-byte tensors (header written directly: ~60 bytes each)."""
    def write(path: Path) -> None:
        header = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(count)}
        raw = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(count))
    return write


def deep_tensors(count: int) -> Callable[[Path], None]:
    """``count`` 4×4 weights, which make specs/lowrank_mlp.yaml's repeat count count − 2."""
    return lambda path: save_file({f"l{i}.weight": torch.ones(4, 4) for i in range(count)}, path)


def hf_folder(weights: str, target: Callable[[Path], None]) -> Callable[[Path], None]:
    """A Hugging Face folder whose ``weights`` file is a symlink to a file outside it."""
    def write(path: Path) -> None:
        path.mkdir()
        outside = path.parent / ("outside" + Path(weights).suffix)
        target(outside)
        os.symlink(outside, path / weights)
    return write


def sharded(index_text: str | Callable[[Path], None], extra: dict | None = None) -> Callable[[Path], None]:
    """A folder with one shard holding the MLP's tensors and an index (text, or a function writing it)."""
    def write(path: Path) -> None:
        path.mkdir()
        save_file({**mlp_tensors(), **(extra or {})}, path / "shard-1.safetensors")
        index = path / "model.safetensors.index.json"
        index_text(index) if callable(index_text) else index.write_text(index_text)
    return write


DUPLICATE_INDEX = ('{"weight_map": {"0.weight": "shard-1.safetensors", "0.weight": "../outside.safetensors", '
                   + ", ".join(f'"{n}": "shard-1.safetensors"' for n in mlp_tensors() if n != "0.weight") + "}}")
DEEP_JSON = "[" * 100_000 + "]" * 100_000

CONV_SPEC = ("data: {samples: m, shape: [4, 8192, 8192]}\nlayers:\n"
             "  - {op: conv2d, name: conv1, channels: 4, kernel: 3, padding: 1}\n  - flatten\n")


WIDE_CONV_SPEC = ("data: {samples: m, shape: [1, 128, 128]}\nlayers:\n"
                  "  - {op: conv2d, name: conv1, channels: 4096, kernel: 1}\n  - relu\n  - {op: avgpool, kernel: 128}\n"
                  "  - flatten\n  - {op: linear, name: fc, out: 10}\n")
WIDE_MLP_SPEC = ("data: {samples: m, dim: 64}\nlayers:\n  - {op: linear, name: fc1, out: 16384}\n  - relu\n"
                 "  - {op: linear, name: fc2, out: 10}\n")


def wide(shapes: dict[str, tuple[int, ...]]) -> Callable[[Path], None]:
    return lambda path: save_file({k: torch.full(s, 0.01) for k, s in shapes.items()}, path)


def checkpoint(id: str, name: str, content, phrase: str, args: list[str] | None = None) -> Case:
    return Case(id, {name: content}, args or ["measure", "{dir}/" + name], phrase, kind="checkpoint")


def data(id: str, content, phrase: str, command: str = "evaluate") -> Case:
    return Case(id, {"ckpt.safetensors": safetensors_file(), "data.npz": content},
                [command, MLP_SPEC, "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz"], phrase, kind="data")


def collapse_plot(id: str, files: dict, plot: str, phrase: str = "refusing to write") -> Case:
    base = {"ckpt.safetensors": safetensors_file(), "data.npz": npz(X=X, y=Y)}
    return Case(id, {**base, **files}, ["collapse", "{dir}/spec.yaml" if "spec.yaml" in files else MLP_SPEC,
                                        "{dir}/ckpt.safetensors", "--data", "{dir}/data.npz", "--plot", plot],
                phrase, kind="output")


# -- issue 18: safetensors read without torch, shards streamed -------------------------------------------
def two_shards(damage: Callable[[Path], None] | None = None, index_extra: dict | None = None) -> Callable[[Path], None]:
    """A Hugging Face folder with the MLP's tensors in two shards; ``damage`` is applied to the second shard,
    ``index_extra`` added to the weight map."""
    def write(folder: Path) -> None:
        folder.mkdir()
        tensors = mlp_tensors()
        first, second = folder / "model-00001-of-00002.safetensors", folder / "model-00002-of-00002.safetensors"
        save_file({k: tensors[k] for k in ("0.weight", "0.bias")}, first)
        save_file({k: v for k, v in tensors.items() if not k.startswith("0.")}, second)
        weight_map = {k: (first if k.startswith("0.") else second).name for k in tensors}
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {**weight_map,
                                                                                       **(index_extra or {})}}))
        if damage is not None:
            damage(second)
    return write


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def one_tensor(entry: dict, payload: bytes = bytes(24), extra: dict | None = None) -> bytes:
    """A safetensors file of one tensor "w" described by ``entry`` (plus ``extra`` header entries)."""
    return safetensors_bytes({"w": entry, **(extra or {})}, payload=payload)


F32_2x3 = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}


def streamed(id: str, content, phrase: str, name: str = "w.safetensors", args: list[str] | None = None) -> Case:
    return Case(id, {name: content}, args or ["measure", "{dir}/" + name], phrase, kind="checkpoint")


U64 = Y.astype(np.uint64)
U64[3] = 2 ** 64 - 1

CASES: list[Case] = [
    # -- 1. labels checked before the cast; data norms beyond float64 refused, not printed as inf
    data("label-uint64-wraps", npz(X=X, y=U64), "MAX_LABEL"),
    data("label-uint64-wraps-collapse", npz(X=X, y=U64), "MAX_LABEL", command="collapse"),
    data("label-float-1e20", npz(X=X, y=np.where(np.arange(50) == 3, 1e20, Y.astype(float))), "MAX_LABEL"),
    data("label-past-outputs-collapse", npz(X=X, y=np.where(np.arange(50) == 3, 10, Y)), "out of range",
         command="collapse"),
    data("data-norm-beyond-float64", npz(X=np.full((50, 64), 1.5e308), y=Y), "float64 range"),
    # -- 2. an output is never one of the inputs
    collapse_plot("plot-is-the-checkpoint", {}, "{dir}/ckpt.safetensors"),
    collapse_plot("plot-is-the-data", {}, "{dir}/data.npz"),
    collapse_plot("plot-symlink-to-the-spec", {"spec.yaml": spec_copy, "figure.png": link_to("spec.yaml")},
                  "{dir}/figure.png"),
    collapse_plot("plot-hard-link-to-the-checkpoint", {"figure.png": lambda p: os.link(p.parent / "ckpt.safetensors", p)},
                  "{dir}/figure.png"),
    collapse_plot("plot-is-a-folder", {}, "{dir}", "not a regular file"),
    Case("zoo-out-symlink-to-the-manifest", {"zoo/models.csv": CSV_HEAD + "a,a.pt,0.1,0.2\n",
                                             "out/results.csv": link_to("../zoo/models.csv")}, ZOO,
         "refusing to write", kind="output"),
    Case("zoo-out-over-the-spec", {"zoo/models.csv": CSV_HEAD + "a,a.pt,0.1,0.2\n", "out/summary.json": spec_copy},
         ["zoo", "evaluate", "{dir}/zoo", "--spec", "{dir}/out/summary.json", "--out", "{dir}/out"],
         "refusing to write", kind="output"),
    # -- 3. only regular files are opened (a FIFO blocks, /dev/zero never ends)
    Case("spec-fifo", {"spec.yaml": fifo}, ["derive", "{dir}/spec.yaml"], "not a regular file"),
    Case("spec-symlink-to-dev-zero", {"spec.yaml": link_to("/dev/zero")}, ["check", "{dir}/spec.yaml"],
         "not a regular file"),
    checkpoint("ckpt-fifo", "w.safetensors", fifo, "not a regular file"),
    checkpoint("ckpt-symlink-to-dev-zero", "w.pt", link_to("/dev/zero"), "not a regular file"),
    checkpoint("shard-index-fifo", "folder", sharded(fifo), "not a regular file"),
    data("data-fifo", fifo, "not a regular file"),
    Case("zoo-data-fifo", {"zoo/models.csv": CSV_HEAD + "a,a.pt,0.1,0.2\n", "d.npz": fifo}, [*ZOO, "--data", "{dir}/d.npz"],
         "not a regular file", kind="data"),
    Case("zoo-manifest-fifo", {"zoo/models.csv": fifo}, ZOO, "not a regular file", kind="data"),
    Case("zoo-manifest-symlink-to-dev-zero", {"zoo/models.jsonl": link_to("/dev/zero")}, ZOO, "not a regular file",
         kind="data"),
    # -- 3. declared sizes checked against a stated limit before anything is allocated
    data("npy-header-claims-1e11-rows", forged_npz((10 ** 11, 64)), "MAX_DATA_VALUES"),
    data("npz-inflates-past-the-limit", inflating_npz(1_100_000), "MAX_DATA_VALUES"),
    data("npz-string-array", forged_npz((50,), "<U100000"), "real numbers"),
    data("npz-too-many-arrays", many_members, "MAX_NPZ_MEMBERS"),
    checkpoint("pt-expanded-tensor", "w.pt", torch_file(**{"0.weight": torch.zeros(1).expand(100_000, 100_000)}),
               "expanded"),
    checkpoint("pt-pickle-past-the-limit", "w.pt", pickle_bomb, "MAX_PICKLE_BYTES"),
    checkpoint("safetensors-too-many-tensors", "w.safetensors", many_tensors(100_001), "MAX_TENSORS"),
    checkpoint("safetensors-header-past-the-limit", "w.safetensors",
               lambda p: p.write_bytes(struct.pack("<Q", 20 << 20) + b"{" + b" " * 64), "MAX_SAFETENSORS_HEADER_BYTES"),
    checkpoint("infer-repeat-count-9000", "w.safetensors", deep_tensors(9000), "MAX_INFERRED_COUNT",
               args=["evaluate", str(SPECS / "lowrank_mlp.yaml"), "{dir}/w.safetensors"]),
    Case("conv-power-iteration-past-the-limit", {"spec.yaml": CONV_SPEC,
                                                 "w.safetensors": lambda p: save_file({"w": torch.ones(4, 4, 3, 3)}, p)},
         ["measure", "{dir}/w.safetensors", "--spec", "{dir}/spec.yaml", "--conv-norm", "power"], "MAX_POWER_MACS",
         kind="checkpoint"),
    # a 16 KB conv kernel whose activations on one 128×128 sample are 6.7·10⁷ values (0.5 GB per sample)
    Case("forward-pass-activations-past-the-limit",
         {"spec.yaml": WIDE_CONV_SPEC, "w.safetensors": wide({"conv1.weight": (4096, 1, 1, 1), "fc.weight": (10, 4096)}),
          "data.npz": npz(X=np.ones((2, 1, 128, 128)), y=np.array([0, 1]))},
         ["evaluate", "{dir}/spec.yaml", "{dir}/w.safetensors", "--data", "{dir}/data.npz"], "MAX_FORWARD_VALUES",
         kind="data"),
    # collapse keeps every weight layer's input: 10,000 samples × 16,448 features (1.3 GB)
    Case("collapse-features-past-the-limit",
         {"spec.yaml": WIDE_MLP_SPEC, "w.safetensors": wide({"fc1.weight": (16384, 64), "fc2.weight": (10, 16384)}),
          "data.npz": npz(X=np.ones((10_000, 64)), y=np.arange(10_000) % 10)},
         ["collapse", "{dir}/spec.yaml", "{dir}/w.safetensors", "--data", "{dir}/data.npz"], "MAX_FEATURE_VALUES",
         kind="data"),
    Case("zoo-manifest-too-many-rows", {"zoo/models.csv": CSV_HEAD + "".join(f"m{i},m{i}.pt,0.1,0.2\n"
                                                                             for i in range(10_001))},
         ZOO, "MAX_MODELS", kind="data"),
    # -- 4. one error line, not a traceback
    data("npy-instead-of-npz", lambda p: p.write_bytes(_npy(X)), ".npz archive"),
    checkpoint("pt-sparse-tensor", "w.pt", torch_file(**{"0.weight": torch.eye(32, 64).to_sparse()}), "sparse"),
    checkpoint("pt-meta-tensor", "w.pt", torch_file(**{"0.weight": torch.empty(32, 64, device="meta")}), "meta device"),
    Case("zoo-jsonl-nested-deep", {"zoo/models.jsonl": '{"id": "a", "file": "a.pt", "x": ' + DEEP_JSON + "}\n"}, ZOO,
         "nested deeper", kind="data"),
    checkpoint("shard-index-nested-deep", "folder", sharded('{"weight_map": ' + DEEP_JSON + "}"), "nested deeper"),
    # -- 7. one policy for every file of a folder; duplicate keys refused; a BOM accepted
    checkpoint("hf-model-safetensors-symlink-outside", "folder", hf_folder("model.safetensors", safetensors_file()),
               "outside the folder"),
    checkpoint("hf-pytorch-model-bin-symlink-outside", "folder", hf_folder("pytorch_model.bin", torch_file()),
               "outside the folder"),
    checkpoint("shard-index-duplicate-key", "folder", sharded(DUPLICATE_INDEX), "duplicate key"),
    Case("zoo-jsonl-duplicate-key", {"zoo/models.jsonl": '{"id": "a", "id": "b", "file": "a.pt"}\n'}, ZOO,
         "duplicate key", kind="data"),
    # the BOM is read as part of the first column's name unless it is stripped: "missing 'id'" instead of the
    # row's real problem
    Case("zoo-csv-with-bom", {"zoo/models.csv": "\ufeff" + CSV_HEAD + "a,a.pt,nan,0.2\n"}, ZOO, "train_error",
         kind="data"),
    # -- issue 18: a safetensors header is checked against its file before any tensor is read (numpy reader)
    streamed("shard-truncated", two_shards(cut_in_half), "past the end of the file", "folder"),
    streamed("shard-missing", two_shards(lambda p: p.unlink()), "does not exist", "folder"),
    streamed("shard-index-names-a-missing-file", two_shards(index_extra={"extra.weight": "model-00003.safetensors"}),
             "does not exist", "folder"),
    streamed("shard-lacks-an-indexed-tensor", two_shards(index_extra={"9.weight": "model-00002-of-00002.safetensors"}),
             "no such tensor", "folder"),
    streamed("shard-bad-header", two_shards(lambda p: p.write_bytes(safetensors_bytes(b"[1, 2]   "))),
             "not a JSON object", "folder"),
    streamed("shard-nan-bfloat16", two_shards(lambda p: save_file(
        {**{k: v for k, v in mlp_tensors().items() if not k.startswith("0.")},
         "2.weight": torch.full((32, 32), float("nan"), dtype=torch.bfloat16)}, p)), "1024 NaN/Inf", "folder"),
    streamed("tensor-bytes-past-the-end", one_tensor({**F32_2x3, "data_offsets": [0, 24]}, payload=bytes(12)),
             "past the end of the file"),
    streamed("tensor-offsets-overlap", one_tensor(F32_2x3, payload=bytes(48),
                                                  extra={"v": {**F32_2x3, "data_offsets": [12, 36]}}), "overlapping"),
    streamed("tensor-size-not-its-offsets", one_tensor({**F32_2x3, "shape": [4, 3]}), "needs 48 bytes"),
    streamed("tensor-unknown-dtype", one_tensor({**F32_2x3, "dtype": "F128"}), "unknown dtype"),
    streamed("tensor-negative-shape", one_tensor({**F32_2x3, "shape": [-2, -3]}), "non-negative"),
    streamed("tensor-entry-not-an-object", one_tensor([1, 2, 3]), "is not {dtype"),
    streamed("bytes-after-the-last-tensor", one_tensor(F32_2x3, payload=bytes(40)), "after the last tensor"),
    streamed("header-not-utf8", safetensors_bytes(b'{"w": "\xff\xfe"}'), "not valid JSON"),
    streamed("header-duplicate-tensor", safetensors_bytes(b'{"w": ' + json.dumps(F32_2x3).encode() + b', "w": '
                                                          + json.dumps(F32_2x3).encode() + b"}", payload=bytes(24)),
             "duplicate key"),
]
