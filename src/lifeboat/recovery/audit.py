"""The recovery audit log: an append-only, hash-chained record of every action (pure).

Each entry names its sequence number, time, vault, actor, action, the signed message that caused
it and a JSON object of details, and carries the SHA-256 hash of the entry before it, so that
editing, dropping, inserting or reordering any entry changes every hash after it. The service
signs the newest hash (the *head*) with its Ed25519 key; whoever keeps a signed head (a webhook
receiver, a guardian, an auditor) can later prove that the log they are shown extends it.

The byte formats (entry hash, head signature, export file) are "Recovery audit log, version 1"
in docs/formats.md. SHA-256 rather than the BLAKE3 used elsewhere: an auditor should be able to
check the chain with any standard tool, and a contract can hash it cheaply.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import nacl.exceptions
import nacl.signing

from lifeboat.documents import canonical_json
from lifeboat.errors import RecoveryError, exact_bytes

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "GENESIS",
    "HEAD_FORMAT",
    "AuditEntry",
    "AuditError",
    "SignedHead",
    "VerifiedExport",
    "append",
    "entry_body",
    "entry_hash",
    "export_lines",
    "sign_head",
    "verify",
    "verify_head",
]

EXPORT_FORMAT: Final = "lifeboat-recovery-audit"
EXPORT_VERSION: Final = 1
HEAD_FORMAT: Final = "lifeboat-recovery-audit-head"
HEAD_VERSION: Final = 1
ENTRY_DOMAIN: Final = b"lifeboat-recovery-audit-entry-v1\x00"
HEAD_DOMAIN: Final = b"lifeboat-recovery-audit-head-v1\x00"
#: The ``prev`` of the first entry.
GENESIS: Final = bytes(32)
HASH_BYTES: Final = 32
MAX_TEXT: Final = 256

_ENTRY_FIELDS: Final = frozenset(
    {"seq", "time", "vault", "actor", "action", "message", "details", "prev", "hash"}
)
_HEAD_FIELDS: Final = frozenset({"format", "version", "seq", "hash", "time", "service_key"})


class AuditError(RecoveryError):
    """An audit export or head that does not verify; the message names the first bad line."""


@dataclass(frozen=True)
class AuditEntry:
    """One link of the chain, as stored and exported."""

    seq: int
    time: int
    vault: str
    actor: str
    action: str
    message: bytes
    details: Mapping[str, Any] = field(default_factory=dict)
    prev: bytes = GENESIS
    hash: bytes = GENESIS

    def to_json(self) -> dict[str, Any]:
        return {**entry_body(self), "prev": self.prev.hex(), "hash": self.hash.hex()}


def entry_body(entry: AuditEntry) -> dict[str, Any]:
    """The hashed fields of an entry (all but ``prev`` and ``hash``), as a JSON object."""
    return {
        "seq": entry.seq,
        "time": entry.time,
        "vault": entry.vault,
        "actor": entry.actor,
        "action": entry.action,
        "message": entry.message.hex(),
        "details": dict(entry.details),
    }


def entry_hash(prev: bytes, body: Mapping[str, Any]) -> bytes:
    """SHA-256(domain || prev || canonical JSON of the body): the link to the next entry."""
    return hashlib.sha256(ENTRY_DOMAIN + prev + canonical_json(body)).digest()


def append(
    prev: bytes,
    seq: int,
    *,
    time: int,
    vault: str,
    actor: str,
    action: str,
    message: bytes,
    details: Mapping[str, Any],
) -> AuditEntry:
    """The entry that follows a chain whose head is (``seq - 1``, ``prev``)."""
    draft = AuditEntry(seq, time, vault, actor, action, bytes(message), dict(details), prev)
    for name in ("vault", "actor", "action"):
        value = getattr(draft, name)
        if not value or len(value) > MAX_TEXT:
            raise RecoveryError(f"an audit entry's {name} must be 1 to {MAX_TEXT} characters")
    canonical_json(draft.details)  # refuse, before anything is stored, details JSON cannot carry
    return AuditEntry(**{**draft.__dict__, "hash": entry_hash(prev, entry_body(draft))})


# --- signed head -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedHead:
    """The service's signature over the chain's newest (seq, hash) at ``time``."""

    seq: int
    hash: bytes
    time: int
    service_key: bytes
    signature: bytes

    def document(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "version": HEAD_VERSION,
            "seq": self.seq,
            "hash": self.hash.hex(),
            "time": self.time,
            "service_key": self.service_key.hex(),
        }

    def to_json(self) -> dict[str, Any]:
        return {"head": self.document(), "signature": self.signature.hex()}


def _head_message(document: Mapping[str, Any]) -> bytes:
    return HEAD_DOMAIN + canonical_json(document)


def sign_head(seed: bytes, seq: int, head_hash: bytes, time: int) -> SignedHead:
    """Sign the head (``seq``, ``head_hash``) with the service's Ed25519 seed."""
    key = nacl.signing.SigningKey(exact_bytes(seed, 32, "the service key"))
    unsigned = SignedHead(
        seq, exact_bytes(head_hash, HASH_BYTES, "a chain head"), time, bytes(key.verify_key), b""
    )
    signature = key.sign(_head_message(unsigned.document())).signature
    return SignedHead(seq, unsigned.hash, time, unsigned.service_key, signature)


def _hex(value: object, length: int | None, what: str) -> bytes:
    """Lowercase hex only, so that each value has exactly one spelling."""
    if not isinstance(value, str):
        raise AuditError(f"{what} must be a hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise AuditError(f"{what} is not hex") from None
    if data.hex() != value or (length is not None and len(data) != length):
        raise AuditError(f"{what} must be {length or 'some'} bytes in lowercase hex without spaces")
    return data


def _int(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise AuditError(f"{what} must be a non-negative integer")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise AuditError(f"{what} must be a string of 1 to {MAX_TEXT} characters")
    return value


def verify_head(document: object, service_public_key: bytes, what: str = "the signed head") -> SignedHead:
    """A ``{"head": {...}, "signature": hex}`` object signed by ``service_public_key``."""
    if not isinstance(document, dict) or set(document) != {"head", "signature"}:
        raise AuditError(f"{what} must be an object with exactly 'head' and 'signature'")
    head = document["head"]
    if not isinstance(head, dict) or set(head) != _HEAD_FIELDS:
        raise AuditError(f"{what} must have exactly the fields {sorted(_HEAD_FIELDS)}")
    if head["format"] != HEAD_FORMAT or head["version"] != HEAD_VERSION or type(head["version"]) is not int:
        raise AuditError(f"{what} is not a {HEAD_FORMAT} version {HEAD_VERSION}")
    key = _hex(head["service_key"], 32, f"{what}'s service_key")
    expected = exact_bytes(service_public_key, 32, "the service public key")
    if not hmac.compare_digest(key, expected):
        raise AuditError(f"{what} is signed by {key.hex()}, not by the service key {expected.hex()}")
    signature = _hex(document["signature"], 64, f"{what}'s signature")
    try:
        nacl.signing.VerifyKey(key).verify(_head_message(head), signature)
    except nacl.exceptions.BadSignatureError:
        raise AuditError(f"{what} has a bad signature: it was not signed by the service key") from None
    return SignedHead(
        _int(head["seq"], f"{what}'s seq"),
        _hex(head["hash"], HASH_BYTES, f"{what}'s hash"),
        _int(head["time"], f"{what}'s time"),
        key,
        signature,
    )


# --- export and verification ------------------------------------------------------------------


def export_lines(entries: Iterable[AuditEntry], head: SignedHead) -> Iterable[bytes]:
    """The export file, line by line: a header, every entry from seq 1 in order, the signed head."""
    yield canonical_json({"format": EXPORT_FORMAT, "version": EXPORT_VERSION}) + b"\n"
    for entry in entries:
        yield canonical_json(entry.to_json()) + b"\n"
    yield canonical_json(head.to_json()) + b"\n"


@dataclass(frozen=True)
class VerifiedExport:
    head: SignedHead
    entries: tuple[AuditEntry, ...]


def _parse_line(line: bytes, number: int) -> Any:
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AuditError(f"line {number} is not JSON") from None
    try:
        canonical = canonical_json(value)
    except ValueError:
        canonical = b""
    if canonical != line:
        raise AuditError(f"line {number} is not in canonical form (it was edited)")
    return value


def _entry(value: object, number: int) -> AuditEntry:
    what = f"line {number}"
    if not isinstance(value, dict) or set(value) != _ENTRY_FIELDS:
        raise AuditError(f"{what} is not an audit entry (it must have exactly {sorted(_ENTRY_FIELDS)})")
    what = f"line {number} (entry {value['seq']!r})"
    if not isinstance(value["details"], dict):
        raise AuditError(f"{what}: details must be an object")
    return AuditEntry(
        seq=_int(value["seq"], f"{what} seq"),
        time=_int(value["time"], f"{what} time"),
        vault=_text(value["vault"], f"{what} vault"),
        actor=_text(value["actor"], f"{what} actor"),
        action=_text(value["action"], f"{what} action"),
        message=_hex(value["message"], None, f"{what} message"),
        details=value["details"],
        prev=_hex(value["prev"], HASH_BYTES, f"{what} prev"),
        hash=_hex(value["hash"], HASH_BYTES, f"{what} hash"),
    )


def verify(
    export: bytes, service_public_key: bytes, *, known_heads: Sequence[tuple[int, bytes]] = ()
) -> VerifiedExport:
    """Check a whole export against the service's public key; :class:`AuditError` names the first bad line.

    Detects any edit (every line must be the canonical encoding of what it holds, and every hash
    is recomputed), deletion or insertion (sequence numbers run 1, 2, ... and each ``prev`` is
    the hash before), reordering, and truncation (the signed head must name the last entry).
    ``known_heads`` are (seq, hash) pairs kept from earlier: each must lie on this chain, which
    catches a log rewritten and re-signed by whoever holds the service key.
    """
    if not export.endswith(b"\n"):
        raise AuditError("the export does not end with a newline (it was truncated)")
    lines = export[:-1].split(b"\n")
    if len(lines) < 2:
        raise AuditError("the export has no signed head (it was truncated)")
    header = _parse_line(lines[0], 1)
    if header != {"format": EXPORT_FORMAT, "version": EXPORT_VERSION}:
        raise AuditError(f"line 1 is not a {EXPORT_FORMAT} version {EXPORT_VERSION} header")
    head = verify_head(
        _parse_line(lines[-1], len(lines)), service_public_key, f"line {len(lines)} (signed head)"
    )
    prev = GENESIS
    entries: list[AuditEntry] = []
    for number, line in enumerate(lines[1:-1], start=2):
        entry = _entry(_parse_line(line, number), number)
        expected_seq = len(entries) + 1
        if entry.seq != expected_seq:
            raise AuditError(
                f"line {number}: entry {entry.seq} where entry {expected_seq} belongs "
                "(an entry was deleted, inserted or moved)"
            )
        if not hmac.compare_digest(entry.prev, prev):
            raise AuditError(
                f"line {number} (entry {entry.seq}): prev does not match the hash of entry {entry.seq - 1}"
            )
        if not hmac.compare_digest(entry_hash(prev, entry_body(entry)), entry.hash):
            raise AuditError(
                f"line {number} (entry {entry.seq}): its hash does not match its contents (it was edited)"
            )
        prev = entry.hash
        entries.append(entry)
    if head.seq != len(entries) or not hmac.compare_digest(head.hash, prev):
        raise AuditError(
            f"line {len(lines)}: the signed head names entry {head.seq}, but the export's chain ends at "
            f"entry {len(entries)} with another hash (entries were deleted or added at the end)"
        )
    for seq, known in known_heads:
        if seq == 0:
            continue
        if seq > len(entries):
            raise AuditError(
                f"a head kept earlier names entry {seq}, but this log ends at {len(entries)} "
                "(entries were dropped, or the database was restored from an older backup)"
            )
        if not hmac.compare_digest(entries[seq - 1].hash, known):
            raise AuditError(f"entry {seq} differs from the head kept earlier: the log was rewritten")
    return VerifiedExport(head, tuple(entries))
