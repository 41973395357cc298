"""Start-up: ``lifeboat --help`` (and the other light commands) import none of the heavy modules.

Each case runs the CLI in a fresh interpreter and lists the heavy modules it left in
``sys.modules``; a module-level import of, say, the store or the FROST code in a command module
that the case loads makes the case fail. (How long start-up takes is measured by
bench/bench_startup.py, not here.)
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from conftest import CliRunner
from lifeboat.cli.main import COMMANDS, app
from lifeboat.cli.output import settings

SRC = Path(__file__).resolve().parents[1] / "src"

#: Third-party libraries that only some commands need, and Lifeboat's own library packages.
HEAVY = (
    "blake3",
    "boa",
    "coincurve",
    "cryptography",
    "eth_abi",
    "eth_account",
    "fastapi",
    "httpx",
    "nacl",
    "orjson",
    "pydantic",
    "pyrage",
    "sqlalchemy",
    "vyper",
    "zfec",
    "zstandard",
    "lifeboat.drill",
    "lifeboat.onchain",
    "lifeboat.recovery",
    "lifeboat.secrets",
    "lifeboat.snapshot",
    "lifeboat.state",
    "lifeboat.store",
    "lifeboat.threshold",
)

PROBE = """
import contextlib, io, json, sys
from lifeboat.cli.main import main_entry
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main_entry(json.loads(sys.argv[1]))
heavy = json.loads(sys.argv[2])
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
commands = sorted(m for m in sys.modules if m.startswith("lifeboat.cli.") and m.endswith("_cmds"))
print(json.dumps({"code": code, "heavy": loaded, "commands": commands, "out": out.getvalue()}))
"""


def probe(argv: list[str]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"], []])
def test_top_level_help_and_version_import_no_command_module(argv: list[str]) -> None:
    result = probe(argv)
    assert result["heavy"] == []
    assert result["commands"] == []
    if argv != ["--version"]:
        for name in COMMANDS:  # every command is listed all the same
            assert f" {name} " in str(result["out"])


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_commands_help_imports_only_its_own_module(name: str) -> None:
    """``lifeboat NAME --help`` builds NAME's commands from its module(s), without the library."""
    result = probe([name, "--help"])
    assert result["code"] == 0
    assert result["heavy"] == []
    assert COMMANDS[name].module in result["commands"]  # type: ignore[operator]


def test_constants_written_out_for_start_up_agree_with_the_library() -> None:
    from lifeboat.cli import drill_cmds, secrets_cmds, state_cmds
    from lifeboat.drill import sandbox
    from lifeboat.secrets import bip39
    from lifeboat.state import snapshots

    assert secrets_cmds.BIP39_DEFAULT_LANGUAGE == bip39.DEFAULT_LANGUAGE
    assert state_cmds.DEFAULT_LEAF_FANOUT == snapshots.DEFAULT_LEAF_FANOUT
    assert drill_cmds.DEFAULT_ACCOUNTS == sandbox.DEFAULT_ACCOUNTS


def first_paragraph(text: str) -> str:
    return inspect.cleandoc(text).split("\n\n")[0]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    """``lifeboat --help`` shows COMMANDS' help texts; each must be the real command's."""
    root = typer.main.get_group(app)
    context = root.context_class(root)
    command = root.get_command(context, name)
    assert command is not None and command.name == name
    real = command.short_help or command.help or ""
    assert first_paragraph(real) == first_paragraph(COMMANDS[name].help)


def test_root_options_are_still_checked_and_converted(cli: CliRunner) -> None:
    """The root options skip typer's coercion only at their defaults (lifeboat.cli.lazy)."""
    refused = cli("--store-timeout", "0", "repo", "--help")
    assert refused.code == 2 and "--store-timeout" in refused.err and "0.1" in refused.err
    assert cli("--store-timeout", "abc", "repo", "--help").code == 2
    assert cli("--home", "/nonexistent/lifeboat-home", "--store-timeout", "5", "repo", "--help").code == 0
    assert settings.home == Path("/nonexistent/lifeboat-home") and settings.store_timeout == 5.0
    assert type(settings.store_timeout) is float
    assert cli("repo", "--help").code == 0
    assert settings.home is None and settings.store_timeout == 30.0
