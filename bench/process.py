"""One fresh process, timed and measured: wall-clock seconds and peak resident memory from GNU ``/usr/bin/time``
(``%e``, ``%M``: the kernel's ru_maxrss of that child alone; the caller's own rusage would include the
caller's memory at fork). Shared by the benchmarks that compare whole processes."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_bytes: int
    code: int
    stdout: str
    stderr: str


#: environment that gives every BLAS/OpenMP library one thread (a fair comparison on a machine others load: two
#: threads on a core held by another process wait on each other, and those waits, not the work, dominate)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_python(args: list[str], keep_stdout: bool = False, env: dict[str, str] | None = None) -> Run:
    """``python ARGS`` with this checkout first on the path (and ``env`` added to the environment)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        child = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %M", sys.executable, *args],
                               stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, cwd=ROOT)
        seconds, kib = report.read().split()[-2:]
    return Run(float(seconds), int(kib) * 1024, child.returncode,
               child.stdout.decode(errors="replace") if keep_stdout else "", child.stderr.decode(errors="replace"))


def median_range(values: list[float], digits: int = 2) -> str:
    """'median m (range lo–hi)'."""
    return f"median {statistics.median(values):.{digits}f} (range {min(values):.{digits}f}–{max(values):.{digits}f})"
