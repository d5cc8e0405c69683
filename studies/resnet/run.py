"""The resnet study, with one command: train small CNNs and ResNets, with and without BatchNorm, on
scikit-learn's digits (1×8×8 images), trace each architecture with `boundcalc trace`, save the trained state
dicts as a zoo, run `boundcalc zoo evaluate --biases keep`, and write the Kendall τ / Ψ table of every bound
that applies (the path-norm bound gonon2024 included), with the reason for each one that does not.

    python studies/resnet/run.py                 # the full study, into studies/resnet/rerun/ (git-ignored)
    python studies/resnet/run.py --regenerate    # the same into studies/resnet/output/ and the README (committed)
    python studies/resnet/run.py --tiny --out D  # 4 models, 4 epochs: what the tests run

Grid: architecture (cnn: two convs and a max-pool; resnet: a stem, an identity block and a strided
downsampling block with a 1×1 skip, global average pooling) × BatchNorm (no: convolutions with biases; yes:
bias-free convolutions, each followed by BatchNorm, which evaluate folds into it exactly) × width × weight decay.
The data split, the training loop and the reproducibility settings are the digits study's (studies/digits).
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "digits")]
#: studylib pins one thread for torch, BLAS and OpenMP: imported before numpy and torch
from studylib import (ROOT, boundcalc, comparison_with_committed, parallel_map,  # noqa: E402
                      study_arguments, update_readme)

import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import models  # noqa: E402
from tables import gap_cell, models_table, not_applicable_rows, ranking_table, tau_findings, two  # noqa: E402
from training import (SPLIT_SEED, TRAIN_SIZE, deterministic_torch, error, library_versions, report, split,  # noqa: E402
                      train, training_phrase, write_manifest, write_npz)

COMMITTED = HERE / "output"
DEFAULT_OUT = HERE / "rerun"
UNCOMMITTED = ("zoo", "train.npz")
IMAGE = (1, 8, 8)
FULL = dict(arches=list(models.ARCHES), batchnorms=[False, True], widths=list(models.WIDTHS),
            weight_decays=[0.0, 1e-4, 1e-3], epochs=60, lr=3e-3, margin_percentile=10)
TINY = dict(arches=list(models.ARCHES), batchnorms=[False, True], widths=[8], weight_decays=[0.0], epochs=4,
            lr=1e-2, margin_percentile=50)    # 4 epochs leave many training points misclassified
#: the zoo's hyperparameter columns and their headers in the τ / Ψ table
LABELS = {"arch": "architecture", "batchnorm": "BatchNorm", "width": "width", "weight_decay": "weight decay"}
BIASES = ("biases kept (`--biases keep`: affine layers in the tight chain rule, bias paths in the path-norm), "
          "each BatchNorm folded exactly into the convolution before it")


@dataclass(frozen=True)
class Config:
    arch: str
    batchnorm: bool
    width: int
    weight_decay: float
    seed: int

    @property
    def architecture(self) -> str:
        return models.architecture_name(self.arch, self.width, self.batchnorm)

    @property
    def id(self) -> str:
        return f"{self.architecture}_wd{self.weight_decay:g}"


def configs(grid: dict) -> list[Config]:
    """architecture × BatchNorm × width × weight decay; model n gets seed n."""
    shapes = itertools.product(grid["arches"], grid["batchnorms"], grid["widths"], grid["weight_decays"])
    return [Config(arch, bn, width, float(wd), seed) for seed, (arch, bn, width, wd) in enumerate(shapes)]


def images(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, *IMAGE)


def _train_one(job: tuple[Config, dict, Path]) -> dict:
    """Train one model, save its state dict (BatchNorm statistics included) into the zoo; its manifest row."""
    config, grid, zoo = job
    deterministic_torch()
    x_train, y_train, x_test, y_test = split()
    torch.manual_seed(config.seed)
    net = models.build(config.arch, config.width, config.batchnorm)
    train(net, images(x_train), y_train, config.weight_decay, grid["epochs"], grid["lr"], seed=config.seed)
    net.eval()
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, zoo / f"{config.id}.safetensors")
    return {"id": config.id, "file": f"{config.id}.safetensors", "spec": f"{config.architecture}.yaml",
            "arch": config.arch, "batchnorm": "yes" if config.batchnorm else "no", "width": config.width,
            "weight_decay": config.weight_decay, "train_error": error(net, images(x_train), y_train),
            "test_error": error(net, images(x_test), y_test)}


def _trace_one(job: tuple[str, Path]) -> None:
    architecture, zoo = job
    boundcalc(HERE, "trace", f"models.py:{architecture}", "--input-shape", ",".join(map(str, IMAGE)),
              "--name", architecture, "-o", str(zoo / f"{architecture}.yaml"))


def build_zoo(out: Path, grid: dict, workers: int) -> list[dict]:
    """Trace every architecture of the grid into out/zoo/<architecture>.yaml (`boundcalc trace`, run from this
    folder so the spec names its target as models.py:<architecture>), train every model, write models.csv and
    out/train.npz; the manifest rows in grid order."""
    zoo = out / "zoo"
    zoo.mkdir(parents=True, exist_ok=True)
    x_train, y_train, _, _ = split()
    write_npz(out / "train.npz", X=images(x_train).numpy(), y=y_train.numpy())
    grid_configs = configs(grid)
    architectures = dict.fromkeys(c.architecture for c in grid_configs)
    parallel_map(_trace_one, [(architecture, zoo) for architecture in architectures], workers)
    rows = parallel_map(_train_one, [(config, grid, zoo) for config in grid_configs], workers)
    report(rows)
    write_manifest(zoo, rows)
    return rows


def family(result: dict) -> str:
    """cnn, cnn + BatchNorm, resnet or resnet + BatchNorm: the architecture up to its width."""
    h = result["hyperparameters"]
    return h["arch"] + (" + BatchNorm" if h["batchnorm"] == "yes" else "")


def not_applicable_table(results: list[dict]) -> list[str]:
    """Each bound that does not apply, with `evaluate`'s reason, per architecture family (tables.py)."""
    return not_applicable_rows(results, family)


def findings(summary: dict, results: list[dict]) -> list[str]:
    """What the tables say, computed from their cells: the range of τ, and the mean gap and mean log10 gap bound
    with and without BatchNorm."""
    out = tau_findings(results, summary)
    if not out:
        return []
    ok = [r for r in results if r["ok"]]
    groups = {flag: [r for r in ok if r["hyperparameters"]["batchnorm"] == flag] for flag in ("no", "yes")}
    if all(groups.values()):
        def mean(values):
            return sum(values) / len(values)
        gaps = {flag: mean([r["gap"] for r in rows]) for flag, rows in groups.items()}
        line = (f"- BatchNorm: the mean measured gap is {gap_cell(gaps['no'])} without and {gap_cell(gaps['yes'])} "
                "with it; the mean log10 gap bound")
        cells = []
        for b in summary["bounds"]:
            logs = {flag: [r["bounds"][b["key"]]["gap_log10"] for r in rows
                           if r["bounds"].get(b["key"], {}).get("gap_log10") is not None]
                    for flag, rows in groups.items()}
            if all(logs.values()):
                cells.append(f"of `{b['key']}` is {two(mean(logs['no']))} without and {two(mean(logs['yes']))} with")
        out.append(line + " " + "; ".join(cells) + ".")
    return out


def settings_line(grid: dict) -> str:
    return (f"Run: {len(configs(grid))} models traced with `boundcalc trace`, {TRAIN_SIZE} training images (split "
            f"seed {SPLIT_SEED}), {training_phrase(grid, len(configs(grid)))}; one CPU thread per process, torch "
            f"deterministic algorithms. {library_versions()}.")


def results_markdown(grid: dict, summary: dict, results: list[dict]) -> str:
    parts = [[settings_line(grid)], findings(summary, results), ranking_table(summary, LABELS, BIASES),
             not_applicable_table(results),
             models_table(summary, results)]
    return "\n\n".join("\n".join(part) for part in parts if part) + "\n"


def parse_args():
    return study_arguments(__doc__.splitlines()[0], COMMITTED, DEFAULT_OUT, "4 models, 4 epochs")


def main() -> None:
    args = parse_args()
    grid = TINY if args.tiny else FULL
    started = time.perf_counter()
    deterministic_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    build_zoo(args.out, grid, args.workers)
    trained = time.perf_counter()
    summary = json.loads(boundcalc(args.out, "zoo", "evaluate", "zoo", "--data", "train.npz", "--biases", "keep",
                                   "--workers", str(args.workers), "--out", "results", "--plots", "plots",
                                   "--margin-percentile", str(grid["margin_percentile"]), "-f", "json"))
    results = json.loads((args.out / "results" / "results.json").read_text())
    tables = results_markdown(grid, summary, results)
    (args.out / "results.md").write_text(tables)
    print(tables)
    if args.out == COMMITTED:
        update_readme(HERE / "README.md", {"results": tables})
        print(f"updated {HERE / 'README.md'} and {COMMITTED}")
    elif not args.tiny:
        print(comparison_with_committed(COMMITTED, args.out, UNCOMMITTED))
    done = time.perf_counter()
    print(f"took {done - started:.0f} s of wall time: tracing and training {trained - started:.0f} s, "
          f"zoo evaluate {done - trained:.0f} s")


if __name__ == "__main__":
    main()
