"""The one exception hierarchy of Lifeboat.

Every error a user can cause derives from :class:`LifeboatError`. Its message is a single
line that says what went wrong and, where possible, what to do about it. The CLI prints the
message and exits with status 1; the library lets it propagate.

Messages never contain secret material (a share's words, a key, a passphrase). The one
exception is BIP-39 validation, which names the unknown word it was given and suggests list
words (see docs/threat-model.md).
"""

from __future__ import annotations


class LifeboatError(Exception):
    """Base class of every error Lifeboat raises on purpose."""


class UsageError(LifeboatError):
    """The request itself is inconsistent (contradictory options, a missing choice)."""


class ConfigError(UsageError):
    """A configuration file that cannot be used as written: an unknown key, a wrong type, a
    missing file. The message names the key and what to write instead (exit status 2)."""


class InputError(LifeboatError):
    """Input that cannot be parsed: malformed words, hex, JSON, or a file of hostile size."""


class MnemonicError(InputError):
    """A BIP-39 or SLIP-39 mnemonic that is not valid, with the exact reason."""


class ShareError(LifeboatError):
    """A SLIP-39 share set cannot be recovered as given (mixed sets, duplicates, too few)."""


class FingerprintMismatch(LifeboatError):
    """A reconstructed secret does not match the fingerprint recorded when it was created."""


class EnvelopeError(LifeboatError):
    """A guardian envelope is malformed, tampered with, or not for the given identity."""


class SealedFileError(LifeboatError):
    """A sealed file is truncated, reordered, tampered with, or opened with the wrong key."""


class HomeError(LifeboatError):
    """The Lifeboat home is missing, unreadable, of an unknown version, or lacks a record."""


class StorageError(LifeboatError):
    """A file could not be read or written (permissions, missing directory, full disk)."""


def exact_bytes(value: object, length: int, what: str) -> bytes:
    """``value`` as ``bytes`` if it is a bytes-like value of exactly ``length`` bytes.

    Otherwise :class:`InputError` naming ``what`` (``"a sealed-file key"``) and what was given.
    """
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InputError(f"{what} must be bytes, not {type(value).__name__}")
    data = bytes(value)
    if len(data) != length:
        raise InputError(f"{what} must be {length} bytes, got {len(data)}")
    return data


class RecordError(InputError):
    """A record source that cannot be snapshotted as given: a missing or duplicate key, keys out
    of order, a sum field that is not a non-negative integer, an unreadable line or row."""


class StateError(LifeboatError):
    """A state snapshot that does not verify: a bad signature, a broken hash chain, a proof for
    another root, a statement or journal of an unknown version."""


class RecoveryError(LifeboatError):
    """A guardian-recovery action that is refused: a bad or replayed signature, an action the
    policy does not allow now, an unknown vault or request, a damaged audit log."""
