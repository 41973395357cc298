"""The Python side of the circuit breaker: the group key it holds and the signatures it takes.

The breaker (``contracts/circuit_breaker.vy``) holds the operators' FROST(secp256k1, SHA-256)
group key as a 33-byte compressed point and takes one 65-byte group signature per order. Both come
from the files ``lifeboat frost`` writes; these functions read them and refuse anything the
contract would refuse, so a mistake shows before a transaction is sent.
"""

from __future__ import annotations

from typing import Final

from lifeboat.onchain.errors import OrderError
from lifeboat.onchain.orders import Order
from lifeboat.threshold import serialize
from lifeboat.threshold.group import ThresholdError
from lifeboat.threshold.secp256k1 import Secp256k1Sha256

SUITE: Final = Secp256k1Sha256()
#: The secp256k1 group order: the breaker refuses a group key whose x is not below it.
ORDER_N: Final = SUITE.group.order


def group_key(public_key_package: bytes, what: str = "public key package") -> bytes:
    """The 33-byte group key of a FROST(secp256k1, SHA-256) public key package."""
    suite, package = serialize.decode_public_key_package(public_key_package, what)
    if suite.name != SUITE.name:
        raise OrderError(
            f"{what} is for {suite.name}; the on-chain breaker verifies {SUITE.name} "
            "(make the group with 'lifeboat frost dkg ... --suite secp256k1')"
        )
    encoded = SUITE.group.serialize_element(package.group_public_key)
    if int.from_bytes(encoded[1:], "big") >= ORDER_N:
        raise OrderError(f"{what}: this group key cannot be verified on-chain (x >= n); run a new DKG")
    return encoded


def order_signature(
    order: Order, signature_file: bytes, what: str = "signature", *, key: bytes | None = None
) -> bytes:
    """The 65-byte group signature of ``order`` from a ``frost aggregate`` file, checked here first.

    The file must be FROST(secp256k1, SHA-256), sign exactly the order's digest, verify, and, when
    ``key`` (33 bytes) is given, be under that group key.
    """
    try:
        suite, message, signature, public = serialize.decode_signature(signature_file, what)
    except ThresholdError as e:
        raise OrderError(str(e)) from None
    if suite.name != SUITE.name:
        raise OrderError(f"{what} is a {suite.name} signature; orders are signed with {SUITE.name}")
    if message != order.digest:
        raise OrderError(
            f"{what} signs 0x{message.hex()}, not this order's digest 0x{order.digest.hex()}: "
            "sign the package made for this order"
        )
    encoded = SUITE.group.serialize_element(public)
    if key is not None and encoded != key:
        raise OrderError(f"{what} is by group 0x{encoded.hex()}, but the contract holds 0x{key.hex()}")
    if not SUITE.verify(public, message, signature):
        raise OrderError(f"{what} does not verify under its group key")
    return signature
