"""The progress bar of ``boundcalc measure``: over bytes of tensor data, on stderr (never in the output), for
checkpoints of more than ``BYTES_BAR_MIN`` bytes; smaller ones measure in about a second and get none (nor
the import of rich's progress module)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from boundcalc.render.escape import one_line

#: checkpoints with more tensor data than this get a progress bar
BYTES_BAR_MIN = 200 * 2**20

Tracker = Callable[[int, int, str], None]


def _silent(done: int, total: int, name: str) -> None:
    return None


@contextmanager
def bytes_progress(total_bytes: int, description: str = "measuring") -> Iterator[Tracker]:
    """A tracker ``(done_bytes, total_bytes, tensor_name)`` drawing a transient bar with bytes done, rate and
    time left on stderr when ``total_bytes`` exceeds BYTES_BAR_MIN; a silent one otherwise."""
    if total_bytes <= BYTES_BAR_MIN:
        yield _silent
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[name]}", markup=False),
                        console=Console(stderr=True, markup=False, emoji=False), transient=True)
    with progress:
        task = progress.add_task(description, total=total_bytes, name="")

        def update(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, name=one_line(name))

        yield update
