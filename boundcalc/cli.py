"""The ``boundcalc`` command line. Commands are thin: the library raises, this module prints.

Bad input (spec, values, options) prints one line ``error: …`` on stderr and exits with code 2.
"""
from __future__ import annotations

import json
import math
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from boundcalc import __version__
from boundcalc.calculus.rules import RULE_SETS
from boundcalc.cli_errors import BoundcalcGroup
from boundcalc.cli_errors import fail as _fail
from boundcalc.derive import derive as derive_bound
from boundcalc.errors import BoundcalcError
from boundcalc.files import refuse_overwriting, regular_file
from boundcalc.graph.build import build_graph
from boundcalc.spec.assign import check_measured, check_used, parse_assignments
from boundcalc.render.escape import one_line, plain
from boundcalc.spec.load import load_spec

app = typer.Typer(
    cls=BoundcalcGroup,
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


#: width for tables written to a file or a pipe (rich would fold them at 80 columns); COLUMNS overrides it
PIPE_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    """A rich console for results; not a terminal (a file, a pipe) and no COLUMNS: PIPE_WIDTH columns.
    Strings are never read as markup or emoji codes (user text reaches tables as it is)."""
    console = Console(stderr=stderr, highlight=False, markup=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def _parse_values(items: list[str]) -> dict[str, float | int]:
    try:
        return parse_assignments(items)
    except BoundcalcError as err:
        _fail(str(err))


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
        _console().print(view.registry_table(entries))


@bounds_app.command("show")
def bounds_show(
    key: Annotated[str, typer.Argument(help="Bound key, e.g. bartlett2017.")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Build the formula on this spec (default: a "
                                                 "generic 3-layer MLP, or a small CNN for conv-only bounds).")] = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol of the --spec to a number, e.g. "
                                            "--set L=4 or --set s_fc1=2. Repeatable.")] = [],
) -> None:
    """Show one bound: formula (text and LaTeX), assumptions, derivation and caveats."""
    from boundcalc.bounds import NetworkView, get_entry
    from boundcalc.bounds.base import Applied
    from boundcalc.bounds.examples import generic_specs
    from boundcalc.render import compare as view

    try:
        entry = get_entry(key)
        if set_ and spec is None:
            raise BoundcalcError("--set needs --spec (the generic example networks take no values)")
        specs = [load_spec(spec, values=_parse_values(set_))] if spec is not None else generic_specs()
        for candidate in specs:
            result = entry.apply(NetworkView(candidate))
            if isinstance(result, Applied):
                break
        if spec is not None:
            check_used(specs[0])
    except BoundcalcError as err:
        _fail(str(err))
    label = str(spec) if spec is not None else candidate.name
    if format is ListFormat.json:
        typer.echo(json.dumps(view.entry_dict(entry, result, label), indent=2, ensure_ascii=False))
    else:
        _console().print(view.entry_view(entry, result, label))


# -- measure / evaluate ---------------------------------------------------------------------------------
class SvdMethod(str, Enum):
    auto = "auto"
    gram = "gram"
    svd = "svd"


class ConvNorm(str, Enum):
    fft = "fft"
    power = "power"
    reshaped = "reshaped"


class BiasMode(str, Enum):
    fold = "fold"
    drop = "drop"


class TableFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


SvdOpt = Annotated[SvdMethod, typer.Option("--svd", help="Singular values: 'auto' (float64 Gram eigenvalues when "
                                           "they resolve the rank tolerance, as for float32/16 weights; LAPACK SVD "
                                           "otherwise), 'gram' or 'svd'.")]
RankTolOpt = Annotated[Optional[float], typer.Option("--rank-rtol", help="Rank counts σ_i > RTOL·σ₁ (default: "
                                                     "numpy's σ₁·max(m,n)·ε, with ε of float64 for float64 weights "
                                                     "and of float32 otherwise).")]
EnergyOpt = Annotated[float, typer.Option("--energy", help="Energy rank: smallest k with Σ_(j≤k) σ_j² ≥ "
                                          "ENERGY·‖W‖_F².")]
TailOpt = Annotated[Optional[int], typer.Option("--tail-k", help="K of dist_K = √(Σ_(j>K) σ_j²) (default: the "
                                                "spec's output width, else 10).")]
ConvOpt = Annotated[ConvNorm, typer.Option("--conv-norm", help="Conv operator norm used in bounds: 'fft' (exact "
                                           "circular norm on the padded grid; an upper bound, the default), "
                                           "'power' (power iteration; a lower estimate) or 'reshaped' (matrix "
                                           "norm of the reshaped kernel; neither). Past MAX_FFT_ENTRIES the 'fft' "
                                           "value is the looser tap-sum upper bound, stated in the notes.")]
TrustOpt = Annotated[bool, typer.Option("--trust-checkpoint", help="DANGEROUS: load torch files with "
                                        "weights_only=False, which runs any code the file contains. Only for "
                                        "files you made yourself.")]
InitOpt = Annotated[Optional[Path], typer.Option("--init", help="Reference checkpoint (e.g. the initialisation): "
                                                 "distances ‖W − W₀‖ are measured, and Bartlett's (2,1) norms use it.")]
BiasOpt = Annotated[BiasMode, typer.Option("--biases", help="'fold' (default): biases become weights on a constant "
                                           "input coordinate (exact, dense chains only); 'drop': evaluate the "
                                           "bias-free network.")]
UnusedOpt = Annotated[bool, typer.Option("--allow-unused", help="Do not stop when checkpoint tensors are left "
                                         "unbound by the spec.")]
ConstOpt = Annotated[str, typer.Option("--const", help="Values of Maurer's constants, e.g. C1=1,C2=1 (unpublished; "
                                       "stated in the output).")]
PercentileOpt = Annotated[float, typer.Option("--margin-percentile", help="γ = this percentile of the training "
                                              "margins.")]
DeltaOpt = Annotated[float, typer.Option("--delta", help="Confidence parameter δ.")]
BoundKeysOpt = Annotated[Optional[str], typer.Option("--bounds", "-b", help="Comma-separated bound keys (default: "
                                                     "all).")]


def _load_for_checkpoint(spec: Path, ckpt, values: dict):
    """The spec with --set values, and symbolic sizes the checkpoint's shapes determine; (spec, inferred)."""
    from boundcalc.measure.infer import concrete_spec

    return concrete_spec(lambda v: load_spec(spec, values=v), ckpt, values)


def _check_spec_values(values: dict, loaded, has_data: bool) -> None:
    """A measuring command's --set: only the spec's own sizes and symbols, each one used."""
    check_measured(values, loaded.data_names, has_data)
    check_used(loaded)


def _check_margin_and_delta(margin_percentile: float, delta: float) -> None:
    if not 0 < margin_percentile < 100:
        _fail(f"--margin-percentile must be in (0, 100), got {margin_percentile}")
    if not 0 < delta < 1:
        _fail(f"--delta must be in (0, 1), got {delta}")


def _bound_keys(bounds: str | None) -> list[str] | None:
    """The --bounds keys, each checked against the registry (a misspelt key fails with a suggestion)."""
    from boundcalc.bounds import get_entry

    keys = [k.strip() for k in bounds.split(",") if k.strip()] if bounds else None
    try:
        for key in keys or []:
            get_entry(key)
    except BoundcalcError as err:
        _fail(str(err))
    return keys


def _options(svd: SvdMethod, rank_rtol: float | None, energy: float, tail_k: int | None, conv_norm: ConvNorm,
             default_k: int = 10, spectrum: bool = True):
    from boundcalc.measure.quantities import MeasureOptions

    if not 0 < energy <= 1:
        _fail(f"--energy must be in (0, 1], got {energy}")
    if rank_rtol is not None and not 0 <= rank_rtol < 1:
        _fail(f"--rank-rtol must be in [0, 1), got {rank_rtol}")
    if tail_k is not None and tail_k < 0:
        _fail(f"--tail-k must be ≥ 0, got {tail_k}")
    return MeasureOptions(svd=svd.value, rank_rtol=rank_rtol, energy=energy,
                          tail_k=tail_k if tail_k is not None else default_k, conv_norm=conv_norm.value,
                          spectrum=spectrum)


def _progress_bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[name]}", markup=False),
                    console=Console(stderr=True, markup=False, emoji=False), transient=True)


def _tracker(progress, description: str):
    task = progress.add_task(description, total=None, name="")

    def update(done: int, total: int, name: str) -> None:
        progress.update(task, completed=done, total=total, name=one_line(name))

    return update


def _spec_output_width(spec) -> int | None:
    from boundcalc.measure.binding import concrete_graph

    graph = concrete_graph(spec)
    shape = graph.nodes[graph.graph["output"]]["shape"]
    return int(shape[0]) if len(shape) == 1 else None


def _fail_binding(err) -> None:
    from boundcalc.render.evaluate import binding_table

    _console(stderr=True).print(binding_table(err.binding))
    _fail(str(err))


@app.command()
def measure(
    checkpoint: Annotated[Path, typer.Argument(help="Weights: .safetensors, torch .pt/.pth/.bin, or a Hugging "
                                               "Face folder (model.safetensors or a sharded index).")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Measure only the layers this spec binds, with "
                                                 "conv operator norms and folded biases.")] = None,
    init: InitOpt = None,
    svd: SvdOpt = SvdMethod.auto,
    rank_rtol: RankTolOpt = None,
    energy: EnergyOpt = 0.99,
    tail_k: TailOpt = None,
    conv_norm: ConvOpt = ConvNorm.fft,
    biases: BiasOpt = BiasMode.fold,
    allow_unused: UnusedOpt = False,
    trust_checkpoint: TrustOpt = False,
    spectrum: Annotated[bool, typer.Option("--spectrum/--no-spectrum", help="--no-spectrum: skip the full "
                                           "singular-value spectrum and measure only ‖W‖₂ (Lanczos), ‖W‖_F, (2,1) "
                                           "norm, rank (Cholesky certificate) and stable rank; faster on large "
                                           "matrices. Energy rank, effective rank and dist_K are then not "
                                           "measured.")] = True,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a spec symbol, e.g. --set h=32.")] = [],
) -> None:
    """Measure every weight of CHECKPOINT: norms, ranks, stable and effective rank, tail energy, distances."""
    from boundcalc.measure.binding import BindingError
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.run import bind_and_measure, measure_checkpoint, skipped_tensors
    from boundcalc.render import evaluate as view

    try:
        values = _parse_values(set_)
        if values and spec is None:
            raise BoundcalcError("--set needs --spec (it fixes the spec's sizes)")
        ckpt = open_checkpoint(checkpoint, trust=trust_checkpoint)
        loaded = _load_for_checkpoint(spec, ckpt, values)[0] if spec is not None else None
        if loaded is not None:
            _check_spec_values(values, loaded, has_data=False)
        options = _options(svd, rank_rtol, energy, tail_k, conv_norm,
                           default_k=(_spec_output_width(loaded) or 10) if loaded else 10, spectrum=spectrum)
        reference = open_checkpoint(init, trust=trust_checkpoint) if init is not None else None
        folded, notes = False, []
        with _progress_bar("measuring") as progress:
            track = _tracker(progress, "measuring")
            if loaded is None:
                items = measure_checkpoint(ckpt, options, init=reference, on_tensor=track)
            else:
                model = bind_and_measure(loaded, ckpt, options, init=reference, biases=biases.value,
                                         allow_unused=allow_unused, on_tensor=track)
                items, folded, notes = list(model.measurements.values()), model.folded, model.notes
    except BindingError as err:
        _fail_binding(err)
    except BoundcalcError as err:
        _fail(str(err))
    skipped = skipped_tensors(ckpt, every_tensor=loaded is None)
    if format is ListFormat.json:
        typer.echo(view.measurements_json(items, options, str(checkpoint), ckpt.kind, skipped, notes, folded))
        return
    console = _console()
    console.print(view.measurement_table(items, options, f"{checkpoint} ({ckpt.kind}): {len(items)} weights", folded))
    console.print(view.method_lines(options, items, with_spec=loaded is not None, skipped=skipped, notes=notes))


def _parse_constants(text: str) -> dict[str, float]:
    constants = {"C1": 1.0, "C2": 1.0}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = item.partition("=")
        if name.strip() not in constants or not sep:
            _fail(f"--const expects C1=NUMBER,C2=NUMBER, got {item!r}")
        try:
            value = float(raw)
        except ValueError:
            _fail(f"--const {name}: {raw!r} is not a number")
        if not (math.isfinite(value) and value > 0):
            _fail(f"--const {name}: must be a positive number, got {raw!r}")
        constants[name.strip()] = value
    return constants


@app.command()
def evaluate(
    spec: Annotated[Path, typer.Argument(help="YAML spec of the network (concrete widths, or --set them).")],
    checkpoint: Annotated[Path, typer.Argument(help="Trained weights (.safetensors, .pt, or a Hugging Face folder).")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Training data .npz with X and y: gives m, ‖X‖_F, R, "
                                                 "margins and the margin γ (at most 2²⁶ values per array, "
                                                 "MAX_DATA_VALUES).")] = None,
    data_test: Annotated[Optional[Path], typer.Option("--data-test", help="Test data .npz: test error, measured gap "
                                                      "(limits as --data).")] = None,
    init: InitOpt = None,
    const: ConstOpt = "C1=1,C2=1",
    margin_percentile: PercentileOpt = 10.0,
    delta: DeltaOpt = 0.05,
    bounds: BoundKeysOpt = None,
    svd: SvdOpt = SvdMethod.auto,
    rank_rtol: RankTolOpt = None,
    energy: EnergyOpt = 0.99,
    tail_k: TailOpt = None,
    conv_norm: ConvOpt = ConvNorm.fft,
    biases: BiasOpt = BiasMode.fold,
    allow_unused: UnusedOpt = False,
    trust_checkpoint: TrustOpt = False,
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = TableFormat.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol, e.g. --set h=32 or --set m=60000.")] = [],
) -> None:
    """Evaluate every applicable bound on CHECKPOINT bound to SPEC: numbers, log10, vacuous or not, assumptions."""
    from boundcalc.evaluate import evaluate_checkpoint
    from boundcalc.measure.binding import BindingError
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.data import load_npz
    from boundcalc.render import evaluate as view

    _check_margin_and_delta(margin_percentile, delta)
    if data_test is not None and data is None:
        _fail("--data-test needs --data (γ is chosen on the training data)")
    constants = _parse_constants(const)
    keys = _bound_keys(bounds)
    try:
        values = _parse_values(set_)
        ckpt = open_checkpoint(checkpoint, trust=trust_checkpoint)
        loaded, inferred = _load_for_checkpoint(spec, ckpt, values)
        _check_spec_values(values, loaded, has_data=data is not None)
        options = _options(svd, rank_rtol, energy, tail_k, conv_norm, default_k=_spec_output_width(loaded) or 10)
        reference = open_checkpoint(init, trust=trust_checkpoint) if init is not None else None
        shape = tuple(int(d) for d in loaded.data.shape)
        train = load_npz(data, shape) if data is not None else None
        test = load_npz(data_test, shape) if data_test is not None else None
        with _progress_bar("measuring") as progress:
            result = evaluate_checkpoint(loaded, ckpt, options, train=train, test=test, percentile=margin_percentile,
                                         constants=constants, delta=delta, init=reference, biases=biases.value,
                                         allow_unused=allow_unused, keys=keys,
                                         given={k: float(v) for k, v in values.items()}, inferred=inferred,
                                         on_tensor=_tracker(progress, "measuring"))
        result.checkpoint = str(checkpoint)
    except BindingError as err:
        _fail_binding(err)
    except BoundcalcError as err:
        _fail(str(err))
    if format is TableFormat.json:
        typer.echo(view.evaluation_json(result, options))
    elif format is TableFormat.markdown:
        typer.echo(view.evaluation_markdown(result), nl=False)
    else:
        _console().print(view.evaluation_view(result, options))


@app.command()
def collapse(
    spec: Annotated[Path, typer.Argument(help="YAML spec of the network (concrete widths, or --set them).")],
    checkpoint: Annotated[Path, typer.Argument(help="Trained weights (.safetensors, .pt, or a Hugging Face folder).")],
    data: Annotated[Path, typer.Option("--data", help="Data .npz with X and y: the features per layer come from it "
                                       "(at most 2²⁶ values per array, MAX_DATA_VALUES).")],
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="λ the model was trained with: adds "
                                                          "the ratio dist_K·λ/TCV.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write a per-layer figure (PNG/PDF/SVG; written "
                                                 "atomically, and never over an input).")] = None,
    svd: SvdOpt = SvdMethod.auto,
    rank_rtol: RankTolOpt = None,
    allow_unused: UnusedOpt = False,
    trust_checkpoint: TrustOpt = False,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a symbol, e.g. --set h=32.")] = [],
) -> None:
    """Neural-collapse diagnostics per layer: NC1, TCV, rank, stable rank, dist_K and dist_K·λ/TCV."""
    from boundcalc.measure.binding import BindingError
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.collapse import collapse_report
    from boundcalc.measure.data import load_npz
    from boundcalc.measure.run import bind_and_measure
    from boundcalc.render import collapse as view

    if weight_decay is not None and not (math.isfinite(weight_decay) and weight_decay >= 0):
        _fail(f"--weight-decay must be a non-negative number, got {weight_decay}")
    options = _options(svd, rank_rtol, 0.99, None, ConvNorm.fft)
    try:
        ckpt = open_checkpoint(checkpoint, trust=trust_checkpoint)
        if plot is not None:    # before any work: an output is never one of the inputs
            refuse_overwriting([plot], [spec, data, *ckpt.files])
        values = _parse_values(set_)
        loaded = _load_for_checkpoint(spec, ckpt, values)[0]
        _check_spec_values(values, loaded, has_data=True)
        with _progress_bar("collapse") as progress:
            model = bind_and_measure(loaded, ckpt, options, biases="keep", allow_unused=allow_unused,
                                     on_tensor=_tracker(progress, "binding"))
            dataset = load_npz(data, tuple(int(d) for d in loaded.data.shape))
            rows = collapse_report(model, dataset, options, weight_decay)
        title = f"{spec.name} on {checkpoint.name}: collapse diagnostics on {data.name}"
        if plot is not None:
            view.collapse_plot(rows, plot, title)
    except BindingError as err:
        _fail_binding(err)
    except BoundcalcError as err:
        _fail(str(err))
    if format is ListFormat.json:
        typer.echo(view.collapse_json(rows, options, weight_decay, str(spec), str(checkpoint), str(data)))
    else:
        _console().print(view.collapse_view(rows, options, weight_decay, title))


zoo_app = typer.Typer(help="Model zoos: a folder of checkpoints with a models.csv/models.jsonl manifest.",
                      no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("evaluate")
def zoo_evaluate(
    folder: Annotated[Path, typer.Argument(help="Zoo folder: checkpoints plus models.csv or models.jsonl (id, file, "
                                           "train/test error or accuracy, hyperparameter columns, optional spec; "
                                           "at most 10,000 rows, MAX_MODELS).")],
    spec: Annotated[Optional[Path], typer.Option("--spec", help="Spec every checkpoint binds to (a 'spec' column "
                                                 "overrides it per model).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Training data .npz (X, y): m, ‖X‖_F, margins, γ "
                                                 "(at most 2²⁶ values per array, MAX_DATA_VALUES).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes of the local Dask cluster.")] = 1,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Address of an existing Dask scheduler "
                                                     "(e.g. tcp://host:8786) instead of a local cluster.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for results.csv, results.json, summary.json (written "
                                      "atomically, never over an input).")] = Path("zoo_results"),
    plots: Annotated[Optional[Path], typer.Option("--plots", help="Folder for one scatter plot per bound.")] = None,
    const: ConstOpt = "C1=1,C2=1",
    margin_percentile: PercentileOpt = 10.0,
    delta: DeltaOpt = 0.05,
    bounds: BoundKeysOpt = None,
    biases: BiasOpt = BiasMode.fold,
    allow_unused: UnusedOpt = False,
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Summary format on stdout.")] = ListFormat.text,
) -> None:
    """Evaluate every bound on every model of a zoo (in parallel on Dask): Kendall τ and granulated Ψ against
    the measured gap, the non-vacuous fraction, results as CSV/JSON, optional scatter plots."""
    from boundcalc.bounds import REGISTRY
    from boundcalc.render import zoo as view
    from boundcalc.zoo.manifest import input_files as zoo_input_files
    from boundcalc.zoo.manifest import load_zoo
    from boundcalc.zoo.run import Settings, ZooTask, run_zoo, summarise

    _check_margin_and_delta(margin_percentile, delta)
    if workers < 1:
        _fail(f"--workers must be ≥ 1, got {workers}")
    keys = _bound_keys(bounds)
    settings = Settings(constants=_parse_constants(const), percentile=margin_percentile, delta=delta,
                        keys=tuple(keys) if keys else None, biases=biases.value, allow_unused=allow_unused)
    try:
        models = load_zoo(folder)
        refuse_overwriting(view.output_files(out, plots, keys or list(REGISTRY)),
                           [*zoo_input_files(folder, models), *(p for p in (spec, data) if p is not None)])
        missing = [m.id for m in models if m.spec is None and spec is None]
        if missing:
            _fail(f"no spec for model {missing[0]!r} ({len(missing)} in all): pass --spec or add a 'spec' column")
        if spec is not None:
            load_spec(spec)   # a broken shared spec is one error, not one per model
        if data is not None:
            regular_file(data, "data file")
        tasks = [ZooTask(m, m.spec or spec.resolve(), data.resolve() if data else None, settings) for m in models]
        with _progress_bar("models") as progress:
            task = progress.add_task("models", total=len(tasks), name="")
            results = run_zoo(tasks, workers=workers, scheduler=scheduler,
                              on_done=lambda r: progress.update(task, advance=1, name=one_line(r.id)))
        summary = view.summary_dict(results, summarise(results), settings, str(spec) if spec else "per model",
                                    str(data) if data else None)
        written = view.write_results(results, summary, out)
        if plots is not None:
            written += view.scatter_plots(results, summarise(results), plots)
    except BoundcalcError as err:
        _fail(str(err))
    if format is ListFormat.json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        console = _console()
        console.print(view.summary_view(summary))
        console.print(plain("written: " + ", ".join(str(p) for p in written)))


@app.command("rules")
def list_rules() -> None:
    """List the rule sets and what each one assumes."""
    table = Table(title="Rule sets")
    table.add_column("name")
    table.add_column("ops")
    table.add_column("description")
    for ruleset in RULE_SETS.values():
        table.add_row(ruleset.name, ", ".join(ruleset.rules), ruleset.description)
    _console().print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
