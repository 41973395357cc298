"""Shared fixtures: published vectors, a throw-away Lifeboat home, and an in-process CLI runner."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifeboat.cli.main import main_entry

sys.path.insert(0, str(Path(__file__).parent))
from conftest_tools import in_ci

VECTORS_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "vectors"


def vectors_dir() -> Path:
    """``$LIFEBOAT_VECTORS`` or ``../shared/vectors``; skip (fail under CI=true) when absent."""
    path = Path(os.environ.get("LIFEBOAT_VECTORS", VECTORS_DEFAULT))
    if not path.is_dir():
        reason = f"published test vectors not found at {path} (set LIFEBOAT_VECTORS)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true, so missing vectors are an error", pytrace=False)
        pytest.skip(reason)
    return path


def load_vectors(relative: str) -> Any:
    return json.loads((vectors_dir() / relative).read_text(encoding="utf-8"))


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


CliRunner = Callable[..., CliResult]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Lifeboat home for the test, also exported as LIFEBOAT_HOME."""
    path = tmp_path / "home"
    monkeypatch.setenv("LIFEBOAT_HOME", str(path))
    monkeypatch.delenv("LIFEBOAT_PASSPHRASE", raising=False)
    return path


@pytest.fixture
def cli(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    """Run ``lifeboat ARGS`` in-process; ``stdin`` text is piped (not a terminal)."""

    def run(*args: str, stdin: str = "") -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8"))
        code = main_entry([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    yield run
