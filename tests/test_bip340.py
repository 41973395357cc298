"""BIP-340: the published test vectors against the Taproot suite's verification, and FROST-tr output
against an independent verifier.

The reference below is written straight from the BIP-340 specification with Python integers (affine
coordinates, no library): a deterministic signer for the rows that carry a secret key and a
verifier. It shares nothing with :mod:`lifeboat.threshold.taproot` but the curve constants.
"""

from __future__ import annotations

import csv
import hashlib
from typing import Any

import pytest
from coincurve import PublicKeyXOnly
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import vectors_dir
from lifeboat.threshold import frost, keygen, taproot
from lifeboat.threshold.group import EncodingError
from lifeboat.threshold.taproot import Secp256k1TaprootSha256

SUITE = Secp256k1TaprootSha256()

# --- an independent BIP-340 reference --------------------------------------------------------------

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
Point = tuple[int, int] | None


def add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def mul(k: int, point: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = add(result, point)
        point = add(point, point)
        k >>= 1
    return result


def tagged(tag: str, data: bytes) -> bytes:
    prefix = hashlib.sha256(tag.encode()).digest() * 2
    return hashlib.sha256(prefix + data).digest()


def lift(x: int) -> Point:
    if x >= P:
        return None
    square = (pow(x, 3, P) + 7) % P
    y = pow(square, (P + 1) // 4, P)
    if y * y % P != square:
        return None
    return x, y if y % 2 == 0 else P - y


def xbytes(point: Point) -> bytes:
    assert point is not None
    return point[0].to_bytes(32, "big")


def reference_sign(secret: int, message: bytes, aux: bytes) -> bytes:
    public = mul(secret, G)
    assert public is not None
    d = secret if public[1] % 2 == 0 else N - secret
    masked = (d ^ int.from_bytes(tagged("BIP0340/aux", aux), "big")).to_bytes(32, "big")
    k0 = int.from_bytes(tagged("BIP0340/nonce", masked + xbytes(public) + message), "big") % N
    assert k0 != 0
    r = mul(k0, G)
    assert r is not None
    k = k0 if r[1] % 2 == 0 else N - k0
    e = int.from_bytes(tagged("BIP0340/challenge", xbytes(r) + xbytes(public) + message), "big") % N
    return xbytes(r) + ((k + e * d) % N).to_bytes(32, "big")


def reference_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    public = lift(int.from_bytes(public_key, "big"))
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if public is None or r >= P or s >= N:
        return False
    e = int.from_bytes(tagged("BIP0340/challenge", signature[:32] + public_key + message), "big") % N
    point = add(mul(s, G), mul(N - e, public))
    return point is not None and point[1] % 2 == 0 and point[0] == r


# --- the published vectors ------------------------------------------------------------------------


def rows() -> list[dict[str, Any]]:
    with (vectors_dir() / "bip340" / "test-vectors.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


ROW_INDICES = list(range(19))


def row(index: int) -> dict[str, Any]:
    found = rows()[index]
    assert int(found["index"]) == index
    return found


def test_the_file_has_19_rows() -> None:
    assert [int(r["index"]) for r in rows()] == ROW_INDICES


@pytest.mark.parametrize("index", ROW_INDICES)
def test_bip340_vector(index: int) -> None:
    r = row(index)
    public_key = bytes.fromhex(r["public key"])
    message = bytes.fromhex(r["message"])
    signature = bytes.fromhex(r["signature"])
    expected = r["verification result"] == "TRUE"

    assert SUITE.verify_x_only(public_key, message, signature) is expected, r["comment"]
    assert reference_verify(public_key, message, signature) is expected, r["comment"]
    try:
        element = taproot.lift_x(public_key)
    except EncodingError:
        assert not expected  # rows 5 and 14: not a valid x coordinate
    else:
        # The Ciphersuite.verify path, with the key as a group element, agrees; so does libsecp256k1.
        assert frost.verify(SUITE, element, message, signature) is expected
        assert SUITE.verify(SUITE.group.negate(element), message, signature) is expected
        assert PublicKeyXOnly(public_key).verify(signature, message) is expected

    if r["secret key"]:
        secret = int(r["secret key"], 16)
        assert taproot.x_only(SUITE.group.scalar_base_mult(secret)) == public_key
        assert reference_sign(secret, message, bytes.fromhex(r["aux_rand"])) == signature


# --- FROST-tr output is plain BIP-340 ------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    st.integers(2, 4).flatmap(lambda t: st.tuples(st.just(t), st.integers(t, 5))),
    st.integers(1, N - 1),
    st.binary(max_size=48),
    st.booleans(),
)
def test_frost_tr_signatures_pass_the_reference(
    threshold: tuple[int, int], secret: int, message: bytes, tweak: bool
) -> None:
    t, n = threshold
    packages, public, _ = keygen.trusted_dealer_keygen(SUITE, t, n, secret)
    if tweak:
        packages = [taproot.tweak_key_package(p) for p in packages]
        public = taproot.tweak_public_key_package(public)
    key = taproot.x_only(public.group_public_key)
    if not tweak:
        packages = [taproot.even_y_key_package(p) for p in packages]
        public = taproot.even_y_public_key_package(public)
    signers = packages[n - t :]
    nonces = [
        frost.commit(
            SUITE, p, tagged("hiding", message + bytes([i])), tagged("binding", message + bytes([i]))
        )
        for i, p in enumerate(signers)
    ]
    commitments = [x.commitment for x in nonces]
    shares = [frost.sign(SUITE, p, x, message, commitments) for p, x in zip(signers, nonces, strict=True)]
    signature = frost.aggregate(SUITE, commitments, message, shares, public)
    assert reference_verify(key, message, signature)
    expected_key = mul(secret, G)
    if tweak:
        expected_key = lift(int.from_bytes(xbytes(expected_key), "big"))
        t_int = int.from_bytes(tagged("TapTweak", xbytes(expected_key)), "big")
        expected_key = add(expected_key, mul(t_int, G))
    assert key == xbytes(expected_key)
    tampered = signature[:32] + ((int.from_bytes(signature[32:], "big") + 1) % N).to_bytes(32, "big")
    assert not reference_verify(key, message, tampered)
    assert not SUITE.verify_x_only(key, message, tampered)
