"""A certificate as a rich panel, JSON or Markdown. Rendering only: every number was computed in
:mod:`boundcalc.certify`; user strings (paths, the spec's name) are escaped for their target."""
from __future__ import annotations

import json
from typing import Any

import sympy as sp
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from boundcalc.certify.certificate import Certificate, Term
from boundcalc.render.escape import md_text, plain
from boundcalc.render.json_ import expression, finite


def formula_text(expr: sp.Expr) -> str:
    """The formula in plain text, with kl⁻¹ written as such."""
    return sp.sstr(expr).replace("klinv", "kl⁻¹")


def _value(term: Term) -> str:
    if term.unit == "error":
        return f"{term.value:.4f}"
    return f"{term.value:.4g} {term.unit}"


def _share(term: Term) -> str:
    return "—" if term.share is None else f"{term.share:.1%}"


def certificate_dict(cert: Certificate) -> dict[str, Any]:
    return finite({
        "certificate": cert.certificate,
        "delta": cert.delta,
        "confidence": f"holds with probability ≥ {1 - cert.delta:g} over the draw of the n = {cert.n} bound samples",
        "vacuous": cert.vacuous,
        "method": cert.method,
        "bound": cert.bound,
        "spec": cert.spec,
        "checkpoint": cert.checkpoint,
        "classifier": cert.classifier,
        "train_error": cert.train_error,
        "test_error": cert.test_error,
        "checkpoint_errors": cert.checkpoint_errors,
        "n": cert.n,
        "terms": [{"name": t.name, "value": t.value, "unit": t.unit, "share": t.share, "note": t.note}
                  for t in cert.terms],
        "formula": {**expression(cert.formula), "symbolic": expression(cert.formula_symbolic),
                    "note": "klinv(q, c) = sup{p ∈ [q, 1] : kl(q‖p) ≤ c}"},
        "assumptions": list(cert.assumptions),
        "details": cert.details,
    })


def certificate_json(cert: Certificate) -> str:
    return json.dumps(certificate_dict(cert), indent=2, ensure_ascii=False)


def _errors_line(cert: Certificate) -> str:
    parts = [f"certified classifier: train error {cert.train_error:.4f} (bound samples)"]
    if cert.test_error is not None:
        parts.append(f"test error {cert.test_error:.4f}")
    own = cert.checkpoint_errors
    parts.append("checkpoint itself: train " + f"{own['train']:.4f}"
                 + (f", test {own['test']:.4f}" if "test" in own else ""))
    return "; ".join(parts)


def certificate_view(cert: Certificate) -> Panel:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("term", "value", "share", "note"):
        table.add_column(column, justify="right" if column in ("value", "share") else "left")
    for term in cert.terms:
        table.add_row(term.name, _value(term), _share(term), term.note)
    verdict = "vacuous" if cert.vacuous else "non-vacuous"
    head = Text(f"error ≤ {cert.certificate:.4f} with probability ≥ {1 - cert.delta:g} ({verdict}; "
                f"{cert.method}, {cert.bound} bound, n = {cert.n})", style="bold")
    body = [head, Text("classifier: ") + plain(cert.classifier), Text(_errors_line(cert)), table,
            Text("formula: " + formula_text(cert.formula)), Text("assumptions:")]
    body += [Text("  - ") + plain(line) for line in cert.assumptions]
    title = Text("certificate: ") + plain(cert.spec) + Text(" on ") + plain(cert.checkpoint)
    return Panel(Group(*body), title=title, title_align="left")


def certificate_markdown(cert: Certificate) -> str:
    lines = [f"## Certificate: {md_text(cert.spec)} on {md_text(cert.checkpoint)}", "",
             f"**error ≤ {cert.certificate:.4f}** with probability ≥ {1 - cert.delta:g} "
             f"({'vacuous' if cert.vacuous else 'non-vacuous'}; {cert.method}, {cert.bound} bound, n = {cert.n})", "",
             f"Classifier: {md_text(cert.classifier)}", "", md_text(_errors_line(cert)), "",
             "| term | value | share | note |", "|---|---|---|---|"]
    lines += [f"| {md_text(t.name)} | {_value(t)} | {_share(t)} | {md_text(t.note)} |" for t in cert.terms]
    lines += ["", f"Formula: `{formula_text(cert.formula)}`", "", "Assumptions:", ""]
    lines += [f"- {md_text(line)}" for line in cert.assumptions]
    return "\n".join(lines) + "\n"
