"""The digits study's findings (findings.md), written from the same numbers as its tables (tables.py).

Every number in the text is a table cell, or is computed from the cells as the tables show them (rounded the same
way), and every comparison word ("above", "falls", "every") is decided from those numbers. So the text cannot
quote a number that the tables of the same run do not give.
"""
from __future__ import annotations

import math
from statistics import mean

from tables import (HYPERPARAMETERS, gap_cell, gap_log10_cell, lowrank_rows, rank_cell, ratio_cell, shown, tcv_cell,
                    three, two)

#: bounds that depend on the parameter count only (no norm)
PARAMETER_COUNT = ("vc2019",)
#: the bounds the low-rank section compares (the tight rule set and the two bounds it lands between)
TRIO = ("pinto2024_tight", "bartlett2017", "neyshabur2018")
LABELS = {"weight_decay": "weight decay", "width": "width", "depth": "depth", "rank": "the low-rank inner dimension"}
FOLLOWS = 0.5        # ψ ≥ this: the bound follows the hyperparameter; ψ ≤ −this: reversed
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def span(cells: list[str]) -> str:
    """'lo to hi' of table cells (or the one value), quoted as the cells show them."""
    cells = [c for c in cells if c != "—"]
    lo, hi = min(cells, key=float), max(cells, key=float)
    return lo if float(lo) == float(hi) else f"{lo} to {hi}"


def fold(before: float, after: float) -> str:
    """'falls 24-fold' / 'rises 2.0-fold' / 'does not change' between two shown values."""
    if before == after:
        return "does not change"
    if min(before, after) <= 0:
        return "falls" if after < before else "rises"
    ratio = max(before, after) / min(before, after)
    times = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}"
    if times == "1.0":
        return "barely changes"
    return f"{'falls' if after < before else 'rises'} {times}-fold"


def power_of_ten(value: float) -> str:
    return "10" + str(math.floor(math.log10(value))).translate(SUPERSCRIPT)


def ranking_findings(summary: dict, results: list[dict]) -> list[str]:
    bounds = [b for b in summary["bounds"] if b["kendall_tau"] is not None]
    norm = [b for b in bounds if b["key"] not in PARAMETER_COUNT]
    if not norm:
        return []
    taus = [two(b["kendall_tau"]) for b in norm]
    signs = {shown(t) > 0 for t in taus}
    sign = ("every norm-based bound correlates positively with the measured gap" if signs == {True} else
            "no norm-based bound correlates positively with the measured gap" if signs == {False} else
            "the norm-based bounds do not agree in sign")
    best = max(norm, key=lambda b: b["kendall_tau"])
    out = [f"1. **Ranking the models.** Over all {summary['evaluated']} evaluated models, {sign}: τ is {span(taus)} "
           f"(highest: `{best['key']}`)."]
    for b in (b for b in bounds if b["key"] in PARAMETER_COUNT):
        below = ", below every norm-based bound" if shown(two(b["kendall_tau"])) < min(map(shown, taus)) else ""
        out.append(f"   - `{b['key']}` sees nothing but the parameter count: τ = {two(b['kendall_tau'])}{below}.")
    psis = [two(b["psi"]) for b in norm if b["psi"] is not None]
    if psis:
        out.append(f"   - The granulated Ψ of the norm-based bounds is {span(psis)}. Per hyperparameter "
                   f"(ψ ≥ {FOLLOWS}: the bound follows it; ψ ≤ −{FOLLOWS}: it ranks it backwards):")
        out += [f"     - {line}" for line in psi_lines(bounds)]
    out += weight_decay_context(results)
    out += vacuity(summary, results)
    return out


def psi_lines(bounds: list[dict]) -> list[str]:
    """One line per hyperparameter: which bounds follow it, which reverse it, which do neither."""
    out = []
    for name in HYPERPARAMETERS:
        cells = [(b["key"], two(b["psi_by_hyperparameter"].get(name))) for b in bounds
                 if b["psi_by_hyperparameter"].get(name) is not None]
        if not cells:
            continue
        groups = {"followed by": [c for c in cells if shown(c[1]) >= FOLLOWS],
                  "ranked backwards by": [c for c in cells if shown(c[1]) <= -FOLLOWS],
                  "neither followed nor reversed by": [c for c in cells if -FOLLOWS < shown(c[1]) < FOLLOWS]}
        groups = {verb: group for verb, group in groups.items() if group}
        if len(groups) == 1:
            verb, group = next(iter(groups.items()))
            every = "any" if verb.startswith("neither") else "every"
            text = f"{verb} {every} bound (ψ = {span([c[1] for c in group])})"
        else:
            text = "; ".join(f"{verb} " + ", ".join(f"`{k}` ({v})" for k, v in group) for verb, group in groups.items())
        out.append(f"{LABELS[name]}: {text}.")
    return out


def _full_rank_by_decay(results: list[dict]) -> dict[float, list[dict]]:
    by_decay: dict[float, list[dict]] = {}
    for r in results:
        if r["ok"] and r["hyperparameters"].get("rank") == "full":
            by_decay.setdefault(r["hyperparameters"]["weight_decay"], []).append(r)
    return dict(sorted(by_decay.items()))


def weight_decay_context(results: list[dict]) -> list[str]:
    """The mean gap and training error of the full-rank models per weight decay (from results.csv)."""
    by_decay = _full_rank_by_decay(results)
    if len(by_decay) < 2:
        return []
    gaps = {wd: gap_cell(mean(r["gap"] for r in rows)) for wd, rows in by_decay.items()}
    train = {wd: gap_cell(mean(r["train_error"] for r in rows)) for wd, rows in by_decay.items()}
    first, last = min(by_decay), max(by_decay)
    out = ["   - Weight decay against the gap: the mean gap of the full-rank models at λ = "
           + ", ".join(f"{wd:g}: {gaps[wd]}" for wd in by_decay) + "; their mean training error "
           + ", ".join(f"{wd:g}: {train[wd]}" for wd in by_decay) + "."]
    if shown(gaps[last]) > shown(gaps[first]) and shown(train[last]) > shown(train[first]):
        out[-1] += (f" So the gap at λ = {last:g} is larger than at λ = {first:g}, and so is the training error: "
                    "those models underfit.")
    return out


def vacuity(summary: dict, results: list[dict]) -> list[str]:
    stated = [b for b in summary["bounds"] if b["status"] in ("exact", "derived")]
    if not stated:
        return []
    cells = [gap_log10_cell(r, b["key"]) for r in results if r["ok"] for b in stated]
    if all(c == "—" for c in cells):
        return []
    fractions = {b["key"]: b["non_vacuous_fraction"] for b in stated}
    if all(f == 0 for f in fractions.values()):
        head = "No exact or derived bound is non-vacuous on any model (test-error bound < 1)"
    else:
        head = "Non-vacuous fractions: " + ", ".join(f"`{k}` {f:.0%}" for k, f in fractions.items() if f is not None)
    return [f"   - {head}: their log10 gap bounds are {span(cells)} over all models."]


def collapse_findings(records: list[dict]) -> list[str]:
    if len(records) < 2:
        return []
    first, last = records[0], records[-1]
    k = first["layers"][0]["k"]
    r0, r1 = rank_cell(first["rank"]), rank_cell(last["rank"])
    lose = "lose rank" if shown(r1) < shown(r0) else "do not lose rank" if r0 == r1 else "gain rank"
    d0, d1 = three(first["dist_k"]), three(last["dist_k"])
    t0, t1 = tcv_cell(first["tcv"]), tcv_cell(last["tcv"])
    out = [f"2. **Rank collapse.** As λ grows from {first['weight_decay']:g} to {last['weight_decay']:g}, the hidden "
           f"weights {lose} (mean numeric rank {r0} → {r1}), and their tail energy beyond K = {k} "
           f"{fold(shown(d0), shown(d1))} (dist_K {d0} → {d1}). The within-class variation TCV of their inputs "
           f"{fold(shown(t0), shown(t1))} ({t0} → {t1})."]
    peaks = [max(shown(ratio_cell(layer["ratio"])) or 0.0 for layer in rec["layers"]) for rec in records]
    nonzero = [shown(ratio_cell(layer["ratio"])) for rec in records for layer in rec["layers"]]
    nonzero = [v for v in nonzero if v]
    if nonzero:
        trend = ("its largest per-layer value grows with λ" if all(a <= b for a, b in zip(peaks, peaks[1:]))
                 else "its largest per-layer value is not monotone in λ")
        constant = "is not constant" if len(set(peaks)) > 1 else "is constant"
        orders = list(dict.fromkeys([power_of_ten(min(nonzero)), power_of_ten(max(nonzero))]))
        out.append(f"   - So dist_K·λ/TCV {constant}: {trend}, with non-zero values of order {' to '.join(orders)}.")
        out.append("   - Zangrando et al. predict only that it stays *bounded*: these models are not at exact "
                   "critical points, and the theory gives an order, not a constant.")
    return out


def _difference(rows: list[dict], a: str, b: str) -> str | None:
    cells = [(shown(gap_log10_cell(r, a)), shown(gap_log10_cell(r, b))) for r in rows]
    diffs = [x - y for x, y in cells if x is not None and y is not None]
    if not diffs:
        return None
    lo, hi = min(diffs), max(diffs)
    if lo > 0 or hi < 0:
        where = "above" if lo > 0 else "below"
        return f"`{a}` is {span([f'{abs(lo):.2f}', f'{abs(hi):.2f}'])} {where} `{b}`"
    return f"`{a}` − `{b}` is {lo:.2f} to {hi:.2f}"


def lowrank_findings(summary: dict, results: list[dict]) -> list[str]:
    rows = lowrank_rows(results)
    keys = [b["key"] for b in summary["bounds"]]
    if not rows.factorized or not all(k in keys for k in TRIO):
        return []
    n = len(rows.factorized)
    spread = max(max(v) - min(v) for v in ([shown(gap_log10_cell(r, k)) for k in TRIO] for r in rows.factorized)
                 if None not in v)
    out = [f"3. **Where the low-rank bound sits.** On the {n} factorized variants, "
           + ", ".join(f"`{k}`" for k in TRIO[:-1]) + f" and `{TRIO[-1]}` lie within {spread:.2f} of each other "
           "(log10 gap bound)."]
    pairs = [("pinto2024", "pinto2024_tight"), ("golowich2018", "pinto2024")]
    differences = (_difference(rows.factorized, a, b) for a, b in pairs if a in keys and b in keys)
    out += [f"   - {text}." for text in differences if text]
    tops = [max(keys, key=lambda k: shown(gap_log10_cell(r, k)) or -math.inf) for r in rows.factorized]
    top = max(set(tops), key=lambda k: (tops.count(k), -keys.index(k)))
    out.append(f"   - `{top}` is the highest on {tops.count(top)} of {n} "
               f"(log10 {span([gap_log10_cell(r, top) for r in rows.factorized])}).")
    out += reference_comparison(rows, [k for k in keys if k not in PARAMETER_COUNT])
    return out


def reference_comparison(rows, norm_keys: list[str]) -> list[str]:
    """Factorized models against the full-rank model of the same width, depth and weight decay."""
    def shape(r: dict) -> tuple:
        h = r["hyperparameters"]
        return h.get("width"), h.get("depth"), h.get("weight_decay")

    reference = {shape(r): r for r in rows.reference}
    pairs = [(r, reference[shape(r)]) for r in rows.factorized if shape(r) in reference]
    if not pairs:
        return []
    cells = [(shown(gap_log10_cell(r, k)), shown(gap_log10_cell(ref, k))) for r, ref in pairs for k in norm_keys]
    cells = [(a, b) for a, b in cells if a is not None and b is not None]
    larger = sum(1 for a, b in cells if a > b)
    verdict = ("every norm-based bound is larger on every factorized model than on the full-rank model of its "
               "weight decay, so none of them rewards the small inner dimension" if larger == len(cells) else
               f"a norm-based bound is larger on the factorized model than on the full-rank model of its weight "
               f"decay in {larger} of {len(cells)} (bound, model) pairs")
    def worst(models) -> str:
        return max((gap_cell(r["train_error"]) for r in models), key=float)

    gaps = span([gap_cell(r["gap"]) for r, _ in pairs]), span([gap_cell(ref["gap"]) for _, ref in pairs])
    return [f"   - Against the full-rank models of the same λ, {verdict}. The factorized models' training error is "
            f"at most {worst(r for r, _ in pairs)} (full-rank: {worst(ref for _, ref in pairs)}); their measured gap "
            f"is {gaps[0]} against {gaps[1]}."]


def findings_markdown(summary: dict, results: list[dict], records: list[dict]) -> str:
    """findings.md: the numbered findings, every number taken from the tables of results.md."""
    head = ["Generated by `run.py` from the tables of the same run (`results.md`, `results/`): every number is a "
            "table cell or computed from the cells as shown.", ""]
    body = ranking_findings(summary, results) + collapse_findings(records) + lowrank_findings(summary, results)
    return "\n".join(head + body) + "\n"
