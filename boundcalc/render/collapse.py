"""Rendering of ``boundcalc collapse``: a rich table, JSON, and a per-layer figure (values computed in
:mod:`boundcalc.measure.collapse`)."""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from boundcalc.measure.collapse import LayerCollapse
from boundcalc.measure.quantities import MeasureOptions
from boundcalc.render.escape import plain
from boundcalc.render.evaluate import num
from boundcalc.render.plots import per_layer_panels

NOTES = (
    "NC1 = tr(Σ_W Σ_B^†)/C on the layer's input features (Papyan et al. 2020); Σ_B^† over the centred class "
    "means' nonzero singular values",
    "TCV = Σ_c Σ_(i∈c) ‖z_i − μ_c‖, total within-class variation of the layer's input (Zangrando et al. 2024)",
    "rank, stable rank and dist_K are of the weight as trained (biases used in the forward pass only; a conv "
    "weight as its reshaped c_out × c_in·k_h·k_w matrix); K = number of classes",
    "dist_K·λ/TCV: Zangrando et al. predict it stays bounded at critical points of loss + (λ/2)Σ‖W‖_F² "
    "(order only, constants unknown)",
)


def collapse_view(rows: list[LayerCollapse], options: MeasureOptions, weight_decay: float | None,
                  title: str) -> Group:
    table = Table(title=plain(title))
    for column in ("layer", "tensor", "in dim", "NC1", "TCV", "rank", "srank", f"dist_{rows[0].k}", "dist_K·λ/TCV"):
        table.add_column(column, justify="left" if column in ("layer", "tensor") else "right")
    for r in rows:
        table.add_row(plain(r.layer), plain(r.tensor), str(r.features), num(r.nc1), num(r.tcv), str(r.rank),
                      num(r.stable_rank), num(r.dist_k), num(r.ratio, 3))
    notes = [*NOTES, "srank = stable rank ‖W‖_F²/‖W‖₂²", options.describe()[1],
             f"weight decay λ = {weight_decay:g}" if weight_decay is not None else "no --weight-decay: ratio not computed"]
    return Group(table, Text("\n".join(f"• {n}" for n in notes)))


def collapse_dict(rows: list[LayerCollapse], options: MeasureOptions, weight_decay: float | None, spec: str,
                  checkpoint: str, data: str) -> dict:
    return {"spec": spec, "checkpoint": checkpoint, "data": data, "weight_decay": weight_decay,
            "layers": [r.to_dict() for r in rows], "notes": [*NOTES, options.describe()[1]]}


def collapse_json(*args) -> str:
    return json.dumps(collapse_dict(*args), indent=2, allow_nan=False, default=str)


def collapse_plot(rows: list[LayerCollapse], path: str | Path, title: str) -> None:
    per_layer_panels([r.layer for r in rows],
                     {"NC1": [r.nc1 for r in rows], "TCV": [r.tcv for r in rows], "rank": [r.rank for r in rows],
                      f"dist_{rows[0].k}": [r.dist_k for r in rows],
                      **({"dist_K·λ/TCV": [r.ratio for r in rows]} if rows[0].ratio is not None else {})},
                     title, path, log=("NC1",))
