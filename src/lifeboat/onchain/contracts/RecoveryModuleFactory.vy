# pragma version ~=0.4.3
"""
@title Lifeboat recovery module factory
@notice Creates one RecoveryModule per vault as an EIP-1167 proxy of one implementation, at a
        CREATE2 address fixed by the vault id and its owner, so the owner can sign the
        CreateVault for that address before it exists, and nobody else can take the address.
"""

import RecoveryModule

IMPLEMENTATION: public(immutable(address))

event ModuleCreated:
    module: indexed(address)
    vault: indexed(bytes32)
    owner: indexed(address)


@deploy
def __init__(implementation: address):
    IMPLEMENTATION = implementation


@external
def create(
    vault: bytes32,
    config: RecoveryModule.VaultConfig,
    nonce: uint256,
    not_before: uint64,
    expiry: uint64,
    signer: address,
    signature: Bytes[65],
) -> address:
    """
    @notice Create the module of `vault` for its owner's signed CreateVault; its address is
            CREATE2(this factory, salt = keccak256(vault || signer), the EIP-1167 proxy of the
            implementation). A second creation of the same (vault, owner) reverts.
    """
    salt: bytes32 = keccak256(concat(vault, convert(signer, bytes20)))
    module: address = create_minimal_proxy_to(IMPLEMENTATION, salt=salt)
    extcall RecoveryModule.__interface__(module).initialize(
        vault, config, nonce, not_before, expiry, signer, signature
    )
    log ModuleCreated(module=module, vault=vault, owner=signer)
    return module
