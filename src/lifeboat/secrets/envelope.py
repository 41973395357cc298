"""Guardian envelopes: one SLIP-39 share sealed to one guardian's age X25519 key.

An envelope is an armored age file (``age -d -i KEY`` opens it with the stock tool). Its
plaintext (format ``lifeboat-share-envelope``, version 2) is a share file: a ``#`` line holding
the metadata as one line of JSON, a ``#`` line saying where the share sits in its set, and the
bare mnemonic on a line of its own. So ``age -d -i KEY FILE | grep -v '^#'`` gives the share
alone, which Trezor's ``shamir recover`` reads as typed. Version 1 envelopes (a JSON object with
the share inside) are still read. Nothing about the share set is visible outside the encryption
except what age itself shows (one X25519 recipient stanza and the payload length).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyrage

from lifeboat.documents import canonical_json, parse_versioned
from lifeboat.errors import EnvelopeError, InputError
from lifeboat.fs import read_bounded
from lifeboat.secrets import slip39
from lifeboat.secrets.fingerprint import parse_fingerprint

ENVELOPE_FORMAT = "lifeboat-share-envelope"
ENVELOPE_VERSION = 2
# Version 1: the plaintext is one JSON object, the share in its "share" field.
ENVELOPE_VERSION_JSON = 1
# Version 2 plaintext starts with this: a comment line holding the metadata as canonical JSON.
METADATA_PREFIX = "# {"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
BINARY_BEGIN = b"age-encryption.org/v1"
# A 59-word share plus metadata is under 1 KiB; the armor adds a third. Anything past this is hostile.
MAX_ENVELOPE_BYTES = 16 * 1024
MAX_IDENTITY_BYTES = 64 * 1024

T = TypeVar("T")


@dataclass(frozen=True)
class EnvelopeContent:
    """What a guardian envelope carries (all of it inside the encryption).

    The positions (identifier, group, member, thresholds) are the share's own; version 1
    envelopes also stated them beside the share, and those are checked against it.
    """

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

    def to_plaintext(self) -> bytes:
        """The version 2 plaintext: metadata line, position line, the share."""
        metadata = {
            "format": ENVELOPE_FORMAT,
            "version": ENVELOPE_VERSION,
            "share_set": self.share_set,
            "fingerprint": self.fingerprint,
            "guardian": self.guardian,
            "label": self.label,
        }
        position = (
            f"# SLIP-39 share: group {self.group_index} of {self.group_count} "
            f"({self.group_threshold} groups needed), member {self.member_index} "
            f"({self.member_threshold} needed from this group)"
        )
        return b"\n".join([b"# " + canonical_json(metadata), position.encode(), self.share.encode(), b""])

    @classmethod
    def from_plaintext(cls, data: bytes, label: str) -> EnvelopeContent:
        """Read a version 2 plaintext, or a version 1 one (a JSON object)."""
        what = f"{label} (decrypted)"
        if data.lstrip().startswith(b"{"):
            body = _versioned(data, ENVELOPE_VERSION_JSON, what)
        else:
            body = _read_lines(data, what, label)
        try:
            content = cls.for_share(
                _field(body, "share", str),
                share_set=_optional(body, "share_set", str),
                fingerprint=_optional(body, "fingerprint", str),
                guardian=_optional(body, "guardian", str),
                label=_optional(body, "label", str),
                where=label,
            )
            if content.fingerprint is not None:
                parse_fingerprint(content.fingerprint)
            # Version 1 stated the share's position beside it; version 2 takes it from the share.
            positions = ("identifier", "group_index", "member_index")
            stated = [
                _field(body, name, int) for name in positions if body["version"] == ENVELOPE_VERSION_JSON
            ]
        except (TypeError, ValueError, InputError) as exc:
            raise EnvelopeError(f"{label}: envelope content is malformed ({exc})") from None
        if stated and stated != [getattr(content, name) for name in positions]:
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
        where: str = "share",
    ) -> EnvelopeContent:
        info = slip39.inspect(share, where)
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


def is_plaintext(data: bytes) -> bool:
    """Whether ``data`` looks like a decrypted version 2 envelope (e.g. saved from ``age -d``)."""
    first = data.lstrip().split(b"\n", 1)[0]
    return first.startswith(METADATA_PREFIX.encode()) and f'"format":"{ENVELOPE_FORMAT}"'.encode() in first


def _versioned(data: bytes, version: int, what: str) -> dict[str, Any]:
    return parse_versioned(
        data,
        fmt=ENVELOPE_FORMAT,
        version=version,
        what=what,
        kind="a Lifeboat share envelope",
        error=EnvelopeError,
    )


def _read_lines(data: bytes, what: str, label: str) -> dict[str, Any]:
    """The metadata of a version 2 plaintext, with its one share line under ``"share"``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError(f"{what} is not UTF-8 text; it is not a Lifeboat share envelope") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith(METADATA_PREFIX):
        raise EnvelopeError(f"{what} is not a Lifeboat share envelope")
    body = _versioned(lines[0][2:].encode(), ENVELOPE_VERSION, what)
    shares = [line for line in lines[1:] if not line.startswith("#")]
    if len(shares) != 1:
        raise EnvelopeError(f"{label}: an envelope holds one share line, this one {len(shares)}")
    body["share"] = shares[0]
    return body


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
    return bytes(pyrage.encrypt(content.to_plaintext(), [recipient], armored=True))


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
    return EnvelopeContent.from_plaintext(bytes(plaintext), label)
