"""Renderers: plain text / rich, LaTeX, Markdown, JSON. They format; they never compute.

Importing this package installs the printers behind ``str(bound)`` and ``bound._repr_latex_()``
(:data:`boundcalc.printers.PRINTERS`); each imports its module only when first used.
"""
from __future__ import annotations

from boundcalc.printers import PRINTERS


def _plain_text(bound) -> str:
    from boundcalc.render.text import plain_text

    return plain_text(bound)


def _latex(bound) -> str:
    from boundcalc.render.latex import bound_latex

    return bound_latex(bound)


PRINTERS.setdefault("text", _plain_text)
PRINTERS.setdefault("latex", _latex)
