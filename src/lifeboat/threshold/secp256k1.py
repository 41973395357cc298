"""FROST(secp256k1, SHA-256): RFC 9591 section 6.5, with group operations from libsecp256k1.

Elements are :class:`Point` objects: coincurve public keys that remember their compressed
encoding once it is known (decoded from, or computed once), since the protocol serializes the
same commitments and keys many times per signature. Plain coincurve ``PublicKey`` objects are
accepted wherever an element is expected.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

from coincurve import PublicKey

from lifeboat.threshold.group import Element, EncodingError, RfcHooks

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FIELD = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F


class Point(PublicKey):
    """A point of secp256k1 other than the identity, caching its 33-byte compressed encoding."""

    def __init__(self, key: PublicKey, encoding: bytes | None = None) -> None:
        # Share the parsed libsecp256k1 point of ``key``; no copy, no parse.
        self.public_key = key.public_key
        self.context = key.context
        self._encoding = encoding

    def format(self, compressed: bool = True) -> bytes:
        if not compressed:
            return super().format(compressed=False)
        encoding = self._encoding
        if encoding is None:
            encoding = self._encoding = super().format(compressed=True)
        return encoding


GENERATOR = Point(
    PublicKey(bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"))
)


class _Identity:
    """The point at infinity, which libsecp256k1 keys cannot represent."""

    def __repr__(self) -> str:
        return "secp256k1.IDENTITY"


IDENTITY = _Identity()


def _scalar_bytes(k: int) -> bytes:
    return k.to_bytes(32, "big")


def _key(element: Element) -> PublicKey:
    assert isinstance(element, PublicKey)
    return element


class Secp256k1Group:
    name = "secp256k1"
    order = ORDER
    element_length = 33
    scalar_length = 32

    def identity(self) -> Element:
        return IDENTITY

    def generator(self) -> Element:
        return GENERATOR

    def is_identity(self, element: Element) -> bool:
        return element is IDENTITY

    def equal(self, a: Element, b: Element) -> bool:
        if a is IDENTITY or b is IDENTITY:
            return a is b
        return bool(_key(a).format() == _key(b).format())

    def add(self, a: Element, b: Element) -> Element:
        if a is IDENTITY:
            return b
        if b is IDENTITY:
            return a
        try:
            return Point(PublicKey.combine_keys([_key(a), _key(b)]))
        except ValueError:
            return IDENTITY  # a == -b

    def sum(self, elements: Sequence[Element]) -> Element:
        """The sum of many elements in one libsecp256k1 call (``secp256k1_ec_pubkey_combine``).

        Not part of the RFC group interface; the protocol code uses it when a group offers it.
        """
        keys = [_key(e) for e in elements if e is not IDENTITY]
        if not keys:
            return IDENTITY
        if len(keys) == 1:
            return keys[0]
        try:
            return Point(PublicKey.combine_keys(keys))
        except ValueError:
            return IDENTITY  # the terms cancel out

    def negate(self, element: Element) -> Element:
        if element is IDENTITY:
            return element
        encoded = _key(element).format()
        negated = bytes([encoded[0] ^ 0x01]) + encoded[1:]
        return Point(PublicKey(negated), negated)

    def scalar_mult(self, scalar: int, element: Element) -> Element:
        """``[scalar]element``. libsecp256k1's multiplication here is variable-time: public scalars only."""
        scalar %= ORDER
        if scalar == 0 or element is IDENTITY:
            return IDENTITY
        return Point(_key(element).multiply(_scalar_bytes(scalar)))

    def scalar_base_mult(self, scalar: int) -> Element:
        scalar %= ORDER
        if scalar == 0:
            return IDENTITY
        return Point(PublicKey.from_valid_secret(_scalar_bytes(scalar)))

    def serialize_element(self, element: Element) -> bytes:
        if element is IDENTITY:
            raise EncodingError("the identity element cannot be serialized")
        return bytes(_key(element).format(compressed=True))

    def serialize_elements(self, elements: Sequence[Element]) -> bytes:
        """The compressed encodings of ``elements`` one after the other, from each point's cache
        when it has one (a DKG digest encodes every commitment element of every participant)."""
        encodings = []
        for element in elements:
            encoding = element._encoding if type(element) is Point else None
            encodings.append(encoding if encoding is not None else self.serialize_element(element))
        return b"".join(encodings)

    def deserialize_element(self, data: bytes) -> Element:
        if len(data) != 33 or data[0] not in (2, 3):
            raise EncodingError("a secp256k1 element is 33 bytes of compressed SEC1 (02 or 03 prefix)")
        if int.from_bytes(data[1:], "big") >= FIELD:
            raise EncodingError("non-canonical secp256k1 encoding (x not below p)")
        encoded = bytes(data)
        try:
            return Point(PublicKey(encoded), encoded)
        except ValueError:
            raise EncodingError("not a point on secp256k1") from None

    def serialize_scalar(self, scalar: int) -> bytes:
        return _scalar_bytes(scalar % ORDER)

    def deserialize_scalar(self, data: bytes) -> int:
        if len(data) != 32:
            raise EncodingError(f"a secp256k1 scalar is 32 bytes, not {len(data)}")
        value = int.from_bytes(data, "big")
        if value >= ORDER:
            raise EncodingError("scalar is not below the group order")
        return value


_ZERO_BLOCK = hashlib.sha256(bytes(64))  # SHA-256 after absorbing Z_pad, copied for every hash


@functools.lru_cache(maxsize=32)
def _hash_to_scalar(dst: bytes) -> Callable[[bytes], int]:
    """``hash_to_field(msg, 1)`` modulo ORDER for one DST: expand_message_xmd with SHA-256, L = 48.

    The same function as :func:`lifeboat.threshold.hash_to_field.hash_to_scalar` (RFC 9380
    sections 5.2 and 5.3.1), unrolled for L = 48 (two SHA-256 blocks) with the DST-dependent
    pieces and the hash of Z_pad computed once.
    """
    if len(dst) > 255:
        raise ValueError("expand_message_xmd: DST too long")
    dst_prime = dst + bytes([len(dst)])
    tail = (48).to_bytes(2, "big") + b"\x00" + dst_prime  # I2OSP(L, 2) || I2OSP(0, 1) || DST'
    one, two = b"\x01" + dst_prime, b"\x02" + dst_prime
    sha256 = hashlib.sha256

    def hash_to_scalar(msg: bytes) -> int:
        h = _ZERO_BLOCK.copy()
        h.update(msg)
        h.update(tail)
        b0 = h.digest()
        b1 = sha256(b0 + one).digest()
        mixed = (int.from_bytes(b0, "big") ^ int.from_bytes(b1, "big")).to_bytes(32, "big")
        b2 = sha256(mixed + two).digest()
        return int.from_bytes(b1 + b2[:16], "big") % ORDER

    return hash_to_scalar


class Secp256k1Sha256(RfcHooks):
    """FROST(secp256k1, SHA-256)."""

    name = "FROST-secp256k1-SHA256-v1"
    context = b"FROST-secp256k1-SHA256-v1"
    group = Secp256k1Group()

    def H1(self, m: bytes) -> int:
        return _hash_to_scalar(self.context + b"rho")(m)

    def H2(self, m: bytes) -> int:
        return _hash_to_scalar(self.context + b"chal")(m)

    def H3(self, m: bytes) -> int:
        return _hash_to_scalar(self.context + b"nonce")(m)

    def H4(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"msg" + m).digest()

    def H5(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"com" + m).digest()

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> bool:
        """Prime-order Schnorr verification: [z]G == R + [c]PK, c = H2(R || PK || msg)."""
        g = self.group
        if len(signature) != 65:
            return False
        try:
            r = g.deserialize_element(signature[:33])
            z = g.deserialize_scalar(signature[33:])
        except EncodingError:
            return False
        c = self.H2(signature[:33] + g.serialize_element(public_key) + message)
        return g.equal(g.scalar_base_mult(z), g.add(r, g.scalar_mult(c, public_key)))
