# pragma version ~=0.4.3
"""
@title FROST(secp256k1, SHA-256) signature verification (RFC 9591)
@notice A library module. A FROST group signature is an ordinary Schnorr signature under the
        group's public key PK: it is valid when [z]G == R + [c]PK with the challenge
        c = H2(SerializeElement(R) || SerializeElement(PK) || msg), H2 being hash_to_field with
        expand_message_xmd (SHA-256, L = 48) and DST "FROST-secp256k1-SHA256-v1chal".
        The EVM has no secp256k1 point arithmetic, but ecrecover computes
        r^-1 * (s * P - e * G) for the point P whose x is r: with P = PK, r = x(PK),
        s = -c * x(PK) and e = -z * x(PK) (mod n) it returns the address of [z]G - [c]PK, which
        must equal the address of R.
"""

# secp256k1: field prime p, group order n
P: constant(uint256) = 115792089237316195423570985008687907853269984665640564039457584007908834671663
N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
# (p + 1) / 4: the square root exponent, since p = 3 (mod 4)
SQRT_EXPONENT: constant(uint256) = 28948022309329048855892746252171976963317496166410141009864396001977208667916
MODEXP: constant(address) = 0x0000000000000000000000000000000000000005
TWO_128: constant(uint256) = 2**128
# DST' = "FROST-secp256k1-SHA256-v1chal" || I2OSP(29, 1)
DST_PRIME: constant(Bytes[30]) = b"FROST-secp256k1-SHA256-v1chal\x1d"
# the longest message this module verifies (orders sign a 32-byte digest)
MAX_MESSAGE: constant(uint256) = 1024


@internal
@view
def _sqrt(a: uint256) -> uint256:
    # a ** ((p + 1) / 4) mod p through the modexp precompile (EIP-198)
    result: Bytes[32] = raw_call(
        MODEXP,
        concat(
            convert(32, bytes32), convert(32, bytes32), convert(32, bytes32),
            convert(a, bytes32), convert(SQRT_EXPONENT, bytes32), convert(P, bytes32),
        ),
        max_outsize=32,
        is_static_call=True,
    )
    return convert(convert(result, bytes32), uint256)


@internal
@view
def decompress(encoded: Bytes[33]) -> (uint256, uint256):
    """
    @notice The affine point (x, y) of a 33-byte compressed SEC1 encoding; reverts on an
            encoding that is not a point of the curve (the identity has no such encoding).
    """
    assert len(encoded) == 33, "frost: a point is 33 bytes"
    prefix: uint256 = convert(slice(encoded, 0, 1), uint256)
    assert prefix == 2 or prefix == 3, "frost: point prefix must be 02 or 03"
    x: uint256 = convert(slice(encoded, 1, 32), uint256)
    assert x < P, "frost: point x is not below p"
    rhs: uint256 = uint256_addmod(uint256_mulmod(uint256_mulmod(x, x, P), x, P), 7, P)
    y: uint256 = self._sqrt(rhs)
    assert uint256_mulmod(y, y, P) == rhs, "frost: point is not on secp256k1"
    if y % 2 != prefix - 2:
        y = P - y
    return x, y


@internal
@pure
def _address_of(x: uint256, y: uint256) -> address:
    return convert(convert(slice(keccak256(concat(convert(x, bytes32), convert(y, bytes32))), 12, 20), bytes20), address)


@internal
@pure
def challenge(r_encoded: Bytes[33], pk_encoded: Bytes[33], message: Bytes[MAX_MESSAGE]) -> uint256:
    """
    @notice H2(R || PK || msg) of FROST(secp256k1, SHA-256).
    """
    # expand_message_xmd(msg, DST, 48): Z_pad || msg || I2OSP(48, 2) || I2OSP(0, 1) || DST'
    b0: bytes32 = sha256(concat(empty(bytes32), empty(bytes32), r_encoded, pk_encoded, message, b"\x00\x30\x00", DST_PRIME))
    b1: bytes32 = sha256(concat(b0, b"\x01", DST_PRIME))
    mixed: bytes32 = convert(convert(b0, uint256) ^ convert(b1, uint256), bytes32)
    b2: bytes32 = sha256(concat(mixed, b"\x02", DST_PRIME))
    # OS2IP(b1 || b2[:16]) mod n, a 384-bit integer reduced without overflow
    high: uint256 = uint256_mulmod(convert(b1, uint256), TWO_128, N)
    return uint256_addmod(high, convert(b2, uint256) >> 128, N)


@internal
@view
def verify(pk_x: uint256, pk_y: uint256, message: Bytes[MAX_MESSAGE], signature: Bytes[65]) -> bool:
    """
    @notice True when `signature` (SerializeElement(R) || SerializeScalar(z), 65 bytes) is a
            valid FROST(secp256k1, SHA-256) signature of `message` under the group
            key (pk_x, pk_y). The key must have pk_x < n (checked when it is stored).
            Reverts on a malformed R; returns False on any other invalid signature.
    """
    if len(signature) != 65:
        return False
    r_encoded: Bytes[33] = slice(signature, 0, 33)
    z: uint256 = convert(slice(signature, 33, 32), uint256)
    if z >= N:
        return False
    r_x: uint256 = 0
    r_y: uint256 = 0
    r_x, r_y = self.decompress(r_encoded)
    pk_encoded: Bytes[33] = concat(convert(convert(2 + pk_y % 2, uint8), bytes1), convert(pk_x, bytes32))
    c: uint256 = self.challenge(r_encoded, pk_encoded, message)
    if c == 0:
        return False
    e: bytes32 = convert(N - uint256_mulmod(z, pk_x, N), bytes32)
    if z == 0:
        e = empty(bytes32)
    s: bytes32 = convert(N - uint256_mulmod(c, pk_x, N), bytes32)
    recovered: address = ecrecover(e, convert(27 + pk_y % 2, uint8), convert(pk_x, bytes32), s)
    return recovered != empty(address) and recovered == self._address_of(r_x, r_y)
