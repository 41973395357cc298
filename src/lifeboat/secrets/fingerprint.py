"""Fingerprints of secrets: public, short, and safe to print on a share card.

A fingerprint is BLAKE3 in key-derivation mode over the secret, with a context string fixed by
this format version, truncated to 128 bits. It identifies a secret (a SLIP-39 master secret, a
sealed file's key) without revealing it: the secrets it is computed over carry at least 128
bits of entropy, so the fingerprint cannot be inverted by search.
"""

from __future__ import annotations

import hmac

import blake3

FINGERPRINT_CONTEXT = "lifeboat 2026-11 secret fingerprint v1"
FINGERPRINT_BYTES = 16


def fingerprint(secret: bytes) -> bytes:
    """Return the 16-byte fingerprint of ``secret``."""
    hasher = blake3.blake3(derive_key_context=FINGERPRINT_CONTEXT)
    hasher.update(secret)
    return hasher.digest(length=FINGERPRINT_BYTES)


def format_fingerprint(value: bytes) -> str:
    """Render a fingerprint for people: 8 groups of 4 hex digits (``3f9a-1c2e-...``)."""
    text = value.hex()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_fingerprint(text: str) -> bytes:
    """Parse a fingerprint written by :func:`format_fingerprint` (dashes optional)."""
    value = bytes.fromhex(text.replace("-", "").strip())
    if len(value) != FINGERPRINT_BYTES:
        raise ValueError(f"a fingerprint is {FINGERPRINT_BYTES} bytes, not {len(value)}")
    return value


def matches(secret: bytes, expected: bytes) -> bool:
    """Constant-time check that ``secret`` has fingerprint ``expected``."""
    return hmac.compare_digest(fingerprint(secret), expected)
