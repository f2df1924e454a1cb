"""The test suite itself (issue 7): every test asserts something, and every skip states why."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
#: calls that assert on their own (pytest helpers, numpy/pandas testing, this suite's helpers)
ASSERTING = ("raises", "warns", "assert_", "approx", "fail")


def _asserting_helpers(tree: ast.Module) -> set[str]:
    """Module-level helpers (and fixtures-free functions) whose body asserts."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("test_"):
            if any(isinstance(n, ast.Assert) for n in ast.walk(node)):
                names.add(node.name)
    return names


def _asserts(fn: ast.FunctionDef, helpers: set[str]) -> bool:
    for n in ast.walk(fn):
        if isinstance(n, ast.Assert):
            return True
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in helpers or any(name.startswith(p) or name == p for p in ASSERTING):
                return True
    return False


def test_every_test_asserts_something():
    silent = []
    count = 0
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        helpers = _asserting_helpers(tree) | {"assert_monotone"}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                count += 1
                if not _asserts(node, helpers):
                    silent.append(f"{path.name}::{node.name}")
    assert count > 200
    assert not silent, f"tests that assert nothing: {silent}"


def test_every_skip_states_a_reason():
    unexplained = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("skip", "skipif", "importorskip", "xfail"):
                has_reason = any(k.arg == "reason" for k in n.keywords) or (n.func.attr == "skip" and n.args)
                if n.func.attr == "importorskip" and not has_reason:
                    # allowed only for packages of the test extra, with a comment saying so on the line
                    line = path.read_text(encoding="utf-8").splitlines()[n.lineno - 1]
                    has_reason = "test extra" in line or "never skipped" in line
                if not has_reason:
                    unexplained.append(f"{path.name}:{n.lineno}")
    assert not unexplained, f"skips without a stated reason: {unexplained}"


def test_design_citations_name_sections_that_exist():
    """Docstrings and documents cite docs/design.md by section number; each cited section
    exists there (and nothing still cites the design notes outside the repository)."""
    import re

    root = TESTS.parent
    design = (root / "docs" / "design.md").read_text(encoding="utf-8")
    sections = {int(m) for m in re.findall(r"^## (\d+)\. ", design, flags=re.M)}
    assert sections >= set(range(1, 12))
    cited, stale = [], []
    for path in [*root.glob("comparemode/*.py"), *root.glob("models/*.py"), *root.glob("inference/*.py"), *root.glob("benchmarks/*.py"), root / "README.md", root / "ARCHITECTURE.md"]:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"docs/design\.md sections? ([\d, and]+)", text):
            cited += [(path.name, int(n)) for n in re.findall(r"\d+", m.group(1))]
        if re.search(r"(?<!docs/)DESIGN\.md", text):
            stale.append(path.name)
    assert cited, "no citations found: the pattern is wrong"
    assert not [c for c in cited if c[1] not in sections], [c for c in cited if c[1] not in sections]
    assert not stale, stale
