"""The registry of ciphersuites, by RFC 9591 context string and by short CLI name."""

from __future__ import annotations

from lifeboat.threshold import taproot
from lifeboat.threshold.ed25519 import Ed25519Sha512
from lifeboat.threshold.group import Ciphersuite, ThresholdError
from lifeboat.threshold.secp256k1 import Secp256k1Sha256


def _all() -> dict[str, Ciphersuite]:
    found: dict[str, Ciphersuite] = {"ed25519": Ed25519Sha512(), "secp256k1": Secp256k1Sha256()}
    found["secp256k1-tr"] = taproot.SUITE
    return found


SHORT_NAMES = _all()
BY_CONTEXT = {suite.name: suite for suite in SHORT_NAMES.values()}


def by_name(name: str) -> Ciphersuite:
    """A suite by short name (``ed25519``) or context string (``FROST-ED25519-SHA512-v1``)."""
    suite = SHORT_NAMES.get(name) or BY_CONTEXT.get(name)
    if suite is None:
        raise ThresholdError(
            f"unknown ciphersuite {name!r}; choose one of {', '.join(SHORT_NAMES)} "
            f"(or {', '.join(BY_CONTEXT)})"
        )
    return suite


def short_name(suite: Ciphersuite) -> str:
    return next(k for k, v in SHORT_NAMES.items() if v.name == suite.name)
