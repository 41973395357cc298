"""FROST(Ed25519, SHA-512): RFC 9591 section 6.1, with group operations from libsodium."""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
from nacl.exceptions import BadSignatureError
from nacl.exceptions import RuntimeError as SodiumError

from lifeboat.threshold.group import Element, EncodingError, RfcHooks

ORDER = 2**252 + 27742317777372353535851937790883648493
IDENTITY = b"\x01" + bytes(31)
GENERATOR = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")
COFACTOR = 8


class Ed25519Group:
    name = "ed25519"
    order = ORDER
    element_length = 32
    scalar_length = 32

    def identity(self) -> Element:
        return IDENTITY

    def generator(self) -> Element:
        return GENERATOR

    def is_identity(self, element: Element) -> bool:
        return element == IDENTITY

    def equal(self, a: Element, b: Element) -> bool:
        return a == b

    def add(self, a: Element, b: Element) -> Element:
        assert isinstance(a, bytes) and isinstance(b, bytes)
        if a == IDENTITY:
            return b
        if b == IDENTITY:
            return a
        return bytes(sodium.crypto_core_ed25519_add(a, b))

    def negate(self, element: Element) -> Element:
        assert isinstance(element, bytes)
        if element == IDENTITY:
            return element
        # The x coordinate's sign is the top bit of the last byte.
        return element[:31] + bytes([element[31] ^ 0x80])

    def scalar_mult(self, scalar: int, element: Element) -> Element:
        assert isinstance(element, bytes)
        scalar %= ORDER
        if scalar == 0 or element == IDENTITY:
            return IDENTITY
        try:
            return bytes(sodium.crypto_scalarmult_ed25519_noclamp(scalar.to_bytes(32, "little"), element))
        except SodiumError:
            # libsodium refuses results of small order; on the prime-order subgroup that is only
            # the identity, which cannot arise for a non-zero scalar and a non-identity element.
            return IDENTITY

    def scalar_base_mult(self, scalar: int) -> Element:
        scalar %= ORDER
        if scalar == 0:
            return IDENTITY
        return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(scalar.to_bytes(32, "little")))

    def serialize_element(self, element: Element) -> bytes:
        assert isinstance(element, bytes)
        if element == IDENTITY:
            raise EncodingError("the identity element cannot be serialized")
        return element

    def deserialize_element(self, data: bytes) -> Element:
        if len(data) != 32:
            raise EncodingError(f"an Ed25519 element is 32 bytes, not {len(data)}")
        if data == IDENTITY:
            raise EncodingError("the identity element is not allowed here")
        # Canonical, on the curve, not of small order, in the prime-order subgroup.
        if not sodium.crypto_core_ed25519_is_valid_point(data):
            raise EncodingError("not a canonical point of the Ed25519 prime-order subgroup")
        # libsodium accepts a y coordinate >= p in some versions; insist on canonical y.
        y = int.from_bytes(data, "little") & ((1 << 255) - 1)
        if y >= 2**255 - 19:
            raise EncodingError("non-canonical Ed25519 encoding")
        return bytes(data)

    def serialize_scalar(self, scalar: int) -> bytes:
        return (scalar % ORDER).to_bytes(32, "little")

    def deserialize_scalar(self, data: bytes) -> int:
        if len(data) != 32:
            raise EncodingError(f"an Ed25519 scalar is 32 bytes, not {len(data)}")
        value = int.from_bytes(data, "little")
        if value >= ORDER:
            raise EncodingError("scalar is not below the group order")
        return value


def _h(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % ORDER


class Ed25519Sha512(RfcHooks):
    """FROST(Ed25519, SHA-512). Signatures verify as ordinary Ed25519 (RFC 8032) signatures."""

    name = "FROST-ED25519-SHA512-v1"
    context = b"FROST-ED25519-SHA512-v1"
    group = Ed25519Group()

    def H1(self, m: bytes) -> int:
        return _h(self.context, b"rho", m)

    def H2(self, m: bytes) -> int:
        return _h(m)  # no context string: the challenge of RFC 8032

    def H3(self, m: bytes) -> int:
        return _h(self.context, b"nonce", m)

    def H4(self, m: bytes) -> bytes:
        return hashlib.sha512(self.context + b"msg" + m).digest()

    def H5(self, m: bytes) -> bytes:
        return hashlib.sha512(self.context + b"com" + m).digest()

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> bool:
        """Cofactored verification (RFC 9591 appendix B): [8][z]B == [8]R + [8][c]PK.

        libsodium's Ed25519 verifier (``crypto_sign_open``) decides it: it checks the
        cofactorless equation [z]B == R + [c]PK with the same challenge c = H2(R || PK || msg),
        compares R byte for byte with the canonical encoding of the point it computes, and
        refuses z >= L and R of small order. Group elements (PK) lie in the prime-order
        subgroup, so [z]B - [c]PK does too; a signature passes exactly when R is the canonical
        encoding of that point, which is when R decodes as a group element (canonical, in the
        subgroup, not the identity) and the cofactored equation holds: the same answers as
        decoding R and checking the cofactored equation, at a fraction of the cost.
        """
        g = self.group
        if len(signature) != 64:
            return False
        if public_key == IDENTITY:
            # As before: a malformed signature is False, a well-formed one reaches the key and
            # serialize_element refuses the identity.
            try:
                g.deserialize_element(signature[:32])
                g.deserialize_scalar(signature[32:])
            except EncodingError:
                return False
        pk = g.serialize_element(public_key)
        if signature[:32] == IDENTITY or int.from_bytes(signature[32:], "little") >= ORDER:
            return False
        try:
            sodium.crypto_sign_open(signature + message, pk)
        except BadSignatureError:
            return False
        return True
