"""``boundcalc certify``: a PAC-Bayes or compression certificate for a trained checkpoint."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from boundcalc.cli.common import _console, _parse_values, app
from boundcalc.cli.options import (CheckpointArg, DeltaOpt, InitOpt, SpecArg, TableFormat, TrustOpt, UnusedOpt,
                                   _check_spec_values, _fail_binding, _load_for_checkpoint)
from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError


class Method(str, Enum):
    gaussian = "gaussian"
    compression = "compression"


class Prior(str, Enum):
    init = "init"
    learned = "learned"


class Fit(str, Enum):
    sigma = "sigma"
    all = "all"


class Objective(str, Enum):
    fquad = "fquad"
    fclassic = "fclassic"


class BoundKind(str, Enum):
    kl = "kl"
    catoni = "catoni"


def _bound_bar():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[bound]}", markup=False),
                    console=Console(stderr=True, markup=False, emoji=False), transient=True)


def _reporter(progress):
    tasks: dict[str, int] = {}

    def update(phase: str, done: int, total: int, bound: float | None) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total, bound="")
        shown = "" if bound is None else f"current bound ≈ {bound:.4f}"
        progress.update(tasks[phase], completed=done, total=total, **({"bound": shown} if shown else {}))

    return update


@app.command()
def certify(
    spec: SpecArg,
    checkpoint: CheckpointArg,
    data: Annotated[Path, typer.Option("--data", help="Training data .npz with X and y: the samples the certificate "
                                       "is computed on (limits as for evaluate).")],
    data_test: Annotated[Optional[Path], typer.Option("--data-test", help="Test data .npz: the certified "
                                                      "classifier's test error (not used by the bound).")] = None,
    init: InitOpt = None,
    method: Annotated[Method, typer.Option("--method", help="'gaussian': PAC-Bayes with a Gaussian posterior; "
                                           "'compression': a quantised copy with a prefix-free code.")] = Method.gaussian,
    prior: Annotated[Prior, typer.Option("--prior", help="'init': prior mean at --init (zero without it), data-free; "
                                         "'learned': prior mean trained on the first --prior-fraction of the data, "
                                         "which the bound then does not use.")] = Prior.init,
    prior_fraction: Annotated[float, typer.Option("--prior-fraction", help="Share of the samples (the first ones) "
                                                  "that train a learned prior.")] = 0.5,
    fit: Annotated[Fit, typer.Option("--fit", help="'sigma': only the posterior's σ is fitted (μ stays at its start); "
                                     "'all': μ moves too.")] = Fit.all,
    objective: Annotated[Objective, typer.Option("--objective", help="Surrogate minimised: fquad or fclassic "
                                                 "(Pérez-Ortiz et al. 2021).")] = Objective.fclassic,
    bound: Annotated[BoundKind, typer.Option("--bound", help="Final bound: 'kl' (kl inverse) or 'catoni' (best C of "
                                             "a grid, with a union bound).")] = BoundKind.kl,
    delta: DeltaOpt = 0.05,
    mc_samples: Annotated[int, typer.Option("--mc-samples", help="Classifiers drawn from the posterior in the "
                                            "Monte-Carlo step.")] = 10_000,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs of posterior optimisation (gaussian).")] = 300,
    subspace: Annotated[int, typer.Option("--subspace", help="Compression: train in a random subspace of this "
                                          "dimension before quantising (0: quantise the checkpoint).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random draw; a run is deterministic for it.")] = 0,
    allow_unused: UnusedOpt = False,
    trust_checkpoint: TrustOpt = False,
    format: Annotated[TableFormat, typer.Option("--format", "-f", help="Output format.")] = TableFormat.text,
    set_: Annotated[list[str], typer.Option("--set", help="Fix a spec symbol, e.g. --set h=32.")] = [],
) -> None:
    """A certificate: an upper bound, with probability ≥ 1 − δ, on the error of a stated classifier built from
    CHECKPOINT (a Gaussian posterior around it, or a quantised copy), with every term shown."""
    from boundcalc.certify.options import CertifyOptions
    from boundcalc.certify.run import certify as run_certify
    from boundcalc.measure.binding import BindingError
    from boundcalc.render import certify as view

    try:
        options = CertifyOptions(method=method.value, prior=prior.value, prior_fraction=prior_fraction,
                                 fit=fit.value, objective=objective.value, bound=bound.value, delta=delta,
                                 mc_samples=mc_samples, seed=seed, subspace=subspace, epochs=epochs).check()
        network, train, test, reference = _inputs(spec, checkpoint, data, data_test, init, _parse_values(set_),
                                                  trust_checkpoint, allow_unused)
        with _bound_bar() as progress:
            result = run_certify(network, train, test, options, reference, _reporter(progress))
    except BindingError as err:
        _fail_binding(err)
    except BoundcalcError as err:
        _fail(str(err))
    result.spec, result.checkpoint = str(spec), str(checkpoint)
    if format is TableFormat.json:
        typer.echo(view.certificate_json(result))
    elif format is TableFormat.markdown:
        typer.echo(view.certificate_markdown(result), nl=False)
    else:
        _console().print(view.certificate_view(result))


def _inputs(spec: Path, checkpoint: Path, data: Path, data_test: Path | None, init: Path | None, values: dict,
            trust: bool, allow_unused: bool):
    """The bound network, the train and test data and the --init vector (None without it)."""
    from boundcalc.certify.network import bind_network
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.data import load_npz

    ckpt = open_checkpoint(checkpoint, trust=trust)
    loaded = _load_for_checkpoint(spec, ckpt, values)[0]
    _check_spec_values(values, loaded, has_data=True)
    network = bind_network(loaded, ckpt, allow_unused)
    reference = network.vector_from(open_checkpoint(init, trust=trust), "--init") if init is not None else None
    shape = tuple(int(d) for d in loaded.data.shape)
    train = load_npz(data, shape)
    test = load_npz(data_test, shape) if data_test is not None else None
    return network, train, test, reference
