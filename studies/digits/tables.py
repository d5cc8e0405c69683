"""The digits study's tables (results.md), rendered from what `boundcalc zoo evaluate` and `boundcalc collapse`
returned. The findings (findings.py) quote these tables through the same formatters, so text and tables agree.
"""
from __future__ import annotations

from dataclasses import dataclass


def two(value: float | None) -> str:
    """τ, Ψ, ψ and log10 bounds: two decimals; '—' for none."""
    return "—" if value is None else f"{value:.2f}"


def gap_cell(value: float) -> str:
    return f"{value:.3f}"


def rank_cell(value: float) -> str:
    return f"{value:.1f}"


def three(value: float) -> str:
    """dist_K and NC1: three significant digits."""
    return f"{value:.3g}"


def tcv_cell(value: float) -> str:
    return f"{value:.4g}"


def ratio_cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.2e}"


def shown(text: str) -> float | None:
    """The number a cell shows (what the findings compute with, so that they quote the tables exactly)."""
    return None if text == "—" else float(text)


HYPERPARAMETERS = ("weight_decay", "width", "depth", "rank")


@dataclass(frozen=True)
class LowRankRows:
    """The low-rank table: the factorized models and, before them, the full-rank model of the same width, depth
    and weight decay for each of them (when the grid has it)."""

    reference: list[dict]
    factorized: list[dict]


def lowrank_rows(results: list[dict]) -> LowRankRows:
    ok = [r for r in results if r["ok"]]
    factorized = [r for r in ok if r["hyperparameters"].get("rank") != "full"]

    def shape(r: dict) -> tuple:
        h = r["hyperparameters"]
        return h.get("width"), h.get("depth"), h.get("weight_decay")

    wanted = {shape(r) for r in factorized}
    reference = [r for r in ok if r["hyperparameters"].get("rank") == "full" and shape(r) in wanted]
    return LowRankRows(reference, factorized)


def bound_keys(summary: dict) -> list[str]:
    return [b["key"] for b in summary["bounds"]]


def gap_log10_cell(result: dict, key: str) -> str:
    return two(result["bounds"].get(key, {}).get("gap_log10"))


def ranking_table(summary: dict, labels: dict[str, str] | None = None, biases: str = "biases folded") -> list[str]:
    """τ, p(τ), Ψ, ψ per hyperparameter (``labels``: column name → header, default the digits grid's) and the
    non-vacuous fraction of every bound that `zoo evaluate` evaluated; ``biases`` says how biases were treated."""
    labels = labels or {name: name.replace("_", " ") for name in HYPERPARAMETERS}
    out = ["### Does the bound track the gap? (Kendall τ and granulated Ψ over all models)", "",
           f"{summary['evaluated']} of {summary['models']} models evaluated; C1 = C2 = 1 assumed; "
           f"γ = {summary['settings']['margin_percentile']:g}th percentile of the training margins, rounded down "
           f"to the grid {{2^j}} of the union bound over γ; {biases}.", ""]
    for warning in summary.get("warnings", []):
        out += [f"> {warning}", ""]
    out += ["| bound | status | τ | p(τ) | Ψ | " + " | ".join(f"ψ({label})" for label in labels.values())
            + " | non-vacuous |", "|---|---|---|---|---|" + "---|" * len(labels) + "---|"]
    for b in summary["bounds"]:
        per = b["psi_by_hyperparameter"]
        nv = "—" if b["non_vacuous_fraction"] is None else f"{b['non_vacuous_fraction']:.0%}"
        p_value = b.get("kendall_tau_p_value")
        p_cell = "—" if p_value is None else f"{p_value:.2g}"
        out.append(f"| {b['key']} | {b['status']} | {two(b['kendall_tau'])} | {p_cell} | {two(b['psi'])} | "
                   + " | ".join(two(per.get(h)) for h in labels) + f" | {nv} |")
    for failed in summary["failed"]:
        out.append(f"\nNot evaluated: {failed['id']}: {failed['error']}")
    return out


def collapse_table(records: list[dict], figure_name: str) -> list[str]:
    out = ["### Rank collapse against weight decay (`boundcalc collapse`)", "",
           f"![rank, dist_K and TCV against weight decay]({figure_name})", "",
           "Means over the hidden-to-hidden weights (the layers fed by hidden features); the last column lists "
           "every layer.", "",
           "| λ | mean rank | mean dist_K | mean TCV | mean NC1 | dist_K·λ/TCV per layer |",
           "|---|---|---|---|---|---|"]
    for rec in records:
        ratios = ", ".join(ratio_cell(layer["ratio"]) for layer in rec["layers"])
        out.append(f"| {rec['weight_decay']:g} | {rank_cell(rec['rank'])} | {three(rec['dist_k'])} | "
                   f"{tcv_cell(rec['tcv'])} | {three(rec['nc1'])} | {ratios} |")
    return out


def lowrank_table(summary: dict, results: list[dict]) -> list[str]:
    rows = lowrank_rows(results)
    if not rows.factorized:
        return []
    keys = bound_keys(summary)
    out = ["### Low-rank variants: log10 of each gap bound (lower is better)", "",
           "The factorized models, after the full-rank models of the same width, depth and weight decay.", "",
           "| model | train error | gap | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
    for r in rows.reference + rows.factorized:
        out.append(f"| {r['id']} | {gap_cell(r['train_error'])} | {gap_cell(r['gap'])} | "
                   + " | ".join(gap_log10_cell(r, k) for k in keys) + " |")
    return out


def results_markdown(summary: dict, results: list[dict], records: list[dict], figure_name: str,
                     settings_line: str) -> str:
    """results.md: how the run was made, then the three tables."""
    parts = [[settings_line], ranking_table(summary), collapse_table(records, figure_name),
             lowrank_table(summary, results)]
    return "\n\n".join("\n".join(part) for part in parts if part) + "\n"


def not_applicable_rows(results: list[dict], family) -> list[str]:
    """Each bound that does not apply to some model, with `evaluate`'s reason, per family (``family(result)``
    names a result's family; one row for all of them where the reason is the same)."""
    reasons: dict[str, dict[str, str]] = {}
    for r in results:
        for key, bound in r["bounds"].items():
            if bound.get("applies") is False:
                reasons.setdefault(key, {}).setdefault(family(r), bound["reason"])
    if not reasons:
        return []
    families = list(dict.fromkeys(family(r) for r in results))
    out = ["### Bounds that do not apply, and why", "", "| bound | architectures | why |", "|---|---|---|"]
    for key, by_family in reasons.items():
        grouped: dict[str, list[str]] = {}
        for name, reason in by_family.items():
            grouped.setdefault(reason, []).append(name)
        for reason, names in grouped.items():
            out.append(f"| {key} | {'all' if len(names) == len(families) else ', '.join(names)} | {reason} |")
    return out


def models_table(summary: dict, results: list[dict], extra: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Per model: train and test error, measured gap and the log10 gap bound of every evaluated bound, then the
    columns of ``extra`` (header → model id → cell; "—" for a model without one)."""
    keys = [b["key"] for b in summary["bounds"]]
    extra = extra or {}
    out = ["### Per model: log10 of each gap bound (lower is better)", "",
           "| model | train error | test error | gap | " + " | ".join([*keys, *extra]) + " |",
           "|---|---|---|---|" + "---|" * (len(keys) + len(extra))]
    for r in results:
        cells = [two(r["bounds"].get(k, {}).get("gap_log10")) for k in keys] if r["ok"] else ["—"] * len(keys)
        cells += [column.get(r["id"], "—") for column in extra.values()]
        out.append(f"| {r['id']} | {gap_cell(r['train_error'])} | {gap_cell(r['test_error'])} | "
                   f"{gap_cell(r['gap'])} | " + " | ".join(cells) + " |")
    return out


def tau_findings(results: list[dict], summary: dict) -> list[str]:
    """The head of a study's findings: the heading and the range of Kendall τ over the applicable bounds (one
    value when one bound applies), saying so when none reaches 0.3; [] when nothing was evaluated."""
    ok = [r for r in results if r["ok"]]
    taus = [b["kendall_tau"] for b in summary["bounds"] if b["kendall_tau"] is not None]
    if not ok or not taus:
        return []
    low, high = two(min(taus)), two(max(taus))
    span = low if low == high else f"{low} to {high}"
    return ["### Findings (computed from the tables below)", "",
            f"- Over the {len(ok)} evaluated models, Kendall τ of the applicable bounds is {span}"
            + (": none tracks the gap across this family." if max(taus) < 0.3 else ".")]
