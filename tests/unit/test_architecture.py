"""The import rules of DESIGN.md, checked on the source with `ast` (no module is imported).

Layers, lowest first: kernels <- workbench core <- analysis <- circuits <- workbench.ui,
workbench.cli <- app.py. Every import counts, including the ones inside functions; only imports
under `if TYPE_CHECKING:` are left out of the cycle check (they never run). Also checked: no
import cycles between modules, no dashboard page imports another page, and no formatter-skip comment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kernels", "workbench", "analysis", "circuits")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    found["app"] = ROOT / "app.py"
    return found


SOURCES = _sources()


def _layer(module: str) -> int | None:
    """0 kernels, 1 workbench core, 2 analysis, 3 circuits, 4 ui/cli, 5 app.py; None: outside."""
    top = module.split(".")[0]
    if top == "kernels":
        return 0
    if top == "workbench":
        second = module.split(".")[1] if "." in module else ""
        return 4 if second in ("ui", "cli") else 1
    return {"analysis": 2, "circuits": 3, "app": 5}.get(top)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported project module, runs at runtime) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runtime)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, runtime) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((candidate if candidate in SOURCES else base, runtime))
        for child in ast.iter_child_nodes(node):
            visit(child, runtime)

    visit(tree, True)
    return [(name, runtime) for name, runtime in found if _layer(name) is not None]


GRAPH = {module: _imports(module, path) for module, path in SOURCES.items()}


def _target(name: str) -> str:
    """The source module an import name refers to (its nearest existing enclosing module)."""
    while name and name not in SOURCES:
        name = name.rpartition(".")[0]
    return name


def test_layers_point_one_way():
    wrong = sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        for name, _ in names
        if _layer(name) > _layer(module)
    )
    assert wrong == []


def test_ui_and_cli_do_not_import_each_other_or_app():
    wrong = sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        for name, _ in names
        if module.startswith(("workbench.ui", "workbench.cli"))
        and (name == "app" or (_layer(name) == 4 and module.split(".")[1] != name.split(".")[1]))
        and not (module == "workbench.cli.app" and name.startswith("workbench.ui"))
    )
    assert wrong == []


def test_workbench_package_does_not_import_the_ui():
    names = [name for name, _ in GRAPH["workbench"]]
    assert not [name for name in names if name.startswith(("workbench.ui", "workbench.cli"))]


def test_no_page_imports_another_page():
    """Only the app shell and the page registry import pages; a page imports no other page."""
    wrong = sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        for name, _ in names
        if module.startswith("workbench.ui")
        and module not in ("workbench.ui.app", "workbench.ui.pages")
        and _target(name).startswith("workbench.ui.pages")
        and _target(name) != module
    )
    assert wrong == []


def _cycles() -> list[list[str]]:
    edges = {
        module: sorted({_target(name) for name, runtime in names if runtime} - {module, ""})
        for module, names in GRAPH.items()
    }
    # A package's submodule importing its own package `__init__` only reaches names the
    # `__init__` re-exports; that is still a cycle and is reported like any other.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, []):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return components


def test_no_import_cycles():
    assert _cycles() == []


@pytest.mark.parametrize("package", [*PACKAGES, "tests", "benchmarks"])
def test_no_fmt_skip(package):
    marker = "# fmt: " + "skip"
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / package).rglob("*.py"))
        if marker in path.read_text()
    ]
    if package == "workbench":
        offenders += ["app.py"] if marker in (ROOT / "app.py").read_text() else []
    assert offenders == []
