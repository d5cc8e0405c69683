"""`boundcalc measure` on sharded checkpoints of 3 GB and 10 GB: peak resident memory and time of the whole
process, against the issue's targets (3 GB in 4 shards: peak RSS < 1.2 GB; 10 GB: < 2 GB).

The checkpoints are written here into a temporary folder (deleted at the end, also on failure) in the Hugging
Face layout: ``model-0000k-of-0000n.safetensors`` shards and ``model.safetensors.index.json``. Shapes are
chosen so that memory, not arithmetic, is what is tested: one 256 MB "embedding" of 131072 × 1024 in bfloat16
(the size of a 7B model's largest tensor, 32000 × 4096) in the first shard, then 256 × 16384 matrices (8 MB
each) up to the size asked for. Values are standard normal, cut from one pool of random bits (writing
10 GB of fresh random numbers would take minutes).

Each run is a fresh process (``python -m boundcalc measure FOLDER -f json --no-spectrum``); its peak RSS and
wall-clock time come from GNU ``/usr/bin/time`` (``%M``, the kernel's ru_maxrss of that child; bench/process.py).
Side by side, in the same run, two baselines:

* the same command on a 1-tensor checkpoint: the process's floor (interpreter, numpy, scipy, rich);
* the previous reader, ``safetensors.safe_open(framework="pt")``, reading every tensor and dropping it
  (``--baseline``, off by default: it needs torch and as much memory as the checkpoint).

    python bench/measure_shards.py [--sizes 3,10] [--shards 4] [--dtype bfloat16] [--baseline]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from process import run_python  # noqa: E402
GB = 10 ** 9
CODES = {"bfloat16": ("BF16", 2), "float32": ("F32", 4), "float16": ("F16", 2)}
EMBEDDING = (131072, 1024)
MATRIX = (256, 16384)
TARGETS_GB = {3: 1.2, 10: 2.0}
POOL_VALUES = 2 ** 26


def random_pool(dtype: str) -> bytes:
    """POOL_VALUES standard normal values as ``dtype`` bytes (bfloat16: the upper half of each float32)."""
    values = np.random.default_rng(0).standard_normal(POOL_VALUES, dtype=np.float32)
    if dtype == "bfloat16":
        return (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    return values.astype(dtype).tobytes()


def shapes_for(total_bytes: int, itemsize: int) -> list[tuple[str, tuple[int, int]]]:
    """The embedding, then matrices until ``total_bytes`` is reached."""
    out = [("model.embed_tokens.weight", EMBEDDING)]
    size = EMBEDDING[0] * EMBEDDING[1] * itemsize
    step = MATRIX[0] * MATRIX[1] * itemsize
    for i in range(max(0, (total_bytes - size) // step)):
        out.append((f"model.layers.{i // 4}.mlp.w{i % 4}.weight", MATRIX))
    return out


def write_shard(path: Path, tensors: list[tuple[str, tuple[int, int]]], code: str, itemsize: int, pool: bytes,
                rng: np.random.Generator) -> None:
    header, offset = {}, 0
    for name, shape in tensors:
        nbytes = shape[0] * shape[1] * itemsize
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        for _, shape in tensors:
            left = shape[0] * shape[1] * itemsize
            while left:
                start = int(rng.integers(0, len(pool) // itemsize)) * itemsize
                piece = pool[start:start + left]
                handle.write(piece)
                left -= len(piece)


def write_checkpoint(folder: Path, total_bytes: int, shards: int, dtype: str) -> int:
    """A sharded Hugging Face folder of about ``total_bytes``; returns its size on disk."""
    code, itemsize = CODES[dtype]
    tensors = shapes_for(total_bytes, itemsize)
    per_shard = -(-len(tensors) // shards)
    pool, rng = random_pool(dtype), np.random.default_rng(1)
    weight_map = {}
    for k in range(shards):
        part = tensors[k * per_shard:(k + 1) * per_shard]
        name = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        write_shard(folder / name, part, code, itemsize, pool, rng)
        weight_map.update({tensor: name for tensor, _ in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def run(args: list[str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in bytes, exit code, stderr tail) of a fresh process."""
    done = run_python(args)
    return done.seconds, done.peak_bytes, done.code, done.stderr[-300:]


MEASURE = ["-m", "boundcalc", "measure"]
BASELINE = ["-c", "import sys; from safetensors import safe_open\n"
                  "for f in sorted(__import__('glob').glob(sys.argv[1] + '/*.safetensors')):\n"
                  "    with safe_open(f, framework='pt') as h:\n"
                  "        for n in h.keys(): h.get_tensor(n).float().abs().max()"]


def floor_rss(workdir: Path) -> float:
    """Peak RSS of `boundcalc measure` on a checkpoint of one 64 × 64 tensor."""
    folder = workdir / "tiny"
    folder.mkdir()
    write_shard(folder / "model.safetensors", [("w", (64, 64))], "F32", 4, random_pool("float32")[:64 * 64 * 4],
                np.random.default_rng(0))
    _, peak, code, err = run([*MEASURE, str(folder), "-f", "json"])
    assert code == 0, err
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="3,10", help="checkpoint sizes in GB, comma-separated")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(CODES))
    parser.add_argument("--spectrum", action="store_true", help="full spectrum (default: --no-spectrum)")
    parser.add_argument("--baseline", action="store_true", help="also run the previous safe_open reader")
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    free = shutil.disk_usage(args.tmp).free
    if free < (max(sizes) * 1.1 + 1) * GB:
        sys.exit(f"not enough room in {args.tmp}: {free / GB:.1f} GB free, {max(sizes) * 1.1 + 1:.0f} GB needed")
    workdir = Path(tempfile.mkdtemp(prefix="boundcalc-shards-", dir=args.tmp))
    results = []
    try:
        floor = floor_rss(workdir)
        print(f"floor: peak RSS of `boundcalc measure` on a 1-tensor checkpoint {floor / 2**20:.0f} MiB")
        for size in sizes:
            folder = workdir / f"ckpt-{size:g}gb"
            folder.mkdir()
            start = time.perf_counter()
            on_disk = write_checkpoint(folder, int(size * GB), args.shards, args.dtype)
            written = time.perf_counter() - start
            extra = [] if args.spectrum else ["--no-spectrum"]
            seconds, peak, code, err = run([*MEASURE, str(folder), "-f", "json", *extra])
            if code != 0:
                sys.exit(f"boundcalc measure failed on {folder}: {err}")
            target = TARGETS_GB.get(round(size))
            line = (f"{on_disk / GB:.2f} GB in {args.shards} shards ({args.dtype}, written in {written:.0f} s): "
                    f"measure {seconds:.1f} s ({on_disk / GB / seconds:.2f} GB/s), peak RSS {peak / GB:.2f} GB "
                    f"= {peak / on_disk:.2f} × the checkpoint, {(peak - floor) / 2**20:.0f} MiB above the floor"
                    + (f"; target < {target} GB: {'met' if peak / GB < target else 'NOT met'}" if target else ""))
            row = {"size_gb": on_disk / GB, "seconds": seconds, "peak_rss_gb": peak / GB, "target_gb": target}
            if args.baseline:
                b_seconds, b_peak, b_code, b_err = run([*BASELINE, str(folder)])
                line += (f"; previous reader (safe_open, framework='pt'): {b_seconds:.1f} s, peak RSS "
                         f"{b_peak / GB:.2f} GB (×{b_peak / peak:.1f})" if b_code == 0 else f"; baseline failed: {b_err}")
                row.update(baseline_seconds=b_seconds, baseline_peak_rss_gb=b_peak / GB)
            print(line, flush=True)
            results.append(row)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"floor_rss_mib": floor / 2**20, "runs": results}))


if __name__ == "__main__":
    main()
