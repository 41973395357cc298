"""The entry point's allocator settings: which commands re-execute with MALLOC_ARENA_MAX, and how."""

from __future__ import annotations

import os
import sys

import pytest

from lifeboat.cli import process


@pytest.mark.parametrize(
    ("argv", "arenas"),
    [
        (["backup", "/data"], "1"),
        (["--home", "h", "restore", "latest", "--target", "t"], "1"),
        (["check", "--read-data"], "2"),
        (["repair"], "2"),
        (["state", "check"], None),  # a state command moves no packs of files
        (["--help"], None),
        (["secrets", "split"], None),
    ],
)
def test_pack_commands_re_execute_with_their_arena_limit(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], arenas: str | None
) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(sys, "argv", ["lifeboat", *argv])
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(os, "execve", lambda path, args, env: calls.append((path, args, env)))
    process._reexec_with_allocator_settings()
    if arenas is None:
        assert calls == []
        return
    [(path, args, env)] = calls
    assert path == sys.executable and args == [sys.executable, "-m", "lifeboat", *argv]
    assert env["MALLOC_ARENA_MAX"] == arenas


def test_a_limit_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["lifeboat", "backup", "/data"])
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    monkeypatch.setattr(os, "execve", lambda *args: pytest.fail("re-executed"))
    process._reexec_with_allocator_settings()
