"""Guardian envelopes: one SLIP-39 share sealed to one guardian's age X25519 key.

An envelope is an armored age file (``age -d -i KEY`` opens it with the stock tool). Its
plaintext is a small JSON document (format ``lifeboat-share-envelope``, version 1) carrying the
share and its metadata; nothing about the share set is visible outside the encryption except
what age itself shows (one X25519 recipient stanza and the payload length).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyrage

from lifeboat.documents import parse_versioned
from lifeboat.errors import EnvelopeError, InputError
from lifeboat.fs import read_bounded
from lifeboat.secrets import slip39

ENVELOPE_FORMAT = "lifeboat-share-envelope"
ENVELOPE_VERSION = 1
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
BINARY_BEGIN = b"age-encryption.org/v1"
# A 59-word share plus metadata is under 1 KiB; the armor adds a third. Anything past this is hostile.
MAX_ENVELOPE_BYTES = 16 * 1024
MAX_IDENTITY_BYTES = 64 * 1024

T = TypeVar("T")


@dataclass(frozen=True)
class EnvelopeContent:
    """What a guardian envelope carries (all of it inside the encryption)."""

    share: str
    share_set: str | None
    fingerprint: str | None
    identifier: int
    group_index: int
    group_count: int
    group_threshold: int
    member_index: int
    member_threshold: int
    guardian: str | None = None
    label: str | None = None

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"format": ENVELOPE_FORMAT, "version": ENVELOPE_VERSION}
        body.update(asdict(self))
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, label: str) -> EnvelopeContent:
        body = parse_versioned(
            data,
            fmt=ENVELOPE_FORMAT,
            version=ENVELOPE_VERSION,
            what=f"{label} (decrypted)",
            kind="a Lifeboat share envelope",
            error=EnvelopeError,
        )
        try:
            content = cls(
                share=_field(body, "share", str),
                share_set=_optional(body, "share_set", str),
                fingerprint=_optional(body, "fingerprint", str),
                identifier=_field(body, "identifier", int),
                group_index=_field(body, "group_index", int),
                group_count=_field(body, "group_count", int),
                group_threshold=_field(body, "group_threshold", int),
                member_index=_field(body, "member_index", int),
                member_threshold=_field(body, "member_threshold", int),
                guardian=_optional(body, "guardian", str),
                label=_optional(body, "label", str),
            )
            info = slip39.inspect(content.share, label)
        except (TypeError, InputError) as exc:
            raise EnvelopeError(f"{label}: envelope content is malformed ({exc})") from None
        stated = (content.identifier, content.group_index, content.member_index)
        actual = (info.identifier, info.group_index, info.member_index)
        if stated != actual:
            raise EnvelopeError(
                f"{label}: the envelope's metadata does not match the share inside it; "
                "it was altered before sealing"
            )
        return content

    @classmethod
    def for_share(
        cls,
        share: str,
        *,
        share_set: str | None,
        fingerprint: str | None,
        guardian: str | None = None,
        label: str | None = None,
    ) -> EnvelopeContent:
        info = slip39.inspect(share)
        return cls(
            share=slip39.normalize(share),
            share_set=share_set,
            fingerprint=fingerprint,
            identifier=info.identifier,
            group_index=info.group_index,
            group_count=info.group_count,
            group_threshold=info.group_threshold,
            member_index=info.member_index,
            member_threshold=info.member_threshold,
            guardian=guardian,
            label=label,
        )


def _field(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"field {name!r} must be {kind.__name__}")
    return value


def _optional(body: dict[str, Any], name: str, kind: type[T]) -> T | None:
    return None if body.get(name) is None else _field(body, name, kind)


def parse_recipient(text: str) -> pyrage.x25519.Recipient:
    """An age X25519 recipient (``age1...``), or a clear error."""
    text = text.strip()
    if not text.startswith("age1"):
        raise InputError(f"{text[:20]!r} is not an age X25519 recipient; it starts with 'age1'")
    try:
        return pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError as exc:
        raise InputError(f"{text[:20]}...: not a valid age recipient ({exc})") from None


def load_identities(path: Path) -> list[pyrage.x25519.Identity]:
    """The X25519 identities of an age identity file (``AGE-SECRET-KEY-1...`` lines)."""
    data = read_bounded(path, MAX_IDENTITY_BYTES, what="identity file")
    identities = []
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise InputError(
                f"identity file {path}, line {number}: not an age X25519 identity (AGE-SECRET-KEY-1...)"
            ) from None
    if not identities:
        raise InputError(f"identity file {path} holds no age identity")
    return identities


def is_envelope(data: bytes) -> bool:
    """Whether ``data`` looks like an age file (armored or binary)."""
    head = data.lstrip()[:64]
    return head.startswith(ARMOR_BEGIN) or head.startswith(BINARY_BEGIN)


def seal(content: EnvelopeContent, recipient: pyrage.x25519.Recipient) -> bytes:
    """The armored age envelope of ``content`` for one recipient."""
    return bytes(pyrage.encrypt(content.to_json(), [recipient], armored=True))


def open_envelope(
    data: bytes, identities: list[pyrage.x25519.Identity], label: str = "envelope"
) -> EnvelopeContent:
    """Decrypt and check an envelope; errors say whether the key is wrong or the file damaged."""
    data = data.lstrip()
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"{label}: {len(data)} bytes is far larger than any share envelope")
    if not is_envelope(data):
        raise EnvelopeError(f"{label}: not an age file")
    if not identities:
        raise EnvelopeError(f"{label}: is a sealed envelope; give the guardian's identity with -i KEYFILE")
    try:
        plaintext = pyrage.decrypt(data, identities)
    except pyrage.DecryptError as exc:
        reason = " ".join(str(exc).split())
        if "No matching keys" in reason:
            raise EnvelopeError(
                f"{label}: none of the given identities opens it (sealed to another guardian, "
                "or its header was tampered with)"
            ) from None
        raise EnvelopeError(f"{label}: damaged or truncated ({reason})") from None
    return EnvelopeContent.from_json(bytes(plaintext), label)
