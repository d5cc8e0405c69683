"""The torch-free measure path (issue 18): safetensors read with numpy, bfloat16/float8 decoded by bit
manipulation, shards streamed one tensor at a time. Decoding is checked against torch's own conversion on every
bit pattern; measurements against the torch path and against plain numpy."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from boundcalc.errors import CheckpointError
from boundcalc.measure import checkpoint as checkpoint_module
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.measure.dtypes import SAFETENSORS_TYPES, decoded
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.measure.safetensors_file import read_entry, read_header
from boundcalc.measure.stream import measure_checkpoint

ROOT = Path(__file__).resolve().parents[1]
LOW_PRECISION = {"bfloat16": (torch.bfloat16, np.uint16), "float8_e4m3fn": (torch.float8_e4m3fn, np.uint8),
                 "float8_e5m2": (torch.float8_e5m2, np.uint8)}
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2]


@pytest.mark.parametrize("name", sorted(LOW_PRECISION))
def test_decoding_equals_torch_on_every_bit_pattern(name):
    torch_dtype, storage = LOW_PRECISION[name]
    bits = np.arange(np.iinfo(storage).max + 1, dtype=np.uint32).astype(storage)
    as_torch = torch.from_numpy(bits.view(np.int16) if storage == np.uint16 else bits).view(torch_dtype)
    want = as_torch.to(torch.float32).numpy()
    got = decoded(bits, name)
    assert got.dtype == np.float32
    nan = np.isnan(want)
    assert np.array_equal(nan, np.isnan(got))
    assert np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))   # bit for bit, −0 included


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1).view(torch.uint8)


def sample_state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return {"a.weight": torch.randn(40, 33, generator=gen), "b.weight": torch.randn(50, 70, generator=gen),
            "conv.weight": torch.randn(6, 3, 3, 3, generator=gen), "a.bias": torch.randn(40, generator=gen),
            "empty": torch.zeros(0, 4), "scalar": torch.tensor(2.5), "steps": torch.arange(6).reshape(2, 3),
            "mask": torch.ones(3, 2, dtype=torch.bool)}


def test_header_and_values_equal_the_safetensors_library(tmp_path):
    state = {**sample_state(), **{f"w.{d}": torch.randn(5, 4).to(getattr(torch, d)) for d in LOW_PRECISION},
             "h": torch.randn(3, 3).to(torch.float16), "d": torch.randn(3, 3).double(), "i8": torch.ones(2, dtype=torch.int8)}
    path = tmp_path / "w.safetensors"
    save_file(state, path)
    entries = read_header(str(path), path.stat().st_size)
    names = {code: t.name for code, t in SAFETENSORS_TYPES.items()}
    with safe_open(str(path), framework="pt") as library:
        assert sorted(entries) == sorted(library.keys())
        for name, entry in entries.items():
            piece = library.get_slice(name)
            assert entry.shape == tuple(piece.get_shape()) and entry.kind.name == names[piece.get_dtype()]
            want = library.get_tensor(name)
            got = checkpoint_module._as_torch(read_entry(str(path), entry, decode=False), entry.kind.name)
            assert got.dtype == want.dtype and torch.equal(_bytes(got), _bytes(want))


@pytest.mark.parametrize("dtype", DTYPES, ids=[str(d).removeprefix("torch.") for d in DTYPES])
def test_torch_free_path_gives_the_numbers_of_the_torch_path(tmp_path, dtype):
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sample_state().items()}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    numpy_side, torch_side = open_checkpoint(tmp_path / "w.safetensors"), open_checkpoint(tmp_path / "w.pt")
    assert {n: (i.shape, i.dtype) for n, i in numpy_side.infos.items()} == \
        {n: (i.shape, i.dtype) for n, i in torch_side.infos.items()}
    for spectrum in (True, False):
        options = MeasureOptions(spectrum=spectrum)
        ours = [m.to_dict() for m in measure_checkpoint(numpy_side, options)]
        theirs = [m.to_dict() for m in measure_checkpoint(torch_side, options)]
        assert [m["tensor"] for m in ours] == ["a.weight", "b.weight", "conv.weight"]
        assert ours == theirs
        for item in ours:       # and both against plain numpy on torch's float64 upcast
            w = state[item["tensor"]].to(torch.float64).numpy().reshape(item["shape"][0], -1)
            sigma = np.linalg.svd(w, compute_uv=False)
            assert item["matrix"]["spectral"] == pytest.approx(sigma[0], rel=1e-12)
            assert item["matrix"]["frobenius"] == pytest.approx(np.linalg.norm(w), rel=1e-12)
            assert item["matrix"]["rank"] == np.linalg.matrix_rank(w if dtype == torch.float64 else w.astype(np.float32))
            assert item["dtype"] == str(dtype).removeprefix("torch.")


def two_shards(folder: Path, state: dict[str, torch.Tensor], second: set[str]) -> None:
    folder.mkdir()
    names = {k: "model-00002-of-00002.safetensors" if k in second else "model-00001-of-00002.safetensors"
             for k in state}
    for shard in set(names.values()):
        save_file({k: v for k, v in state.items() if names[k] == shard}, folder / shard)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": dict(sorted(names.items()))}))


HEAVY = ("torch", "sympy", "networkx", "matplotlib", "dask")
PROBE = """
import json, sys
from boundcalc.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(%r))}), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("extra", [[], ["--no-spectrum"], ["-f", "text"]])
@pytest.mark.parametrize("layout", ["file", "shards"])
def test_measure_on_safetensors_never_imports_torch(tmp_path, extra, layout):
    state = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in sample_state().items()}
    if layout == "file":
        target = tmp_path / "w.safetensors"
        save_file(state, target)
    else:
        target = tmp_path / "folder"
        two_shards(target, state, {"b.weight", "conv.weight"})
    result = subprocess.run([sys.executable, "-c", PROBE, "measure", str(target), "-f", "json", *extra],
                            capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}, result.stderr
    if "text" not in extra:
        assert [t["tensor"] for t in json.loads(result.stdout)["tensors"]] == ["a.weight", "b.weight", "conv.weight"]


def test_shards_are_read_in_index_order_and_front_to_back(tmp_path):
    state = sample_state()
    two_shards(tmp_path / "folder", state, {"a.weight", "empty"})
    ckpt = open_checkpoint(tmp_path / "folder")
    first, second = [read_header(str(tmp_path / "folder" / f), (tmp_path / "folder" / f).stat().st_size)
                     for f in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")]
    assert ckpt.read_order() == list(first) + list(second)     # read_header lists a file's tensors by offset
    assert [e.begin for e in first.values()] == sorted(e.begin for e in first.values())


def reads_of(monkeypatch) -> list:
    """Every array the checkpoint reader returns, as (name, weak reference), in order."""
    seen = []

    def recording(path, entry, decode=True, scratch=None):
        values = read_entry(path, entry, decode, scratch)
        seen.append((entry.name, weakref.ref(values)))
        return values

    monkeypatch.setattr(checkpoint_module, "read_entry", recording)
    return seen


def test_each_tensor_is_released_before_the_next_is_read(tmp_path, monkeypatch):
    save_file(sample_state(), tmp_path / "w.safetensors")
    seen = reads_of(monkeypatch)
    alive_at_read = []
    original = checkpoint_module.read_entry

    def checking(path, entry, decode=True, scratch=None):
        gc.collect()
        alive_at_read.append([name for name, ref in seen if ref() is not None])
        return original(path, entry, decode, scratch)

    monkeypatch.setattr(checkpoint_module, "read_entry", checking)
    progress = []
    measure_checkpoint(open_checkpoint(tmp_path / "w.safetensors"), MeasureOptions(),
                       on_progress=lambda done, total, name: progress.append((done, total)))
    assert len(seen) == 3 and alive_at_read == [[], [], []]
    total = sum(v.numel() * v.element_size() for k, v in sample_state().items() if k.endswith("weight"))
    assert progress[0] == (0, total) and progress[-1] == (total, total)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_a_file_cut_after_opening_fails_at_its_first_missing_tensor(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_file(sample_state(), path)
    ckpt = open_checkpoint(path)
    entries = read_header(str(path), path.stat().st_size)
    cut = entries["b.weight"].begin + 10
    path.write_bytes(path.read_bytes()[:cut])
    seen = reads_of(monkeypatch)
    with pytest.raises(CheckpointError, match=r"cannot read tensor 'b\.weight': the file ends before") as err:
        measure_checkpoint(ckpt, MeasureOptions())
    assert "\n" not in str(err.value)
    failing = list(entries).index("b.weight")
    assert [name for name, _ in seen] == [n for n in list(entries)[:failing] if n.endswith("weight")]


def test_the_package_imports_lazily_and_keeps_its_public_names():
    probe = ("import sys, boundcalc; lazy = 'sympy' not in sys.modules; import boundcalc.derivation as module; "
             "from boundcalc.derivation import derive; print(lazy, boundcalc.derive is derive, module is not derive, "
             "boundcalc.load_spec.__module__)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""})
    # the function boundcalc.derive lives in the module boundcalc.derivation, so neither shadows the other
    assert result.stdout.split() == ["True", "True", "True", "boundcalc.spec.load"], result.stderr


@pytest.mark.parametrize("side", [300, 520])
def test_no_spectrum_sigma_and_rank_on_both_sides_of_the_whole_spectrum_size(side):
    """--no-spectrum takes the whole spectrum up to WHOLE_SPECTRUM_MAX_SIZE (512) and Lanczos with a Cholesky
    rank certificate above it: both agree with numpy's SVD and matrix_rank, for full and deficient ranks."""
    from boundcalc.measure.quantities import WHOLE_SPECTRUM_MAX_SIZE, MeasureOptions, measure_weight

    assert (side <= WHOLE_SPECTRUM_MAX_SIZE) == (side == 300)
    rng = np.random.default_rng(side)
    for rank in (side, side - 7):
        left = np.linalg.qr(rng.standard_normal((side + 40, side)))[0]
        right = np.linalg.qr(rng.standard_normal((side, side)))[0]
        values = np.r_[np.linspace(10.0, 1.0, rank), np.zeros(side - rank)]       # well separated from τ
        w = ((left * values) @ right.T).astype(np.float32)
        got = measure_weight(w, MeasureOptions(spectrum=False), tensor="w").matrix
        w64 = w.astype(np.float64)
        sigma = np.linalg.svd(w64, compute_uv=False)
        assert got.spectral == pytest.approx(sigma[0], rel=1e-10)
        assert got.rank == np.linalg.matrix_rank(w64, tol=sigma[0] * max(w.shape) * np.finfo(np.float32).eps)
        assert got.rank == rank
