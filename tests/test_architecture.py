"""The layout is the architecture: the installed package has no import cycle, the built-in rules
import only the plugin face and the facts, and only live/ crafts packets."""

from __future__ import annotations

import ast
from pathlib import Path

import doctor

PACKAGE = Path(doctor.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Every doctor module ``path`` imports, anywhere in it (also inside functions and
    TYPE_CHECKING blocks: a cycle there is a cycle of the design)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in known
                else node.module
                for alias in node.names
            }
    return {name for name in found if name in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, set(known)) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for peer in edges.get(node, ()):
            if peer not in index:
                visit(peer)
                low[node] = min(low[node], low[peer])
            elif peer in on_stack:
                low[node] = min(low[node], index[peer])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_rules_import_only_the_plugin_face_and_the_facts():
    allowed = ("doctor.plugin", "doctor.facts.model", "doctor.rules")
    reaching = {
        name: sorted(peer for peer in peers if not peer.startswith(allowed))
        for name, peers in graph().items()
        if name.startswith("doctor.rules.")
    }
    assert len(reaching) > 5  # the installed layout: rules/ is doctor.rules
    assert {name: peers for name, peers in reaching.items() if peers} == {}


def test_only_live_crafts_packets():
    scapy = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "scapy" in path.read_text() and path.relative_to(PACKAGE).parts[0] != "live"
    ]
    assert scapy == []
