"""The prime-order group and ciphersuite interfaces of RFC 9591 (sections 3.1 and 4).

The protocol (:mod:`lifeboat.threshold.frost`) is written once against these interfaces; each
curve is a thin module that fills them in (:mod:`.ed25519`, :mod:`.secp256k1`, :mod:`.taproot`).
Scalars are Python ints modulo the group order. Elements are opaque values owned by the group
(32-byte encodings for Ed25519, library point objects for secp256k1); only the group creates,
compares and encodes them. The identity element is a value like any other here, because the
libraries underneath cannot represent it (coincurve) or refuse it (libsodium). The key packages
(:class:`KeyPackage`, :class:`PublicKeyPackage`) are defined here too, because the ciphersuite hooks
take them; the protocol modules import them from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeGuard, cast, runtime_checkable

from lifeboat.errors import LifeboatError

Element = object


class ThresholdError(LifeboatError):
    """A FROST operation failed; ``culprits`` names the participants at fault, if any."""

    def __init__(self, message: str, culprits: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.culprits = culprits


class EncodingError(ThresholdError):
    """A scalar or element encoding is invalid, non-canonical, out of range or the identity."""


@dataclass(frozen=True)
class KeyPackage:
    """One participant's long-lived signing key material."""

    identifier: int
    signing_share: int
    verifying_share: Element
    group_public_key: Element
    min_signers: int

    def __repr__(self) -> str:
        return f"KeyPackage(identifier={self.identifier}, <secret>)"


@dataclass(frozen=True)
class PublicKeyPackage:
    """What anyone needs to verify signature shares and signatures of the group."""

    verifying_shares: Mapping[int, Element]
    group_public_key: Element
    min_signers: int


class Group(Protocol):
    """RFC 9591 section 3.1: a prime-order group."""

    @property
    def name(self) -> str: ...
    @property
    def order(self) -> int: ...
    @property
    def element_length(self) -> int: ...
    @property
    def scalar_length(self) -> int: ...

    def identity(self) -> Element: ...
    def generator(self) -> Element: ...
    def is_identity(self, element: Element) -> bool: ...
    def equal(self, a: Element, b: Element) -> bool: ...
    def add(self, a: Element, b: Element) -> Element: ...
    def negate(self, element: Element) -> Element: ...
    def scalar_mult(self, scalar: int, element: Element) -> Element: ...
    def scalar_base_mult(self, scalar: int) -> Element: ...
    def serialize_element(self, element: Element) -> bytes: ...
    def deserialize_element(self, data: bytes) -> Element: ...
    def serialize_scalar(self, scalar: int) -> bytes: ...
    def deserialize_scalar(self, data: bytes) -> int: ...


class Ciphersuite(Protocol):
    """RFC 9591 section 6: a group, a context string and the hash functions H1 to H5.

    The three hooks after them are where a variant departs from the RFC (the BIP-340 suite);
    :class:`RfcHooks` gives the RFC behaviour.
    """

    @property
    def name(self) -> str: ...
    @property
    def context(self) -> bytes: ...
    @property
    def group(self) -> Group: ...

    def H1(self, m: bytes) -> int: ...
    def H2(self, m: bytes) -> int: ...
    def H3(self, m: bytes) -> int: ...
    def H4(self, m: bytes) -> bytes: ...
    def H5(self, m: bytes) -> bytes: ...

    def challenge(self, group_commitment: Element, group_public_key: Element, message: bytes) -> int:
        """RFC 9591 section 4.6 compute_challenge."""
        ...

    def signs(self, group_commitment: Element, group_public_key: Element) -> tuple[int, int]:
        """Signs (+1 or -1) applied to the nonce term and the key term of a signature share."""
        ...

    def encode_signature(self, group_commitment: Element, z: int) -> bytes: ...

    def prepare_key_package(self, key_package: KeyPackage) -> KeyPackage:
        """The form of a key package that round two signs with (ZF ``pre_sign``)."""
        ...

    def prepare_public_key_package(self, public_key_package: PublicKeyPackage) -> PublicKeyPackage:
        """The form of a public key package that share checks and aggregation use (ZF ``pre_aggregate``)."""
        ...

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> bool:
        """Verify a single-key Schnorr signature as this suite defines it."""
        ...


class RfcHooks:
    """The RFC 9591 challenge, signature encoding and (trivial) sign handling."""

    group: Group

    def H2(self, m: bytes) -> int:
        raise NotImplementedError

    def challenge(self, group_commitment: Element, group_public_key: Element, message: bytes) -> int:
        g = self.group
        return self.H2(
            g.serialize_element(group_commitment) + g.serialize_element(group_public_key) + message
        )

    def signs(self, group_commitment: Element, group_public_key: Element) -> tuple[int, int]:
        return 1, 1

    def encode_signature(self, group_commitment: Element, z: int) -> bytes:
        return self.group.serialize_element(group_commitment) + self.group.serialize_scalar(z)

    def prepare_key_package(self, key_package: KeyPackage) -> KeyPackage:
        return key_package

    def prepare_public_key_package(self, public_key_package: PublicKeyPackage) -> PublicKeyPackage:
        return public_key_package


@runtime_checkable
class MultiAdd(Protocol):
    """A group that adds many elements in one call (libsecp256k1 does; libsodium does not)."""

    def sum(self, elements: Sequence[Element]) -> Element: ...


_MULTI_ADD: dict[type, bool] = {}


def has_multi_add(group: Group) -> TypeGuard[MultiAdd]:
    """``isinstance(group, MultiAdd)``, remembered per class (a protocol check costs microseconds)."""
    kind = type(group)
    known = _MULTI_ADD.get(kind)
    if known is None:
        known = _MULTI_ADD[kind] = isinstance(group, MultiAdd)
    return known


def sum_elements(group: Group, elements: Sequence[Element]) -> Element:
    """The sum of ``elements``: in one call if the group can, else one addition at a time."""
    if has_multi_add(group):
        return group.sum(elements)
    total = group.identity()
    for element in elements:
        total = group.add(total, element)
    return total


@runtime_checkable
class BulkSerialize(Protocol):
    """A group that encodes many elements at once faster than one call per element."""

    def serialize_elements(self, elements: Sequence[Element]) -> bytes: ...


_BULK_SERIALIZE: dict[type, bool] = {}


def serialize_elements(group: Group, elements: Sequence[Element]) -> bytes:
    """The encodings of ``elements``, one after the other (:class:`EncodingError` for the identity)."""
    kind = type(group)
    bulk = _BULK_SERIALIZE.get(kind)
    if bulk is None:
        bulk = _BULK_SERIALIZE[kind] = isinstance(group, BulkSerialize)
    if bulk:
        return cast(BulkSerialize, group).serialize_elements(elements)
    return b"".join(map(group.serialize_element, elements))
