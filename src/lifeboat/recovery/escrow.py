"""Escrowed shares: a guardian's SLIP-39 share re-encrypted to the new owner, opened after execution.

On approval a guardian takes their share file (the text ``lifeboat shares`` wrote, or a bare
mnemonic) and encrypts it to the age X25519 recipient of the request's new owner
(:func:`escrow_share`); they sign an ``UploadShare`` with :func:`ciphertext_digest` of it and send
both. The service stores only the ciphertext and releases it once the request is executed. The new
owner then decrypts every released ciphertext with their identity and recombines the secret through
the secrets pillar, checking it in constant time against the set's fingerprint (:func:`open_bundle`).

The ciphertext is an armored age file, so ``age -d -i KEY`` opens it with the stock tool. Nothing
here does I/O; the digest is SHA-256 of the ciphertext bytes exactly as uploaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyrage

from lifeboat.errors import FingerprintMismatch, InputError, LifeboatError
from lifeboat.recovery.refusals import EscrowUnreadable
from lifeboat.secrets import slip39
from lifeboat.secrets.backup import LoadedShare, parse_share_text
from lifeboat.secrets.envelope import parse_recipient
from lifeboat.secrets.fingerprint import matches, parse_fingerprint

#: A share file is well under 1 KiB; an escrowed ciphertext far larger than this is hostile.
MAX_ESCROW_BYTES = 16 * 1024


def _one_share(text: str, label: str) -> LoadedShare:
    shares = parse_share_text(text, label)
    if len(shares) != 1:
        raise EscrowUnreadable(f"{label}: holds {len(shares)} shares; a guardian escrows exactly one")
    try:
        slip39.decode(shares[0].mnemonic, label)
    except LifeboatError as error:
        raise EscrowUnreadable(str(error)) from None
    return shares[0]


def escrow_share(share_text: str, recipient: str | pyrage.x25519.Recipient) -> bytes:
    """Encrypt one share file's text to the new owner's age recipient (``age1...``)."""
    _one_share(share_text, "the share to escrow")
    target = parse_recipient(recipient) if isinstance(recipient, str) else recipient
    return bytes(pyrage.encrypt(share_text.encode(), [target], armored=True))


def ciphertext_digest(ciphertext: bytes) -> bytes:
    """The 32 bytes an ``UploadShare`` message names: SHA-256 of the ciphertext."""
    return hashlib.sha256(ciphertext).digest()


def open_bundle(
    identity: pyrage.x25519.Identity,
    ciphertexts: Sequence[bytes],
    fingerprint: str,
    *,
    passphrase: str = "",
) -> bytes:
    """Decrypt released ciphertexts, recombine the SLIP-39 master secret and check its fingerprint.

    :class:`EscrowUnreadable` names a ciphertext that does not open with ``identity`` or holds no
    valid share; the secrets pillar's errors say what is missing from the set; and
    :class:`FingerprintMismatch` means the shares combine to another secret (a wrong passphrase, or a
    share of another set). The secret is returned only after the constant-time fingerprint check.
    """
    try:
        expected = parse_fingerprint(fingerprint)
    except ValueError as error:
        raise InputError(f"not a fingerprint: {error}") from None
    recovery = slip39.Recovery()
    for index, ciphertext in enumerate(ciphertexts, start=1):
        label = f"escrowed share {index}"
        if len(ciphertext) > MAX_ESCROW_BYTES:
            raise EscrowUnreadable(f"{label}: {len(ciphertext)} bytes is far larger than any escrowed share")
        try:
            plaintext = pyrage.decrypt(ciphertext, [identity])
        except pyrage.DecryptError:
            raise EscrowUnreadable(f"{label}: does not decrypt with this identity (or is damaged)") from None
        try:
            text = bytes(plaintext).decode()
        except UnicodeDecodeError:
            raise EscrowUnreadable(f"{label}: does not hold a share file") from None
        recovery.add(_one_share(text, label).mnemonic, label)
    secret = recovery.recover(passphrase)
    if not matches(secret, expected):
        raise FingerprintMismatch(
            "the escrowed shares combine, but not to the expected fingerprint: a wrong passphrase, "
            "or a share of another secret"
        )
    return secret
