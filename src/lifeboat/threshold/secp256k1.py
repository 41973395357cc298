"""FROST(secp256k1, SHA-256): RFC 9591 section 6.5, with group operations from libsecp256k1."""

from __future__ import annotations

import hashlib

from coincurve import PublicKey

from lifeboat.threshold.group import Element, EncodingError, RfcHooks
from lifeboat.threshold.hash_to_field import hash_to_scalar

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FIELD = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
GENERATOR = PublicKey(bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"))


class _Identity:
    """The point at infinity, which libsecp256k1 keys cannot represent."""

    def __repr__(self) -> str:
        return "secp256k1.IDENTITY"


IDENTITY = _Identity()


def _scalar_bytes(k: int) -> bytes:
    return k.to_bytes(32, "big")


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
        assert isinstance(a, PublicKey) and isinstance(b, PublicKey)
        return bool(a.format() == b.format())

    def add(self, a: Element, b: Element) -> Element:
        if a is IDENTITY:
            return b
        if b is IDENTITY:
            return a
        assert isinstance(a, PublicKey) and isinstance(b, PublicKey)
        try:
            return PublicKey.combine_keys([a, b])
        except ValueError:
            return IDENTITY  # a == -b

    def negate(self, element: Element) -> Element:
        if element is IDENTITY:
            return element
        assert isinstance(element, PublicKey)
        encoded = element.format()
        return PublicKey(bytes([encoded[0] ^ 0x01]) + encoded[1:])

    def scalar_mult(self, scalar: int, element: Element) -> Element:
        scalar %= ORDER
        if scalar == 0 or element is IDENTITY:
            return IDENTITY
        assert isinstance(element, PublicKey)
        return element.multiply(_scalar_bytes(scalar))

    def scalar_base_mult(self, scalar: int) -> Element:
        scalar %= ORDER
        if scalar == 0:
            return IDENTITY
        return PublicKey.from_valid_secret(_scalar_bytes(scalar))

    def serialize_element(self, element: Element) -> bytes:
        if element is IDENTITY:
            raise EncodingError("the identity element cannot be serialized")
        assert isinstance(element, PublicKey)
        return bytes(element.format(compressed=True))

    def deserialize_element(self, data: bytes) -> Element:
        if len(data) != 33 or data[0] not in (2, 3):
            raise EncodingError("a secp256k1 element is 33 bytes of compressed SEC1 (02 or 03 prefix)")
        if int.from_bytes(data[1:], "big") >= FIELD:
            raise EncodingError("non-canonical secp256k1 encoding (x not below p)")
        try:
            return PublicKey(bytes(data))
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


class Secp256k1Sha256(RfcHooks):
    """FROST(secp256k1, SHA-256)."""

    name = "FROST-secp256k1-SHA256-v1"
    context = b"FROST-secp256k1-SHA256-v1"
    group = Secp256k1Group()

    def H1(self, m: bytes) -> int:
        return hash_to_scalar(m, self.context + b"rho", ORDER)

    def H2(self, m: bytes) -> int:
        return hash_to_scalar(m, self.context + b"chal", ORDER)

    def H3(self, m: bytes) -> int:
        return hash_to_scalar(m, self.context + b"nonce", ORDER)

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
