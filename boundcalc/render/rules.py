"""Rendering of ``boundcalc rules``: each rule set, the op kinds it has a rule for, and what it assumes."""
from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from boundcalc.calculus.rules import RuleSet


def rules_table(rule_sets: Iterable[RuleSet]) -> Table:
    table = Table(title="Rule sets")
    for column in ("name", "ops", "description"):
        table.add_column(column)
    for ruleset in rule_sets:
        table.add_row(ruleset.name, ", ".join(sorted(ruleset.covered_ops())), ruleset.description)
    return table
