"""The digits study, with one command: train a grid of ReLU MLPs on scikit-learn's digits, save them as a
boundcalc zoo, run `boundcalc zoo evaluate` and `boundcalc collapse`, and write the tables, the findings and
the figures.

    python studies/digits/run.py                 # the full study, into studies/digits/rerun/ (git-ignored)
    python studies/digits/run.py --regenerate    # the same into studies/digits/output/ and the README (committed)
    python studies/digits/run.py --tiny --out D  # 4 models, 1 epoch: what the tests run

Grid: weight decay × width × depth (full-rank layers), plus variants whose hidden layers are factorized
W = U·V with a small inner dimension (saved as the product, which has rank ≤ the inner dimension).

Reproducible: fixed seeds, one thread per process for torch, BLAS and OpenMP, torch's deterministic
algorithms, results in grid order whichever worker computed them, relative paths and no timestamps in the
files. Two runs with the same library versions write the same bytes; a full run into a folder other than
output/ ends by comparing its files with the committed ones.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
#: studylib pins one thread for torch, BLAS and OpenMP: imported before numpy and torch
from studylib import (ROOT, boundcalc, boundcalc_here, comparison_with_committed,  # noqa: E402
                      study_arguments, update_readme)

import json  # noqa: E402
import time  # noqa: E402

HERE = Path(__file__).resolve().parent
COMMITTED = HERE / "output"        # the outputs the README shows (regenerated with --regenerate)
DEFAULT_OUT = HERE / "rerun"       # where a plain run writes (git-ignored)
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from findings import findings_markdown  # noqa: E402
from tables import results_markdown  # noqa: E402
from training import (SPLIT_SEED, TRAIN_SIZE, build_zoo, configs, deterministic_torch, library_versions,  # noqa: E402
                      training_phrase)

FULL = dict(weight_decays=[0.0, 1e-4, 1e-3, 3e-3, 1e-2], widths=[32, 64], depths=[2, 3], ranks=[2, 4, 8],
            lowrank_decays=[0.0, 1e-3], epochs=60, lr=3e-3)
TINY = dict(weight_decays=[0.0, 1e-2], widths=[16], depths=[2], ranks=[2], lowrank_decays=[0.0, 1e-2], epochs=1,
            lr=3e-2)
#: outputs that are not committed (large, and only inputs of the evaluation)
UNCOMMITTED = ("zoo", "train.npz")


def collapse_sweep(out: Path, rows: list[dict]) -> list[dict]:
    """`boundcalc collapse` on the full-rank models of the largest width and depth, in the order of λ."""
    width, depth = max(r["width"] for r in rows), max(r["depth"] for r in rows)
    sweep = sorted((r for r in rows if r["rank"] == "full" and r["width"] == width and r["depth"] == depth),
                   key=lambda r: r["weight_decay"])
    records = []
    for r in sweep:
        report = json.loads(boundcalc_here("collapse", str(out / "zoo" / r["spec"]), str(out / "zoo" / r["file"]),
                                           "--data", str(out / "train.npz"), "--weight-decay", repr(r["weight_decay"]),
                                           "-f", "json"))
        hidden = report["layers"][1:-1] or report["layers"][:-1]   # weights fed by hidden features
        records.append({"weight_decay": r["weight_decay"], "layers": report["layers"],
                        **{key: float(np.mean([layer[key] for layer in hidden]))
                           for key in ("rank", "dist_k", "tcv", "nc1")}})
    return records


def collapse_figure(out: Path, records: list[dict], rows: list[dict]) -> Path:
    from boundcalc.render.plots import lines

    width, depth = max(r["width"] for r in rows), max(r["depth"] for r in rows)
    figure = out / "collapse_vs_weight_decay.png"
    lines([rec["weight_decay"] for rec in records],
          {"mean rank of hidden weights": [rec["rank"] for rec in records],
           "mean dist_K of hidden weights": [rec["dist_k"] for rec in records],
           "mean TCV of their inputs / 100": [rec["tcv"] / 100 for rec in records]},
          xlabel="weight decay λ", title=f"width {width}, depth {depth}: rank collapse vs λ", path=figure,
          logx=True, logy=True)
    return figure


def settings_line(grid: dict) -> str:
    """How the models were made, with the library versions (another version may change the last digits)."""
    return (f"Run: {len(configs(grid))} models, {TRAIN_SIZE} training images (split seed {SPLIT_SEED}), "
            f"{training_phrase(grid, len(configs(grid)))}; one CPU thread per process, torch deterministic "
            f"algorithms. {library_versions()}.")


def parse_args():
    return study_arguments(__doc__.splitlines()[0], COMMITTED, DEFAULT_OUT, "4 models, 1 epoch")


def main() -> None:
    args = parse_args()
    grid = TINY if args.tiny else FULL
    clock = [("start", time.perf_counter())]
    deterministic_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    _, _, rows = build_zoo(args.out, grid, args.workers)
    clock.append(("training", time.perf_counter()))
    percentile = "80" if args.tiny else "10"     # one epoch leaves about half the training points misclassified
    summary = json.loads(boundcalc(args.out, "zoo", "evaluate", "zoo", "--data", "train.npz",
                                   "--workers", str(args.workers), "--out", "results", "--plots", "plots",
                                   "--margin-percentile", percentile, "-f", "json"))
    results = json.loads((args.out / "results" / "results.json").read_text())
    clock.append(("zoo evaluate", time.perf_counter()))
    records = collapse_sweep(args.out, rows)
    figure = collapse_figure(args.out, records, rows)
    clock.append(("collapse", time.perf_counter()))
    tables = results_markdown(summary, results, records, figure.name, settings_line(grid))
    findings = findings_markdown(summary, results, records)
    (args.out / "results.md").write_text(tables)
    (args.out / "findings.md").write_text(findings)
    print(findings + "\n" + tables)
    if args.out == COMMITTED:
        update_readme(HERE / "README.md", {"results": tables, "findings": findings})
        print(f"updated {HERE / 'README.md'} and {COMMITTED}")
    elif not args.tiny:
        print(comparison_with_committed(COMMITTED, args.out, UNCOMMITTED))
    clock.append(("tables", time.perf_counter()))
    print(f"took {clock[-1][1] - clock[0][1]:.0f} s of wall time: "
          + ", ".join(f"{name} {t - before:.0f} s" for (_, before), (name, t) in zip(clock, clock[1:])))


if __name__ == "__main__":
    main()
