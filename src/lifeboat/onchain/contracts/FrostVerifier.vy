# pragma version ~=0.4.3
"""
@title FROST(secp256k1, SHA-256) verifier
@notice Verifies group signatures of messages up to 1,024 bytes, for off-chain tools that want the
        chain's own answer and for measuring the cost of one verification.
"""

from . import frost_secp256k1


@external
@view
def verify(group_public_key: Bytes[33], message: Bytes[frost_secp256k1.MAX_MESSAGE], signature: Bytes[65]) -> bool:
    x: uint256 = 0
    y: uint256 = 0
    x, y = frost_secp256k1.decompress(group_public_key)
    assert x < frost_secp256k1.N, "frost: group key x must be below the group order"
    return frost_secp256k1.verify(x, y, message, signature)
