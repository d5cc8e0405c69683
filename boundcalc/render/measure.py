"""Rendering of measurements (``boundcalc measure``): a rich table, the method panel, JSON.

Nothing here computes; every number comes from :mod:`boundcalc.measure`. Imports rich and the measure
dataclasses only (no torch, no sympy), so ``boundcalc measure`` starts fast.
"""
from __future__ import annotations

import json
import math
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boundcalc.measure.quantities import MeasureOptions, WeightMeasurement
from boundcalc.render.escape import one_line, plain


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return str(value)
