"""Reading secrets and options from the user: passphrases, phrases, identities, shares."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lifeboat.errors import InputError, UsageError
from lifeboat.fs import read_bounded, read_passphrase_file

if TYPE_CHECKING:
    import pyrage

ENV_PASSPHRASE = "LIFEBOAT_PASSPHRASE"  # noqa: S105 (a variable name)
MAX_PHRASE_FILE_BYTES = 64 * 1024


def passphrase(
    file: Path | None,
    ask: bool,
    *,
    confirm: bool = False,
    needed: bool = False,
    env: str = ENV_PASSPHRASE,
    prompt: str = "Passphrase",
) -> str:
    """The passphrase from ``--passphrase-file``, the variable ``env``, or a hidden prompt.

    ``needed`` (the home records that the set has one) prompts when nothing else gave it.
    """
    if file is not None:
        return read_passphrase_file(file)
    value = os.environ.get(env)
    if value is not None:
        return value
    if ask or needed:
        if not sys.stdin.isatty():
            raise UsageError(
                "a passphrase is needed but standard input is not a terminal; "
                f"use --passphrase-file or ${env}"
            )
        return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, default="", err=True))
    return ""


def phrase(file: Path | None, what: str) -> str:
    """A phrase (BIP-39 words, hex) from a file, piped stdin, or a hidden prompt; never from argv."""
    if file is not None:
        if str(file) == "-":
            return sys.stdin.read(MAX_PHRASE_FILE_BYTES + 1)[:MAX_PHRASE_FILE_BYTES]
        data = read_bounded(file, MAX_PHRASE_FILE_BYTES, what=f"{what} file")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{what} file {file} is not UTF-8 text") from None
    if not sys.stdin.isatty():
        return sys.stdin.read(MAX_PHRASE_FILE_BYTES + 1)[:MAX_PHRASE_FILE_BYTES]
    return str(typer.prompt(f"Enter the {what}", hide_input=True, err=True))


def identities(paths: list[Path] | None) -> list[pyrage.x25519.Identity]:
    from lifeboat.secrets import envelope

    found: list[pyrage.x25519.Identity] = []
    for path in paths or []:
        found.extend(envelope.load_identities(path))
    return found
