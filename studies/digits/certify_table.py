"""The digits study's certificate table: per model, `boundcalc certify` (Gaussian posterior, learned prior on
half the training images), the best norm-based test-error bound of `boundcalc evaluate`, and the measured test
error. Trains the study's zoo (training.py, the full grid) into --out first.

    python studies/digits/certify_table.py --out /tmp/cert [--models 4] [--mc-samples 2000] [--epochs 100]

Writes certify.md into --out and prints it. With --models N only the first N models of the grid are certified
(the full 26 take about 26 × the time of one certificate).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from run import FULL  # noqa: E402
from studylib import boundcalc_here  # noqa: E402
from training import build_zoo, deterministic_torch  # noqa: E402


def best_norm_bound(evaluation: dict) -> tuple[float | None, str]:
    """The smallest test-error bound among the bounds that are not order-only (the key that gives it)."""
    rows = [(b["test_error_bound"], b["key"]) for b in evaluation["bounds"]
            if b.get("test_error_bound") is not None and b["status"] != "order"]
    return min(rows) if rows else (None, "—")


def table(out: Path, rows: list[dict], mc: int, epochs: int) -> str:
    lines = ["### Certificates against norm-based bounds (`boundcalc certify`)", "",
             f"Gaussian posterior, prior learned on the first half of the 500 training images (the bound "
             f"uses the other 250), δ = 0.05, {mc} Monte-Carlo samples, {epochs} epochs, seed 0. The certificate is "
             "for the stochastic network, whose test error is shown; the norm-based bound is the best non-order "
             "test-error bound of `boundcalc evaluate` for the checkpoint.", "",
             "| model | certificate | its test error | best norm-based bound (key) | checkpoint test error |",
             "|---|---|---|---|---|"]
    zoo = out / "zoo"
    for r in rows:
        spec, ckpt = str(zoo / r["spec"]), str(zoo / r["file"])
        evaluation = json.loads(boundcalc_here("evaluate", spec, ckpt, "--data", str(out / "train.npz"), "-f", "json"))
        bound, key = best_norm_bound(evaluation)
        cert = json.loads(boundcalc_here("certify", spec, ckpt, "--data", str(out / "train.npz"), "--data-test",
                                         str(out / "test.npz"), "--prior", "learned", "--objective", "fquad",
                                         "--mc-samples", str(mc), "--epochs", str(epochs), "-f", "json"))
        shown = "—" if bound is None else f"{bound:.3g} ({key})"
        lines.append(f"| {r['id']} | {cert['certificate']:.3f} | {cert['test_error']:.3f} | {shown} | "
                     f"{float(r['test_error']):.3f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", type=int, default=None, help="certify only the first N models")
    parser.add_argument("--mc-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    deterministic_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "zoo" / "models.csv").is_file():
        build_zoo(args.out, FULL, workers=2)
    _write_test_split(args.out)
    with open(args.out / "zoo" / "models.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[: args.models]
    text = table(args.out, rows, args.mc_samples, args.epochs)
    (args.out / "certify.md").write_text(text)
    print(text)


def _write_test_split(out: Path) -> None:
    """The held-out images of the study's split, as test.npz (training.py saves only the training images)."""
    from training import split, write_npz

    _, _, x_test, y_test = split()
    write_npz(out / "test.npz", X=x_test.numpy(), y=y_test.numpy())


if __name__ == "__main__":
    main()
