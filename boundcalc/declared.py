"""Warnings for a checkpoint outside the spec's declared class: a spec that declares ``rank: 4`` or
``spectral: 2`` and a checkpoint whose measured value exceeds it (the bounds are then evaluated at the measured
value, i.e. for a larger class than the spec declares)."""
from __future__ import annotations

from boundcalc.measure.run import BoundModel
from boundcalc.numerics import EvaluationError, positive_log_real

#: spec constraint -> the symbol kind that holds its measured value, and what it is called
CONSTRAINT_SYMBOLS = {"spectral": ("s", "‖W‖₂"), "frobenius": ("f", "‖W‖_F"), "rank": ("r", "rank"),
                      "row_norm": ("b", "‖Wᵀ‖₂,₁"), "filter_norm": ("w", "filter norm")}
#: a measured norm above its declared bound by less than this (relative) is rounding, not a violation
DECLARED_RTOL = 1e-9


def outside_declared_class(model: BoundModel, values: dict[str, float]) -> list[str]:
    """One warning per declared constraint (spec ``rank: 4``, ``spectral: 2`` …) that the measured checkpoint
    exceeds: the bounds are then evaluated at the measured value, for a larger class than the spec declares."""
    out = []
    for slot in model.binding.slots:
        for key, (kind, label) in CONSTRAINT_SYMBOLS.items():
            declared, measured = slot.layer.params.get(key), values.get(f"{kind}_{slot.node}")
            if declared is None or measured is None:
                continue
            try:
                bound = float(positive_log_real(declared, values))
            except EvaluationError:
                continue   # a constraint written in symbols without values cannot be checked
            if measured <= bound * (1 + DECLARED_RTOL):
                continue
            fold = (" (the folded matrix [[W, b], [0, 1]] has rank up to rank W + 1)"
                    if key == "rank" and model.folded else "")
            out.append(f"{slot.node}: measured {label} {measured:.6g} > declared {key} {bound:.6g}{fold}: the "
                       "checkpoint is outside the spec's declared class; the bounds are evaluated at the measured value")
    return out
