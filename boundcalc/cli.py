"""The ``boundcalc`` command line. Commands are thin: the library raises, this module prints.

Bad input (spec, values, options) prints one line ``error: …`` on stderr and exits with code 2.
"""
from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from boundcalc import __version__
from boundcalc.calculus.rules import RULE_SETS
from boundcalc.derive import derive as derive_bound
from boundcalc.errors import BoundcalcError
from boundcalc.graph.build import build_graph
from boundcalc.spec.load import load_spec

app = typer.Typer(
    help="boundcalc: turn a network architecture (YAML spec) into a generalization bound.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(str, Enum):
    text = "text"
    latex = "latex"
    markdown = "markdown"
    json = "json"


class RulesName(str, Enum):
    tight = "tight"
    as_printed = "as_printed"


class GapForm(str, Enum):
    derived = "derived"
    printed = "printed"


def _fail(message: str) -> None:
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"error: {message}", markup=False)
    raise typer.Exit(code=2)


def _parse_values(items: list[str]) -> dict[str, float | int]:
    values: dict[str, float | int] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            _fail(f"--set expects NAME=NUMBER, got {item!r}")
        try:
            number: float | int = int(raw)
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                _fail(f"--set {name}: {raw!r} is not a number")
        if isinstance(number, float) and not math.isfinite(number):
            _fail(f"--set {name}: {raw!r} is not finite")
        values[name] = number
    return values


def _version(value: bool) -> None:
    if value:
        typer.echo(f"boundcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Derive, compare and evaluate generalization bounds for neural networks."""


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
    try:
        loaded = load_spec(spec, values=_parse_values(set_))
        bound = derive_bound(loaded, rules=rules.value, gap=gap.value)
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
        text.print_bound(bound, Console(highlight=False), spec_file)


@app.command()
def check(
    spec: Annotated[Path, typer.Argument(help="YAML spec to validate.")],
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol to a number, e.g. --set L=4.")] = [],
) -> None:
    """Validate SPEC and print its layer graph (names, ops, output shapes)."""
    try:
        loaded = load_spec(spec, values=_parse_values(set_))
        graph = build_graph(loaded)
    except BoundcalcError as err:
        _fail(str(err))
    table = Table(title=f"{loaded.name}: {graph.number_of_nodes() - 1} layers, output {graph.graph['output']}")
    for col in ("layer", "op", "inputs", "output shape"):
        table.add_column(col)
    for name in graph.nodes:
        attrs = graph.nodes[name]
        preds = sorted(graph.predecessors(name), key=lambda u: graph.edges[u, name]["slot"])
        shape = "(" + ", ".join(map(str, attrs["shape"])) + ")"
        table.add_row(name, attrs["op"], ", ".join(preds), shape)
    Console(highlight=False).print(table)


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
    from boundcalc.render import compare as view

    keys = [k.strip() for k in bounds.split(",") if k.strip()] if bounds else None
    try:
        loaded = load_spec(spec, values=_parse_values(set_))
        result = run_compare(loaded, keys=keys, regime=regime.value, vs=vs, orders_only=orders,
                             solve_for=solve_for)
    except BoundcalcError as err:
        _fail(str(err))
    if format is Format.json:
        typer.echo(view.comparison_json(result))
    elif format is Format.markdown:
        typer.echo(view.comparison_markdown(result), nl=False)
    elif format is Format.latex:
        typer.echo(view.comparison_latex(result), nl=False)
    else:
        view.print_group(view.rich_comparison(result))


bounds_app = typer.Typer(help="The registry of published bounds.", no_args_is_help=True)
app.add_typer(bounds_app, name="bounds")


class ListFormat(str, Enum):
    text = "text"
    json = "json"


@bounds_app.command("list")
def bounds_list(
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
) -> None:
    """List the registered bounds with status and citation."""
    from boundcalc.bounds import REGISTRY
    from boundcalc.render import compare as view

    entries = list(REGISTRY.values())
    if format is ListFormat.json:
        typer.echo(json.dumps(view.registry_dicts(entries), indent=2, ensure_ascii=False))
    else:
        Console(highlight=False).print(view.registry_table(entries))


@bounds_app.command("show")
def bounds_show(
    key: Annotated[str, typer.Argument(help="Bound key, e.g. bartlett2017.")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Build the formula on this spec (default: a "
                                                 "generic 3-layer MLP, or a small CNN for conv-only bounds).")] = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
) -> None:
    """Show one bound: formula (text and LaTeX), assumptions, derivation and caveats."""
    from boundcalc.bounds import NetworkView, get_entry
    from boundcalc.bounds.base import Applied
    from boundcalc.bounds.examples import generic_specs
    from boundcalc.render import compare as view

    try:
        entry = get_entry(key)
        specs = [load_spec(spec)] if spec is not None else generic_specs()
        for candidate in specs:
            result = entry.apply(NetworkView(candidate))
            if isinstance(result, Applied):
                break
    except BoundcalcError as err:
        _fail(str(err))
    label = str(spec) if spec is not None else candidate.name
    if format is ListFormat.json:
        typer.echo(json.dumps(view.entry_dict(entry, result, label), indent=2, ensure_ascii=False))
    else:
        view.print_group(view.entry_view(entry, result, label))


@app.command("rules")
def list_rules() -> None:
    """List the rule sets and what each one assumes."""
    table = Table(title="Rule sets")
    table.add_column("name")
    table.add_column("ops")
    table.add_column("description")
    for ruleset in RULE_SETS.values():
        table.add_row(ruleset.name, ", ".join(ruleset.rules), ruleset.description)
    Console(highlight=False).print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
