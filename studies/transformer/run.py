"""The transformer study, with one command: train tiny pre-norm transformers on scikit-learn's digits (each
image's 8 rows as 8 tokens of 8 pixels), write each architecture's spec (models.py, by hand: it binds the
modules' state-dict names), save the trained state dicts as a zoo, run `boundcalc zoo evaluate --biases keep`,
certify every model with `boundcalc certify` (Gaussian posterior, learned prior), and write the Kendall τ / Ψ
table of every bound that applies, with the reason for each one that does not.

    python studies/transformer/run.py                 # the full study, into studies/transformer/rerun/ (git-ignored)
    python studies/transformer/run.py --regenerate    # the same into output/ and the README (committed)
    python studies/transformer/run.py --tiny --out D  # 2 models, 4 epochs, a small certificate: what the test runs

Grid: depth (1, 2 blocks) × heads (1, 2) × weight decay (0, 1e-3, 1e-2). The data split, the training loop and
the reproducibility settings are the digits study's (studies/digits).
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
UNCOMMITTED = ("zoo", "train.npz", "test.npz")
SEQUENCE = (models.TOKENS, models.PIXELS)
FULL = dict(depths=list(models.DEPTHS), heads=list(models.HEADS), weight_decays=[0.0, 1e-3, 1e-2], epochs=60,
            lr=3e-3, margin_percentile=25, certify=dict(mc_samples=1000, epochs=20))
TINY = dict(depths=[1], heads=list(models.HEADS), weight_decays=[0.0], epochs=4, lr=1e-2, margin_percentile=50,
            certify=dict(mc_samples=20, epochs=1, models=1))   # 4 epochs leave many training points misclassified
#: the zoo's hyperparameter columns and their headers in the τ / Ψ table
LABELS = {"depth": "depth", "heads": "heads", "weight_decay": "weight decay"}
BIASES = "biases kept (`--biases keep`: affine layers in the tight chain rule)"
CERTIFICATE = "certificate (learned prior)"


@dataclass(frozen=True)
class Config:
    depth: int
    heads: int
    weight_decay: float
    seed: int

    @property
    def architecture(self) -> str:
        return models.architecture_name(self.depth, self.heads)

    @property
    def id(self) -> str:
        return f"{self.architecture}_wd{self.weight_decay:g}"


def configs(grid: dict) -> list[Config]:
    """depth × heads × weight decay; model n gets seed n."""
    shapes = itertools.product(grid["depths"], grid["heads"], grid["weight_decays"])
    return [Config(depth, heads, float(wd), seed) for seed, (depth, heads, wd) in enumerate(shapes)]


def sequences(x: torch.Tensor) -> torch.Tensor:
    """(n, 64) images as (n, 8, 8): row r of the image is token r."""
    return x.reshape(-1, *SEQUENCE)


def _train_one(job: tuple[Config, dict, Path]) -> dict:
    """Train one model, save its state dict into the zoo; its manifest row."""
    config, grid, zoo = job
    deterministic_torch()
    x_train, y_train, x_test, y_test = split()
    torch.manual_seed(config.seed)
    net = models.Encoder(config.depth, config.heads)
    train(net, sequences(x_train), y_train, config.weight_decay, grid["epochs"], grid["lr"], seed=config.seed)
    net.eval()
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, zoo / f"{config.id}.safetensors")
    return {"id": config.id, "file": f"{config.id}.safetensors", "spec": f"{config.architecture}.yaml",
            "depth": config.depth, "heads": config.heads, "weight_decay": config.weight_decay,
            "train_error": error(net, sequences(x_train), y_train),
            "test_error": error(net, sequences(x_test), y_test)}


def build_zoo(out: Path, grid: dict, workers: int) -> list[dict]:
    """Write every architecture's spec into out/zoo/<architecture>.yaml, train every model, write models.csv,
    out/train.npz and out/test.npz (the held-out images, for the certificates); the manifest rows in grid order."""
    zoo = out / "zoo"
    zoo.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = split()
    write_npz(out / "train.npz", X=sequences(x_train).numpy(), y=y_train.numpy())
    write_npz(out / "test.npz", X=sequences(x_test).numpy(), y=y_test.numpy())
    grid_configs = configs(grid)
    for c in dict.fromkeys((c.depth, c.heads) for c in grid_configs):
        (zoo / f"{models.architecture_name(*c)}.yaml").write_text(models.spec_text(*c))
    rows = parallel_map(_train_one, [(config, grid, zoo) for config in grid_configs], workers)
    report(rows)
    write_manifest(zoo, rows)
    return rows


def _certify_one(job: tuple[dict, dict, Path]) -> tuple[str, dict]:
    """`boundcalc certify` of one zoo model (Gaussian posterior, prior learned on half the training images)."""
    row, settings, out = job
    text = boundcalc(out, "certify", f"zoo/{row['spec']}", f"zoo/{row['file']}", "--data", "train.npz",
                     "--data-test", "test.npz", "--prior", "learned", "--objective", "fquad",
                     "--mc-samples", str(settings["mc_samples"]), "--epochs", str(settings["epochs"]), "-f", "json")
    cert = json.loads(text)
    return row["id"], {"certificate": cert["certificate"], "test_error": cert["test_error"]}


def certificates(rows: list[dict], grid: dict, out: Path, workers: int) -> dict[str, dict]:
    """Model id → its certificate and the certified (stochastic) classifier's test error, for every model (the
    first ``models`` of the grid's certify settings, if given); written to out/certificates.json."""
    jobs = [(row, grid["certify"], out) for row in rows[: grid["certify"].get("models")]]
    found = dict(parallel_map(_certify_one, jobs, workers))
    (out / "certificates.json").write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return found


def certificate_cells(found: dict[str, dict]) -> dict[str, str]:
    """Model id → 'certificate (its test error)', three decimals."""
    return {key: f"{c['certificate']:.3f} ({c['test_error']:.3f})" for key, c in found.items()}


def architecture(result: dict) -> str:
    h = result["hyperparameters"]
    return models.architecture_name(int(h["depth"]), int(h["heads"]))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def findings(summary: dict, results: list[dict], found: dict[str, dict]) -> list[str]:
    """What the tables say, computed from their cells: the range of τ, the mean log10 gap bound of each bound per
    depth and per heads, and the mean certificate against the mean measured gap."""
    out = tau_findings(results, summary)
    if not out:
        return []
    ok = [r for r in results if r["ok"]]
    for name in ("depth", "heads"):
        values = sorted({r["hyperparameters"][name] for r in ok}, key=float)
        if len(values) < 2:
            continue
        for b in summary["bounds"]:
            cells = []
            for value in values:
                logs = [r["bounds"][b["key"]]["gap_log10"] for r in ok if r["hyperparameters"][name] == value
                        and r["bounds"].get(b["key"], {}).get("gap_log10") is not None]
                if logs:
                    cells.append(f"{two(mean(logs))} at {name} {float(value):g}")
            out.append(f"- Mean log10 gap bound of `{b['key']}` by {name}: " + ", ".join(cells) + ".")
    certified = [found[r["id"]]["certificate"] for r in ok if r["id"] in found]
    if certified:
        out.append(f"- The learned-prior certificates bound the test error of a stochastic network by "
                   f"{min(certified):.3f} to {max(certified):.3f} (mean {mean(certified):.3f}); the measured "
                   f"test errors of the checkpoints are {gap_cell(min(r['test_error'] for r in ok))} to "
                   f"{gap_cell(max(r['test_error'] for r in ok))}.")
    return out


def settings_line(grid: dict) -> str:
    cert = grid["certify"]
    return (f"Run: {len(configs(grid))} models, specs written by models.py, {TRAIN_SIZE} training images (split seed "
            f"{SPLIT_SEED}) as {SEQUENCE[0]} tokens of {SEQUENCE[1]} pixels, width {models.WIDTH}, MLP width "
            f"{models.HIDDEN}, {training_phrase(grid, len(configs(grid)))}; certificates: `boundcalc certify --prior "
            f"learned --objective fquad` ({cert['mc_samples']} Monte-Carlo samples, {cert['epochs']} epochs, δ = 0.05, "
            "the bound on the half of the training images the prior did not see; the column shows the certificate "
            "and, in brackets, the stochastic network's held-out error). One CPU thread per process, torch "
            f"deterministic algorithms. {library_versions(matplotlib=False)}.")


def results_markdown(grid: dict, summary: dict, results: list[dict], found: dict[str, dict]) -> str:
    parts = [[settings_line(grid)], findings(summary, results, found), ranking_table(summary, LABELS, BIASES),
             not_applicable_rows(results, architecture),
             models_table(summary, results, {CERTIFICATE: certificate_cells(found)})]
    return "\n\n".join("\n".join(part) for part in parts if part) + "\n"


def parse_args():
    return study_arguments(__doc__.splitlines()[0], COMMITTED, DEFAULT_OUT, "2 models, 4 epochs", workers="processes for training, zoo evaluate and certify")


def main() -> None:
    args = parse_args()
    grid = TINY if args.tiny else FULL
    started = time.perf_counter()
    deterministic_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = build_zoo(args.out, grid, args.workers)
    trained = time.perf_counter()
    summary = json.loads(boundcalc(args.out, "zoo", "evaluate", "zoo", "--data", "train.npz", "--biases", "keep",
                                   "--workers", str(args.workers), "--out", "results", "--plots", "plots",
                                   "--margin-percentile", str(grid["margin_percentile"]), "-f", "json"))
    results = json.loads((args.out / "results" / "results.json").read_text())
    evaluated = time.perf_counter()
    found = certificates(rows, grid, args.out, args.workers)
    tables = results_markdown(grid, summary, results, found)
    (args.out / "results.md").write_text(tables)
    print(tables)
    if args.out == COMMITTED:
        update_readme(HERE / "README.md", {"results": tables})
        print(f"updated {HERE / 'README.md'} and {COMMITTED}")
    elif not args.tiny:
        print(comparison_with_committed(COMMITTED, args.out, UNCOMMITTED))
    done = time.perf_counter()
    print(f"took {done - started:.0f} s of wall time: training {trained - started:.0f} s, zoo evaluate "
          f"{evaluated - trained:.0f} s, certify {done - evaluated:.0f} s")


if __name__ == "__main__":
    main()
