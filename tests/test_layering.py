"""The package's layering (docs/design.md section 12, ARCHITECTURE.md): its imports form a DAG
in five layers, every import going down or sideways, never up.

Every import statement counts, the ones inside functions too: an import hidden in a function
is still a dependency, and hiding one used to be how a cycle was kept from failing at import
time. The graph is built by parsing the source (nothing is imported), relative imports
resolved, ``models/`` as ``comparemode.models`` and ``inference/`` as ``comparemode.inference``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"comparemode": "comparemode", "models": "comparemode.models", "inference": "comparemode.inference"}

#: From the bottom up. Within a layer modules may import each other (the graph stays acyclic).
LAYERS = [
    ("constants and errors", {"comparemode.constants", "comparemode.errors", "comparemode._version", "comparemode._atomic", "comparemode._progress", "comparemode._params", "comparemode._columnar", "comparemode._dist"}),
    ("models, the data contract, the reference", {"comparemode.data", "comparemode.datasets", "comparemode.reference", "comparemode.scenarios", "comparemode._output", "comparemode.models.*"}),
    ("the counting front door", {"comparemode.counting", "comparemode.dask_backend"}),
    ("inference", {"comparemode.inference.*"}),
    ("command line, report, package root", {"comparemode", "comparemode.cli", "comparemode.report", "comparemode.export"}),
]


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


def _layer(module: str) -> int | None:
    for i, (_, members) in enumerate(LAYERS):
        for m in members:
            if module == m or (m.endswith(".*") and (module == m[:-2] or module.startswith(m[:-1]))):
                return i
    return None


def _imports(name: str, path: Path, modules: dict) -> list[tuple[str, int, list[str]]]:
    """(imported package module, line, names imported from it) for every import statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.stem == "__init__"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            # "from comparemode.models import counts" imports the module comparemode.models.counts
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = [(s, []) for s in subs] + [(base, [a.name for a in node.names if f"{base}.{a.name}" not in modules])]
        else:
            continue
        for target, names in targets:
            if target in modules and target != name:
                out.append((target, node.lineno, names))
    return out


def _graph():
    modules = _modules()
    return modules, {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    modules, _ = _graph()
    missing = sorted(m for m in modules if _layer(m) is None)
    assert not missing, f"modules with no layer in tests/test_layering.py::LAYERS: {missing}"
    assert {"comparemode.counting", "comparemode.inference.em", "comparemode.models.counts"} <= set(modules)


def test_imports_go_down_or_sideways_never_up():
    modules, graph = _graph()
    up = [
        f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]}) at line {line}"
        for a, edges in graph.items()
        for b, line, _ in edges
        if b != "comparemode" and _layer(b) > _layer(a)
    ]
    assert not up, "imports that go up a layer:\n" + "\n".join(up)


def test_no_import_cycle_counting_imports_inside_functions():
    modules, graph = _graph()
    edges = {a: sorted({b for b, _, _ in e if b != "comparemode"}) for a, e in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v):  # depth-first search; a grey node met again closes a cycle
        state[v] = 1
        stack.append(v)
        for w in edges[v]:
            if state.get(w) == 1:
                cycle = stack[stack.index(w):] + [w]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(edges):
        if v not in state:
            visit(v)
    # the check itself sees cycles: a made-up back edge is found
    edges["comparemode.constants"] = ["comparemode.inference.em"]
    state.clear()
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        for v in sorted(edges):
            if v not in state:
                visit(v)


def test_the_package_root_is_imported_by_nothing_inside():
    """``import comparemode`` from a submodule would import everything above it."""
    _, graph = _graph()
    users = sorted(f"{a}:{line}" for a, edges in graph.items() for b, line, _ in edges if b == "comparemode")
    assert not users, f"modules importing the package root: {users}"


def test_private_names_cross_modules_at_most_four():
    _, graph = _graph()
    private = sorted(
        f"{a} imports {b}.{n} (line {line})"
        for a, edges in graph.items()
        for b, line, names in edges
        for n in names
        if n.startswith("_") and not n.startswith("__")
    )
    assert len(private) <= 4, "private names imported across modules (make them public, or keep the use at home):\n" + "\n".join(private)


def test_version_is_read_from_metadata_in_one_leaf_module():
    modules = _modules()
    readers = sorted(m for m, p in modules.items() if "importlib.metadata" in p.read_text(encoding="utf-8"))
    assert readers == ["comparemode._version"]
    _, graph = _graph()
    assert graph["comparemode._version"] == []  # a leaf: imports nothing of the package


def test_files_are_replaced_in_one_place():
    """One atomic writer: only ``_atomic.py`` (one file) and ``_output.py`` (a result set, built
    on it) rename or replace files."""
    modules = _modules()
    renaming = sorted(m for m, p in modules.items() if re.search(r"\bos\.(replace|rename)\(", p.read_text(encoding="utf-8")))
    assert renaming == ["comparemode._atomic", "comparemode._output"]
