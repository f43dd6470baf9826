"""The layers hold and nothing imports in a loop, read from the source with ``ast``.

Every import counts: at the top of a module or inside a function, since both run. Importing
``a.b.c`` also runs the package ``a.b`` (its ``__init__.py``), so that counts as an import of
``a.b`` too, unless the importing module lives inside ``a.b`` itself (then ``a.b`` is already
being imported). Imports by name (``importlib.import_module``) are not read.

The layers, bottom up: ``shared`` (the library), then ``keten_client`` (the agencies' client)
and the six ``services``, then ``keten`` (the programs that run them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from keten.platform import SERVICES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "keten", "keten_client")
#: What a service's pure domain core may not import (STYLE.md: no framework in domain.py).
FRAMEWORKS = ("nameko", "marshmallow", "kombu", "amqp", "eventlet", "psycopg2", "requests")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of our packages by dotted name (a package by its ``__init__.py``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path) -> Iterator[str]:
    """The dotted names a module imports, relative imports resolved; ``from a import b``
    gives ``a.b`` (a module, or a name in ``a``: the caller decides)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of ours that importing it runs directly (see the module doc)."""
    known = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        own = set(ancestors(name)) | {name}
        for imported in imported_names(name, path):
            if imported not in known:
                continue  # third party, the standard library, or a name inside a module
            for target in [*ancestors(imported), imported]:
                if target in known and target not in own:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops: each strongly connected group of modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up or across the layers."""
    found = []
    for name, targets in sorted(graph.items()):
        top, _, rest = name.partition(".")
        for target in sorted(targets):
            target_top = target.split(".")[0]
            if top == "shared" and target_top in ("services", "keten", "keten_client"):
                found.append(f"the library imports {target_top}: {name} -> {target}")
            if top == "keten_client" and target_top in ("services", "keten"):
                found.append(f"the agencies' client imports {target_top}: {name} -> {target}")
            if top == "services" and target_top in ("keten", "keten_client"):
                found.append(f"a service imports {target_top}: {name} -> {target}")
            if top == "services" and target_top == "services":
                service, target_service = rest.split(".")[0], target.split(".")[1:2]
                if target_service and target_service[0] != service:
                    found.append(f"one service imports another: {name} -> {target}")
    return found


def framework_imports_in_domains(root: Path = ROOT) -> list[str]:
    found = []
    for name, path in modules(root).items():
        if name.startswith("services.") and name.endswith(".domain"):
            for imported in imported_names(name, path):
                if imported.split(".")[0] in FRAMEWORKS:
                    found.append(f"{name} imports {imported}")
    return sorted(set(found))


def test_services_holds_the_six_services_and_nothing_else():
    held = {path.name for path in (ROOT / "services").iterdir() if path.name != "__pycache__"}
    assert held == {*SERVICES, "__init__.py"}


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_the_library_sits_under_the_services_and_no_service_imports_another():
    assert layer_violations(import_graph()) == []


def test_a_service_domain_knows_no_framework():
    assert framework_imports_in_domains() == []


def test_the_reading_sees_what_python_runs():
    """The rules above pass only if the graph is read right: a few imports that exist today."""
    graph = import_graph()
    assert "shared.consumer" in graph["shared.commands"]  # top level
    assert "keten.bench.benchmark" in graph["keten.cli.commands"]  # inside a function
    assert "keten.bench" in graph["keten.cli.commands"]  # the package it runs on the way
    assert "shared.contracts" in graph["shared.publishing"]  # from shared.contracts.envelope
    assert "shared" not in graph["shared.publishing"]  # its own package: already running
    assert "services.notification.overview" in graph["services.notification.application"]
