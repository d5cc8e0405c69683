"""The digits study, with one command: train a grid of ReLU MLPs on scikit-learn's digits, save them as a
boundcalc zoo, run `boundcalc zoo evaluate` and `boundcalc collapse`, and write the tables and figures.

    python studies/digits/run.py                 # the full study (about 2 minutes on 2 cores)
    python studies/digits/run.py --tiny --out D  # 4 models, 1 epoch: what the tests run

Grid: weight decay × width × depth (full-rank layers), plus variants whose hidden layers are factorized
W = U·V with a small inner dimension (saved as the product, which has rank ≤ the inner dimension).
Everything is seeded; training is minibatch Adam on the CPU.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from boundcalc.render.plots import lines  # noqa: E402

TRAIN_SIZE = 500       # a small training set, so the models differ in their generalization gap
FULL = dict(weight_decays=[0.0, 1e-4, 1e-3, 3e-3, 1e-2], widths=[32, 64], depths=[2, 3], ranks=[2, 4, 8],
            lowrank_decays=[0.0, 1e-3], epochs=60, lr=3e-3)
TINY = dict(weight_decays=[0.0, 1e-2], widths=[16], depths=[2], ranks=[2], lowrank_decays=[0.0, 1e-2], epochs=1,
            lr=3e-2)
MARKER_START, MARKER_END = "<!-- results:start -->", "<!-- results:end -->"


class Factorized(torch.nn.Module):
    """x -> U(Vx) + b: a linear layer of rank ≤ inner."""

    def __init__(self, n_in: int, n_out: int, inner: int) -> None:
        super().__init__()
        self.V = torch.nn.Linear(n_in, inner, bias=False)
        self.U = torch.nn.Linear(inner, n_out)

    def forward(self, x):
        return self.U(self.V(x))

    def weight(self) -> torch.Tensor:
        return self.U.weight @ self.V.weight


def make_net(width: int, depth: int, rank: int | None) -> torch.nn.Sequential:
    """``depth`` hidden ReLU layers of ``width``; with ``rank``, the hidden-to-hidden layers are factorized."""
    layers, n_in = [], 64
    for i in range(depth):
        factorize = rank is not None and i > 0
        layers += [Factorized(n_in, width, rank) if factorize else torch.nn.Linear(n_in, width), torch.nn.ReLU()]
        n_in = width
    layers.append(torch.nn.Linear(n_in, 10))
    return torch.nn.Sequential(*layers)


def state_for_spec(net: torch.nn.Sequential) -> dict[str, torch.Tensor]:
    """fc<i>.weight / fc<i>.bias per linear layer, factorized layers saved as their product U·V."""
    out, i = {}, 0
    for module in net:
        if isinstance(module, (torch.nn.Linear, Factorized)):
            i += 1
            weight = module.weight() if isinstance(module, Factorized) else module.weight
            bias = module.U.bias if isinstance(module, Factorized) else module.bias
            out[f"fc{i}.weight"], out[f"fc{i}.bias"] = weight.detach().contiguous(), bias.detach().contiguous()
    return out


def spec_text(width: int, depth: int) -> str:
    lines_ = [f"name: mlp_w{width}_d{depth}", f"description: digits MLP, {depth} hidden ReLU layers of width {width}",
              "data: {samples: m, dim: 64, norm: frobenius}", "layers:"]
    for i in range(depth):
        lines_ += [f"  - {{op: linear, name: fc{i + 1}, out: {width}, param: fc{i + 1}.weight}}", "  - relu"]
    lines_ += [f"  - {{op: linear, name: fc{depth + 1}, out: 10, param: fc{depth + 1}.weight}}",
               "loss: {margin: gamma, delta: delta}"]
    return "\n".join(lines_) + "\n"


def error(net, x, y) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) != y).float().mean())


def train(net, x, y, weight_decay: float, epochs: int, lr: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 32):
            batch = order[start:start + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()


def build_zoo(out: Path, grid: dict) -> tuple[Path, Path, list[dict]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    zoo = out / "zoo"
    zoo.mkdir(parents=True, exist_ok=True)
    train_npz = out / "train.npz"
    np.savez(train_npz, X=x[tr].numpy(), y=y[tr].numpy())
    configs = [(wd, w, d, None) for wd, w, d in itertools.product(grid["weight_decays"], grid["widths"], grid["depths"])]
    configs += [(wd, max(grid["widths"]), max(grid["depths"]), r)
                for wd, r in itertools.product(grid["lowrank_decays"], grid["ranks"])]
    rows = []
    for n, (wd, width, depth, rank) in enumerate(configs):
        torch.manual_seed(n)
        net = make_net(width, depth, rank)
        train(net, x[tr], y[tr], wd, grid["epochs"], grid["lr"], seed=n)
        model_id = f"wd{wd:g}_w{width}_d{depth}_r{rank or 'full'}"
        save_file(state_for_spec(net), zoo / f"{model_id}.safetensors")
        spec = zoo / f"mlp_w{width}_d{depth}.yaml"
        spec.write_text(spec_text(width, depth))
        rows.append({"id": model_id, "file": f"{model_id}.safetensors", "spec": spec.name, "weight_decay": wd,
                     "width": width, "depth": depth, "rank": rank or "full",
                     "train_error": error(net, x[tr], y[tr]), "test_error": error(net, x[te], y[te])})
        print(f"trained {model_id}: train error {rows[-1]['train_error']:.3f}, test error {rows[-1]['test_error']:.3f}")
    with open(zoo / "models.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return zoo, train_npz, rows


def boundcalc(*args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"boundcalc {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def collapse_sweep(out: Path, zoo: Path, train_npz: Path, rows: list[dict]) -> tuple[list[dict], Path]:
    """`boundcalc collapse` on the full-rank models of the largest width and depth, across weight decay."""
    width, depth = max(r["width"] for r in rows), max(r["depth"] for r in rows)
    sweep = sorted((r for r in rows if r["rank"] == "full" and r["width"] == width and r["depth"] == depth),
                   key=lambda r: r["weight_decay"])
    records = []
    for r in sweep:
        report = json.loads(boundcalc("collapse", str(zoo / r["spec"]), str(zoo / r["file"]), "--data", str(train_npz),
                                      "--weight-decay", str(r["weight_decay"]), "-f", "json"))
        hidden = report["layers"][1:-1] or report["layers"][:-1]   # weights fed by hidden features
        records.append({"weight_decay": r["weight_decay"], "layers": report["layers"],
                        "rank": float(np.mean([layer["rank"] for layer in hidden])),
                        "dist_k": float(np.mean([layer["dist_k"] for layer in hidden])),
                        "tcv": float(np.mean([layer["tcv"] for layer in hidden])),
                        "nc1": float(np.mean([layer["nc1"] for layer in hidden]))})
    figure = out / "collapse_vs_weight_decay.png"
    xs = [rec["weight_decay"] for rec in records]
    lines(xs, {"mean rank of hidden weights": [rec["rank"] for rec in records],
               "mean dist_K of hidden weights": [rec["dist_k"] for rec in records],
               "mean TCV of their inputs / 100": [rec["tcv"] / 100 for rec in records]},
          xlabel="weight decay λ", title=f"width {width}, depth {depth}: rank collapse vs λ", path=figure,
          logx=True, logy=True)
    return records, figure


def results_markdown(summary: dict, results: list[dict], records: list[dict], figure: Path) -> str:
    out = ["### Does the bound track the gap? (Kendall τ and granulated Ψ over all models)", "",
           f"{summary['evaluated']} of {summary['models']} models evaluated; C1 = C2 = 1 assumed; "
           f"γ = {summary['settings']['margin_percentile']:g}th percentile of the training margins; biases folded.",
           "", "| bound | status | τ | Ψ | ψ(weight decay) | ψ(width) | ψ(depth) | ψ(rank) | non-vacuous |",
           "|---|---|---|---|---|---|---|---|---|"]
    f = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    for b in summary["bounds"]:
        per = b["psi_by_hyperparameter"]
        nv = "—" if b["non_vacuous_fraction"] is None else f"{b['non_vacuous_fraction']:.0%}"
        out.append(f"| {b['key']} | {b['status']} | {f(b['kendall_tau'])} | {f(b['psi'])} | "
                   f"{f(per.get('weight_decay'))} | {f(per.get('width'))} | {f(per.get('depth'))} | "
                   f"{f(per.get('rank'))} | {nv} |")
    for failed in summary["failed"]:
        out.append(f"\nNot evaluated: {failed['id']}: {failed['error']}")
    out += ["", "### Rank collapse against weight decay (`boundcalc collapse`)", "",
            f"![rank, dist_K and TCV against weight decay]({figure.name})", "",
            "| λ | mean rank | mean dist_K | mean TCV | mean NC1 | dist_K·λ/TCV per layer |", "|---|---|---|---|---|---|"]
    for rec in records:
        ratios = ", ".join("—" if layer["ratio"] is None else f"{layer['ratio']:.2e}" for layer in rec["layers"])
        out.append(f"| {rec['weight_decay']:g} | {rec['rank']:.1f} | {rec['dist_k']:.3g} | {rec['tcv']:.4g} | "
                   f"{rec['nc1']:.3g} | {ratios} |")
    lowrank = [r for r in results if r["ok"] and r["hyperparameters"].get("rank") != "full"]
    if lowrank:
        keys = [b["key"] for b in summary["bounds"]]
        out += ["", "### Low-rank variants: log10 of each gap bound (lower is better)", "",
                "| model | gap | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
        reference = [r for r in results if r["ok"] and r["hyperparameters"].get("rank") == "full"
                     and r["hyperparameters"].get("width") == lowrank[0]["hyperparameters"].get("width")
                     and r["hyperparameters"].get("depth") == lowrank[0]["hyperparameters"].get("depth")]
        for r in reference[:2] + lowrank:
            cells = [f"{r['bounds'][k]['gap_log10']:.2f}" if r["bounds"].get(k, {}).get("gap_log10") is not None
                     else "—" for k in keys]
            out.append(f"| {r['id']} | {r['gap']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "output")
    parser.add_argument("--tiny", action="store_true", help="4 models, 1 epoch (the test's version)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    grid = TINY if args.tiny else FULL
    args.out.mkdir(parents=True, exist_ok=True)
    zoo, train_npz, rows = build_zoo(args.out, grid)
    percentile = "80" if args.tiny else "10"     # one epoch leaves about half the training points misclassified
    summary = json.loads(boundcalc("zoo", "evaluate", str(zoo), "--data", str(train_npz), "--workers", str(args.workers),
                                   "--out", str(args.out / "results"), "--plots", str(args.out / "plots"),
                                   "--margin-percentile", percentile, "-f", "json"))
    results = json.loads((args.out / "results" / "results.json").read_text())
    records, figure = collapse_sweep(args.out, zoo, train_npz, rows)
    markdown = results_markdown(summary, results, records, figure)
    (args.out / "results.md").write_text(markdown)
    if not args.tiny and args.out.resolve() == (HERE / "output").resolve():
        readme = HERE / "README.md"
        text = readme.read_text()
        head, _, rest = text.partition(MARKER_START)
        _, _, tail = rest.partition(MARKER_END)
        readme.write_text(f"{head}{MARKER_START}\n{markdown.replace('](', '](output/')}{MARKER_END}{tail}")
    print(markdown)


if __name__ == "__main__":
    main()
