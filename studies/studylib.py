"""What every study shares: running the boundcalc CLI (as a process, or in this process), putting generated
markdown between markers of a README, and comparing a run's files with the committed ones.

A study imports this first: it pins one thread for torch, BLAS and OpenMP (in this process and in the processes it
starts) before numpy or torch are imported, since a parallel float reduction adds in an order that depends on the
load and the studies write the same bytes on every run.
"""
from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

#: one thread everywhere (this process, its training workers and the boundcalc processes it starts)
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
os.environ.update(ONE_THREAD)

ROOT = Path(__file__).resolve().parents[1]


def boundcalc(out: Path, *args: str) -> str:
    """Run the boundcalc CLI as a process in ``out`` (so that the paths it records are relative to the output
    folder); its stdout. A failure stops the study with boundcalc's stderr."""
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, cwd=out,
                          env={**os.environ, **ONE_THREAD})
    if proc.returncode != 0:
        raise SystemExit(f"boundcalc {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def boundcalc_here(*args: str) -> str:
    """Run a boundcalc command in this process (the CLI's own code, through typer's runner): the same output
    as :func:`boundcalc`, without the 2 s that a fresh process spends importing torch and boundcalc."""
    from typer.testing import CliRunner

    from boundcalc.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exit_code != 0:
        raise SystemExit(f"boundcalc {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def update_readme(readme: Path, bodies: dict[str, str], link_prefix: str = "output/") -> None:
    """Put each generated body between its markers ``<!-- name:start -->`` … ``<!-- name:end -->`` in the
    README, with image and file links made relative to the README (``link_prefix``)."""
    text = readme.read_text()
    for name, body in bodies.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start not in text or end not in text:
            raise SystemExit(f"{readme}: no {start} … {end} markers")
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}\n{body.replace('](', '](' + link_prefix)}{end}{tail}"
    readme.write_text(text)


def comparison_with_committed(committed: Path, out: Path, uncommitted: tuple[str, ...]) -> str:
    """Whether ``out`` holds the committed output files (outside the top-level names ``uncommitted``) byte for
    byte, or which of them differ, as one sentence."""
    files = [p for p in sorted(committed.rglob("*")) if p.is_file()
             and p.relative_to(committed).parts[0] not in uncommitted]
    if not files:
        return f"written to {out}; there are no committed outputs in {committed} to compare with"
    differ = [str(p.relative_to(committed)) for p in files
              if not (out / p.relative_to(committed)).is_file()
              or not filecmp.cmp(p, out / p.relative_to(committed), shallow=False)]
    return f"written to {out}: " + ("byte for byte the committed outputs" if not differ else
                                    f"{len(differ)} files differ from the committed ones: {', '.join(differ)}")


def parallel_map(function, jobs: list, workers: int) -> list:
    """``[function(job) for job in jobs]`` on ``workers`` processes (forked where the platform can), in the
    order of ``jobs`` whichever process finished first; ``function`` must be importable by the workers."""
    if workers <= 1:
        return [function(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_all_start_methods, get_context

    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as pool:
        return list(pool.map(function, jobs))


def study_arguments(description: str, committed: Path, default_out: Path, tiny: str,
                    workers: str = "processes for training and for zoo evaluate"):
    """The command line every study takes: ``--out`` or ``--regenerate`` (into ``committed``), ``--tiny`` (the
    test's grid, described by ``tiny``; never into ``committed``) and ``--workers`` (≥ 1). ``args.out`` is
    resolved."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help=f"output folder (default {default_out})")
    where.add_argument("--regenerate", action="store_true",
                       help=f"write into {committed} and update the README (the committed outputs)")
    parser.add_argument("--tiny", action="store_true", help=f"{tiny} (the test's version)")
    parser.add_argument("--workers", type=int, default=2, help=workers)
    args = parser.parse_args()
    args.out = (committed if args.regenerate else args.out or default_out).resolve()
    if args.workers < 1:
        parser.error(f"--workers must be ≥ 1, got {args.workers}")
    if args.tiny and args.out == committed:
        parser.error("--tiny would overwrite the committed outputs of the full study; give another --out")
    return args
