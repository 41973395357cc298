"""Webhook payloads and their HMAC-SHA256 signatures (pure; delivery is :mod:`.outbox`).

Every audit entry becomes one notification per subscribed endpoint. The body is canonical JSON;
the ``Lifeboat-Signature`` header carries ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
``<t>.<body>``, as Stripe does, so a receiver checks authenticity and freshness with a few lines
in any language (docs/formats.md, "Recovery webhooks, version 1"). The body carries the entry's
chain hash, so each receiver also keeps a checkpoint of the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from lifeboat.documents import canonical_json
from lifeboat.errors import RecoveryError
from lifeboat.recovery.audit import AuditEntry

__all__ = [
    "DELIVERY_HEADER",
    "PAYLOAD_TYPE",
    "SIGNATURE_HEADER",
    "TOLERANCE",
    "WebhookError",
    "new_secret",
    "payload",
    "signature_header",
    "verify_signature",
]

PAYLOAD_TYPE: Final = "lifeboat.recovery.event"
PAYLOAD_VERSION: Final = 1
SIGNATURE_HEADER: Final = "Lifeboat-Signature"
DELIVERY_HEADER: Final = "Lifeboat-Delivery"
#: A receiver refuses a signature whose timestamp is further than this from its clock (seconds).
TOLERANCE: Final = 300
SECRET_BYTES: Final = 32


class WebhookError(RecoveryError):
    """A webhook endpoint or signature that is refused (bad URL, bad or stale signature)."""


def new_secret() -> bytes:
    """A fresh random signing secret for one endpoint."""
    return secrets.token_bytes(SECRET_BYTES)


def payload(delivery_id: str, entry: AuditEntry) -> bytes:
    """The body POSTed for ``entry``: canonical JSON naming the delivery and the whole entry."""
    return canonical_json(
        {"type": PAYLOAD_TYPE, "version": PAYLOAD_VERSION, "delivery": delivery_id, "entry": entry.to_json()}
    )


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Lifeboat-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secrets_: list[bytes] | bytes, header: str, body: bytes, now: int, tolerance: int = TOLERANCE
) -> int:
    """Check a received webhook; returns its timestamp or raises :class:`WebhookError`.

    ``secrets_`` may list several secrets (during a rotation); any ``v1`` value in the header
    that matches any of them passes. Comparisons are constant-time.
    """
    keys = [secrets_] if isinstance(secrets_, bytes) else list(secrets_)
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookError(f"the {SIGNATURE_HEADER} header is malformed")
        fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or len(stamps[0]) > 12:
        raise WebhookError(f"the {SIGNATURE_HEADER} header has no valid timestamp")
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        raise WebhookError(f"the webhook was signed at {timestamp}, more than {tolerance} s from now ({now})")
    expected = [_mac(key, timestamp, body) for key in keys]
    for candidate in fields.get("v1", []):
        if any(hmac.compare_digest(candidate, mac) for mac in expected):
            return timestamp
    raise WebhookError("no webhook signature matches: wrong secret, or the body was changed")
