"""The package's shape: small modules, short functions, and dependencies that point one way (the math never
imports rendering or the CLI; the evaluator names no paper; nothing outside ``boundcalc/ops`` lists op kinds)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "boundcalc"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 65
#: the math: it must not depend on how results are shown or on the command line
MATH = ["bound.py", "printers.py", "calculus", "ops", "bounds", "derivation.py", "numerics.py", "domain.py"]
PAPER_MODULES = {p.stem for p in (PACKAGE / "bounds").glob("*.py")} - {"__init__", "base", "network", "examples"}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def _in(path: Path, parts: list[str]) -> bool:
    rel = path.relative_to(PACKAGE).as_posix()
    return any(rel == p or rel.startswith(p + "/") for p in parts)


def test_the_scan_sees_the_package():
    assert len(MODULES) > 60 and {"golowich2018", "pinto2024", "bartlett2017"} <= PAPER_MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_modules_and_functions_are_small(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long


def test_the_math_imports_no_rendering_and_no_cli():
    offenders = {path.relative_to(PACKAGE).as_posix(): sorted(m for m in _imports(path)
                                                               if m.startswith(("boundcalc.render", "boundcalc.cli")))
                 for path in MODULES if _in(path, MATH)}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) > 25          # the scan covered calculus/, ops/, bounds/ and bound.py


def test_the_evaluator_imports_no_paper_module():
    for name in ("evaluate.py", "pipeline.py"):
        papers = {m for m in _imports(PACKAGE / name) for paper in PAPER_MODULES if m.endswith("." + paper)}
        assert not papers, f"{name} imports {papers}"


def test_op_names_are_listed_only_in_the_registry_rules_and_requirements():
    """String literals naming op kinds appear in ops/ (declarations), calculus/rules.py (rule tables keyed by
    kind), bounds/ (what each theorem covers) and trace/ (the table from torch ops to kinds, whose aten names are
    often the kinds' names), nowhere else."""
    from boundcalc.ops import OPS

    allowed = ["ops", "calculus/rules.py", "bounds", "trace"]
    names = set(OPS) - {"lipschitz"}      # also the name of a state field and of the loss's field
    hits = []
    for path in MODULES:
        if _in(path, allowed):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value in names
                                                     for c in [node.left, *node.comparators]):
                hits.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            if isinstance(node, (ast.Set, ast.Tuple, ast.List)) and any(
                    isinstance(e, ast.Constant) and e.value in names for e in node.elts):
                hits.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not hits
