"""Rendering of binding reports and evaluations (``boundcalc evaluate``); measurements (``boundcalc measure``)
are rendered by :mod:`boundcalc.render.measure`, re-exported here.

Rich tables, JSON and Markdown. Nothing here computes; every number comes from ``measure`` or ``evaluate``.
"""
from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boundcalc.evaluate import BoundValue, Evaluation
from boundcalc.measure.binding import Binding
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.render.compare import STATUS_LABEL, caveat_lines
from boundcalc.render.escape import md_code, md_text, one_line, plain
from boundcalc.render.json_ import finite
from boundcalc.render.measure import _jsonable, measurement_table, measurements_json, method_lines, num  # noqa: F401


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


def _shape(shape) -> str:
    return "—" if shape is None else "×".join(map(str, shape))
