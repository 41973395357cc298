# pragma version ~=0.4.3
"""
@title Circuit breaker and emergency shutdown
@notice A module a protocol contract initializes and calls (`check(method_id)`) at the top of
        every guarded function.
        - Pause: the pause guardian (fast, can only pause) or governance pauses some functions
          (by selector) or all of them.
        - Unpause: governance only, and only after `unpause_delay` seconds from its request.
        - Emergency shutdown: permanent. Governance, or an order signed by the operators' FROST
          group (one FROST(secp256k1, SHA-256) signature of t-of-n operators), halts every
          guarded function for good; the way out is a migration (claims on a fresh contract).
        - Orders: EIP-712 typed data, domain "Lifeboat Emergency" version "1" with this chain and
          this contract, type Order(string action,bytes4[] selectors,uint256 nonce,
          uint64 notBefore,uint64 expiry); the group signs the 32-byte digest. action is "pause"
          (selectors; none = all) or "shutdown" (no selectors). Each nonce is good once.
"""

from . import frost_secp256k1

MAX_SELECTORS: constant(uint256) = 32
# an order may be valid for at most this long after it is submitted
MAX_ORDER_LIFETIME: constant(uint256) = 7 * 86400
# the longest unpause delay governance may set (a year) and the shortest (an hour)
MAX_UNPAUSE_DELAY: constant(uint256) = 365 * 86400
MIN_UNPAUSE_DELAY: constant(uint256) = 3600

DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
ORDER_TYPEHASH: constant(bytes32) = keccak256("Order(string action,bytes4[] selectors,uint256 nonce,uint64 notBefore,uint64 expiry)")
NAME_HASH: constant(bytes32) = keccak256("Lifeboat Emergency")
VERSION_HASH: constant(bytes32) = keccak256("1")
PAUSE_HASH: constant(bytes32) = keccak256("pause")
SHUTDOWN_HASH: constant(bytes32) = keccak256("shutdown")
# the unpause request of "everything" is filed under this selector
ALL: constant(bytes4) = 0x00000000

event Paused:
    selectors: DynArray[bytes4, MAX_SELECTORS]
    by: address

event UnpauseRequested:
    selectors: DynArray[bytes4, MAX_SELECTORS]
    eta: uint256

event Unpaused:
    selectors: DynArray[bytes4, MAX_SELECTORS]

event ShutDown:
    by: address
    nonce: uint256

event OrderExecuted:
    digest: bytes32
    nonce: uint256

event RoleChanged:
    role: String[16]
    holder: address

event GroupKeyChanged:
    group_public_key: Bytes[33]

governance: public(address)
pause_guardian: public(address)
unpause_delay: public(uint256)
paused_all: public(bool)
paused: public(HashMap[bytes4, bool])
unpause_eta: public(HashMap[bytes4, uint256])
is_shut_down: public(bool)
group_public_key: public(Bytes[33])
group_x: uint256
group_y: uint256
used_nonce: public(HashMap[uint256, bool])


@deploy
def __init__(governance: address, pause_guardian: address, unpause_delay: uint256, group_public_key: Bytes[33]):
    assert governance != empty(address), "breaker: governance must be set"
    self.governance = governance
    self.pause_guardian = pause_guardian
    self._set_delay(unpause_delay)
    self._set_group_key(group_public_key)


@internal
def _set_delay(delay: uint256):
    assert delay >= MIN_UNPAUSE_DELAY and delay <= MAX_UNPAUSE_DELAY, "breaker: unpause delay out of range"
    self.unpause_delay = delay


@internal
def _set_group_key(encoded: Bytes[33]):
    x: uint256 = 0
    y: uint256 = 0
    x, y = frost_secp256k1.decompress(encoded)
    assert x < frost_secp256k1.N, "breaker: group key x must be below the group order"
    self.group_x = x
    self.group_y = y
    self.group_public_key = encoded
    log GroupKeyChanged(group_public_key=encoded)


@internal
@view
def check(selector: bytes4):
    """
    @notice Revert unless the function `selector` may run now.
    """
    assert not self.is_shut_down, "breaker: shut down"
    assert not self.paused_all and not self.paused[selector], "breaker: paused"


@internal
def _pause(selectors: DynArray[bytes4, MAX_SELECTORS]):
    if len(selectors) == 0:
        self.paused_all = True
        self.unpause_eta[ALL] = 0
    for selector: bytes4 in selectors:
        assert selector != ALL, "breaker: selector 0x00000000 is reserved"
        self.paused[selector] = True
        # a pending unpause of something paused again starts over
        self.unpause_eta[selector] = 0
    log Paused(selectors=selectors, by=msg.sender)


@external
def pause(selectors: DynArray[bytes4, MAX_SELECTORS]):
    """
    @notice Pause the functions `selectors` (none: every guarded function). Pause guardian or governance.
    """
    assert msg.sender == self.pause_guardian or msg.sender == self.governance, "breaker: only the pause guardian or governance"
    self._pause(selectors)


@external
def request_unpause(selectors: DynArray[bytes4, MAX_SELECTORS]):
    """
    @notice Start the unpause delay for `selectors` (none: the pause of everything). Governance only.
    """
    assert msg.sender == self.governance, "breaker: only governance"
    assert not self.is_shut_down, "breaker: shut down"
    eta: uint256 = block.timestamp + self.unpause_delay
    if len(selectors) == 0:
        assert self.paused_all, "breaker: not paused"
        self.unpause_eta[ALL] = eta
    for selector: bytes4 in selectors:
        assert self.paused[selector], "breaker: not paused"
        self.unpause_eta[selector] = eta
    log UnpauseRequested(selectors=selectors, eta=eta)


@external
def unpause(selectors: DynArray[bytes4, MAX_SELECTORS]):
    """
    @notice Unpause `selectors` (none: the pause of everything) once their delay has passed. Governance only.
    """
    assert msg.sender == self.governance, "breaker: only governance"
    assert not self.is_shut_down, "breaker: shut down"
    if len(selectors) == 0:
        assert self.paused_all, "breaker: not paused"
        eta: uint256 = self.unpause_eta[ALL]
        assert eta != 0, "breaker: unpause not requested"
        assert block.timestamp >= eta, "breaker: unpause delay not over"
        self.paused_all = False
        self.unpause_eta[ALL] = 0
    for selector: bytes4 in selectors:
        assert self.paused[selector], "breaker: not paused"
        eta: uint256 = self.unpause_eta[selector]
        assert eta != 0, "breaker: unpause not requested"
        assert block.timestamp >= eta, "breaker: unpause delay not over"
        self.paused[selector] = False
        self.unpause_eta[selector] = 0
    log Unpaused(selectors=selectors)


@external
def shutdown():
    """
    @notice Emergency shutdown by governance: every guarded function halts for good.
    """
    assert msg.sender == self.governance, "breaker: only governance"
    self.is_shut_down = True
    log ShutDown(by=msg.sender, nonce=0)


@external
def set_roles(governance: address, pause_guardian: address, unpause_delay: uint256):
    """
    @notice Hand over governance, replace the pause guardian (a compromised one is removed at
            once), or change the unpause delay. Governance only.
    """
    assert msg.sender == self.governance, "breaker: only governance"
    assert governance != empty(address), "breaker: governance must be set"
    self._set_delay(unpause_delay)
    if governance != self.governance:
        self.governance = governance
        log RoleChanged(role="governance", holder=governance)
    if pause_guardian != self.pause_guardian:
        self.pause_guardian = pause_guardian
        log RoleChanged(role="pause_guardian", holder=pause_guardian)


@external
def set_group_public_key(group_public_key: Bytes[33]):
    """
    @notice Replace the operators' FROST group key (after a refresh or a new DKG). Governance only.
    """
    assert msg.sender == self.governance, "breaker: only governance"
    self._set_group_key(group_public_key)


@internal
@view
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@external
@view
def domain_separator() -> bytes32:
    return self._domain_separator()


@internal
@pure
def _selectors_hash(selectors: DynArray[bytes4, MAX_SELECTORS]) -> bytes32:
    # EIP-712: an array is keccak256 of its elements' 32-byte words; a bytes4 is right-padded
    words: DynArray[bytes32, MAX_SELECTORS] = []
    for selector: bytes4 in selectors:
        words.append(convert(selector, bytes32))
    encoded: Bytes[1056] = abi_encode(words, ensure_tuple=False)
    # abi_encode puts the length word first; the array's hash covers the elements only
    return keccak256(slice(encoded, 32, len(encoded) - 32))


@internal
@view
def _order_digest(action: String[16], selectors: DynArray[bytes4, MAX_SELECTORS], nonce: uint256, not_before: uint64, expiry: uint64) -> bytes32:
    struct_hash: bytes32 = keccak256(abi_encode(
        ORDER_TYPEHASH, keccak256(action), self._selectors_hash(selectors), nonce, not_before, expiry
    ))
    return keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))


@external
@view
def order_digest(action: String[16], selectors: DynArray[bytes4, MAX_SELECTORS], nonce: uint256, not_before: uint64, expiry: uint64) -> bytes32:
    """
    @notice The 32-byte digest the FROST group signs for this order.
    """
    return self._order_digest(action, selectors, nonce, not_before, expiry)


@external
def execute_order(action: String[16], selectors: DynArray[bytes4, MAX_SELECTORS], nonce: uint256, not_before: uint64, expiry: uint64, signature: Bytes[65]):
    """
    @notice Carry out an order signed by the operators' FROST group. Anyone may submit it.
    """
    action_hash: bytes32 = keccak256(action)
    assert action_hash == PAUSE_HASH or action_hash == SHUTDOWN_HASH, "order: unknown action"
    assert action_hash == PAUSE_HASH or len(selectors) == 0, "order: a shutdown names no selectors"
    now: uint256 = block.timestamp
    assert convert(not_before, uint256) <= now, "order: not yet valid"
    assert now < convert(expiry, uint256), "order: expired"
    assert convert(expiry, uint256) - now <= MAX_ORDER_LIFETIME, "order: lifetime too long"
    assert not self.used_nonce[nonce], "order: nonce already used"
    digest: bytes32 = self._order_digest(action, selectors, nonce, not_before, expiry)
    assert frost_secp256k1.verify(self.group_x, self.group_y, concat(digest, b""), signature), "order: bad group signature"
    self.used_nonce[nonce] = True
    log OrderExecuted(digest=digest, nonce=nonce)
    if action_hash == SHUTDOWN_HASH:
        self.is_shut_down = True
        log ShutDown(by=msg.sender, nonce=nonce)
    else:
        self._pause(selectors)
