"""Snapshot every bundled spec's output in every format, to check that a change keeps them byte-identical.

    python tests/golden_outputs.py write DIR [--root SRC]   # one file per command, from the boundcalc in SRC
    python tests/golden_outputs.py diff DIR                  # compare this checkout's outputs with DIR

Make the "before" snapshot from a commit without a worktree:
    git archive 2f661a1 | tar -x -C /tmp/base && python tests/golden_outputs.py write /tmp/before --root /tmp/base
Commands: derive (text, json, latex, markdown; tight and as_printed; both gap forms for text), compare (text,
json, markdown, latex), bounds show pinto2024_tight --spec (text, json) and check. Run in-process through
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


def run_all(root: Path) -> dict[str, str]:
    os.environ.pop("COLUMNS", None)
    sys.path.insert(0, str(root))
    from typer.testing import CliRunner

    from boundcalc.cli import app

    runner = CliRunner()
    results = {}
    for key, args in commands(ROOT / "specs").items():
        result = runner.invoke(app, args)
        error = "" if result.exception is None or isinstance(result.exception, SystemExit) \
            else f"exception: {type(result.exception).__name__}: {result.exception}\n"
        results[key] = f"exit {result.exit_code}\n{error}{result.output}"
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "diff"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree whose boundcalc is run")
    args = parser.parse_args()
    results = run_all(args.root.resolve())
    if args.action == "write":
        args.folder.mkdir(parents=True, exist_ok=True)
        for key, text in results.items():
            (args.folder / f"{key}.txt").write_text(text, encoding="utf-8")
        print(f"wrote {len(results)} outputs to {args.folder}")
        return 0
    changed = 0
    for key, text in results.items():
        before = (args.folder / f"{key}.txt").read_text(encoding="utf-8")
        if before != text:
            changed += 1
            print(f"CHANGED {key}")
            sys.stdout.writelines(list(difflib.unified_diff(before.splitlines(True), text.splitlines(True),
                                                            "before", "after", n=1))[:40])
    print(f"{len(results) - changed} of {len(results)} outputs identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
