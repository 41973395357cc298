"""The home under concurrency, and interactive recovery at a terminal."""

from __future__ import annotations

import io
import multiprocessing
import sys
from pathlib import Path

import pytest

from conftest import CliResult
from lifeboat.cli.main import main_entry
from lifeboat.home import Guardian, Home, now
from lifeboat.secrets import slip39


def _add_guardians(home: str, prefix: str, count: int) -> None:
    for i in range(count):
        with Home(Path(home)).update() as state:
            state.guardians[f"{prefix}{i}"] = Guardian(f"{prefix}{i}", "age1example", now())


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_add_guardians, args=(str(tmp_path), p, 25)) for p in "abcd"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    state = Home(tmp_path).load()
    assert len(state.guardians) == 100
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_home_reads_as_empty(tmp_path: Path) -> None:
    state = Home(tmp_path / "does-not-exist").load()
    assert state.share_sets == {} and state.guardians == {}


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def run_at_terminal(
    args: list[str], typed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CliResult:
    monkeypatch.setattr(sys, "stdin", _Terminal(io.BytesIO(typed.encode()), encoding="utf-8"))
    capsys.readouterr()
    code = main_entry(args)
    out = capsys.readouterr()
    return CliResult(code, out.out, out.err)


def test_interactive_recovery_shows_progress_and_rejects_bad_shares(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = slip39.split(b"\x07" * 16, slip39.Scheme.parse("2:2of3,2of2"), iteration_exponent=0)
    other = slip39.split(b"\x08" * 16, slip39.Scheme.parse("2of3"), iteration_exponent=0)
    g1, g2 = made.groups
    typed = "\n".join(
        [
            g1[0],
            "not a share at all",
            g1[0],  # duplicate
            other.groups[0][0],  # another set (identifiers collide with probability 2^-15)
            g1[2],
            g2[1],
            g2[0],
        ]
    )
    result = run_at_terminal(
        ["shares", "recover", "--reveal", "--as", "hex"], typed + "\n", capsys, monkeypatch
    )
    assert result.code == 0, result.err
    assert result.out.strip().splitlines()[-1] == "07" * 16
    err = result.err
    assert "word 1 is not in the SLIP-39 word list; try again" in err
    assert "duplicate of share" in err
    assert "group 1: 1 of 2 shares" in err and "group 2: no share yet" in err
    assert "1 of 2 groups complete" in err and "2 of 2 groups complete" in err


@pytest.mark.parametrize(
    ("options", "code", "reason"),
    [
        ([], 2, "pass --reveal to print it"),
        (["--reveal", "--as", "base64"], 2, "--as takes auto, hex or bip39"),
        (["--reveal", "--as", "bip39", "-l", "klingon"], 2, "unknown BIP-39 language 'klingon'"),
        (["-o", "EXISTING"], 1, "already exists"),
    ],
)
def test_recover_checks_the_output_before_asking_for_shares(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    code: int,
    reason: str,
) -> None:
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    made = slip39.split(b"\x07" * 16, slip39.Scheme.parse("2of3"), iteration_exponent=0)
    args = [str(existing) if o == "EXISTING" else o for o in options]
    typed = "\n".join(made.groups[0][:2]) + "\n"
    result = run_at_terminal(["shares", "recover", *args], typed, capsys, monkeypatch)
    assert result.code == code and reason in result.err
    assert "Share 1" not in result.err  # refused before the first share was asked for
    assert existing.read_text() == "keep me"
