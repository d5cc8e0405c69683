"""One evaluate pipeline: a request (files and settings) in, an :class:`~boundcalc.evaluate.Evaluation` out.

``boundcalc evaluate`` and every zoo worker call :func:`run_evaluation`, so both read the files the same way and
use the same defaults (``tail_k``: the spec's output width, else 10; γ from the training margins; biases
folded). Settings check their ranges when they are made (:mod:`boundcalc.option_ranges`), for API users
as for the command line.

    >>> request = EvaluateRequest(spec=Path("specs/digits_mlp.yaml"), checkpoint=Path("mlp.safetensors"),
    ...                           data=Path("train.npz"))
    >>> evaluation = run_evaluation(request)          # doctest: +SKIP
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from boundcalc.errors import BoundcalcError
from boundcalc.option_ranges import DELTA, ENERGY, PERCENTILE, RANK_RTOL, TAIL_K

#: how each measurement choice may be set (the values of the CLI's choice options)
CHOICES = {"svd": ("auto", "gram", "svd"), "conv_norm": ("fft", "power", "reshaped"), "biases": ("fold", "drop", "keep")}
#: the tail K of dist_K when the spec's output is not a vector
DEFAULT_TAIL_K = 10


@dataclass(frozen=True)
class EvaluateSettings:
    """How to evaluate: the options of ``boundcalc evaluate`` (and of ``zoo evaluate``), with their defaults."""

    constants: dict[str, float] = field(default_factory=lambda: {"C1": 1.0, "C2": 1.0})
    percentile: float = 10.0
    delta: float = 0.05
    keys: tuple[str, ...] | None = None
    biases: str = "fold"
    allow_unused: bool = False
    svd: str = "auto"
    rank_rtol: float | None = None
    energy: float = 0.99
    tail_k: int | None = None          # None: the spec's output width, else DEFAULT_TAIL_K
    conv_norm: str = "fft"
    trust_checkpoint: bool = False
    values: dict[str, float | int] = field(default_factory=dict)   # --set NAME=VALUE

    def __post_init__(self) -> None:
        for check, value in ((PERCENTILE, self.percentile), (DELTA, self.delta), (ENERGY, self.energy),
                             (RANK_RTOL, self.rank_rtol), (TAIL_K, self.tail_k)):
            check.check(value)
        for name, known in CHOICES.items():
            if getattr(self, name) not in known:
                raise BoundcalcError(f"unknown {name} {getattr(self, name)!r} (known: {', '.join(known)})")
        for name, value in self.constants.items():
            if name not in ("C1", "C2") or not value > 0:
                raise BoundcalcError(f"--const {name}: must be C1 or C2 with a positive value, got {value!r}")

    def measure_options(self, spec):
        """The measurement options, with ``tail_k`` defaulting to ``spec``'s output width."""
        from boundcalc.measure.quantities import MeasureOptions

        tail_k = self.tail_k if self.tail_k is not None else (output_width(spec) or DEFAULT_TAIL_K)
        return MeasureOptions(svd=self.svd, rank_rtol=self.rank_rtol, energy=self.energy, tail_k=tail_k,
                              conv_norm=self.conv_norm)


@dataclass(frozen=True)
class EvaluateRequest:
    """The files of one evaluation (``data_test`` needs ``data``: γ is chosen on the training data)."""

    spec: Path
    checkpoint: Path
    data: Path | None = None
    data_test: Path | None = None
    init: Path | None = None
    settings: EvaluateSettings = field(default_factory=EvaluateSettings)

    def __post_init__(self) -> None:
        if self.data_test is not None and self.data is None:
            raise BoundcalcError("--data-test needs --data (γ is chosen on the training data)")


def run_evaluation(request: EvaluateRequest, on_tensor: Callable[[int, int, str], None] | None = None):
    """Bind, measure and evaluate every bound (or ``settings.keys``) for ``request``: (the Evaluation, the
    MeasureOptions used). BoundcalcError (or the binding's BindingError, with its report) on anything that does
    not fit; ``on_tensor(done, total, name)`` reports progress."""
    from boundcalc.evaluate import evaluate_checkpoint
    from boundcalc.measure.checkpoint import open_checkpoint
    from boundcalc.measure.infer import concrete_spec
    from boundcalc.spec.assign import check_measured, check_used

    s = request.settings
    checkpoint = open_checkpoint(request.checkpoint, trust=s.trust_checkpoint)
    spec, inferred = concrete_spec(lambda values: _spec(request.spec, values), checkpoint, dict(s.values))
    check_measured(s.values, spec.data_names, request.data is not None)
    check_used(spec)
    options = s.measure_options(spec)
    init = open_checkpoint(request.init, trust=s.trust_checkpoint) if request.init is not None else None
    shape = tuple(int(d) for d in spec.data.shape)
    train = _data(request.data, shape) if request.data is not None else None
    test = _data(request.data_test, shape) if request.data_test is not None else None
    result = evaluate_checkpoint(spec, checkpoint, options, train=train, test=test, percentile=s.percentile,
                                 constants=dict(s.constants), delta=s.delta, init=init, biases=s.biases,
                                 allow_unused=s.allow_unused, keys=list(s.keys) if s.keys else None,
                                 given={k: float(v) for k, v in s.values.items()}, inferred=inferred,
                                 on_tensor=on_tensor)
    result.checkpoint = str(request.checkpoint)
    return result, options


def output_width(spec) -> int | None:
    """The number of outputs of ``spec``'s network when its output is a vector (the class count k)."""
    from boundcalc.measure.binding import concrete_graph

    graph = concrete_graph(spec)
    shape = graph.nodes[graph.graph["output"]]["shape"]
    return int(shape[0]) if len(shape) == 1 else None


def _stamp(path: Path) -> tuple[int, int]:
    """Modification time and size: part of the cache keys below, so a long-lived worker never reuses a spec
    or data file that has changed since it was read."""
    try:
        stat = Path(path).stat()
    except OSError:
        return (0, 0)       # the loader reports the missing file
    return (stat.st_mtime_ns, stat.st_size)


def _spec(path: Path, values: dict):
    """The spec at ``path`` with ``values``; parsed once per file version when no value is fixed (a spec with
    --set values records which of them its commands use, so it is loaded afresh)."""
    from boundcalc.spec.load import load_spec

    return load_spec(path, values=values) if values else _cached_spec(str(path), _stamp(path))


def _data(path: Path, shape: tuple[int, ...]):
    return _cached_data(str(path), _stamp(path), shape)


@functools.lru_cache(maxsize=8)
def _cached_spec(path: str, stamp: tuple[int, int]):
    from boundcalc.spec.load import load_spec

    return load_spec(path)


@functools.lru_cache(maxsize=4)
def _cached_data(path: str, stamp: tuple[int, int], shape: tuple[int, ...]):
    from boundcalc.measure.data import load_npz

    return load_npz(path, shape)
