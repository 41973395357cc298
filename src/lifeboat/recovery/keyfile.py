"""Recovery key files: one owner's or guardian's private key in a 0600 file.

The format is docs/formats.md, "Recovery key file, version 1": one line of canonical JSON
``{"format":"lifeboat-recovery-key","key":"<kind>-secret:<64 hex>","version":1}``; a file holding
only the bare ``<kind>-secret:<64 hex>`` line is read too. Errors never quote the key.
``lifeboat recovery keygen`` writes these files, every signing command reads them, and the drill
keeps its owner's and guardians' keys in them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from lifeboat.documents import canonical_json
from lifeboat.errors import InputError
from lifeboat.fs import SECRET_MODE, read_bounded, write_atomic
from lifeboat.recovery.keys import PrivateKey
from lifeboat.recovery.refusals import MalformedKey

__all__ = [
    "KEY_FILE_FORMAT",
    "KEY_FILE_VERSION",
    "decode_key_file",
    "encode_key_file",
    "read_key_file",
    "write_key_file",
]

KEY_FILE_FORMAT: Final = "lifeboat-recovery-key"
KEY_FILE_VERSION: Final = 1
MAX_KEY_FILE: Final = 4096


def encode_key_file(key: PrivateKey) -> bytes:
    """A recovery key file: one line of canonical JSON (docs/formats.md, "Recovery key file")."""
    return canonical_json({"format": KEY_FILE_FORMAT, "version": KEY_FILE_VERSION, "key": key.text}) + b"\n"


def decode_key_file(data: bytes, what: str) -> PrivateKey:
    """The private key in a key file (also a bare ``<kind>-secret:<hex>`` line); errors never quote it."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{what} is not a recovery key file (not UTF-8 text)") from None
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            raise InputError(f"{what} is not a recovery key file (damaged JSON)") from None
        if not isinstance(body, dict) or body.get("format") != KEY_FILE_FORMAT:
            raise InputError(f"{what} is not a recovery key file (make one with `lifeboat recovery keygen`)")
        if body.get("version") != KEY_FILE_VERSION or isinstance(body.get("version"), bool):
            raise InputError(
                f"{what} is a recovery key file of version {str(body.get('version'))[:10]}; "
                f"this Lifeboat reads version {KEY_FILE_VERSION}"
            )
        if set(body) != {"format", "version", "key"} or not isinstance(body["key"], str):
            raise InputError(f"{what} must have exactly the fields format, version and key")
        text = body["key"]
    try:
        return PrivateKey.parse(text)
    except MalformedKey as error:
        raise InputError(f"{what}: {error}") from None


def read_key_file(path: Path) -> PrivateKey:
    """The private key in the key file at ``path`` (at most 4 KiB)."""
    return decode_key_file(read_bounded(path, MAX_KEY_FILE, what="key file"), f"key file {path}")


def write_key_file(path: Path, key: PrivateKey) -> None:
    """Write ``key`` to a new key file at ``path``: 0600, atomically, never over an existing file."""
    write_atomic(path, encode_key_file(key), mode=SECRET_MODE)
