"""Imports point downward, and no module imports another that leads back to it (lazy imports
included): the layering of docs/architecture.md, kept by a test rather than by review.

    foundation   errors, jsonsafe, net, config, version, snapshot (notebook outputs that outlive the kernel)
    storage      store/, artifacts/                 (import only foundation)
    services     tracking/, registry, gates, monitoring/, features, serving/, pipelines/
    workspace    workspace                          (builds the services; services never import it)
    doors        api, widgets, magics, cli, server/, the serving process's entry point

Imports under ``if TYPE_CHECKING:`` are for annotations only and are not followed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "mlops_lab"

FOUNDATION = {"errors", "jsonsafe", "net", "remote", "config", "version", "_version", "snapshot"}
STORAGE = {"store", "artifacts"}
SERVICES = {"tracking", "registry", "gates", "monitoring", "features", "serving", "team", "mlflow_api", "pipelines"}
WORKSPACE = {"workspace"}
DOORS = {"api", "widgets", "magics", "cli", "server", "labextension"}
# The serving process's own entry point is a door like the CLI: it parses arguments and builds a workspace.
DOOR_MODULES = {"mlops_lab.serving.process", "mlops_lab.serving.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# Alembic's scripts (env.py, versions/) are run by Alembic, not imported; the migrations package is.
MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts and p.name != "env.py"}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> set[str]:
    """The mlops_lab modules ``name`` imports anywhere in its body (functions too), but for type checking."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name.startswith("mlops_lab"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("mlops_lab"):
                    for alias in child.names:  # `from . import capture` names a module
                        submodule = f"{target}.{alias.name}"
                        found.add(submodule if submodule in MODULES else target)
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(name)
    return {m for m in found if m in MODULES}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(name: str) -> str:
    if name in DOOR_MODULES:
        return "doors"
    top = name.split(".")[1] if "." in name else ""
    for label, members in (
        ("foundation", FOUNDATION),
        ("storage", STORAGE),
        ("services", SERVICES),
        ("workspace", WORKSPACE),
        ("doors", DOORS),
    ):
        if top in members:
            return label
    return "face"  # mlops_lab/__init__: entry points and the lazy public API


ALLOWED = {
    "foundation": {"foundation"},
    "storage": {"foundation", "storage"},
    "services": {"foundation", "storage", "services"},
    "workspace": {"foundation", "storage", "services", "workspace"},
    "doors": {"foundation", "storage", "services", "workspace", "doors", "face"},
    "face": {"foundation", "doors"},
}


def test_the_graph_sees_the_whole_package():
    assert {"mlops_lab.workspace", "mlops_lab.store.runs", "mlops_lab.server.handlers"} <= set(MODULES)
    assert "mlops_lab.store.runs" in GRAPH["mlops_lab.tracking.client"]  # an import at the top
    assert "mlops_lab.registry" in GRAPH["mlops_lab.workspace"]  # an import inside a function
    assert "mlops_lab.workspace" not in GRAPH["mlops_lab.registry"]  # under TYPE_CHECKING only


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downward(name):
    own = layer(name)
    wrong = sorted(f"{target} ({layer(target)})" for target in GRAPH[name] if layer(target) not in ALLOWED[own])
    assert not wrong, f"{name} ({own}) imports upward: {', '.join(wrong)}"


def test_no_import_cycles():
    """Tarjan's strongly connected components over every import, lazy ones included (the package
    face is left out: it imports only on attribute access, by design)."""
    graph = {n: {m for m in targets if m != "mlops_lab"} for n, targets in GRAPH.items() if n != "mlops_lab"}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    assert cycles == []
