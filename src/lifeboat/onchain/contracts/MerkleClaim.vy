# pragma version ~=0.4.3
"""
@title MerkleClaim
@notice Pays ETH claims committed to by one Merkle root (OpenZeppelin standard-v1 tree, leaf
        encoding (address, uint256)): each leaf pays its amount, once, to its account.
@dev    No owner and no way out for the pot but valid claims. The contract trusts the root and the
        total it was deployed with; it refuses funding beyond what is still to be paid, so funded
        with the total it ends at zero when every claim is made. ETH forced in (selfdestruct, block
        rewards) cannot be refused and stays locked.
"""

#: The deepest proof taken: trees of up to 2**32 leaves.
MAX_PROOF: constant(uint256) = 32

event Funded:
    sender: indexed(address)
    amount: uint256

event Claimed:
    account: indexed(address)
    amount: uint256
    leaf: bytes32

#: The root of the claim tree.
root: public(immutable(bytes32))
#: The sum of every claim in the tree.
total: public(immutable(uint256))
#: What is still to be paid: the total less what has been claimed.
outstanding: public(uint256)
#: Leaves already paid.
claimed: public(HashMap[bytes32, bool])


@deploy
def __init__(_root: bytes32, _total: uint256):
    assert _root != empty(bytes32), "empty root"
    assert _total != 0, "zero total"
    root = _root
    total = _total
    self.outstanding = _total


@internal
@payable
def _fund():
    assert msg.value != 0, "no value"
    assert self.balance <= self.outstanding, "overfunded"
    log Funded(sender=msg.sender, amount=msg.value)


@external
@payable
def fund():
    """@notice Add to the pot (at most what is still to be paid)."""
    self._fund()


@external
@payable
def __default__():
    self._fund()


@internal
@pure
def _leaf(account: address, amount: uint256) -> bytes32:
    return keccak256(keccak256(abi_encode(account, amount)))


@internal
@pure
def _processed(leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bytes32:
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node


@external
@view
def verify(account: address, amount: uint256, proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    """@notice Whether the proof shows the leaf (account, amount) under the root."""
    return self._processed(self._leaf(account, amount), proof) == root


@external
@view
def is_claimed(account: address, amount: uint256) -> bool:
    return self.claimed[self._leaf(account, amount)]


@external
@nonreentrant
def claim(account: address, amount: uint256, proof: DynArray[bytes32, MAX_PROOF]):
    """
    @notice Pay `amount` wei to `account` if (account, amount) is a leaf of the tree. Anyone may
            send the transaction; the money goes to `account` only.
    """
    assert account != empty(address), "zero account"
    leaf: bytes32 = self._leaf(account, amount)
    assert not self.claimed[leaf], "already claimed"
    assert self._processed(leaf, proof) == root, "invalid proof"
    assert amount <= self.outstanding, "claims exceed the total"
    assert amount <= self.balance, "not funded"
    self.claimed[leaf] = True
    self.outstanding -= amount
    log Claimed(account=account, amount=amount, leaf=leaf)
    if amount != 0:
        assert raw_call(account, b"", value=amount, revert_on_failure=False), "payment refused"
