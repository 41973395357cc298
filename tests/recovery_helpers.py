"""Shared helpers for recovery tests: deterministic keys, and signed-then-verified actions."""

from __future__ import annotations

import hashlib
import itertools

from lifeboat.recovery import messages
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.keys import KeyKind, PrivateKey
from lifeboat.recovery.messages import Action, Message, Service, VerifiedAction

SERVICE = Service(
    chain_id=31337, verifying_contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
)
VAULT = bytes.fromhex("aa" * 32)
HOUR = 3600
DAY = 86400

_nonces = itertools.count(1)


def private_key(kind: KeyKind, name: str) -> PrivateKey:
    """A fixed key per (kind, name): tests and their failures are reproducible."""
    return PrivateKey.from_seed(kind, hashlib.sha256(f"{kind.value}/{name}".encode()).digest())


def request_id(n: int) -> bytes:
    return hashlib.sha256(f"request {n}".encode()).digest()


def signed(
    key: PrivateKey,
    action: Action,
    now: int,
    *,
    nonce: int | None = None,
    vault: bytes = VAULT,
    lifetime: int = HOUR,
    service: Service = SERVICE,
) -> messages.SignedMessage:
    message = Message(
        vault, action, next(_nonces) if nonce is None else nonce, max(0, now - 60), now + lifetime
    )
    return messages.sign(service, message, key)


def act(key: PrivateKey, action: Action, now: int, **options: object) -> VerifiedAction:
    """Sign ``action`` with ``key`` and verify it at ``now``, as the service would."""
    return messages.verify(signed(key, action, now, **options), SERVICE, now)  # type: ignore[arg-type]


def family_config(
    owner: PrivateKey | None = None,
    *,
    security_period: int = 2 * DAY,
    lock_period: int = 5 * DAY,
) -> tuple[VaultConfig, list[PrivateKey], PrivateKey]:
    """Family 2-of-3 after 3 days (one guardian veto), a lawyer 1-of-1 after 30 days.

    Guardians use all three key kinds. Returns (config, family guardians, lawyer).
    """
    family = [
        private_key(KeyKind.ED25519, "alice"),
        private_key(KeyKind.BIP340, "bob"),
        private_key(KeyKind.EIP712, "carol"),
    ]
    lawyer = private_key(KeyKind.ED25519, "lawyer")
    guardians = tuple(
        Guardian(k.public_key, 1, label) for k, label in zip(family, ("Alice", "Bob", "Carol"), strict=True)
    )
    config = VaultConfig(
        guardians=(*guardians, Guardian(lawyer.public_key, 1, "Lawyer")),
        policies=(
            Policy(
                "family",
                tuple(k.public_key for k in family),
                2,
                recovery_period=3 * DAY,
                expiry_window=7 * DAY,
                veto_guardians=1,
            ),
            Policy("lawyer", (lawyer.public_key,), 1, recovery_period=30 * DAY, expiry_window=10 * DAY),
        ),
        security_period=security_period,
        lock_period=lock_period,
    )
    return config, family, lawyer
