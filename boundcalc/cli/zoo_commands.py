"""``boundcalc zoo evaluate``: every bound on every model of a zoo."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError
from boundcalc.files import refuse_overwriting, regular_file
from boundcalc.option_ranges import WORKERS
from boundcalc.render.escape import one_line, plain
from boundcalc.cli.common import app, ListFormat, _console
from boundcalc.cli.options import (BiasMode, BiasOpt, BoundKeysOpt, ConstOpt, DeltaOpt, PercentileOpt, UnusedOpt,
                                   _bound_keys, _parse_constants, _progress_bar)


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
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (≥ 1) of the local Dask cluster.",
                                         callback=WORKERS.callback)] = 1,
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
    from boundcalc.pipeline import EvaluateSettings
    from boundcalc.render import zoo as view
    from boundcalc.zoo.run import run_zoo, summarise

    keys = _bound_keys(bounds)
    try:
        settings = EvaluateSettings(constants=_parse_constants(const), percentile=margin_percentile, delta=delta,
                                    keys=tuple(keys) if keys else None, biases=biases.value, allow_unused=allow_unused)
        tasks = _zoo_tasks(folder, spec, data, out, plots, settings)
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



def _zoo_tasks(folder: Path, spec: Path | None, data: Path | None, out: Path, plots: Path | None, settings) -> list:
    """One task per model of the zoo, after the checks that must fail once, before any work: outputs that would
    overwrite an input, models without a spec, a broken shared spec, a data path that is not a regular file."""
    from boundcalc.bounds import REGISTRY
    from boundcalc.render.zoo import output_files
    from boundcalc.spec.load import load_spec
    from boundcalc.zoo.manifest import input_files, load_zoo
    from boundcalc.zoo.run import ZooTask

    models = load_zoo(folder)
    refuse_overwriting(output_files(out, plots, list(settings.keys or REGISTRY)),
                       [*input_files(folder, models), *(p for p in (spec, data) if p is not None)])
    missing = [m.id for m in models if m.spec is None and spec is None]
    if missing:
        _fail(f"no spec for model {missing[0]!r} ({len(missing)} in all): pass --spec or add a 'spec' column")
    if spec is not None:
        load_spec(spec)   # a broken shared spec is one error, not one per model
    if data is not None:
        regular_file(data, "data file")
    return [ZooTask(m, m.spec or spec.resolve(), data.resolve() if data else None, settings) for m in models]
