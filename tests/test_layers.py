"""The import graph of the package: no cycles, and the pillars' layers point one way.

Read statically (module-level and function-level ``import`` statements alike), so a lazy import
that closes a circle is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lifeboat

ROOT = Path(lifeboat.__file__).resolve().parent

#: (importer pillar, imported pillar) pairs that must not occur.
FORBIDDEN = {("store", "snapshot"), ("store", "state"), ("snapshot", "state"), ("state", "snapshot")}
#: The drill drives the pillars' library code and sits under the CLI only.
PILLARS = ("secrets", "threshold", "store", "snapshot", "state", "recovery", "onchain")
FORBIDDEN |= {(p, "drill") for p in PILLARS} | {("drill", "cli")}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def pillar(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_no_import_cycles() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_store_snapshot_and_state_layers_point_one_way() -> None:
    graph = import_graph(ROOT)
    broken = sorted(
        (importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if (pillar(importer), pillar(imported)) in FORBIDDEN
    )
    assert broken == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
