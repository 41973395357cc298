"""Shared pieces of the on-chain tests: a FROST(secp256k1) group that signs in memory, and a vault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boa

from lifeboat.onchain import contracts
from lifeboat.threshold import frost, keygen
from lifeboat.threshold.group import KeyPackage, PublicKeyPackage
from lifeboat.threshold.secp256k1 import Secp256k1Sha256

SUITE = Secp256k1Sha256()
DAY = 86400


@dataclass
class Group:
    """A t-of-n FROST(secp256k1, SHA-256) group from a trusted dealer (tests only)."""

    key_packages: list[KeyPackage]
    public: PublicKeyPackage

    @classmethod
    def make(cls, t: int = 2, n: int = 3) -> Group:
        key_packages, public, _ = keygen.trusted_dealer_keygen(SUITE, t, n)
        return cls(key_packages, public)

    @property
    def key(self) -> bytes:
        return SUITE.group.serialize_element(self.public.group_public_key)

    def sign(self, message: bytes, members: Sequence[int] = (0, 1)) -> bytes:
        nonces = [frost.commit(SUITE, self.key_packages[i]) for i in members]
        commitments = [n.commitment for n in nonces]
        shares = [
            frost.sign(SUITE, self.key_packages[i], n, message, commitments)
            for i, n in zip(members, nonces, strict=True)
        ]
        return frost.aggregate(SUITE, commitments, message, shares, self.public)


def group_with_small_x() -> Group:
    """A group whose key has x below the group order (true for all but ~2**-128 of keys)."""
    while True:
        group = Group.make()
        if int.from_bytes(group.key[1:], "big") < SUITE.group.order:
            return group


def deploy_vault(group: Group, governance: Any, guardian: Any, delay: int = 2 * DAY) -> Any:
    return contracts.deployer("LedgerVault").deploy(governance, guardian, delay, group.key)


def funded(amount: int = 10**24) -> Any:
    account = boa.env.generate_address()
    boa.env.set_balance(account, amount)
    return account
