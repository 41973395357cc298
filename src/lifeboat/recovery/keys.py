"""Owner and guardian keys: Ed25519, BIP-340 Schnorr over secp256k1, and Ethereum accounts (EIP-712).

A guardian approves with the key they already hold: a Lifeboat Ed25519 key, a Bitcoin-style
BIP-340 key, or the Ethereum account in their wallet. Every kind signs the same thing, the 32-byte
EIP-712 digest of a recovery message (:mod:`lifeboat.recovery.messages`), so one message format
serves all three and stays verifiable on-chain.

Textual forms (canonical: lowercase hex; :meth:`PublicKey.parse` also accepts upper and EIP-55 mixed
case, :attr:`PublicKey.text` always renders the canonical form):

* ``ed25519:<64 hex>`` — the 32-byte RFC 8032 public key; signature: 64-byte Ed25519 over the digest.
* ``bip340:<64 hex>`` — the 32-byte x-only key; signature: 64-byte BIP-340 over the digest.
* ``eip712:0x<40 hex>`` — an Ethereum address; signature: 65 bytes ``r || s || v`` (``v`` 27 or 28,
  ``s`` at most n/2, as wallets produce), an ECDSA signature over the digest whose recovered key
  hashes (Keccak-256 of the 64-byte uncompressed point, last 20 bytes) to the address.

Private keys are ``ed25519-secret:<64 hex>`` (the RFC 8032 seed), ``bip340-secret:<64 hex>`` and
``eip712-secret:<64 hex>`` (secp256k1 scalars). They are for the CLI's key files and for tests;
their ``repr`` never shows the secret.

>>> owner = PrivateKey.from_seed(KeyKind.ED25519, bytes(range(32)))
>>> signature = owner.sign(bytes(32))
>>> owner.public_key.verify(bytes(32), signature)
True
>>> PublicKey.parse(owner.public_key.text) == owner.public_key
True
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from enum import Enum

import coincurve
import nacl.exceptions
import nacl.signing
from eth_hash.auto import keccak

from lifeboat.recovery.refusals import MalformedKey

#: The order of secp256k1's group.
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

DIGEST_BYTES = 32


class KeyKind(Enum):
    """The three signature schemes a vault's owner and guardians may use."""

    ED25519 = "ed25519"
    BIP340 = "bip340"
    EIP712 = "eip712"


_PUBLIC_BYTES = {KeyKind.ED25519: 32, KeyKind.BIP340: 32, KeyKind.EIP712: 20}


def _hex(text: str, length: int, what: str) -> bytes:
    if len(text) != 2 * length:
        raise MalformedKey(f"{what} must be {2 * length} hex digits, got {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MalformedKey(f"{what} is not hex") from None


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash, not SHA3-256)."""
    return bytes(keccak(data))


def eth_address(public_key: coincurve.PublicKey) -> bytes:
    """The 20-byte Ethereum address of a secp256k1 public key."""
    return keccak256(public_key.format(compressed=False)[1:])[12:]


@dataclass(frozen=True)
class PublicKey:
    """A public key (or Ethereum address) that can verify signatures over a 32-byte digest."""

    kind: KeyKind
    data: bytes

    def __post_init__(self) -> None:
        expected = _PUBLIC_BYTES[self.kind]
        if len(self.data) != expected:
            raise MalformedKey(f"an {self.kind.value} key is {expected} bytes, not {len(self.data)}")
        if self.kind is KeyKind.ED25519:
            try:
                nacl.signing.VerifyKey(self.data)
            except (ValueError, nacl.exceptions.CryptoError):
                raise MalformedKey("not an Ed25519 public key") from None
        elif self.kind is KeyKind.BIP340:
            try:
                coincurve.PublicKeyXOnly(self.data)
            except ValueError:
                raise MalformedKey("not the x coordinate of a secp256k1 point") from None

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Parse ``ed25519:<hex>``, ``bip340:<hex>`` or ``eip712:0x<hex>``; :class:`MalformedKey` if not.

        Parsed keys are remembered by their text (a key is immutable and its text says all
        there is to it): the service reads the same guardians' keys from every vault state it
        loads, and checking that a text is a curve point costs more than the rest of a load.
        """
        if not isinstance(text, str):
            raise MalformedKey(f"a public key must be text, not {type(text).__name__}")
        if cls is PublicKey and len(text) <= _MAX_KEY_TEXT:
            return _parse_remembered(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> PublicKey:
        prefix, colon, body = text.partition(":")
        if not colon:
            raise MalformedKey("a public key is written kind:hex, e.g. ed25519:<64 hex digits>")
        try:
            kind = KeyKind(prefix)
        except ValueError:
            raise MalformedKey(
                f"unknown key kind {prefix[:20]!r}; expected ed25519, bip340 or eip712"
            ) from None
        if kind is KeyKind.EIP712:
            if not body.startswith(("0x", "0X")):
                raise MalformedKey("an eip712 key is an address written 0x<40 hex digits>")
            body = body[2:]
        return cls(kind, _hex(body, _PUBLIC_BYTES[kind], f"an {kind.value} key"))

    @functools.cached_property
    def text(self) -> str:
        """The canonical textual form (lowercase hex); computed once per key."""
        if self.kind is KeyKind.EIP712:
            return f"eip712:0x{self.data.hex()}"
        return f"{self.kind.value}:{self.data.hex()}"

    def __str__(self) -> str:
        return self.text

    def verify(self, digest: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature over the 32-byte ``digest``."""
        if len(digest) != DIGEST_BYTES or not isinstance(signature, bytes):
            return False
        if self.kind is KeyKind.ED25519:
            if len(signature) != 64:
                return False
            try:
                nacl.signing.VerifyKey(self.data).verify(digest, signature)
            except nacl.exceptions.BadSignatureError:
                return False
            return True
        if self.kind is KeyKind.BIP340:
            if len(signature) != 64:
                return False
            return bool(coincurve.PublicKeyXOnly(self.data).verify(signature, digest))
        recovered = recover_address(digest, signature)
        return recovered is not None and secrets.compare_digest(recovered, self.data)


#: The longest key text (``ed25519:`` and 64 hex digits); longer texts are refused, not remembered.
_MAX_KEY_TEXT = len("ed25519:") + 64


@functools.lru_cache(maxsize=65_536)
def _parse_remembered(text: str) -> PublicKey:
    """:meth:`PublicKey.parse` of ``text``, computed once (refusals are raised, never remembered)."""
    return PublicKey._parse(text)


def recover_address(digest: bytes, signature: bytes) -> bytes | None:
    """The Ethereum address whose key made the 65-byte ``r || s || v`` signature, or None.

    ``v`` is 27 or 28 and ``s`` at most n/2 (the canonical form wallets produce); a high ``s``, a
    zero ``r`` or ``s``, or a point that does not recover gives None.
    """
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < SECP256K1_ORDER and 0 < s <= SECP256K1_ORDER // 2):
        return None
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
        )
    except (ValueError, TypeError):
        return None
    return eth_address(public)


@dataclass(frozen=True, repr=False)
class PrivateKey:
    """A signing key of one of the three kinds; ``repr`` shows only the public key."""

    kind: KeyKind
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise MalformedKey(f"an {self.kind.value} secret key is 32 bytes, not {len(self.secret)}")
        if self.kind is not KeyKind.ED25519 and not 0 < int.from_bytes(self.secret, "big") < SECP256K1_ORDER:
            raise MalformedKey("a secp256k1 secret key must be between 1 and the group order")

    def __repr__(self) -> str:
        return f"PrivateKey({self.public_key.text})"

    @classmethod
    def generate(cls, kind: KeyKind) -> PrivateKey:
        """A fresh random key from the operating system's CSPRNG."""
        while True:
            seed = secrets.token_bytes(32)
            if kind is KeyKind.ED25519 or 0 < int.from_bytes(seed, "big") < SECP256K1_ORDER:
                return cls(kind, seed)

    @classmethod
    def from_seed(cls, kind: KeyKind, seed: bytes) -> PrivateKey:
        """The key with these 32 secret bytes (an Ed25519 seed or a secp256k1 scalar)."""
        return cls(kind, bytes(seed))

    @classmethod
    def parse(cls, text: str) -> PrivateKey:
        """Parse ``<kind>-secret:<64 hex>``; the message never repeats the text."""
        prefix, colon, body = text.strip().partition(":")
        kind_name, dash, suffix = prefix.partition("-")
        if not colon or not dash or suffix != "secret":
            raise MalformedKey("a private key is written <kind>-secret:<64 hex digits>")
        try:
            kind = KeyKind(kind_name)
        except ValueError:
            raise MalformedKey(f"unknown key kind {kind_name[:20]!r}") from None
        return cls(kind, _hex(body, 32, "a secret key"))

    @property
    def text(self) -> str:
        """The textual form for a key file (secret: write it 0600, never log it)."""
        return f"{self.kind.value}-secret:{self.secret.hex()}"

    @property
    def public_key(self) -> PublicKey:
        if self.kind is KeyKind.ED25519:
            return PublicKey(self.kind, bytes(nacl.signing.SigningKey(self.secret).verify_key))
        if self.kind is KeyKind.BIP340:
            return PublicKey(self.kind, coincurve.PublicKeyXOnly.from_secret(self.secret).format())
        return PublicKey(self.kind, eth_address(coincurve.PrivateKey(self.secret).public_key))

    def sign(self, digest: bytes, aux: bytes = bytes(32)) -> bytes:
        """Sign a 32-byte digest. ``aux`` is BIP-340's auxiliary randomness (ignored by the others);
        the default zeros keep signing deterministic, which BIP-340 allows."""
        if len(digest) != DIGEST_BYTES:
            raise ValueError(f"a digest to sign is {DIGEST_BYTES} bytes, not {len(digest)}")
        if self.kind is KeyKind.ED25519:
            return bytes(nacl.signing.SigningKey(self.secret).sign(digest).signature)
        if self.kind is KeyKind.BIP340:
            return bytes(coincurve.PrivateKey(self.secret).sign_schnorr(digest, aux))
        recoverable = bytes(coincurve.PrivateKey(self.secret).sign_recoverable(digest, hasher=None))
        return recoverable[:64] + bytes([recoverable[64] + 27])
