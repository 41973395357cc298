"""FROST(secp256k1, SHA-256) for Taproot: threshold signatures that are BIP-340 Schnorr signatures.

This is the ``FROST-secp256k1-SHA256-TR-v1`` ciphersuite as the Zcash Foundation's
``frost-secp256k1-tr`` crate defines it. It keeps the RFC 9591 protocol, group and element
encodings (33-byte compressed points for commitments and verifying shares) and changes four things:

* H2, the challenge hash, is the BIP-340 tagged hash ``SHA256(T || T || m)`` with
  ``T = SHA256("BIP0340/challenge")``, reduced modulo the order; H1 and H3 are RFC 9380
  hash_to_field and H4 and H5 plain SHA-256, as in RFC 9591 section 6.5, under this context string.
* The challenge hashes the x coordinates of R and of the group key only: ``H2(x(R) || x(PK) || msg)``.
* Signing happens under the even-y form of the group key: a group key with odd y is replaced by its
  negation, and every signing share and verifying share with it (:func:`even_y_key_package`,
  :func:`even_y_public_key_package`). The binding factors then hash ``02 || x(PK)``.
* If the group commitment R has odd y, every signer negates its two nonces (the ``signs`` hook),
  so that the signature's R is the even-y point with the same x.

A signature is ``x(R) || z`` (64 bytes) and verifies with any BIP-340 verifier under ``x(PK)``.

ZF stores key packages as dealt (or tweaked) and converts them to even-y form inside ``sign`` and
``aggregate``; :mod:`lifeboat.threshold.frost` has no such step, so callers convert first, with
:func:`even_y_key_package` and :func:`even_y_public_key_package`. :meth:`Secp256k1TaprootSha256.signs`
refuses a group key with odd y rather than silently compute binding factors that ZF would not.

:func:`tweak_key_package` and :func:`tweak_public_key_package` apply the BIP-341 TapTweak (by
default with an empty script tree: the key-path-only output key, as ZF does after a DKG) and
return packages in even-y form that sign for the output key Q. The ZF signing vectors use no
tweak: a dealer's key package signs for the untweaked group key.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from lifeboat.threshold.group import Element, EncodingError, KeyPackage, PublicKeyPackage, ThresholdError
from lifeboat.threshold.hash_to_field import hash_to_scalar
from lifeboat.threshold.secp256k1 import ORDER, Secp256k1Group

CONTEXT = b"FROST-secp256k1-SHA256-TR-v1"

_GROUP = Secp256k1Group()


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP-340 tagged hash: ``SHA256(SHA256(tag) || SHA256(tag) || data)``."""
    tag_digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_digest + tag_digest + data).digest()


def has_even_y(element: Element) -> bool:
    """Whether a (non-identity) point has an even y coordinate."""
    return _GROUP.serialize_element(element)[0] == 0x02


def x_only(element: Element) -> bytes:
    """The 32-byte x coordinate of a (non-identity) point, as BIP-340 encodes keys and R."""
    return _GROUP.serialize_element(element)[1:]


def lift_x(data: bytes) -> Element:
    """BIP-340 ``lift_x``: the point with x coordinate ``data`` and even y.

    Raises :class:`EncodingError` for a wrong length, ``x >= p`` or an x that is not on the curve.
    """
    if len(data) != 32:
        raise EncodingError(f"an x-only secp256k1 point is 32 bytes, not {len(data)}")
    return _GROUP.deserialize_element(b"\x02" + data)


def even_y(element: Element) -> Element:
    """``element`` or its negation, whichever has even y."""
    return element if has_even_y(element) else _GROUP.negate(element)


def even_y_key_package(package: KeyPackage) -> KeyPackage:
    """The key package for the even-y form of its group key (negate every part if y is odd).

    Negation commutes with Shamir sharing, so the negated shares are a sharing of the negated
    secret. This is what ``frost-secp256k1-tr`` does to a key package before signing.
    """
    if has_even_y(package.group_public_key):
        return package
    return replace(
        package,
        signing_share=(-package.signing_share) % ORDER,
        verifying_share=_GROUP.negate(package.verifying_share),
        group_public_key=_GROUP.negate(package.group_public_key),
    )


def even_y_public_key_package(package: PublicKeyPackage) -> PublicKeyPackage:
    """The public key package for the even-y form of its group key (see :func:`even_y_key_package`)."""
    if has_even_y(package.group_public_key):
        return package
    return PublicKeyPackage(
        {identifier: _GROUP.negate(share) for identifier, share in package.verifying_shares.items()},
        _GROUP.negate(package.group_public_key),
        package.min_signers,
    )


def taptweak(public_key: Element, merkle_root: bytes = b"") -> int:
    """BIP-341 ``t = hashTapTweak(x(P) || merkle_root)``; an empty root means no script path."""
    if len(merkle_root) not in (0, 32):
        raise ThresholdError("a Taproot merkle root is 32 bytes (or empty for a key-path-only output)")
    t = int.from_bytes(tagged_hash("TapTweak", x_only(public_key) + merkle_root), "big")
    if t >= ORDER:
        raise ThresholdError("the TapTweak hash is not below the group order (BIP-341: no output key)")
    return t


def taproot_output_key(public_key: Element, merkle_root: bytes = b"") -> bytes:
    """The x-only BIP-341 output key ``Q = lift_x(x(P)) + tG`` that a P2TR output commits to."""
    t = taptweak(public_key, merkle_root)
    return x_only(_GROUP.add(even_y(public_key), _GROUP.scalar_base_mult(t)))


def tweak_key_package(package: KeyPackage, merkle_root: bytes = b"") -> KeyPackage:
    """The key package that signs for the BIP-341 output key ``Q`` of the package's group key.

    As ``frost-secp256k1-tr`` (``Tweak for KeyPackage``; its DKG post-processing with an empty
    root): take the even-y form, then add ``t`` to the signing share and ``tG`` to the verifying
    share and the group key. ZF stores that result, whose ``Q`` may have odd y, and takes the
    even-y form again when it signs; this returns that even-y form, ready for
    :func:`lifeboat.threshold.frost.sign`. ``x(Q)`` is the same either way.
    """
    return even_y_key_package(_tweaked_key_package(package, merkle_root))


def _tweaked_key_package(package: KeyPackage, merkle_root: bytes) -> KeyPackage:
    """Even-y form, then ``+ t``: the package as frost-secp256k1-tr stores it (Q may have odd y)."""
    base = even_y_key_package(package)
    t = taptweak(base.group_public_key, merkle_root)
    tweak_point = _GROUP.scalar_base_mult(t)
    return replace(
        base,
        signing_share=(base.signing_share + t) % ORDER,
        verifying_share=_GROUP.add(base.verifying_share, tweak_point),
        group_public_key=_GROUP.add(base.group_public_key, tweak_point),
    )


def tweak_public_key_package(package: PublicKeyPackage, merkle_root: bytes = b"") -> PublicKeyPackage:
    """The public counterpart of :func:`tweak_key_package` (also returned in even-y form)."""
    return even_y_public_key_package(_tweaked_public_key_package(package, merkle_root))


def _tweaked_public_key_package(package: PublicKeyPackage, merkle_root: bytes) -> PublicKeyPackage:
    base = even_y_public_key_package(package)
    t = taptweak(base.group_public_key, merkle_root)
    tweak_point = _GROUP.scalar_base_mult(t)
    return PublicKeyPackage(
        {identifier: _GROUP.add(share, tweak_point) for identifier, share in base.verifying_shares.items()},
        _GROUP.add(base.group_public_key, tweak_point),
        base.min_signers,
    )


class Secp256k1TaprootSha256:
    """FROST(secp256k1, SHA-256) with BIP-340 signatures: ``FROST-secp256k1-SHA256-TR-v1``."""

    name = "FROST-secp256k1-SHA256-TR-v1"
    context = CONTEXT
    group = _GROUP

    def H1(self, m: bytes) -> int:
        return hash_to_scalar(m, self.context + b"rho", ORDER)

    def H2(self, m: bytes) -> int:
        return int.from_bytes(tagged_hash("BIP0340/challenge", m), "big") % ORDER

    def H3(self, m: bytes) -> int:
        return hash_to_scalar(m, self.context + b"nonce", ORDER)

    def H4(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"msg" + m).digest()

    def H5(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"com" + m).digest()

    def challenge(self, group_commitment: Element, group_public_key: Element, message: bytes) -> int:
        """BIP-340: ``H2(x(R) || x(PK) || msg)``."""
        return self.H2(x_only(group_commitment) + x_only(group_public_key) + message)

    def signs(self, group_commitment: Element, group_public_key: Element) -> tuple[int, int]:
        """Negate the nonces when R has odd y; the key must already be in even-y form."""
        if not has_even_y(group_public_key):
            raise ThresholdError(
                "the Taproot group key has odd y; pass the key packages through "
                "even_y_key_package / even_y_public_key_package (or the tweak helpers) first"
            )
        return (1 if has_even_y(group_commitment) else -1), 1

    def prepare_key_package(self, key_package: KeyPackage) -> KeyPackage:
        """Signing uses the even-y form of the group key (and so of every share)."""
        return even_y_key_package(key_package)

    def prepare_public_key_package(self, public_key_package: PublicKeyPackage) -> PublicKeyPackage:
        return even_y_public_key_package(public_key_package)

    def post_dkg(
        self, key_package: KeyPackage, public_key_package: PublicKeyPackage
    ) -> tuple[KeyPackage, PublicKeyPackage]:
        """After a DKG, commit the key to an empty script tree (BIP-341), as frost-core does.

        The packages are stored as frost-core stores them (``Q`` may have odd y); signing takes
        their even-y form through :meth:`prepare_key_package`.
        """
        return _tweaked_key_package(key_package, b""), _tweaked_public_key_package(public_key_package, b"")

    def encode_signature(self, group_commitment: Element, z: int) -> bytes:
        """BIP-340: ``x(R) || z``, 64 bytes."""
        return x_only(group_commitment) + self.group.serialize_scalar(z)

    def decode_signature(self, signature: bytes) -> tuple[Element, int]:
        """``(R, z)`` with R the even-y point of ``signature[:32]``; :class:`EncodingError` if invalid."""
        if len(signature) != 64:
            raise EncodingError(f"a BIP-340 signature is 64 bytes, not {len(signature)}")
        return lift_x(signature[:32]), self.group.deserialize_scalar(signature[32:])

    def verify(self, public_key: Element, message: bytes, signature: bytes) -> bool:
        """BIP-340 verification under ``x(public_key)`` (the y coordinate's parity is ignored)."""
        g = self.group
        if g.is_identity(public_key):
            return False
        try:
            r, z = self.decode_signature(signature)
        except EncodingError:
            return False
        key = even_y(public_key)
        c = self.H2(signature[:32] + x_only(key) + message)
        # BIP-340: R = zG - cP must not be the identity, must have even y and x(R) = r; since r
        # lifted to the even-y point, that is R == lift_x(r).
        expected = g.add(g.scalar_base_mult(z), g.negate(g.scalar_mult(c, key)))
        return not g.is_identity(expected) and g.equal(expected, r)

    def verify_x_only(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """BIP-340 verification with the 32-byte x-only key; False if the key is not a valid x."""
        try:
            key = lift_x(public_key)
        except EncodingError:
            return False
        return self.verify(key, message, signature)


SUITE = Secp256k1TaprootSha256()
