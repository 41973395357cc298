"""hash_to_field with expand_message_xmd (RFC 9380 sections 5.2 and 5.3.1), for SHA-256 suites."""

from __future__ import annotations

import hashlib

_B_IN_BYTES = 32  # SHA-256 output
_S_IN_BYTES = 64  # SHA-256 block


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    ell = -(-len_in_bytes // _B_IN_BYTES)
    if ell > 255 or len_in_bytes > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: requested length or DST too long")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(_S_IN_BYTES) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    blocks = [hashlib.sha256(b0 + b"\x01" + dst_prime).digest()]
    b0_value = int.from_bytes(b0, "big")
    for i in range(2, ell + 1):
        mixed = (b0_value ^ int.from_bytes(blocks[-1], "big")).to_bytes(_B_IN_BYTES, "big")
        blocks.append(hashlib.sha256(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:len_in_bytes]


def hash_to_scalar(msg: bytes, dst: bytes, order: int, length: int = 48) -> int:
    """One field element modulo ``order`` (hash_to_field with count 1, L = 48 for 256-bit orders)."""
    return int.from_bytes(expand_message_xmd(msg, dst, length), "big") % order
