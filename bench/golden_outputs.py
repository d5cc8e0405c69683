"""Snapshot every bundled spec's output in every format, to check that a change keeps them byte-identical.

    python bench/golden_outputs.py write DIR [--root SRC]   # one file per command, from the boundcalc in SRC
    python bench/golden_outputs.py diff DIR                  # compare this checkout's outputs with DIR
    python bench/golden_outputs.py checkpoints CKPT          # train the digits models once (reuse for both runs)
    ... write/diff DIR --checkpoints CKPT                    # also evaluate and zoo evaluate on them

Make the "before" snapshot from a commit without a worktree:
    git archive 2f661a1 | tar -x -C /tmp/base && python bench/golden_outputs.py write /tmp/before --root /tmp/base
Commands: derive (text, json, latex, markdown; tight and as_printed; both gap forms for text), compare (text,
json, markdown, latex), bounds show pinto2024_tight --spec (text, json) and check; with --checkpoints, evaluate
(text, json, markdown) of the digits MLP, CNN and low-rank MLP and zoo evaluate (json, with its result files). Run in-process through
typer's CliRunner (no terminal: the 160-column pipe width), each output saved with its exit code.
"""
from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(specs: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in sorted(specs.glob("*.yaml")):
        name, path = spec.stem, str(spec)
        for rules in ("tight", "as_printed"):
            for fmt in ("text", "json", "latex", "markdown"):
                out[f"derive-{name}-{rules}-{fmt}"] = ["derive", path, "--rules", rules, "--format", fmt]
        out[f"derive-{name}-gap-printed"] = ["derive", path, "--gap", "printed"]
        for fmt in ("text", "json", "markdown", "latex"):
            out[f"compare-{name}-{fmt}"] = ["compare", path, "--format", fmt]
        for fmt in ("text", "json"):
            out[f"bounds-show-{name}-{fmt}"] = ["bounds", "show", "pinto2024_tight", "--spec", path, "-f", fmt]
        out[f"check-{name}"] = ["check", path]
    return out


def evaluate_commands(ckpt: Path, out: Path) -> dict[str, list[str]]:
    """evaluate and zoo evaluate on the checkpoints of :func:`make_checkpoints` (``out``: the zoo's result folder)."""
    specs = ROOT / "specs"
    data = ["--data", str(ckpt / "train.npz"), "--data-test", str(ckpt / "test.npz")]
    runs = {
        "mlp": [str(specs / "digits_mlp.yaml"), str(ckpt / "mlp.safetensors"), *data],
        "mlp-init": [str(specs / "digits_mlp.yaml"), str(ckpt / "mlp.safetensors"), *data,
                     "--init", str(ckpt / "mlp_init.safetensors")],
        "mlp-drop": [str(specs / "digits_mlp.yaml"), str(ckpt / "mlp.safetensors"), *data, "--biases", "drop"],
        "cnn": [str(specs / "digits_cnn.yaml"), str(ckpt / "cnn.safetensors"), *data],
        "cnn-power": [str(specs / "digits_cnn.yaml"), str(ckpt / "cnn.safetensors"), *data, "--conv-norm", "power"],
        "lowrank": [str(specs / "lowrank_mlp.yaml"), str(ckpt / "mlp.safetensors"), "--data", str(ckpt / "train.npz"),
                    "--biases", "drop"],
        "nodata": [str(specs / "digits_mlp.yaml"), str(ckpt / "mlp.safetensors"), "--set", "m=1200",
                   "--set", "X_F=100", "--set", "gamma=1"],
    }
    out_cmds = {}
    for name, args in runs.items():
        for fmt in ("text", "json", "markdown"):
            out_cmds[f"evaluate-{name}-{fmt}"] = ["evaluate", *args, "--format", fmt]
    out_cmds["zoo-evaluate-json"] = ["zoo", "evaluate", str(ckpt / "zoo"), "--spec", str(specs / "digits_mlp.yaml"),
                                     "--data", str(ckpt / "train.npz"), "--out", str(out), "--format", "json"]
    return out_cmds


def make_checkpoints(folder: Path) -> None:
    """Digits split 1200/597, an MLP with biases (and its init) and a bias-free CNN, trained 60 full-batch Adam
    epochs; a zoo of the MLP and two noisy copies."""
    import json

    import numpy as np
    import torch
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    folder.mkdir(parents=True, exist_ok=True)
    d = load_digits()
    x, y = d.data / 16.0, d.target
    order = np.random.default_rng(0).permutation(len(x))
    tr, te = order[:1200], order[1200:]
    np.savez(folder / "train.npz", X=x[tr], y=y[tr])
    np.savez(folder / "test.npz", X=x[te], y=y[te])

    def fit(net):
        torch.manual_seed(0)
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        xt, yt = torch.tensor(x[tr], dtype=torch.float32), torch.tensor(y[tr])
        for _ in range(60):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
        return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 10))
    save_file({k: v.clone().contiguous() for k, v in mlp.state_dict().items()}, folder / "mlp_init.safetensors")
    weights = fit(mlp)
    save_file(weights, folder / "mlp.safetensors")
    cnn = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),
                              torch.nn.ReLU(), torch.nn.AvgPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(64, 10, bias=False))
    save_file(fit(cnn), folder / "cnn.safetensors")
    zoo = folder / "zoo"
    zoo.mkdir(exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for i, noise in enumerate((0.0, 0.02, 0.05)):
        save_file({k: (v + noise * torch.randn(v.shape, generator=gen)).contiguous() for k, v in weights.items()},
                  zoo / f"m{i}.safetensors")
        rows.append({"id": f"m{i}", "file": f"m{i}.safetensors", "noise": noise, "train_error": 0.01 * i,
                     "test_error": 0.05 + 0.02 * i})
    (zoo / "models.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_all(root: Path, checkpoints: Path | None = None) -> dict[str, str]:
    os.environ.pop("COLUMNS", None)
    sys.path.insert(0, str(root))
    from typer.testing import CliRunner

    from boundcalc.cli import app

    import tempfile

    runner = CliRunner()
    results = {}
    cmds = commands(ROOT / "specs")
    zoo_out = Path(tempfile.mkdtemp(prefix="golden-zoo-"))
    if checkpoints is not None:
        cmds.update(evaluate_commands(checkpoints, zoo_out))
    for key, args in cmds.items():
        result = runner.invoke(app, args)
        error = "" if result.exception is None or isinstance(result.exception, SystemExit) \
            else f"exception: {type(result.exception).__name__}: {result.exception}\n"
        results[key] = f"exit {result.exit_code}\n{error}{result.output}"
    for path in sorted(zoo_out.glob("*")):
        if path.is_file():
            results[f"zoo-file-{path.name}"] = path.read_text(encoding="utf-8")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "diff", "checkpoints"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree whose boundcalc is run")
    parser.add_argument("--checkpoints", type=Path, default=None, help="folder made by the 'checkpoints' action")
    args = parser.parse_args()
    if args.action == "checkpoints":
        make_checkpoints(args.folder)
        print(f"wrote the digits checkpoints to {args.folder}")
        return 0
    results = run_all(args.root.resolve(), args.checkpoints.resolve() if args.checkpoints else None)
    if args.action == "write":
        args.folder.mkdir(parents=True, exist_ok=True)
        for key, text in results.items():
            (args.folder / f"{key}.txt").write_text(text, encoding="utf-8")
        print(f"wrote {len(results)} outputs to {args.folder}")
        return 0
    changed, new = 0, []
    for key, text in results.items():
        stored = args.folder / f"{key}.txt"
        if not stored.is_file():                 # a spec or case added since the baseline was written
            new.append(key)
            continue
        before = stored.read_text(encoding="utf-8")
        if before != text:
            changed += 1
            print(f"CHANGED {key}")
            sys.stdout.writelines(list(difflib.unified_diff(before.splitlines(True), text.splitlines(True),
                                                            "before", "after", n=1))[:40])
    if new:
        print(f"NEW (not in the baseline): {', '.join(new)}")
    print(f"{len(results) - changed - len(new)} of {len(results) - len(new)} baseline outputs identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
