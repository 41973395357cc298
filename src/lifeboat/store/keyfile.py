"""Repository key files: the master key wrapped under a passphrase with Argon2id and AES-256-GCM.

This module is pure: no files, no network, no threads. A key file is a small JSON document that
every store holds under ``keys/<32 hex>``::

    {"format": "lifeboat-repository-key", "version": 1, "repository": "<32 hex>",
     "created": "...", "kdf": {"name": "argon2id", "salt": "<b64 16 bytes>", "iterations": 3,
     "memory_kib": 65536, "lanes": 4},
     "cipher": "aes-256-gcm", "nonce": "<b64 12 bytes>", "wrapped": "<b64 48 bytes>"}

``wrapped`` is the 32-byte master key encrypted with AES-256-GCM under the 32-byte Argon2id hash
of the passphrase, with the canonical JSON (sorted keys, no spaces) of the document without
``nonce`` and ``wrapped`` as associated data: changing the repository id, the date or any KDF
parameter makes the file fail to open, exactly as a wrong passphrase does. Base64 is the standard
alphabet with padding, and only its canonical form is accepted.

The passphrase is normalised to Unicode NFC and encoded as UTF-8 before hashing, so the same
passphrase typed on systems that compose accents differently opens the same file.

A key file comes from a store, which may be hostile: its size and every KDF parameter are checked
against fixed bounds (:data:`MAX_ITERATIONS`, :data:`MAX_MEMORY_KIB`, :data:`MAX_LANES`,
:data:`MAX_KEY_FILE_BYTES`) before Argon2id runs, so a forged file cannot make Lifeboat allocate
gigabytes or spin for hours.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from lifeboat.documents import canonical_json, check_fields, parse_strict_versioned
from lifeboat.errors import InputError, exact_bytes
from lifeboat.store.errors import FormatError, NewerVersionError, RepositoryError, RepositoryKeyError

__all__ = [
    "DEFAULT_KDF",
    "KEY_FILE_FORMAT",
    "KEY_FILE_VERSION",
    "MASTER_KEY_BYTES",
    "MAX_ITERATIONS",
    "MAX_KEY_FILE_BYTES",
    "MAX_LANES",
    "MAX_MEMORY_KIB",
    "TEST_KDF",
    "KdfParams",
    "KeyFileInfo",
    "parse_key_file",
    "unwrap_master_key",
    "wrap_master_key",
]

KEY_FILE_FORMAT: Final = "lifeboat-repository-key"
KEY_FILE_VERSION: Final = 1
KDF_NAME: Final = "argon2id"
CIPHER_NAME: Final = "aes-256-gcm"

MASTER_KEY_BYTES: Final = 32
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12
#: The wrapped master key: 32 bytes of ciphertext and a 16-byte GCM tag.
WRAPPED_BYTES: Final = MASTER_KEY_BYTES + 16
#: Random bytes in a key file's name (``keys/<32 hex>``).
NAME_BYTES: Final = 16

MAX_KEY_FILE_BYTES: Final = 64 * 1024
MAX_ITERATIONS: Final = 100
#: 4 GiB: more than any sane setting, little enough that a forged file cannot exhaust a machine.
MAX_MEMORY_KIB: Final = 4 * 1024 * 1024
MAX_LANES: Final = 64

_HEX32: Final = re.compile(r"[0-9a-f]{32}")
_TOP_FIELDS: Final = frozenset(
    {"format", "version", "repository", "created", "kdf", "cipher", "nonce", "wrapped"}
)
_KDF_FIELDS: Final = frozenset({"name", "salt", "iterations", "memory_kib", "lanes"})


def _kdf_problem(iterations: int, memory_kib: int, lanes: int) -> str | None:
    """What is wrong with these Argon2id parameters, or None if they are within bounds."""
    for name, value in (("iterations", iterations), ("memory_kib", memory_kib), ("lanes", lanes)):
        if type(value) is not int:
            return f"{name} must be an integer, not {type(value).__name__}"
    if not 1 <= iterations <= MAX_ITERATIONS:
        return f"iterations {iterations} is outside 1..{MAX_ITERATIONS}"
    if not 1 <= lanes <= MAX_LANES:
        return f"lanes {lanes} is outside 1..{MAX_LANES}"
    if not 8 * lanes <= memory_kib <= MAX_MEMORY_KIB:
        return f"memory_kib {memory_kib} is outside {8 * lanes}..{MAX_MEMORY_KIB} (at least 8 KiB per lane)"
    return None


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters: passes over memory, memory in KiB, and parallel lanes.

    Bounds: ``1 <= iterations <= 100``, ``1 <= lanes <= 64``, ``8 * lanes <= memory_kib <= 4 GiB``
    (Argon2 needs 8 KiB per lane). Out-of-range values raise :class:`InputError`.

    >>> KdfParams(iterations=2, memory_kib=1024, lanes=2)
    KdfParams(iterations=2, memory_kib=1024, lanes=2)
    >>> KdfParams(memory_kib=16, lanes=4)
    Traceback (most recent call last):
    ...
    lifeboat.errors.InputError: KDF memory_kib 16 is outside 32..4194304 (at least 8 KiB per lane)
    """

    iterations: int = 3
    memory_kib: int = 65536
    lanes: int = 4

    def __post_init__(self) -> None:
        problem = _kdf_problem(self.iterations, self.memory_kib, self.lanes)
        if problem is not None:
            raise InputError(f"KDF {problem}")


#: The cost for new key files: 3 passes over 64 MiB with 4 lanes.
DEFAULT_KDF: Final = KdfParams()
#: Cheap parameters for tests only: one pass over 64 KiB. Never use them for a real repository.
TEST_KDF: Final = KdfParams(iterations=1, memory_kib=64, lanes=1)


@dataclass(frozen=True)
class KeyFileInfo:
    """The public content of a key file (everything but the passphrase-protected master key)."""

    repository: str
    created: str
    kdf: KdfParams
    salt: bytes
    nonce: bytes
    wrapped: bytes


def wrap_master_key(
    master_key: bytes,
    passphrase: str,
    repository: str,
    *,
    kdf: KdfParams = DEFAULT_KDF,
    created: str,
) -> tuple[str, bytes]:
    """Wrap ``master_key`` under ``passphrase``; return ``(key file name, key file bytes)``.

    The name is 32 random lowercase hex characters (the store key is ``keys/<name>``); the
    bytes are the canonical JSON document followed by a newline. ``repository`` is the
    repository's 32-hex id and ``created`` its RFC 3339 creation time, both bound into the
    ciphertext. Raises :class:`InputError` for a master key that is not 32 bytes, an empty
    passphrase, a malformed repository id or out-of-range KDF parameters.

    >>> name, data = wrap_master_key(bytes(32), "pw", "ab" * 16, kdf=TEST_KDF, created="2026-01-01T00:00:00Z")
    >>> len(name), data.endswith(b"\\n")
    (32, True)
    >>> unwrap_master_key(data, "pw") == bytes(32)
    True
    """
    master_key = exact_bytes(master_key, MASTER_KEY_BYTES, "a master key")
    secret = _passphrase_bytes(passphrase)
    if not secret:
        raise InputError("the repository passphrase must not be empty")
    if not isinstance(repository, str) or not _HEX32.fullmatch(repository):
        raise InputError(f"repository id must be 32 lowercase hex characters, got {repository!r}")
    if not isinstance(created, str) or not created:
        raise InputError(f"created must be a non-empty RFC 3339 time, got {created!r}")
    if not isinstance(kdf, KdfParams):
        raise InputError(f"kdf must be KdfParams, not {type(kdf).__name__}")
    salt = secrets.token_bytes(SALT_BYTES)
    nonce = secrets.token_bytes(NONCE_BYTES)
    header = _header(repository, created, kdf, salt)
    wrapped = AESGCM(_stretch(secret, salt, kdf)).encrypt(nonce, master_key, canonical_json(header))
    document = {**header, "nonce": _b64(nonce), "wrapped": _b64(wrapped)}
    return secrets.token_hex(NAME_BYTES), canonical_json(document) + b"\n"


def unwrap_master_key(data: bytes, passphrase: str, *, repository: str | None = None) -> bytes:
    """The 32-byte master key in key file ``data``, opened with ``passphrase``.

    Raises :class:`FormatError` for a malformed, oversized or newer key file, or hostile KDF
    parameters (checked before Argon2id runs); :class:`RepositoryError` if ``repository`` is given
    and the file belongs to another repository; :class:`RepositoryKeyError` if the passphrase is
    wrong (or an authenticated field of the file was altered: the two look the same).
    """
    info = parse_key_file(data)
    if repository is not None and not hmac.compare_digest(
        info.repository.encode(), str(repository).encode("utf-8", "surrogatepass")
    ):
        raise RepositoryError(f"key file belongs to repository {info.repository}, not {repository}")
    secret = _passphrase_bytes(passphrase)
    aad = canonical_json(_header(info.repository, info.created, info.kdf, info.salt))
    try:
        return AESGCM(_stretch(secret, info.salt, info.kdf)).decrypt(info.nonce, info.wrapped, aad)
    except InvalidTag:
        raise RepositoryKeyError(
            f"wrong passphrase for repository {info.repository} (or the key file was altered)"
        ) from None


def parse_key_file(data: bytes) -> KeyFileInfo:
    """Parse and check key file ``data`` without opening it (no passphrase needed, no Argon2id).

    Raises :class:`FormatError` naming the field at fault: not JSON, another format, a newer
    version ("upgrade Lifeboat"), an unknown or missing field, a malformed value, or KDF
    parameters outside the fixed bounds.
    """
    body = _load_document(data)
    repository = body["repository"]
    if not isinstance(repository, str) or not _HEX32.fullmatch(repository):
        raise FormatError("key file field 'repository' is not 32 lowercase hex characters")
    created = body["created"]
    if not isinstance(created, str) or not created:
        raise FormatError("key file field 'created' is not a non-empty string")
    if body["cipher"] != CIPHER_NAME:
        raise FormatError(
            f"key file field 'cipher' names {body['cipher']!r}; this Lifeboat knows {CIPHER_NAME!r}"
        )
    kdf_body = body["kdf"]
    if not isinstance(kdf_body, dict):
        raise FormatError("key file field 'kdf' is not an object")
    check_fields(kdf_body, _KDF_FIELDS, "key file field 'kdf'", FormatError)
    if kdf_body["name"] != KDF_NAME:
        raise FormatError(
            f"key file field 'kdf.name' names {kdf_body['name']!r}; this Lifeboat knows {KDF_NAME!r}"
        )
    costs: dict[str, int] = {}
    for name in ("iterations", "memory_kib", "lanes"):
        value = kdf_body[name]
        if type(value) is not int:
            raise FormatError(f"key file field 'kdf.{name}' is not an integer")
        costs[name] = value
    problem = _kdf_problem(costs["iterations"], costs["memory_kib"], costs["lanes"])
    if problem is not None:
        raise FormatError(f"key file refused: {problem}; hostile or damaged KDF parameters")
    return KeyFileInfo(
        repository=repository,
        created=created,
        kdf=KdfParams(**costs),
        salt=_unb64(kdf_body["salt"], SALT_BYTES, "kdf.salt"),
        nonce=_unb64(body["nonce"], NONCE_BYTES, "nonce"),
        wrapped=_unb64(body["wrapped"], WRAPPED_BYTES, "wrapped"),
    )


# --- implementation -------------------------------------------------------------------------


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise InputError(f"a passphrase must be a string, not {type(passphrase).__name__}")
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the passphrase is not valid Unicode (it contains a lone surrogate)") from None


def _stretch(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    """The 32-byte AES key: Argon2id of the passphrase. Only ever called with checked parameters."""
    return Argon2id(
        salt=salt,
        length=32,
        iterations=kdf.iterations,
        lanes=kdf.lanes,
        memory_cost=kdf.memory_kib,
    ).derive(secret)


def _header(repository: str, created: str, kdf: KdfParams, salt: bytes) -> dict[str, Any]:
    """The key file without ``nonce`` and ``wrapped``: its canonical JSON is the GCM associated data."""
    return {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "repository": repository,
        "created": created,
        "kdf": {
            "name": KDF_NAME,
            "salt": _b64(salt),
            "iterations": kdf.iterations,
            "memory_kib": kdf.memory_kib,
            "lanes": kdf.lanes,
        },
        "cipher": CIPHER_NAME,
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, length: int, field: str) -> bytes:
    """Decode canonical standard base64 of exactly ``length`` bytes, else :class:`FormatError`."""
    if not isinstance(value, str):
        raise FormatError(f"key file field {field!r} is not a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise FormatError(f"key file field {field!r} is not valid base64") from None
    if len(raw) != length:
        raise FormatError(f"key file field {field!r} holds {len(raw)} bytes, expected {length}")
    if not hmac.compare_digest(_b64(raw), value):
        raise FormatError(f"key file field {field!r} is not canonical base64")
    return raw


def _load_document(data: bytes) -> dict[str, Any]:
    """The key file's JSON object after size, format, version and field-name checks."""
    body = parse_strict_versioned(
        data,
        fmt=KEY_FILE_FORMAT,
        version=KEY_FILE_VERSION,
        limit=MAX_KEY_FILE_BYTES,
        what="key file",
        kind="a Lifeboat repository key file",
        error=FormatError,
        newer=NewerVersionError,
    )
    check_fields(body, _TOP_FIELDS, "key file", FormatError)
    return body
