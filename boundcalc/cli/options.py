"""Option types and checks shared by the measuring commands (measure, evaluate, collapse, zoo evaluate)."""
from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from boundcalc.cli_errors import fail as _fail
from boundcalc.errors import BoundcalcError
from boundcalc.option_ranges import DELTA, ENERGY, PERCENTILE, RANK_RTOL, TAIL_K
from boundcalc.render.escape import one_line
from boundcalc.cli.common import _console


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
    keep = "keep"


class TableFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


#: the two arguments of every command that binds a spec to a checkpoint (evaluate, collapse, certify)
SpecArg = Annotated[Path, typer.Argument(help="YAML spec of the network (concrete widths, or --set them).")]
CheckpointArg = Annotated[Path, typer.Argument(help="Trained weights (.safetensors, .pt, or a Hugging Face folder).")]
SvdOpt = Annotated[SvdMethod, typer.Option("--svd", help="Singular values: 'auto' (float64 Gram eigenvalues when "
                                           "they resolve the rank tolerance, as for float32/16 weights; LAPACK SVD "
                                           "otherwise), 'gram' or 'svd'.")]
RankTolOpt = Annotated[Optional[float], typer.Option("--rank-rtol", help="Rank counts σ_i > RTOL·σ₁, RTOL in [0, 1) "
                                                     "(default: numpy's σ₁·max(m,n)·ε, with ε of float64 for float64 "
                                                     "weights and of float32 otherwise).", callback=RANK_RTOL.callback)]
EnergyOpt = Annotated[float, typer.Option("--energy", help="Energy rank: smallest k with Σ_(j≤k) σ_j² ≥ "
                                          "ENERGY·‖W‖_F², ENERGY in (0, 1].", callback=ENERGY.callback)]
TailOpt = Annotated[Optional[int], typer.Option("--tail-k", help="K ≥ 0 of dist_K = √(Σ_(j>K) σ_j²) (default: the "
                                                "spec's output width, else 10).", callback=TAIL_K.callback)]
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
                                           "bias-free network; 'keep': the network with its biases, affine "
                                           "layers in the tight chain rule (DAGs, conv nets).")]
UnusedOpt = Annotated[bool, typer.Option("--allow-unused", help="Do not stop when checkpoint tensors are left "
                                         "unbound by the spec.")]
ConstOpt = Annotated[str, typer.Option("--const", help="Values of Maurer's constants, e.g. C1=1,C2=1 (unpublished; "
                                       "stated in the output).")]
PercentileOpt = Annotated[float, typer.Option("--margin-percentile", help="γ = this percentile of the training "
                                              "margins, in (0, 100).", callback=PERCENTILE.callback)]
DeltaOpt = Annotated[float, typer.Option("--delta", help="Confidence parameter δ in (0, 1).", callback=DELTA.callback)]
BoundKeysOpt = Annotated[Optional[str], typer.Option("--bounds", "-b", help="Comma-separated bound keys (default: "
                                                     "all).")]


def _load_for_checkpoint(spec: Path, ckpt, values: dict):
    """The spec with --set values, and symbolic sizes the checkpoint's shapes determine; (spec, inferred)."""
    from boundcalc.measure.infer import concrete_spec
    from boundcalc.spec.load import load_spec

    return concrete_spec(lambda v: load_spec(spec, values=v), ckpt, values)


def _check_spec_values(values: dict, loaded, has_data: bool) -> None:
    """A measuring command's --set: only the spec's own sizes and symbols, each one used."""
    from boundcalc.spec.assign import check_measured, check_used

    check_measured(values, loaded.data_names, has_data)
    check_used(loaded)


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
    """The measurement options (their ranges are checked by the option objects as they are parsed)."""
    from boundcalc.measure.quantities import MeasureOptions

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


def _fail_binding(err) -> None:
    from boundcalc.render.evaluate import binding_table

    _console(stderr=True).print(binding_table(err.binding))
    _fail(str(err))



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

