"""The repository is self-contained: nothing a user reads cites a file outside it, and every citation of a
section of a document in docs/ (``docs/references.md §9.2``) names a heading that exists."""
import re
from pathlib import Path

import pytest

from boundcalc.bounds import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: what users read: the package (code, caveats, docstrings), the CLI shim, docs, README, studies, specs, benches
SCANNED = sorted({*ROOT.glob("boundcalc/**/*.py"), ROOT / "cli.py", ROOT / "README.md", *DOCS.glob("**/*.md"),
                  *ROOT.glob("studies/**/*.py"), *ROOT.glob("studies/**/*.md"), *ROOT.glob("specs/*.yaml"),
                  *ROOT.glob("bench/*.py")} - {Path(__file__)})
#: paths of the project's private notes, which a user of the repository does not have
OUTSIDE = ("../shared", "/work/", "shared/reference", "bounds.md", "pinto2024-notes", "pac-bayes-notes",
           "DESIGN.md", "STYLE.md")
#: "references.md §9.2", "[references.md](references.md) §6.5", "[docs/data.md](docs/data.md) §3"
CITATION = re.compile(r"\b([\w-]+)\.md(?:\]\([^)\s]*\))?\s*§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _sections(doc: Path) -> set[str]:
    return set(HEADING.findall(_text(doc)))


def _citations() -> list[tuple[Path, str, str]]:
    return [(path, doc, section) for path in SCANNED for doc, section in CITATION.findall(_text(path))]


def test_the_scan_covers_the_files_that_cite():
    names = {p.relative_to(ROOT).as_posix() for p in SCANNED}
    assert {"README.md", "docs/references.md", "docs/data.md", "boundcalc/derivation.py",
            "boundcalc/bounds/bartlett2017.py", "boundcalc/calculus/rules.py", "boundcalc/zoo/stats.py"} <= names


@pytest.mark.parametrize("needle", OUTSIDE)
def test_no_file_cites_a_path_outside_the_repository(needle):
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in SCANNED for n, line in enumerate(_text(p).splitlines(), 1)
            if needle in line]
    assert not hits, f"{needle!r} cited in: {', '.join(hits)}"


def test_every_cited_section_exists():
    citations = _citations()
    cited_docs = {doc for _, doc, _ in citations}
    assert "references" in cited_docs and "data" in cited_docs      # the check below is not vacuous
    missing = []
    for path, doc, section in citations:
        target = DOCS / f"{doc}.md"
        if not target.is_file() or section not in _sections(target):
            missing.append(f"{path.relative_to(ROOT)} cites {doc}.md §{section}")
    assert not missing, "; ".join(missing)


def test_caveats_cite_the_known_differences():
    """The caveats users see point into docs/references.md, at sections about what they say."""
    from boundcalc.bounds.pinto2024 import C_CAVEAT, FINITE_CAVEAT, GAP_CAVEAT, KAPPA_CAVEAT

    sections = _sections(DOCS / "references.md")
    caveats = [C_CAVEAT, FINITE_CAVEAT, GAP_CAVEAT, KAPPA_CAVEAT,
               *(c for entry in REGISTRY.values() for c in entry.caveats)]
    cited = [m.group(2) for c in caveats for m in CITATION.finditer(c)]
    assert {"9.1", "9.2", "9.3", "9.4", "9.5", "9.6"} <= set(cited) <= sections


def test_relative_links_in_docs_resolve_inside_the_repository():
    broken = []
    for doc in [ROOT / "README.md", *DOCS.glob("**/*.md")]:
        for target in LINK.findall(_text(doc)):
            if re.match(r"[a-z]+:", target):          # http:, https:, mailto:
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.exists() or not resolved.is_relative_to(ROOT):
                broken.append(f"{doc.relative_to(ROOT)} → {target}")
    assert not broken, ", ".join(broken)


def test_every_registry_entry_has_a_section():
    headings = [line for line in _text(DOCS / "references.md").splitlines() if line.startswith("### ")]
    missing = [key for key in REGISTRY if not any(f"`{key}`" in h for h in headings)]
    assert not missing, f"no section of docs/references.md for {missing}"


def test_readme_lists_every_bundled_spec():
    listed = re.search(r"Bundled specs:(.*?)\n\n", _text(ROOT / "README.md"), re.S)
    assert listed is not None
    missing = [p.name for p in sorted((ROOT / "specs").glob("*.yaml")) if f"specs/{p.name}" not in listed.group(1)]
    assert not missing, f"README's bundled-spec list misses {missing}"


def test_the_worked_example_of_section_9_2(tmp_path):
    """docs/references.md §9.2: eq. (4) with the printed min-rank range, with the proof's range (by hand here),
    and the tight rules, on three layers with C1 = C2 = 1."""
    import math

    import sympy as sp

    import boundcalc

    spec_file = tmp_path / "example.yaml"
    spec_file.write_text("""
data: {samples: 100, dim: 4, norm: 10}
layers:
  - {op: linear, name: fc1, out: 4, spectral: 2, frobenius: 3, rank: 4}
  - relu
  - {op: linear, name: fc2, out: 4, spectral: 1.5, frobenius: 2, rank: 2}
  - relu
  - {op: linear, name: fc3, out: 4, spectral: 3, frobenius: 2.5, rank: 1}
""")
    s, f, h, x_f, m = (2.0, 1.5, 3.0), (3.0, 2.0, 2.5), 4.0, 10.0, 100.0

    def eq4(r2, r3):
        return x_f / m * (f[0] * math.sqrt(h) * s[1] * s[2] + 2 * math.sqrt(2 * r2) * s[0] * s[2] * f[1] * math.sqrt(h)
                          + 2 * math.sqrt(2 * r3) * s[0] * s[1] * f[2] * math.sqrt(h))

    spec = boundcalc.load_spec(spec_file)
    ones = {sp.Symbol("C1", positive=True): 1, sp.Symbol("C2", positive=True): 1}
    value = {rules: float(boundcalc.derive(spec, rules=rules).complexity.xreplace(ones).doit())
             for rules in ("as_printed", "tight")}
    assert value["as_printed"] == pytest.approx(eq4(2, 1), rel=1e-12) == pytest.approx(16.54, abs=5e-3)
    assert eq4(4, 2) == pytest.approx(22.28, abs=5e-3)          # the range Lemma 5's proof supports: larger
    assert value["tight"] == pytest.approx(10.50, abs=5e-3)
    section = _text(DOCS / "references.md").split("### 9.2", 1)[1].split("### 9.3", 1)[0]
    assert all(figure in section for figure in ("16.54", "22.28", "10.50"))
