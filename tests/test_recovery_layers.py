"""The recovery pillar's layers: the pure modules import no I/O, the storage layer no HTTP."""

from __future__ import annotations

import ast

import pytest

from test_layers import ROOT, import_graph

RECOVERY = ROOT / "recovery"
IO_PACKAGES = {
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
    "prometheus_client",
    "psycopg",
}
PURE = ["audit", "webhooks"]
STORAGE = ["db", "outbox", "migrations"]


def third_party_imports(module: str) -> set[str]:
    path = RECOVERY / f"{module}.py"
    if not path.exists():
        path = RECOVERY / module / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io(module: str) -> None:
    assert third_party_imports(module) & IO_PACKAGES == set()
    graph = import_graph(ROOT)
    reached = {t for t in graph[f"lifeboat.recovery.{module}"] if t.startswith("lifeboat.recovery.")}
    assert reached <= {f"lifeboat.recovery.{name}" for name in PURE}


@pytest.mark.parametrize("module", STORAGE)
def test_storage_never_imports_the_http_shell(module: str) -> None:
    graph = import_graph(ROOT)
    assert not any(t.startswith("lifeboat.recovery.service") for t in graph[f"lifeboat.recovery.{module}"])
    assert third_party_imports(module) & {"fastapi", "starlette", "uvicorn"} == set()
