"""Rendering of ``boundcalc zoo evaluate``: the per-model results (CSV and JSON files), the per-bound summary
(rich table or JSON) and scatter plots of each bound against the measured gap."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from boundcalc.errors import BoundcalcError
from boundcalc.render.escape import csv_cell, one_line, plain
from boundcalc.files import write_text_atomic
from boundcalc.render.evaluate import num
from boundcalc.render.json_ import finite
from boundcalc.render.plots import scatter
from boundcalc.pipeline import EvaluateSettings
from boundcalc.zoo.run import BoundSummary, ZooResult, not_applicable
from boundcalc.zoo.stats import MIN_MODELS

NOTES = (
    "τ: Kendall rank correlation between each bound's gap bound and the measured gap (test − train error from "
    "the manifest), (1/(n(n−1))) Σ sign·sign, ties 0 (Jiang et al. 2020)",
    "Ψ: granulated Kendall coefficient, τ within groups of models that differ in one hyperparameter, averaged "
    "over groups, then over hyperparameters; ψ_i per hyperparameter in the table and the JSON",
    "p: two-sided p-value of τ under independent rankings without ties (exact up to 60 models)",
    "rank correlations do not depend on unknown constant factors, so order-only bounds are ranked too; "
    "'non-vacuous' is only defined for exact/derived bounds",
)


def results_csv(results: list[ZooResult]) -> str:
    hyper = list(dict.fromkeys(k for r in results for k in r.hyperparameters))
    keys = list(dict.fromkeys(k for r in results for k in r.bounds))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(map(csv_cell, ["id", "file", *hyper, "train_error", "test_error", "gap", "ok", "error", "gamma",
                                   *[f"{k}.gap_log10" for k in keys], *[f"{k}.test_error_bound" for k in keys]]))
    for r in results:
        writer.writerow([csv_cell(r.id), csv_cell(r.file), *[csv_cell(r.hyperparameters.get(h, "")) for h in hyper],
                         r.train_error, r.test_error, r.gap, r.ok, csv_cell(r.error), _cell(r.gamma),
                         *[_cell(r.bounds.get(k, {}).get("gap_log10")) for k in keys],
                         *[_cell(r.bounds.get(k, {}).get("test_error_bound")) for k in keys]])
    return out.getvalue()


def _cell(value) -> str:
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else repr(value)


def summary_dict(results: list[ZooResult], summary: list[BoundSummary], settings: EvaluateSettings, spec: str,
                 data: str | None) -> dict:
    failed = [{"id": r.id, "file": r.file, "error": r.error} for r in results if not r.ok]
    return finite({
        "spec": spec, "data": data, "models": len(results), "evaluated": len(results) - len(failed),
        "failed": failed,
        "settings": {"constants": settings.constants, "margin_percentile": settings.percentile,
                     "delta": settings.delta, "biases": settings.biases},
        "bounds": [{"key": s.key, "status": s.status, "models": s.models, "kendall_tau": s.tau,
                    "kendall_tau_p_value": s.tau_p_value, "psi": s.psi,
                    "psi_by_hyperparameter": s.psi_by_hyperparameter, "non_vacuous_fraction": s.non_vacuous}
                   for s in summary],
        "warnings": sample_size_warnings(summary),
        "not_applicable": not_applicable(results),
        "notes": list(NOTES),
    })


def sample_size_warnings(summary: list[BoundSummary]) -> list[str]:
    """One line per group of bounds evaluated on fewer than MIN_MODELS models: τ and Ψ say little there."""
    by_n: dict[int, list[BoundSummary]] = {}
    for s in summary:
        if s.models < MIN_MODELS:
            by_n.setdefault(s.models, []).append(s)
    out = []
    for n, group in sorted(by_n.items()):
        p_values = sorted({num(s.tau_p_value, 3) for s in group if s.tau_p_value is not None})
        p_text = f"; p-value of τ: {', '.join(p_values)}" if p_values else ""
        out.append(f"only n = {n} model{'s' if n != 1 else ''} for {', '.join(s.key for s in group)}: with n < "
                   f"{MIN_MODELS}, Kendall τ and Ψ are not meaningful (τ = ±1 can arise by chance{p_text})")
    return out


#: the files ``write_results`` writes into ``--out``
RESULT_FILES = ("results.csv", "results.json", "summary.json")


def output_files(out: Path, plots: Path | None, keys: list[str]) -> list[Path]:
    """Every file ``zoo evaluate`` may write: the results in ``out`` and one plot per bound key in ``plots``."""
    return [out / name for name in RESULT_FILES] + ([plot_path(plots, key) for key in keys] if plots else [])


def plot_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.png"


def write_results(results: list[ZooResult], summary: dict, out: Path) -> list[Path]:
    """results.csv, results.json (every model) and summary.json in ``out``, each written atomically; returns
    the paths written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BoundcalcError(f"{out}: cannot write the results ({err})") from None
    texts = [results_csv(results), json.dumps([finite(r.to_dict()) for r in results], indent=1),
             json.dumps(summary, indent=2)]
    paths = [out / name for name in RESULT_FILES]
    for path, text in zip(paths, texts):
        write_text_atomic(path, text)
    return paths


def summary_view(summary: dict) -> Group:
    table = Table(title=plain(f"{summary['evaluated']} of {summary['models']} models evaluated ({summary['spec']})"))
    for column in ("bound", "status", "models", "Kendall τ", "p", "Ψ", "ψ per hyperparameter", "non-vacuous"):
        table.add_column(column, justify="left" if column in ("bound", "status", "ψ per hyperparameter") else "right")
    for b in summary["bounds"]:
        frac = "—" if b["non_vacuous_fraction"] is None else f"{b['non_vacuous_fraction']:.0%}"
        per = ", ".join(f"{name}: {num(value, 3)}" for name, value in b["psi_by_hyperparameter"].items()) or "—"
        table.add_row(*(Text(cell) for cell in (b["key"], b["status"], str(b["models"]), num(b["kendall_tau"], 3),
                                                num(b["kendall_tau_p_value"], 3), num(b["psi"], 3), per, frac)))
    lines = [f"! {w}" for w in summary["warnings"]] + [f"• {n}" for n in NOTES]
    s = summary["settings"]
    lines.append(f"• C1 = {s['constants']['C1']:g}, C2 = {s['constants']['C2']:g} (assumed); γ = "
                 f"{s['margin_percentile']:g}th percentile of training margins; δ = {s['delta']:g}; biases: {s['biases']}")
    for key, reason in summary["not_applicable"].items():
        lines.append(f"• {key} does not apply: {one_line(reason)}")
    for f in summary["failed"]:
        lines.append(one_line(f"✗ {f['id']} ({f['file']}): {f['error']}"))
    return Group(table, Text("\n".join(lines)))


def scatter_plots(results: list[ZooResult], summary: list[BoundSummary], folder: Path) -> list[Path]:
    """One scatter plot per bound: log10 gap bound against the measured gap."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BoundcalcError(f"{folder}: cannot create the plot folder ({err})") from None
    paths = []
    for s in summary:
        rows = [r for r in results if r.ok and r.bounds.get(s.key, {}).get("gap_log10") is not None]
        if not rows:
            continue
        path = plot_path(folder, s.key)
        tau = "—" if s.tau is None else f"{s.tau:.2f}"
        scatter([r.gap for r in rows], [r.bounds[s.key]["gap_log10"] for r in rows], xlabel="measured gap",
                ylabel=f"log10 gap bound ({s.status})", title=f"{s.key}: Kendall τ = {tau}", path=path)
        paths.append(path)
    return paths
