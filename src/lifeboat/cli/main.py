"""The ``lifeboat`` command: a thin shell over the library.

Conventions for every command: ``--json`` prints one JSON document; exit status 0 on success,
1 on a user error (one line on stderr that says what to do), 2 on a usage error (unknown
option, contradictory or missing choices; the parser's own errors are one line too), 3 for a
result that needs a look (``check``: degraded but readable; ``backup``: saved, but some files
could not be read or sockets were skipped; ``restore``: done, but device nodes need root).
Damage found while listing is an error, not an empty list: ``snapshots`` and ``state list``
print the readable snapshots, name each unreadable manifest on stderr and exit 1; secrets are
printed only with ``--reveal`` and written only to files created 0600 atomically.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat import __version__
from lifeboat.cli.lazy import LazyCommand, LazyGroup
from lifeboat.cli.output import emit, error, info, settings, stdout
from lifeboat.errors import LifeboatError, UsageError

#: Every top-level command, in the order ``lifeboat --help`` lists them, with its module and the
#: first paragraph of its help. A command's module is imported only when the command runs or
#: shows its own help (lifeboat.cli.lazy); tests/test_cli_startup.py checks these help texts.
COMMANDS: dict[str, LazyCommand] = {
    "seal": LazyCommand(
        "lifeboat.cli.secrets_cmds",
        "seal_command",
        "Encrypt a file of any size with a fresh key, and split only the key into SLIP-39 shares.",
    ),
    "unseal": LazyCommand(
        "lifeboat.cli.secrets_cmds",
        "unseal_command",
        "Recover a sealed file's key from shares (or envelopes) and decrypt the file.",
    ),
    "serve": LazyCommand(
        "lifeboat.cli.serve_cmds",
        "serve_command",
        "Run the guardian-recovery service.",
    ),
    "backup": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "backup_command",
        "Back up files and directories into a new snapshot (content-defined chunks, deduplicated).",
    ),
    "snapshots": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "snapshots_command",
        "List the snapshots, oldest first.",
    ),
    "ls": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "ls_command",
        "List the files of a snapshot.",
    ),
    "diff": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "diff_command",
        "Show what changed between two snapshots (+ added, - removed, M modified, T type, U metadata).",
    ),
    "restore": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "restore_command",
        "Restore a snapshot: contents bit-exact, modes, mtimes, symlinks.",
    ),
    "check": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "check_command",
        "Check the repository: structure, and with --read-data every shard. Exit 0 healthy, 3 degraded, 1 damaged.",
    ),
    "repair": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "repair_command",
        "Rebuild missing or corrupt shards from the surviving ones onto the stores that lost them.",
    ),
    "forget": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "forget_command",
        "Forget snapshots by a retention policy, and with --prune remove the data they alone used.",
    ),
    "mnemonic": LazyCommand(
        "lifeboat.cli.secrets_cmds",
        "mnemonic_app",
        "BIP-39 mnemonics: generate, check, derive the seed.",
    ),
    "shares": LazyCommand(
        "lifeboat.cli.secrets_cmds",
        "shares_app",
        "SLIP-39 share sets: create, recover, inspect, seal to guardians, cards, drills, reshare.",
    ),
    "guardians": LazyCommand(
        "lifeboat.cli.secrets_cmds",
        "guardians_app",
        "Guardians: people who each keep one share, known by an age key.",
    ),
    "frost": LazyCommand(
        "lifeboat.cli.frost_cmds",
        "frost_app",
        "FROST threshold signatures (RFC 9591): dealer or DKG key generation, signing, repair, refresh.",
    ),
    "repo": LazyCommand(
        "lifeboat.cli.repo_cmds",
        "repo_app",
        "Repositories: n stores, any k of which restore everything (init, keys, locks, stores).",
    ),
    "state": LazyCommand(
        "lifeboat.cli.state_cmds",
        "state_app",
        "Record snapshots of protocol state: Merkle sum trees, proofs, journals, invariants, rollback.",
    ),
    "recovery": LazyCommand(
        "lifeboat.cli.recovery_cmds",
        "recovery_app",
        "Guardian recovery: vaults, policies, requests, approvals, vetoes, escrowed shares, the audit log.",
    ),
    "drill": LazyCommand(
        "lifeboat.cli.drill_cmds",
        "drill_app",
        "Disaster drills: break every path at once, recover each, report RTO/RPO.",
    ),
    "webhook": LazyCommand(
        "lifeboat.cli.webhook_cmds",
        "webhook_app",
        "Subscribe endpoints to recovery events (operator; works on the service's database).",
    ),
    "chain": LazyCommand(
        "lifeboat.cli.chain_cmds",
        "chain_app",
        "On-chain recovery: pause orders signed by a FROST group, settlements, claim trees, contracts.",
    ),
}


class Commands(LazyGroup):
    registry = COMMANDS


app = typer.Typer(
    name="lifeboat",
    cls=Commands,
    help="Backup and recovery for crypto keys and protocol state: SLIP-39 shares, guardians, FROST, erasure-coded repositories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
Commands.root = app


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
    store_timeout: Annotated[
        float,
        typer.Option(
            "--store-timeout",
            help="Seconds an object store (s3://...) may take to answer a request before it is "
            "reported and the other stores are used (a URL's timeout= option overrides it).",
            metavar="SECONDS",
            min=0.1,
        ),
    ] = 30.0,
) -> None:
    settings.home = home
    settings.json = json_output
    settings.store_timeout = store_timeout


def _fail(message: str, kind: str, code: int) -> int:
    if settings.json:
        emit({"ok": False, "error": message, "kind": kind}, lambda: None)
    error(message)
    return code


def _hoist_json(argv: list[str]) -> list[str]:
    """Let ``--json`` and ``--store-timeout S`` stand anywhere before ``--`` (``lifeboat shares list --json``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    front: list[str] = []
    rest: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif i >= end:
            rest.append(arg)
        elif arg == "--json":
            front[:0] = [] if "--json" in front else ["--json"]
        elif arg == "--store-timeout" and i + 1 < end:
            front += [arg, argv[i + 1]]
            skip = True
        elif arg.startswith("--store-timeout="):
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


#: click's ClickException, found through typer's public BadParameter (newer typer releases carry
#: their own copy of click, older ones use the click package).
_PARSER_ERROR: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)


def _parser_error(exc: Any) -> int:
    """One line for an error the argument parser found (``lifeboat: no such option: --foo ...``)."""
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # a bare group (`lifeboat repo`): its help is the answer
        return code
    message = " ".join(str(exc.format_message()).split())
    message = message[:1].lower() + message[1:]
    if message.endswith(".") and not message.endswith("..."):
        message = message[:-1]
    context = getattr(exc, "ctx", None)
    if context is not None:
        message += f" (see {context.command_path} --help)"
    if settings.json:
        emit({"ok": False, "error": message, "kind": "UsageError"}, lambda: None)
    print(f"lifeboat: {message}", file=sys.stderr)
    return code


def main_entry(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status (0 ok, 1 user error, 2 usage)."""
    args = _hoist_json(list(sys.argv[1:] if argv is None else argv))
    settings.json = "--json" in args[:1]
    try:
        # standalone_mode=False: parser errors come here as exceptions, printed as one line
        # below instead of click's multi-line box; Exit(n) comes back as the return value
        result = app(args=args, prog_name="lifeboat", standalone_mode=False)
    except typer.Abort:
        return _fail("aborted", "Interrupted", 1)
    except _PARSER_ERROR as exc:
        return _parser_error(exc)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code
    except LifeboatError as exc:
        return _fail(str(exc), type(exc).__name__, 2 if isinstance(exc, UsageError) else 1)
    except OSError as exc:
        # A file-system failure the library did not anticipate: still one line, still exit 1.
        return _fail(f"{exc.filename or 'I/O'}: {exc.strerror or exc}", "StorageError", 1)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was left half-written", "Interrupted", 130)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main_entry())


__all__ = ["COMMANDS", "app", "info", "main_entry", "run", "stdout"]
