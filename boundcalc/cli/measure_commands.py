"""Commands on a checkpoint: measure, evaluate, collapse."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError
from boundcalc.files import refuse_overwriting
from boundcalc.option_ranges import WEIGHT_DECAY
from boundcalc.cli.common import app, ListFormat, _console, _parse_values
from boundcalc.cli.options import (BiasMode, BiasOpt, BoundKeysOpt, CheckpointArg, ConstOpt, ConvNorm, ConvOpt, DeltaOpt,
                                   EnergyOpt, SpecArg,
                                   InitOpt, PercentileOpt, RankTolOpt, SvdMethod, SvdOpt, TableFormat, TailOpt,
                                   TrustOpt, UnusedOpt, _bound_keys, _check_spec_values,
                                   _fail_binding, _load_for_checkpoint, _options, _parse_constants, _progress_bar,
                                   _tracker)


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
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.stream import skipped_tensors
    from boundcalc.pipeline import DEFAULT_TAIL_K, output_width
    from boundcalc.render import measure as view

    try:
        values = _parse_values(set_)
        if values and spec is None:
            raise BoundcalcError("--set needs --spec (it fixes the spec's sizes)")
        ckpt = open_checkpoint(checkpoint, trust=trust_checkpoint)
        loaded = _load_for_checkpoint(spec, ckpt, values)[0] if spec is not None else None
        if loaded is not None:
            _check_spec_values(values, loaded, has_data=False)
        default_k = (output_width(loaded) or DEFAULT_TAIL_K) if loaded else DEFAULT_TAIL_K
        options = _options(svd, rank_rtol, energy, tail_k, conv_norm, default_k=default_k, spectrum=spectrum)
        reference = open_checkpoint(init, trust=trust_checkpoint) if init is not None else None
        if loaded is None:
            items, folded, notes = _measure_every_tensor(ckpt, options, reference), False, []
        else:
            items, folded, notes = _measure_bound(loaded, ckpt, options, reference, biases.value, allow_unused)
    except BoundcalcError as err:
        _fail(str(err))
    skipped = skipped_tensors(ckpt, every_tensor=loaded is None)
    if format is ListFormat.json:
        typer.echo(view.measurements_json(items, options, str(checkpoint), ckpt.kind, skipped, notes, folded))
        return
    console = _console()
    console.print(view.measurement_table(items, options, f"{checkpoint} ({ckpt.kind}): {len(items)} weights", folded))
    console.print(view.method_lines(options, items, with_spec=loaded is not None, skipped=skipped, notes=notes))


def _measure_every_tensor(ckpt, options, reference) -> list:
    """Every weight matrix, streamed (numpy only for safetensors), with a bar over bytes for large checkpoints."""
    from boundcalc.cli.progress import bytes_progress
    from boundcalc.measure.stream import measure_checkpoint

    with bytes_progress(sum(info.nbytes for info in ckpt)) as track:
        return measure_checkpoint(ckpt, options, init=reference, on_progress=track)


def _measure_bound(loaded, ckpt, options, reference, biases: str, allow_unused: bool) -> tuple[list, bool, list]:
    """The layers ``loaded`` binds (conv operator norms, folded biases): (measurements, folded, notes)."""
    from boundcalc.measure.binding import BindingError
    from boundcalc.measure.run import bind_and_measure

    try:
        with _progress_bar("measuring") as progress:
            model = bind_and_measure(loaded, ckpt, options, init=reference, biases=biases,
                                     allow_unused=allow_unused, on_tensor=_tracker(progress, "measuring"))
    except BindingError as err:
        _fail_binding(err)
    return list(model.measurements.values()), model.folded, model.notes



@app.command()
def evaluate(
    spec: SpecArg,
    checkpoint: CheckpointArg,
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
    from boundcalc.measure.binding import BindingError
    from boundcalc.pipeline import EvaluateRequest, EvaluateSettings, run_evaluation
    from boundcalc.render import evaluate as view

    keys = _bound_keys(bounds)
    try:
        settings = EvaluateSettings(
            constants=_parse_constants(const), percentile=margin_percentile, delta=delta,
            keys=tuple(keys) if keys else None, biases=biases.value, allow_unused=allow_unused,
            svd=svd.value, rank_rtol=rank_rtol, energy=energy, tail_k=tail_k, conv_norm=conv_norm.value,
            trust_checkpoint=trust_checkpoint, values=_parse_values(set_))
        request = EvaluateRequest(spec, checkpoint, data=data, data_test=data_test, init=init, settings=settings)
        with _progress_bar("measuring") as progress:
            result, options = run_evaluation(request, on_tensor=_tracker(progress, "measuring"))
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
    spec: SpecArg,
    checkpoint: CheckpointArg,
    data: Annotated[Path, typer.Option("--data", help="Data .npz with X and y: the features per layer come from it "
                                       "(at most 2²⁶ values per array, MAX_DATA_VALUES).")],
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="λ ≥ 0 the model was trained with: "
                                                          "adds the ratio dist_K·λ/TCV.",
                                                          callback=WEIGHT_DECAY.callback)] = None,
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

