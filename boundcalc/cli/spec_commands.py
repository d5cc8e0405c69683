"""Commands on a spec alone: derive, check, compare, rules."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError
from boundcalc.cli.common import app, Format, RulesName, GapForm, _console, _parse_values


@app.command()
def derive(
    spec: Annotated[Path, typer.Argument(help="YAML spec of the architecture (see docs/spec.md).")],
    rules: Annotated[RulesName, typer.Option("--rules", "-r", help="Rule set: 'tight' (best valid rule per "
                                             "op) or 'as_printed' (Pinto et al. eq. (4) exactly).")] = RulesName.tight,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    gap: Annotated[GapForm, typer.Option("--gap", help="Constant of the complexity-to-gap step: 'derived' "
                                         "(2√π·𝓛, from the paper's appendix) or 'printed' (√(𝓛π), Thm 2 as "
                                         "printed).")] = GapForm.derived,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol to a number, e.g. --set L=4 (a repeat "
                                            "count given a number is unrolled). Repeatable.")] = [],
) -> None:
    """Derive the Gaussian-complexity and generalization-gap bounds of SPEC, term by term."""
    from boundcalc.derivation import derive as derive_bound
    from boundcalc.spec.assign import check_used
    from boundcalc.spec.load import load_spec

    try:
        loaded = load_spec(spec, values=_parse_values(set_))
        bound = derive_bound(loaded, rules=rules.value, gap=gap.value)
        check_used(loaded)
        _emit(bound, format, str(spec))
    except BoundcalcError as err:
        _fail(str(err))


def _emit(bound, format: Format, spec_file: str) -> None:
    from boundcalc.render import json_, latex, markdown, text

    if format is Format.json:
        typer.echo(json_.to_json(bound, spec_file))
    elif format is Format.latex:
        typer.echo(latex.latex_document(bound), nl=False)
    elif format is Format.markdown:
        typer.echo(markdown.to_markdown(bound), nl=False)
    else:
        text.print_bound(bound, _console(), spec_file)


@app.command()
def check(
    spec: Annotated[Path, typer.Argument(help="YAML spec to validate.")],
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol to a number, e.g. --set L=4.")] = [],
) -> None:
    """Validate SPEC and print its layer graph (names, ops, output shapes)."""
    from boundcalc.graph.build import build_graph
    from boundcalc.spec.assign import check_used
    from boundcalc.spec.load import load_spec

    try:
        loaded = load_spec(spec, values=_parse_values(set_))
        graph = build_graph(loaded)
        check_used(loaded)
    except BoundcalcError as err:
        _fail(str(err))
    from boundcalc.render.check import graph_table

    _console().print(graph_table(loaded.name, graph))


class RegimeName(str, Enum):
    none = "none"
    uniform = "uniform"


@app.command()
def compare(
    spec: Annotated[Path, typer.Argument(help="YAML spec of the architecture.")],
    bounds: Annotated[Optional[str], typer.Option("--bounds", "-b", help="Comma-separated bound keys "
                                                  "(default: every registered bound; see 'boundcalc bounds list').")] = None,
    regime: Annotated[RegimeName, typer.Option("--regime", help="'uniform': every ‖W_i‖₂ ≤ B, rank ≤ r, width h, "
                                               "‖x‖ ≤ R, with the standard norm inequalities (all listed); "
                                               "'none': the spec as written.")] = RegimeName.none,
    vs: Annotated[Optional[str], typer.Option("--vs", help="Reference bound for the ratio and crossover columns "
                                              "(default pinto2024_tight).")] = None,
    orders: Annotated[bool, typer.Option("--orders", help="Show the leading order of each factor with "
                                         "constants and logarithms dropped.")] = False,
    solve_for: Annotated[Optional[str], typer.Option("--solve-for", help="Variable for the crossover "
                                                     "conditions (default r, then L, h, m).")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol to a number, e.g. --set L=4.")] = [],
) -> None:
    """Compare every registered bound on SPEC: factor after Π‖W_i‖₂·‖X‖_F/(γm), leading orders, crossovers."""
    from boundcalc.compare.table import compare as run_compare
    from boundcalc.spec.assign import check_used
    from boundcalc.spec.load import load_spec
    from boundcalc.render import compare as view

    keys = [k.strip() for k in bounds.split(",") if k.strip()] if bounds else None
    try:
        loaded = load_spec(spec, values=_parse_values(set_))
        result = run_compare(loaded, keys=keys, regime=regime.value, vs=vs, orders_only=orders,
                             solve_for=solve_for)
        check_used(loaded)
    except BoundcalcError as err:
        _fail(str(err))
    if format is Format.json:
        typer.echo(view.comparison_json(result))
    elif format is Format.markdown:
        typer.echo(view.comparison_markdown(result), nl=False)
    elif format is Format.latex:
        typer.echo(view.comparison_latex(result), nl=False)
    else:
        _console().print(view.rich_comparison(result))



@app.command("rules")
def list_rules() -> None:
    """List the rule sets, the op kinds each has a rule for, and what each one assumes."""
    from boundcalc.calculus.rules import RULE_SETS
    from boundcalc.render.rules import rules_table

    _console().print(rules_table(RULE_SETS.values()))
