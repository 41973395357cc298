"""The ``lifeboat`` command: a thin shell over the library.

Conventions for every command: ``--json`` prints one JSON document; exit status 0 on success,
1 on a user error (one line on stderr that says what to do), 2 on a usage error (unknown
option, contradictory or missing choices), 3 for a result that needs a look (``check``: degraded
but readable; ``backup``: saved, but some files could not be read); secrets are
printed only with ``--reveal`` and written only to files created 0600 atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lifeboat import __version__
from lifeboat.cli import inputs, repo_cmds, state_cmds
from lifeboat.cli.frost_cmds import frost_app
from lifeboat.cli.output import emit, error, info, settings, stdout
from lifeboat.cli.secrets_cmds import guardians_app, mnemonic_app, seal_command, shares_app, unseal_command
from lifeboat.errors import LifeboatError, UsageError

app = typer.Typer(
    name="lifeboat",
    help="Backup and recovery for crypto keys and protocol state: SLIP-39 shares, guardians, FROST, erasure-coded repositories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(mnemonic_app, name="mnemonic")
app.add_typer(shares_app, name="shares")
app.add_typer(guardians_app, name="guardians")
app.add_typer(frost_app, name="frost")
app.command("seal")(seal_command)
app.command("unseal")(unseal_command)
repo_cmds.register(app)
state_cmds.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"lifeboat {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    home: Annotated[
        Path | None,
        typer.Option(
            help="Lifeboat home directory (default: $LIFEBOAT_HOME or the user data dir).", metavar="DIR"
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of text.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    settings.home = home
    settings.json = json_output


def _fail(message: str, kind: str, code: int) -> int:
    if settings.json:
        emit({"ok": False, "error": message, "kind": kind}, lambda: None)
    error(message)
    return code


def _hoist_json(argv: list[str]) -> list[str]:
    """Let ``--json`` stand anywhere before ``--`` (``lifeboat shares list --json``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--json" not in argv[:end]:
        return argv
    return ["--json", *[a for i, a in enumerate(argv) if not (a == "--json" and i < end)]]


def main_entry(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status (0 ok, 1 user error, 2 usage)."""
    args = _hoist_json(list(sys.argv[1:] if argv is None else argv))
    settings.json = "--json" in args[:1]
    try:
        app(args=args, prog_name="lifeboat")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 2 and settings.json:
            # The parser has printed its message on stderr; give JSON readers a result too.
            emit(
                {"ok": False, "error": "usage error; see standard error", "kind": "UsageError"}, lambda: None
            )
        return code
    except LifeboatError as exc:
        return _fail(str(exc), type(exc).__name__, 2 if isinstance(exc, UsageError) else 1)
    except OSError as exc:
        # A file-system failure the library did not anticipate: still one line, still exit 1.
        return _fail(f"{exc.filename or 'I/O'}: {exc.strerror or exc}", "StorageError", 1)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was left half-written", "Interrupted", 130)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main_entry())


__all__ = ["app", "info", "inputs", "main_entry", "run", "stdout"]
