"""The secrets pillar: BIP-39, SLIP-39 share sets, guardian envelopes, cards, drills, sealed files.

Safe defaults for the common case live here; the modules below expose every knob:

>>> from lifeboat import secrets
>>> shares = secrets.split(bytes(16), "2of3")
>>> secrets.combine(shares[:2]) == bytes(16)
True
"""

from __future__ import annotations

from collections.abc import Iterable

from lifeboat.secrets import slip39


def split(master_secret: bytes, scheme: str | slip39.Scheme = "2of3", *, passphrase: str = "") -> list[str]:
    """Split ``master_secret`` into SLIP-39 mnemonics (extendable, iteration exponent 1)."""
    parsed = slip39.Scheme.parse(scheme) if isinstance(scheme, str) else scheme
    return slip39.split(master_secret, parsed, passphrase=passphrase).shares()


def combine(mnemonics: Iterable[str], *, passphrase: str = "") -> bytes:
    """Recover the master secret from enough SLIP-39 mnemonics; errors name the failing share."""
    return slip39.combine(mnemonics, passphrase)


__all__ = ["combine", "split"]
