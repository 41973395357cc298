"""Escrowed shares: re-encrypted to the new owner, recombined only with their identity, and a dump
of everything the service stores before execution reveals nothing usable."""

from __future__ import annotations

import re

import pyrage
import pytest

from lifeboat import secrets
from lifeboat.errors import FingerprintMismatch, LifeboatError
from lifeboat.recovery import refusals
from lifeboat.recovery.escrow import ciphertext_digest, escrow_share, open_bundle
from lifeboat.secrets.fingerprint import fingerprint, format_fingerprint

SECRET = bytes(range(32))
SHARES = secrets.split(SECRET, "2of3")
FINGERPRINT = format_fingerprint(fingerprint(SECRET))
NEW_OWNER = pyrage.x25519.Identity.generate()


def share_file(mnemonic: str) -> str:
    return f"# Lifeboat SLIP-39 share. Set s1, fingerprint {FINGERPRINT}\n# Group 1 of 1\n{mnemonic}\n"


def escrowed(count: int = 2) -> list[bytes]:
    return [escrow_share(share_file(m), str(NEW_OWNER.to_public())) for m in SHARES[:count]]


def test_the_new_owner_recombines_the_secret() -> None:
    assert open_bundle(NEW_OWNER, escrowed(), FINGERPRINT) == SECRET
    assert open_bundle(NEW_OWNER, escrowed(3), FINGERPRINT) == SECRET


def test_a_bare_mnemonic_escrows_too() -> None:
    ciphertexts = [escrow_share(m, NEW_OWNER.to_public()) for m in SHARES[1:]]
    assert open_bundle(NEW_OWNER, ciphertexts, FINGERPRINT) == SECRET


def test_too_few_shares_say_so() -> None:
    with pytest.raises(LifeboatError):
        open_bundle(NEW_OWNER, escrowed(1), FINGERPRINT)


def test_a_wrong_fingerprint_is_refused() -> None:
    with pytest.raises(FingerprintMismatch):
        open_bundle(NEW_OWNER, escrowed(), format_fingerprint(fingerprint(bytes(32))))


def test_another_identity_cannot_open_them() -> None:
    with pytest.raises(refusals.EscrowUnreadable, match="escrowed share 1"):
        open_bundle(pyrage.x25519.Identity.generate(), escrowed(), FINGERPRINT)


def test_a_damaged_or_oversized_ciphertext_is_refused() -> None:
    good = escrowed()
    damaged = good[0].replace(b"\n", b"\nA", 3)
    with pytest.raises(refusals.EscrowUnreadable):
        open_bundle(NEW_OWNER, [damaged, good[1]], FINGERPRINT)
    with pytest.raises(refusals.EscrowUnreadable):
        open_bundle(NEW_OWNER, [b"x" * 20_000, good[1]], FINGERPRINT)


def test_only_one_valid_share_is_escrowed() -> None:
    with pytest.raises(refusals.EscrowUnreadable):
        escrow_share(SHARES[0] + "\n" + SHARES[1], NEW_OWNER.to_public())
    with pytest.raises(refusals.EscrowUnreadable):
        escrow_share("not a share at all", NEW_OWNER.to_public())


def test_the_digest_names_the_exact_ciphertext() -> None:
    first, second = escrowed()
    assert ciphertext_digest(first) != ciphertext_digest(second) and len(ciphertext_digest(first)) == 32
    assert ciphertext_digest(first) == ciphertext_digest(bytes(first))


def test_a_dump_before_execution_reveals_nothing_usable() -> None:
    """What the service holds before execution: ciphertexts and their digests. Without the new
    owner's identity, no share word sequence appears in it, and no other identity opens it."""
    ciphertexts = escrowed(3)
    dump = b"\n".join(ciphertexts + [ciphertext_digest(c).hex().encode() for c in ciphertexts]).lower()
    for mnemonic in SHARES:
        words = mnemonic.split()
        for i in range(len(words) - 1):
            pair = f"{words[i]} {words[i + 1]}".encode()
            assert pair not in dump
    body = b"\n".join(line for line in dump.splitlines() if not line.startswith(b"-----"))  # armor lines
    assert not re.search(rb"[a-z]+ [a-z]+ [a-z]+", body)  # no run of words at all
    for _ in range(3):
        with pytest.raises(refusals.EscrowUnreadable):
            open_bundle(pyrage.x25519.Identity.generate(), ciphertexts, FINGERPRINT)
    # and the ciphertext of the same share differs each time: equal shares cannot be matched up
    assert escrow_share(SHARES[0], NEW_OWNER.to_public()) != escrow_share(SHARES[0], NEW_OWNER.to_public())
