"""The printers behind ``str(bound)`` ("text") and ``bound._repr_latex_()`` ("latex"): boundcalc.render installs them
when it is imported, so the math never imports rendering (sympy's ``Basic.__str__`` → ``sympy.printing`` idea).
This module imports nothing, so that installing them costs the render package nothing."""
from __future__ import annotations

import importlib
from collections.abc import Callable

PRINTERS: dict[str, Callable] = {}
RENDER_PACKAGE = "boundcalc.render"


def printer(kind: str) -> Callable:
    """The installed printer ``kind``; importing the render package installs them on first use."""
    if kind not in PRINTERS:
        importlib.import_module(RENDER_PACKAGE)
    return PRINTERS[kind]
