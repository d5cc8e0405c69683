"""The registry of published bounds, one module per paper, registered explicitly (duplicate keys fail).

    >>> from boundcalc.bounds import REGISTRY
    >>> REGISTRY["golowich2018"].status
    'exact'
"""
from __future__ import annotations

from boundcalc.bounds import (bartlett2017, galanti2023, golowich2018, gonon2024, neyshabur2015, neyshabur2018,
                              pinto2024, vc2019)
from boundcalc.bounds.base import (STATUS_LABEL, STATUS_MEANING, Applied, Citation, Formula, Inapplicable,
                                   NotApplicable, PriorBound, Requirements)
from boundcalc.bounds.network import NetworkView
from boundcalc.errors import BoundcalcError


def _register(*modules) -> dict[str, PriorBound]:
    registry: dict[str, PriorBound] = {}
    for module in modules:
        for entry in module.ENTRIES:
            if entry.key in registry:
                raise ValueError(f"duplicate bound key {entry.key!r}")
            registry[entry.key] = entry
    return registry


REGISTRY: dict[str, PriorBound] = _register(pinto2024, bartlett2017, neyshabur2018, golowich2018, neyshabur2015,
                                            vc2019, galanti2023, gonon2024)


def get_entry(key: str) -> PriorBound:
    """The entry for ``key``; a BoundcalcError naming the known keys otherwise."""
    try:
        return REGISTRY[key]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(key, list(REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BoundcalcError(f"unknown bound {key!r} (known: {', '.join(REGISTRY)}).{hint}") from None


def entry_for_rules(rules: str) -> PriorBound:
    """The registry entry whose bound the rule set ``rules`` derives (``as_printed`` → pinto2024, ``tight`` →
    pinto2024_tight): ``derive`` reports that entry's status, so there is one label for one bound."""
    try:
        return pinto2024.ENTRY_FOR_RULES[rules]
    except KeyError:
        raise BoundcalcError(f"rule set {rules!r} has no registry entry "
                             f"(known: {', '.join(pinto2024.ENTRY_FOR_RULES)})") from None


__all__ = ["REGISTRY", "get_entry", "entry_for_rules", "STATUS_LABEL",
           "PriorBound", "Requirements", "Citation", "Formula", "Applied", "Inapplicable",
           "NotApplicable", "NetworkView", "STATUS_MEANING"]
