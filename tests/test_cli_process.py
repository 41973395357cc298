"""The entry point's allocator settings: which commands re-execute with glibc's malloc settings, and how."""

from __future__ import annotations

import os
import sys

import pytest

from lifeboat.cli import process

SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(sys, "platform", "linux")
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "execve", lambda path, args, env: calls.append((path, args, env)))
    return calls


@pytest.mark.parametrize(
    ("argv", "re_executes"),
    [
        (["backup", "/data"], True),
        (["--home", "h", "restore", "latest", "--target", "t"], True),
        (["check", "--read-data"], True),
        (["repair"], True),
        (["prune"], True),
        (["state", "check"], False),  # a state command, not the repository check
        (["--help"], False),
        (["secrets", "split"], False),
    ],
)
def test_pack_commands_re_execute_with_the_allocator_settings(
    monkeypatch: pytest.MonkeyPatch,
    execs: list[tuple[str, list[str], dict[str, str]]],
    argv: list[str],
    re_executes: bool,
) -> None:
    monkeypatch.setattr(sys, "argv", ["lifeboat", *argv])
    process._reexec_with_allocator_settings()
    if not re_executes:
        assert execs == []
        return
    [(path, args, env)] = execs
    assert path == sys.executable and args == [sys.executable, "-m", "lifeboat", *argv]
    assert {name: env[name] for name in SETTINGS} == process.ALLOCATOR_ENV


def test_a_value_the_user_set_is_kept_and_there_is_one_re_execution(
    monkeypatch: pytest.MonkeyPatch, execs: list[tuple[str, list[str], dict[str, str]]]
) -> None:
    monkeypatch.setattr(sys, "argv", ["lifeboat", "backup", "/data"])
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    process._reexec_with_allocator_settings()
    [(_, _, env)] = execs
    assert (
        env["MALLOC_ARENA_MAX"] == "8"
        and env["MALLOC_TRIM_THRESHOLD_"] == process.ALLOCATOR_ENV["MALLOC_TRIM_THRESHOLD_"]
    )
    for name, value in env.items():  # the re-executed process finds everything set: no second time
        if name in SETTINGS:
            monkeypatch.setenv(name, value)
    execs.clear()
    process._reexec_with_allocator_settings()
    assert execs == []
