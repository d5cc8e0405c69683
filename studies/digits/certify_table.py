"""The digits study's certificate table: per model, `boundcalc certify` (Gaussian posterior, learned prior on
half the training images), the best norm-based test-error bound of `boundcalc evaluate`, and the measured test
error. Trains the study's zoo (training.py, the full grid) into --out first.

    python studies/digits/certify_table.py --out /tmp/cert [--models 4] [--mc-samples 2000] [--epochs 100]
    python studies/digits/certify_table.py --out /tmp/cert --readme     # all 26, into the README's section

Writes certify.md into --out and prints it; with --readme (all models only) also puts it between the
certificates markers of studies/digits/README.md. With --models N only the first N models of the grid are
certified (the full 26 take about 26 × the time of one certificate).
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

from run import FULL  # noqa: E402  (first: it pins one thread before torch is imported)
from studylib import boundcalc_here, update_readme  # noqa: E402

import torch  # noqa: E402
from training import build_zoo, deterministic_torch  # noqa: E402


def best_norm_bound(evaluation: dict) -> tuple[float | None, str]:
    """The smallest test-error bound among the bounds that are not order-only (the key that gives it)."""
    rows = [(b["test_error_bound"], b["key"]) for b in evaluation["bounds"]
            if b.get("test_error_bound") is not None and b["status"] != "order"]
    return min(rows) if rows else (None, "—")


def cert_cell(value: float) -> str:
    """Three decimals, or the digits that keep a value below 1 from showing as 1.000 (it is not vacuous, barely)."""
    digits = 3
    while f"{value:.{digits}f}" == f"{1:.{digits}f}" and value < 1 and digits < 12:
        digits += 1
    return f"{value:.{digits}f}"


def summary_line(what: str, rows: list[dict]) -> str:
    """What one certificate column shows, from its own rows: how many are non-vacuous, their range, and whether
    each lies above the certified network's test error."""
    certs = [r["certificate"] for r in rows]
    above = sum(r["certificate"] >= r["test_error"] for r in rows)
    return (f"{what}: {sum(c < 1 for c in certs)} of {len(certs)} certificates are non-vacuous (< 1), from "
            f"{cert_cell(min(certs))} to {cert_cell(max(certs))}; {above} of {len(certs)} lie above the certified network's "
            "test error.")


def certify(out: Path, spec: str, ckpt: str, *args: str) -> dict:
    return json.loads(boundcalc_here("certify", spec, ckpt, "--data", str(out / "train.npz"), "--data-test",
                                     str(out / "test.npz"), "--objective", "fquad", *args, "-f", "json"))


def table(out: Path, rows: list[dict], mc: int, epochs: int) -> str:
    lines = ["### Certificates against norm-based bounds (`boundcalc certify`)", "",
             f"Gaussian posteriors, δ = 0.05, {mc} Monte-Carlo samples, {epochs} epochs, seed 0, two priors:",
             "- *learned*: the prior mean is trained on the first half of the 500 training images and the bound uses "
             "the other 250; the posterior starts at the prior mean, not at the checkpoint (which has seen the bound "
             "samples; docs/references.md §11.3), so it certifies a stochastic network trained by certify, and "
             "models of the same width and depth get the same certificate whatever their weight decay or rank;",
             "- *at init*: the data-free prior N(w₀, σ_P² I) at the model's own initialisation w₀ (regenerated from "
             "its seed) and `--fit sigma`: it certifies a noisy copy of the checkpoint itself, with all 500 images.",
             "",
             "Each certificate is for its stochastic network, whose test error is shown beside it; the norm-based "
             "bound is the best non-order test-error bound of `boundcalc evaluate` for the checkpoint.", "",
             "| model | learned prior | its test error | prior at init | its test error | best norm-based bound "
             "(key) | checkpoint test error |", "|---|---|---|---|---|---|---|"]
    zoo = out / "zoo"
    learned, at_init, bounds = [], [], []
    for r in rows:
        spec, ckpt = str(zoo / r["spec"]), str(zoo / r["file"])
        evaluation = json.loads(boundcalc_here("evaluate", spec, ckpt, "--data", str(out / "train.npz"), "-f", "json"))
        bound, key = best_norm_bound(evaluation)
        first = certify(out, spec, ckpt, "--prior", "learned", "--mc-samples", str(mc), "--epochs", str(epochs))
        second = certify(out, spec, ckpt, "--prior", "init", "--init", str(zoo / init_name(r["id"])), "--fit",
                         "sigma", "--mc-samples", str(mc), "--epochs", str(epochs))
        shown = "—" if bound is None else f"{bound:.3g} ({key})"
        lines.append(f"| {r['id']} | {cert_cell(first['certificate'])} | {first['test_error']:.3f} | "
                     f"{cert_cell(second['certificate'])} | {second['test_error']:.3f} | {shown} | "
                     f"{float(r['test_error']):.3f} |")
        print(lines[-1], flush=True)
        learned.append(first)
        at_init.append(second)
        bounds += [] if bound is None else [bound]
    found = [summary_line("Learned prior", learned), summary_line("Prior at init", at_init)]
    if bounds:
        found.append(f"The best norm-based test-error bound is {min(bounds):.3g} to {max(bounds):.3g}.")
    lines[2:2] = [" ".join(found), ""]
    return "\n".join(lines) + "\n"


def init_name(model_id: str) -> str:
    return f"{model_id}.init.safetensors"


def write_inits(zoo: Path) -> None:
    """Each model's initial weights, as training.py draws them (seed n, then the network), in the spec's names."""
    from safetensors.torch import save_file

    from training import configs, make_net, state_for_spec

    for config in configs(FULL):
        torch.manual_seed(config.seed)
        save_file(state_for_spec(make_net(config.width, config.depth, config.rank)), zoo / init_name(config.id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", type=int, default=None, help="certify only the first N models")
    parser.add_argument("--mc-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--readme", action="store_true", help="put the table into the README (all models only)")
    args = parser.parse_args()
    if args.readme and args.models is not None:
        parser.error("--readme certifies every model of the grid; drop --models")
    deterministic_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "zoo" / "models.csv").is_file():
        build_zoo(args.out, FULL, workers=2)
    _write_test_split(args.out)
    write_inits(args.out / "zoo")
    with open(args.out / "zoo" / "models.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[: args.models]
    text = table(args.out, rows, args.mc_samples, args.epochs)
    (args.out / "certify.md").write_text(text)
    print(text)
    if args.readme:
        update_readme(HERE / "README.md", {"certificates": text}, link_prefix="")
        print(f"updated {HERE / 'README.md'}")


def _write_test_split(out: Path) -> None:
    """The held-out images of the study's split, as test.npz (training.py saves only the training images)."""
    from training import split, write_npz

    _, _, x_test, y_test = split()
    write_npz(out / "test.npz", X=x_test.numpy(), y=y_test.numpy())


if __name__ == "__main__":
    main()
