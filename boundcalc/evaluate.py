"""evaluate: put measured numbers into every bound of the registry (DESIGN: Bounds + Measurements).

Measured values are keyed by the symbol names the bounds use (``s_fc1``, ``f_mid[2]``, ``X_F``, ``m``,
``gamma`` …), so plugging in is a lookup. Every value is computed in log space
(:mod:`boundcalc.numerics`). An entry with a ``numeric`` hook evaluates itself on the numbers (the chain-rule
entries run the composer's rules on floats); every other registry formula is built on the measured numbers
(:class:`MeasuredQuantities`), so its size does not grow with depth. This module names no paper.

The bound layers are measured at the trained weights and each bound is evaluated for the class whose
constraints equal those measured values (the usual practice; no union bound over constraint levels — said
in the assumptions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import sympy as sp

from boundcalc.bounds import REGISTRY, Applied, NetworkView
from boundcalc.bounds.base import STATUS_MEANING, NotApplicable, PriorBound
from boundcalc.calculus.quantities import SymbolicQuantities
from boundcalc.declared import outside_declared_class
from boundcalc.errors import BoundcalcError
from boundcalc.margin_grid import MarginGridPoint, grid_point
from boundcalc.measure.data import Dataset, MarginStats, input_stats, margin_stats, margins
from boundcalc.measure.linalg import max_abs
from boundcalc.measure.forward import forward
from boundcalc.measure.quantities import CONV_NORM_METHODS, UPPER_BOUND_METHODS, MeasureOptions, WeightMeasurement
from boundcalc.measure.checkpoint import Checkpoint
from boundcalc.measure.run import UNINDEXED, BoundModel, bind_and_measure
from boundcalc.numerics import EvaluationError, LogReal, positive_log_real
from boundcalc.ops import OPS
from boundcalc.spec.load import Layer, Repeat, Spec
from boundcalc.symbols import SymbolTable

CONSTRAINT_KEYS = ("spectral", "frobenius", "rank", "row_norm", "filter_norm")


@dataclass(frozen=True)
class DataSummary:
    file: str
    m: int
    frobenius: float
    max_norm: float
    train: MarginStats
    test: MarginStats | None = None
    margin_grid: MarginGridPoint | None = None   # set when γ was chosen from the training margins
    max_linf: float | None = None                # max_i ‖x_i‖∞ of the training inputs (without a bias coordinate)
    max_token_norm: float | None = None          # B_X = max_{i,t} ‖x_it‖₂ of (samples, tokens, dim) inputs


@dataclass
class BoundValue:
    """One registry entry at the measured values: numbers, or the reason there are none."""

    key: str
    title: str
    status: str
    applies: bool
    reason: str = ""
    complexity: float | None = None
    complexity_log10: float | None = None
    gap: float | None = None
    gap_log10: float | None = None
    test_error_bound: float | None = None      # margin risk + gap, when the statement is about test error
    vacuous: bool | None = None
    method: str = ""
    caveats: tuple[str, ...] = ()


@dataclass
class Evaluation:
    spec: str
    checkpoint: str
    values: dict[str, float]
    bounds: list[BoundValue]
    assumptions: list[str]
    data: DataSummary | None = None
    measurements: dict[str, WeightMeasurement] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)   # e.g. the checkpoint is outside the declared class
    folded: bool = False                                 # measured matrices are the bias-folded ones


class MeasuredQuantities(SymbolicQuantities):
    """Layer quantities as sympy Floats where ``values`` has them (the symbol otherwise). A registry formula built
    on them is folded into a few numbers as it is built, instead of a sympy expression over every layer's
    symbols (whose construction asks sympy's assumption system about each factor: minutes at 1000 layers);
    sympy floats have an unbounded exponent, so nothing overflows, and the rest is evaluated in log space."""

    def __init__(self, table: SymbolTable, values: dict[str, float]) -> None:
        super().__init__(table)
        self.values = values

    def value(self, expr: Any) -> Any:
        expr = sp.sympify(expr)
        if isinstance(expr, (sp.Symbol, sp.Indexed)):      # the common case: a plain lookup
            known = self.values.get(str(expr))
            return expr if known is None else sp.Float(known)
        atoms = expr.atoms(sp.Indexed) | {a for a in expr.free_symbols if isinstance(a, sp.Symbol)}
        known = {a: sp.Float(self.values[str(a)]) for a in atoms if str(a) in self.values}
        return expr.xreplace(known) if known else expr


def layer_values(model: BoundModel, options: MeasureOptions, use_init: bool) -> dict[str, float]:
    """Per-layer symbol values: s, f, b, r for dense layers; for conv layers s (chosen method), f and b of the
    full operator (b = ‖Aᵀ‖₂,₁ over every output coordinate's row, not the reshaped kernel's), w (filter)."""
    values: dict[str, float] = {}
    for node, wm in model.measurements.items():
        reference = wm.init if (use_init and wm.init) else None
        if wm.is_conv:
            values[f"s_{node}"] = wm.conv[options.conv_norm] if options.conv_norm != "reshaped" else wm.matrix.spectral
            values[f"f_{node}"] = wm.conv["operator_frobenius"]
            values[f"w_{node}"] = wm.conv["filter_norm"]
            values[f"b_{node}"] = (reference or wm.conv)["operator_row_norm_21"]
        else:
            values[f"s_{node}"] = wm.matrix.spectral
            values[f"f_{node}"] = wm.matrix.frobenius
            values[f"r_{node}"] = float(wm.matrix.rank)
            values[f"w_{node}"] = wm.matrix.frobenius
            values[f"b_{node}"] = reference["row_norm_21"] if reference else wm.row_norm_21
    return values


def evaluation_spec(spec: Spec, folded: bool, biased: frozenset[str] = frozenset()) -> Spec:
    """The spec the bounds are built on: constraint values removed (the measured per-layer symbols take their
    place), with folded biases every hidden width and the input dimension one larger, and ``bias: true`` exactly
    on the ``biased`` layers (the affine ones: --biases keep)."""
    last = _last_weight_layer(spec.layers)

    def layer(item: Layer) -> Layer:
        kind = OPS[item.op]
        if not kind.flags.weights:
            return item
        params = {k: v for k, v in item.params.items() if k not in CONSTRAINT_KEYS + ("bias",)}
        if item.name in biased:
            params["bias"] = True
        if folded and kind.flags.foldable_bias and item is not last:   # the constant coordinate it carries
            params[kind.width_field] = params[kind.width_field] + 1
        return replace(item, params=params)

    def items(seq):
        return tuple(replace(it, body=items(it.body)) if isinstance(it, Repeat) else layer(it) for it in seq)

    data = spec.data
    if folded:
        data = replace(data, shape=(data.shape[0] + 1,))
    return replace(spec, layers=items(spec.layers), data=data)


def data_summary(model: BoundModel, train: Dataset, test: Dataset | None, percentile: float,
                 gamma: float | None = None) -> DataSummary:
    """Input norms (of the folded inputs when biases are folded), margins on train and test. γ is the given
    ``gamma``, or the ``percentile`` of the training margins rounded down to the grid of
    :mod:`boundcalc.margin_grid` (the bounds then take the union bound over that grid)."""
    graph = model.forward_graph
    stats = input_stats(train.x, train.file)
    frobenius, max_norm = stats.frobenius, stats.max_norm
    if model.folded:   # x̃ = [x, 1]
        frobenius, max_norm = math.hypot(frobenius, math.sqrt(stats.m)), math.hypot(max_norm, 1.0)
    train_margins = margins(forward(graph, train.x, model.weights, model.biases), train.y)
    train_stats = margin_stats(train_margins, percentile, gamma=gamma)
    if train_stats.gamma <= 0:
        raise BoundcalcError(f"the training margin at percentile {percentile:g} is {train_stats.gamma:.3g} ≤ 0 (train "
                             f"error {train_stats.error:.1%}); choose a larger --margin-percentile")
    grid = None
    if gamma is None and model.spec.loss.margin is not None:
        grid = grid_point(train_stats.gamma)
        train_stats = margin_stats(train_margins, percentile, gamma=grid.gamma)
    test_stats = None
    if test is not None:
        test_stats = margin_stats(margins(forward(graph, test.x, model.weights, model.biases), test.y), percentile,
                                  gamma=train_stats.gamma)
    return DataSummary(train.file, stats.m, frobenius, max_norm, train_stats, test_stats, grid,
                       max_linf=max_abs(train.x.reshape(stats.m, -1)), max_token_norm=_max_token_norm(train.x))


def _max_token_norm(x) -> float | None:
    """B_X = max over samples and tokens of ‖x_it‖₂ for (samples, tokens, dim) inputs (None for other data), on
    x/max|x| and rescaled, as :func:`boundcalc.measure.data.input_stats` forms its norms."""
    import torch

    if x.dim() != 3:
        return None
    scale = max_abs(x.reshape(x.shape[0], -1)) or 1.0
    return scale * float(torch.linalg.vector_norm(x.to(torch.float64) / scale, dim=2).max())


def evaluate_bounds(model: BoundModel, options: MeasureOptions, *, data: DataSummary | None,
                    given: dict[str, float], constants: dict[str, float], delta: float, use_init: bool,
                    keys: list[str] | None = None) -> Evaluation:
    """Every registry entry (or ``keys``) at the measured values."""
    spec = evaluation_spec(model.spec, model.folded, model.biased_layers)
    values = {**constants, "delta": delta, **layer_values(model, options, use_init), **model.extra_values}
    if data is not None:
        values.update(m=float(data.m), X_F=data.frobenius, R=data.max_norm, gamma=data.train.gamma)
        if data.max_token_norm is not None:
            values["B_X"] = data.max_token_norm
        _check_sample_count(spec, data.m)
    values.update(given)
    _bind_spec_symbols(spec, values)
    spec, chosen_delta = _confidence_for_margin_grid(spec, values, data.margin_grid if data is not None else None)
    view = NetworkView(spec)
    measured = NetworkView(spec, view.graph, MeasuredQuantities(spec.symbols, values))
    has_conv = any(wm.is_conv for wm in model.measurements.values())
    results = []
    for key in keys or list(REGISTRY):
        entry = REGISTRY[key]
        if entry.numeric is not None:
            results.append(_evaluate_numeric(entry, view, values, model, data, options, has_conv))
            continue
        applied = entry.apply(measured)
        if not isinstance(applied, Applied):
            results.append(BoundValue(key, entry.title, entry.status, False, reason=applied.reason))
            continue
        results.append(_evaluate_closed_form(applied, spec, values, data, options, has_conv))
    assumptions = _assumptions(model, options, data, constants, chosen_delta, use_init, given)
    return Evaluation(spec=model.spec.name, checkpoint="", values=values, bounds=results, assumptions=assumptions,
                      data=data, measurements=model.measurements, warnings=outside_declared_class(model, values),
                      folded=model.folded)


def evaluate_checkpoint(spec: Spec, checkpoint: Checkpoint, options: MeasureOptions, *, train: Dataset | None,
                        test: Dataset | None, percentile: float, constants: dict[str, float], delta: float,
                        init: Checkpoint | None = None, biases: str = "fold", allow_unused: bool = False,
                        keys: list[str] | None = None, given: dict[str, float] | None = None,
                        inferred: dict[str, int] | None = None, on_tensor=None) -> Evaluation:
    """The whole ``boundcalc evaluate`` pipeline on loaded inputs: bind and measure, summarise the data,
    evaluate the bounds (``test`` needs ``train``: γ is chosen on the training data). ``inferred`` sizes
    (:func:`boundcalc.measure.infer.concrete_spec`) are listed in the assumptions."""
    model = bind_and_measure(spec, checkpoint, options, init=init, biases=biases, allow_unused=allow_unused,
                             **({"on_tensor": on_tensor} if on_tensor else {}))
    summary = (data_summary(model, train, test, percentile, gamma=_fixed_margin(spec, given or {}))
               if train is not None else None)
    result = evaluate_bounds(model, options, data=summary, given=given or {}, constants=constants, delta=delta,
                             use_init=init is not None, keys=keys)
    result.checkpoint = str(checkpoint.path)
    result.assumptions += [f"{name} = {value} (inferred from the checkpoint's tensor shapes)"
                           for name, value in sorted((inferred or {}).items())]
    result.assumptions += [f"{wm.tensor}: {note}" for wm in model.measurements.values() for note in wm.notes]
    if checkpoint.unindexed:
        names = checkpoint.unindexed
        result.assumptions.append(f"{len(names)} tensor(s) {UNINDEXED}: {', '.join(names[:10])}"
                                  + (" …" if len(names) > 10 else ""))
    return result


def _evaluate_numeric(entry: PriorBound, view: NetworkView, values: dict[str, float], model: BoundModel,
                      data: DataSummary | None, options: MeasureOptions, has_conv: bool) -> BoundValue:
    """An entry that evaluates itself on the numbers (its ``numeric`` hook, with the network-level values its
    ``measure`` gives), after its requirements."""
    reason = entry.requirements.violation(view)
    out = BoundValue(entry.key, entry.title, entry.status, True, caveats=entry.caveats, method=entry.numeric.method)
    try:
        if reason is not None:
            raise NotApplicable(reason)
        if entry.numeric.measure is not None:
            values = {**entry.numeric.measure(model, data), **values}
        complexity, gap = entry.numeric.evaluate(view, values)
    except NotApplicable as err:
        return BoundValue(entry.key, entry.title, entry.status, False, reason=str(err))
    except EvaluationError as err:
        out.applies, out.reason = False, f"cannot evaluate: {err}"
        return out
    return _with_numbers(out, complexity, gap, view.spec, data, options, has_conv and entry.numeric.layer_norms)


def _evaluate_closed_form(applied: Applied, spec: Spec, values: dict[str, float], data: DataSummary | None,
                          options: MeasureOptions, has_conv: bool) -> BoundValue:
    entry, formula = applied.entry, applied.formula
    out = BoundValue(entry.key, entry.title, applied.status, True, caveats=applied.caveats,
                     method="closed form at the measured values (sympy floats, then log space)")
    try:
        complexity, gap = positive_log_real(formula.complexity, values), positive_log_real(formula.gap, values)
    except EvaluationError as err:
        out.applies, out.reason = False, f"cannot evaluate: {err}"
        return out
    return _with_numbers(out, complexity, gap, spec, data, options, has_conv)


def _with_numbers(out: BoundValue, complexity: LogReal, gap: LogReal, spec: Spec, data: DataSummary | None,
                  options: MeasureOptions, has_conv: bool) -> BoundValue:
    """``out`` with its complexity, gap, test-error bound, verdict and the conv-norm caveat filled in."""
    out.complexity, out.complexity_log10 = float(complexity), complexity.log10
    out.gap, out.gap_log10 = float(gap), gap.log10
    if data is not None and spec.loss.margin is not None:
        out.test_error_bound = data.train.margin_risk + out.gap
    reference = out.test_error_bound if out.test_error_bound is not None else out.gap
    out.vacuous = None if out.status == "order" else reference >= 1.0
    if has_conv and options.conv_norm not in UPPER_BOUND_METHODS and out.status != "order":
        out.caveats = out.caveats + (f"conv operator norms by '{options.conv_norm}' are not upper bounds, so this "
                                     "number is not a guaranteed bound",)
    return out


def _fixed_margin(spec: Spec, given: dict[str, float]) -> float | None:
    """The margin when it is not chosen from the data: a number in the spec, or γ given with --set."""
    margin = spec.loss.margin
    if margin is not None and margin.is_number:
        return float(margin)
    return given.get("gamma")


def _confidence_for_margin_grid(spec: Spec, values: dict[str, float],
                                grid: MarginGridPoint | None) -> tuple[Spec, float]:
    """The spec's δ (a number, or a symbol such as --delta's ``delta``) at ``values``; with γ chosen from the data,
    every confidence term then uses δ_k = δ·weight (the union bound over the γ grid): ``values['delta']`` is set
    to δ_k and the returned spec's δ is the symbol ``delta``."""
    base = float(positive_log_real(spec.loss.delta, values))
    if grid is None:
        return spec, base
    values["delta"] = base * grid.weight
    return replace(spec, loss=replace(spec.loss, delta=spec.symbols("delta"))), base


def _bind_spec_symbols(spec: Spec, values: dict[str, float]) -> None:
    """The spec's data-norm, margin, Lipschitz and δ symbols must all have values; say which are missing."""
    needed = set()
    for expr in (spec.data.norm, spec.data.samples, spec.loss.delta, spec.loss.lipschitz, spec.loss.margin):
        if expr is not None:
            needed |= {s.name for s in sp.sympify(expr).free_symbols}
    missing = sorted(needed - set(values))
    if missing:
        raise BoundcalcError(f"no value for {', '.join(missing)}: pass --data FILE.npz (gives m, X_F, R and the "
                             f"margin γ) or --set {missing[0]}=…")


def _check_sample_count(spec: Spec, m: int) -> None:
    samples = spec.data.samples
    if samples.is_number and int(samples) != m:
        raise BoundcalcError(f"{spec.file}: the spec says m = {samples} samples but the data file has {m}")


def _last_weight_layer(items) -> Layer | None:
    last = None
    for item in items:
        if isinstance(item, Repeat):
            last = _last_weight_layer(item.body) or last
        elif OPS[item.op].flags.weights:
            last = item
    return last


def _assumptions(model: BoundModel, options: MeasureOptions, data: DataSummary | None, constants: dict[str, float],
                 delta: float, use_init: bool, given: dict[str, float]) -> list[str]:
    out = [f"C1 = {constants['C1']:g}, C2 = {constants['C2']:g} (Maurer's universal constants; true values unpublished, "
           "so chain-rule bounds are conditional on them)",
           f"δ = {delta:g} (confidence 1 − δ)",
           "each bound is evaluated for the class whose norm/rank constraints equal the measured values at the trained "
           "weights (no union bound over constraint levels)",
           "spec constraint values (spectral/frobenius/rank) are replaced by the measured ones"]
    out += options.describe()
    out.append("(2,1) norms b_i: " + ("distance to --init, ‖(W − W₀)ᵀ‖₂,₁" if use_init else "reference M = 0, ‖Wᵀ‖₂,₁")
               + (" (conv layers: of the full operator, one row per output channel and position)"
                  if any(wm.is_conv for wm in model.measurements.values()) else ""))
    out += model.notes
    out += [f"{wm.layer or wm.tensor}: {note}" for wm in model.measurements.values() for note in wm.notes]
    if data is not None:
        out.append(f"data {data.file}: m = {data.m}, ‖X‖_F = {data.frobenius:.6g}, R = max‖x_i‖ = {data.max_norm:.6g}"
                   + (" (inputs with the constant coordinate)" if model.folded else ""))
        out += _margin_lines(model.spec, data, delta)
        out.append("test-error bound = empirical margin risk + gap; vacuous when ≥ 1 (order-only values are never "
                   "called bounds)")
    for name, value in sorted(given.items()):
        out.append(f"{name} = {value:g} (--set)")
    out += [f"status {s}: {m}" for s, m in STATUS_MEANING.items()]
    return out


def _margin_lines(spec: Spec, data: DataSummary, delta: float) -> list[str]:
    """How γ was chosen, and the union bound over γ when the data chose it."""
    train = data.train
    if data.margin_grid is not None:
        head = [f"margin γ = {train.gamma:.6g}: the {train.percentile:g}th percentile of the training margins "
                f"({data.margin_grid.chosen:.6g}) rounded down to the grid", data.margin_grid.describe(delta)]
    elif spec.loss.margin is None:
        head = [f"γ = {train.gamma:.6g} (the {train.percentile:g}th percentile of the training margins) is a "
                "diagnostic only: the spec's loss is Lipschitz, so no bound uses it"]
    else:
        head = [f"margin γ = {train.gamma:.6g} (given by the spec or --set, not chosen from the data: no union bound "
                "over γ)"]
    return head + [f"empirical margin risk = fraction of training samples with margin ≤ γ = {train.margin_risk:.4f}"]


__all__ = ["evaluate_bounds", "data_summary", "evaluation_spec", "layer_values", "Evaluation", "BoundValue",
           "DataSummary", "CONV_NORM_METHODS"]
