"""Rendering of measurements (``boundcalc measure``), binding reports and evaluations (``boundcalc evaluate``).

Rich tables, JSON and Markdown. Nothing here computes; every number comes from ``measure`` or ``evaluate``.
"""
from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boundcalc.evaluate import BoundValue, Evaluation
from boundcalc.measure.binding import Binding
from boundcalc.measure.quantities import MeasureOptions, WeightMeasurement
from boundcalc.render.compare import STATUS_LABEL, caveat_lines
from boundcalc.render.escape import md_code, md_text, one_line, plain
from boundcalc.render.json_ import finite


def num(value: float | None, digits: int = 4) -> str:
    """A number for a table: '—' for None, scientific beyond 1e6, 'inf' stays 'inf'."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


# -- measure ------------------------------------------------------------------------------------------
def measurement_table(items: list[WeightMeasurement], options: MeasureOptions, title: str,
                      folded: bool = False) -> Table:
    """One row per weight; with ``folded`` the shapes and norms are of the bias-folded matrices (said in the
    shape column's heading)."""
    has_init = any(wm.init for wm in items)
    has_conv = any(wm.conv for wm in items)
    table = Table(title=plain(title), show_lines=False)
    columns = ["tensor", "layer", "shape (bias folded)" if folded else "shape", "‖W‖₂", "‖W‖_F", "‖Wᵀ‖₂,₁", "rank",
               f"rank@{options.energy:g}", "stable rank", "eff. rank", f"dist_{options.tail_k}"]
    if has_init:
        columns += ["‖W−W₀‖₂", "‖W−W₀‖_F"]
    if has_conv:
        columns += ["op. norm fft", "op. norm power", "op. ‖·‖_F", "op. ‖Aᵀ‖₂,₁", "filter ‖K‖_F"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("tensor", "layer") or col.startswith("shape") else "right",
                         overflow="fold")
    for wm in items:
        q = wm.matrix
        row = [plain(wm.tensor), plain(wm.layer or ""), "×".join(map(str, wm.shape)), num(q.spectral),
               num(q.frobenius),
               num(wm.row_norm_21), str(q.rank), num(q.energy_rank), num(q.stable_rank), num(q.effective_rank),
               num(q.tail_energy)]
        if has_init:
            row += [num(wm.init["spectral"]), num(wm.init["frobenius"])] if wm.init else ["—", "—"]
        if has_conv:
            c = wm.conv
            row += [num(c.get(key)) for key in ("fft", "power", "operator_frobenius", "operator_row_norm_21",
                                                "filter_norm")]
        table.add_row(*row)
    return table


def method_lines(options: MeasureOptions, items: list[WeightMeasurement], with_spec: bool,
                 skipped: dict[str, list[str]] | None = None, notes: list[str] | None = None) -> Panel:
    lines = options.describe() + list(notes or []) + [f"{wm.tensor}: {note}" for wm in items for note in wm.notes]
    for reason, names in (skipped or {}).items():
        shown = ", ".join(names[:3]) + (f", … ({len(names) - 3} more)" if len(names) > 3 else "")
        lines.append(f"not measured, {reason}: {len(names)} tensor(s): {shown}")
    if with_spec and any(wm.conv for wm in items):
        lines.append("conv rows: ‖W‖₂ to dist_K are of the reshaped c_out × (c_in·kh·kw) kernel matrix; the op. "
                     "columns are norms of the convolution itself on the spec's input size")
    if not with_spec:
        lines.append("without --spec, conv kernels are measured as reshaped c_out × (c_in·kh·kw) matrices and biases "
                     "are not folded; give --spec for conv operator norms")
    return Panel(Text("\n".join("• " + one_line(line) for line in lines)), title="how these were measured",
                 expand=False)


def measurements_json(items: list[WeightMeasurement], options: MeasureOptions, checkpoint: str, kind: str,
                      skipped: dict[str, list[str]] | None = None, notes: list[str] | None = None,
                      folded: bool = False) -> str:
    return json.dumps({"checkpoint": checkpoint, "format": kind, "options": options.__dict__,
                       "method": options.describe() + list(notes or []), "biases_folded": folded,
                       "tensors": [wm.to_dict() for wm in items], "skipped": skipped or {}},
                      indent=2, ensure_ascii=False, default=_jsonable)


# -- binding ------------------------------------------------------------------------------------------
def binding_table(binding: Binding) -> Table:
    table = Table(title="checkpoint ↔ spec binding")
    for col in ("layer", "expects", "tensor", "has", "status", "detail"):
        table.add_column(col, overflow="fold")
    style = {"bound": "green", "unused": "yellow"}
    for row in binding.rows:
        table.add_row(plain(row.node), _shape(row.expected), plain(row.tensor or "—"), _shape(row.found),
                      Text(row.status, style=style.get(row.status, "red")), plain(row.detail))
    return table


# -- evaluate -----------------------------------------------------------------------------------------
def _flag(b: BoundValue) -> str:
    if b.vacuous is None:
        return "n/a (order only)" if b.status == "order" else "—"
    return "vacuous" if b.vacuous else "non-vacuous"


#: what the "complexity term" column holds, for every bound (not Ĝ_S, which ``derive`` prints)
COMPLEXITY_NOTE = ("complexity term = the class-dependent part of each gap bound (the gap bound without its confidence "
                   "term); "
                   "for pinto2024/pinto2024_tight it is 2√π·𝓛·Ĝ_S (𝓛: the loss's Lipschitz constant, √2/γ for a margin "
                   "loss), not Ĝ_S as `derive` prints it")


def evaluation_view(ev: Evaluation, options: MeasureOptions) -> Group:
    parts: list[Any] = [measurement_table(list(ev.measurements.values()), options,
                                          f"{ev.spec}: bound layers of {ev.checkpoint}", ev.folded)]
    if ev.data is not None:
        parts.append(data_table(ev))
    table = Table(title="bounds at the measured values", caption=COMPLEXITY_NOTE, show_lines=True)
    for col in ("bound", "status", "complexity term", "log10", "gap bound", "log10 gap", "test-error bound",
                "verdict"):
        table.add_column(col, justify="left" if col in ("bound", "status", "verdict") else "right",
                         overflow="fold")
    skipped = []
    for b in ev.bounds:
        if not b.applies:
            skipped.append(f"{b.key}: {b.reason}")
            continue
        label = STATUS_LABEL.get(b.status, b.status)
        table.add_row(b.key, label, num(b.complexity), num(b.complexity_log10), num(b.gap), num(b.gap_log10),
                      num(b.test_error_bound), _flag(b))
    parts.append(table)
    if ev.warnings:
        parts.append(Panel(Text("\n".join("! " + w for w in ev.warnings), style="bold red"), title="warnings",
                           expand=False))
    if skipped:
        parts.append(Panel(Text("\n".join(map(one_line, skipped))), title="not evaluated", expand=False))
    parts.append(Panel(Text("\n".join("• " + one_line(a) for a in ev.assumptions)), title="assumptions",
                       expand=False))
    caveats = evaluation_caveats(ev)
    if caveats:
        parts.append(Panel(Text("\n".join("• " + one_line(c) for c in caveats)), title="caveats", expand=False))
    return Group(*parts)


def evaluation_caveats(ev: Evaluation) -> list[str]:
    """Every evaluated bound's caveats, each prefixed by the bounds it belongs to."""
    return caveat_lines((b.key, c) for b in ev.bounds if b.applies for c in b.caveats)


def data_table(ev: Evaluation) -> Table:
    d = ev.data
    table = Table(title=f"data: m = {d.m}, ‖X‖_F = {num(d.frobenius)}, R = {num(d.max_norm)}")
    chosen = f"γ (p{d.train.percentile:g} of train, rounded down to 2^j)" if d.margin_grid else "γ (given)"
    for col in ("split", "m", "error", "min margin", "p5", "p10", chosen, "margin risk at γ"):
        table.add_column(col, justify="right")
    for split, s in (("train", d.train), ("test", d.test)):
        if s is not None:
            table.add_row(split, str(s.m), num(s.error), num(s.min), num(s.p5), num(s.p10), num(s.gamma),
                          num(s.margin_risk))
    if d.test is not None:
        table.caption = f"measured test gap (test error − train error) = {num(d.test.error - d.train.error)}"
    return table


def evaluation_dict(ev: Evaluation, options: MeasureOptions) -> dict[str, Any]:
    data = None
    if ev.data is not None:
        d = ev.data
        data = {"file": d.file, "m": d.m, "X_F": d.frobenius, "R": d.max_norm, "train": d.train.to_dict(),
                "test": d.test.to_dict() if d.test else None,
                "test_gap": (d.test.error - d.train.error) if d.test else None,
                "margin_grid": d.margin_grid.to_dict() if d.margin_grid else None}
    return {"spec": ev.spec, "checkpoint": ev.checkpoint, "values": ev.values, "data": data,
            "bounds": [_bound_dict(b) for b in ev.bounds], "complexity_means": COMPLEXITY_NOTE,
            "layers": [wm.to_dict() for wm in ev.measurements.values()], "biases_folded": ev.folded,
            "options": options.__dict__, "warnings": ev.warnings, "assumptions": ev.assumptions}


def evaluation_json(ev: Evaluation, options: MeasureOptions) -> str:
    return json.dumps(evaluation_dict(ev, options), indent=2, ensure_ascii=False, default=_jsonable)


def evaluation_markdown(ev: Evaluation) -> str:
    lines = [f"## {md_text(ev.spec)} on {md_code(ev.checkpoint)}", ""]
    lines += [f"**Warning:** {w}" for w in ev.warnings] + ([""] if ev.warnings else [])
    if ev.data is not None:
        lines += _data_markdown(ev)
    lines += ["| bound | status | complexity term | gap bound | test-error bound | verdict |",
              "|---|---|---|---|---|---|"]
    for b in ev.bounds:
        if b.applies:
            lines.append(f"| {b.key} | {STATUS_LABEL.get(b.status, b.status)} | {num(b.complexity)} | {num(b.gap)} | "
                         f"{num(b.test_error_bound)} | {_flag(b)} |")
    lines += ["", COMPLEXITY_NOTE + "."]
    lines += ["", "Not evaluated:", ""] + [f"- {b.key}: {one_line(b.reason)}" for b in ev.bounds if not b.applies]
    lines += ["", "Assumptions:", ""] + [f"- {one_line(a)}" for a in ev.assumptions]
    lines += ["", "Caveats:", ""] + [f"- {one_line(c)}" for c in evaluation_caveats(ev)]
    return "\n".join(lines) + "\n"


def _data_markdown(ev: Evaluation) -> list[str]:
    """Train (and test) error, margin risk at γ and the measured gap, as a Markdown table."""
    d = ev.data
    lines = [f"Data `{d.file}`: m = {d.m}, ‖X‖_F = {num(d.frobenius)}, R = {num(d.max_norm)}, γ = {num(d.train.gamma)}",
             "", "| split | m | error | margin risk at γ |", "|---|---|---|---|"]
    for split, s in (("train", d.train), ("test", d.test)):
        if s is not None:
            lines.append(f"| {split} | {s.m} | {num(s.error)} | {num(s.margin_risk)} |")
    if d.test is not None:
        lines += ["", f"Measured gap (test error − train error): {num(d.test.error - d.train.error)}"]
    return lines + [""]


def _bound_dict(b: BoundValue) -> dict[str, Any]:
    return {"key": b.key, "title": b.title, "status": b.status, "applies": b.applies, "reason": b.reason or None,
            "complexity": finite(b.complexity), "complexity_log10": b.complexity_log10, "gap": finite(b.gap),
            "gap_log10": b.gap_log10, "test_error_bound": b.test_error_bound, "vacuous": b.vacuous,
            "order_only": b.status == "order", "method": b.method, "caveats": list(b.caveats)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _shape(shape) -> str:
    return "—" if shape is None else "×".join(map(str, shape))
