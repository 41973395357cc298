# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title Lifeboat recovery module
@notice One guardian-recovery vault on-chain: an account that holds ETH and calls other contracts
        for its owner, and the recovery policy of `lifeboat.recovery.policy` (guardians, policies,
        requests, vetoes, guardian lock, delayed configuration changes), driven by the same
        EIP-712 signed messages the recovery service accepts ("Recovery messages, version 1").
        Every refusal reverts with the off-chain refusal code (`replayed_nonce`, `too_early`, ...).
        Only Ethereum-key (`eip712:0x...`) owners and guardians: signatures are checked with
        ecrecover over the message's EIP-712 digest, domain {"Lifeboat Recovery", "1", chain.id,
        this contract}.
"""

# --- limits -----------------------------------------------------------------------------------

MAX_GUARDIANS: constant(uint256) = 64
MAX_POLICIES: constant(uint256) = 16
MAX_TEXT: constant(uint256) = 256
MAX_OPEN_REQUESTS: constant(uint256) = 16
MAX_BATCH: constant(uint256) = 16
MAX_CALL_DATA: constant(uint256) = 8192
MAX_RETURN_DATA: constant(uint256) = 4096
MAX_LIFETIME: constant(uint256) = 2592000
MAX_TIME: constant(uint256) = 9007199254740991
MAX_PERIOD: constant(uint256) = 9007199254740991
MAX_NONCE: constant(uint256) = 18446744073709551615
MAX_WEIGHT: constant(uint256) = 1000000
SECP256K1_N: constant(uint256) = 115792089237316195423570985008687907852837564279074904382605163141518161494337
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

# --- EIP-712 ----------------------------------------------------------------------------------

DOMAIN_TYPEHASH: public(constant(bytes32)) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
DOMAIN_NAME_HASH: constant(bytes32) = keccak256("Lifeboat Recovery")
DOMAIN_VERSION_HASH: constant(bytes32) = keccak256("1")
GUARDIAN_TYPEHASH: public(constant(bytes32)) = keccak256("Guardian(string key,uint256 weight,string label)")
POLICY_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Policy(string name,string[] guardians,uint256 threshold,bool byWeight,uint64 recoveryPeriod,uint64 expiryWindow,uint256 vetoGuardians)"
)
VAULT_CONFIG_TYPEHASH: public(constant(bytes32)) = keccak256(
    "VaultConfig(Guardian[] guardians,Policy[] policies,uint64 securityPeriod,uint64 lockPeriod)Guardian(string key,uint256 weight,string label)Policy(string name,string[] guardians,uint256 threshold,bool byWeight,uint64 recoveryPeriod,uint64 expiryWindow,uint256 vetoGuardians)"
)
CREATE_VAULT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "CreateVault(bytes32 vault,VaultConfig config,uint256 nonce,uint64 notBefore,uint64 expiry)Guardian(string key,uint256 weight,string label)Policy(string name,string[] guardians,uint256 threshold,bool byWeight,uint64 recoveryPeriod,uint64 expiryWindow,uint256 vetoGuardians)VaultConfig(Guardian[] guardians,Policy[] policies,uint64 securityPeriod,uint64 lockPeriod)"
)
OPEN_REQUEST_TYPEHASH: public(constant(bytes32)) = keccak256(
    "OpenRequest(bytes32 vault,bytes32 request,string newOwner,string policy,uint256 nonce,uint64 notBefore,uint64 expiry)"
)
APPROVE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Approve(bytes32 vault,bytes32 request,string newOwner,string policy,uint256 nonce,uint64 notBefore,uint64 expiry)"
)
VETO_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Veto(bytes32 vault,bytes32 request,uint256 nonce,uint64 notBefore,uint64 expiry)"
)
EXECUTE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Execute(bytes32 vault,bytes32 request,uint256 nonce,uint64 notBefore,uint64 expiry)"
)
UPLOAD_SHARE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "UploadShare(bytes32 vault,bytes32 request,bytes32 ciphertext,uint256 nonce,uint64 notBefore,uint64 expiry)"
)
LOCK_TYPEHASH: public(constant(bytes32)) = keccak256("Lock(bytes32 vault,uint256 nonce,uint64 notBefore,uint64 expiry)")
UNLOCK_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Unlock(bytes32 vault,uint256 nonce,uint64 notBefore,uint64 expiry)"
)
PROPOSE_CHANGE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ProposeChange(bytes32 vault,VaultConfig config,uint256 nonce,uint64 notBefore,uint64 expiry)Guardian(string key,uint256 weight,string label)Policy(string name,string[] guardians,uint256 threshold,bool byWeight,uint64 recoveryPeriod,uint64 expiryWindow,uint256 vetoGuardians)VaultConfig(Guardian[] guardians,Policy[] policies,uint64 securityPeriod,uint64 lockPeriod)"
)
CANCEL_CHANGE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "CancelChange(bytes32 vault,uint256 nonce,uint64 notBefore,uint64 expiry)"
)

# --- action, status and reason codes ----------------------------------------------------------

OPEN_REQUEST: constant(uint8) = 1
APPROVE: constant(uint8) = 2
VETO: constant(uint8) = 3
EXECUTE: constant(uint8) = 4
UPLOAD_SHARE: constant(uint8) = 5
LOCK: constant(uint8) = 6
UNLOCK: constant(uint8) = 7
PROPOSE_CHANGE: constant(uint8) = 8
CANCEL_CHANGE: constant(uint8) = 9

PENDING: constant(uint8) = 1
APPROVED: constant(uint8) = 2
EXECUTED: constant(uint8) = 3
CANCELLED: constant(uint8) = 4
EXPIRED: constant(uint8) = 5
EXECUTABLE: constant(uint8) = 6  # only in views: APPROVED with its recovery period over

OWNER_VETO: constant(uint8) = 1
GUARDIAN_VETO: constant(uint8) = 2
SUPERSEDED: constant(uint8) = 3
CONFIG_CHANGE: constant(uint8) = 4

MARK_APPROVED: constant(uint256) = 1
MARK_VETOED: constant(uint256) = 2
MARK_ESCROWED: constant(uint256) = 4

# --- types ------------------------------------------------------------------------------------

struct GuardianEntry:
    key: address
    weight: uint256
    label: String[MAX_TEXT]

struct PolicyEntry:
    name: String[MAX_TEXT]
    guardians: DynArray[address, MAX_GUARDIANS]
    threshold: uint256
    by_weight: bool
    recovery_period: uint64
    expiry_window: uint64
    veto_guardians: uint256

struct VaultConfig:
    guardians: DynArray[GuardianEntry, MAX_GUARDIANS]
    policies: DynArray[PolicyEntry, MAX_POLICIES]
    security_period: uint64
    lock_period: uint64

# One signed message as relayed: the action code, the union of the actions' fields (those an
# action does not have are ignored and may be zero), the signer's address and its 65-byte
# r || s || v signature.
struct SignedMessage:
    action: uint8
    vault: bytes32
    request: bytes32
    new_owner: address
    policy: String[MAX_TEXT]
    ciphertext: bytes32
    nonce: uint256
    not_before: uint64
    expiry: uint64
    signer: address
    signature: Bytes[65]

struct Policy:
    members: uint256  # bit i set: the guardian at index i of the configuration
    member_count: uint256
    threshold: uint256
    by_weight: bool
    recovery_period: uint64
    expiry_window: uint64
    veto_guardians: uint256

struct Request:
    policy: bytes32  # keccak256 of the policy name
    new_owner: address
    status: uint8
    reason: uint8
    opened_at: uint64
    deadline: uint64
    approved_at: uint64
    executable_at: uint64
    closed_at: uint64
    tally: uint256  # approvals, counted or weighed as the policy says

# A request as stored: four slots, the small fields packed (see _load_request / _save_request).
struct StoredRequest:
    policy: bytes32
    head: uint256  # new_owner | status << 160 | reason << 168 | opened_at << 176
    times: uint256  # deadline | approved_at << 64 | executable_at << 128 | closed_at << 192
    tally: uint256

struct EscrowedShare:
    guardian: address
    ciphertext: bytes32

struct PendingChange:
    config_hash: bytes32
    proposed_at: uint64
    effective_at: uint64

# --- events -----------------------------------------------------------------------------------

event VaultCreated:
    vault: indexed(bytes32)
    owner: indexed(address)
    config_hash: bytes32

event MessageAccepted:
    signer: indexed(address)
    action: uint8
    nonce: uint256
    expiry: uint64

event RequestOpened:
    request: indexed(bytes32)
    new_owner: indexed(address)
    policy: String[MAX_TEXT]

event RequestApproval:
    request: indexed(bytes32)
    guardian: indexed(address)

event RequestApproved:
    request: indexed(bytes32)
    executable_at: uint64

event RequestClosed:
    request: indexed(bytes32)
    status: uint8
    reason: uint8
    at: uint64

event GuardianVeto:
    request: indexed(bytes32)
    guardian: indexed(address)

event OwnerChanged:
    request: indexed(bytes32)
    previous: indexed(address)
    owner: indexed(address)

event ShareEscrowed:
    request: indexed(bytes32)
    guardian: indexed(address)
    ciphertext: bytes32

event VaultLocked:
    guardian: indexed(address)
    until: uint64

event VaultUnlocked:
    guardian: indexed(address)

event ChangeProposed:
    config_hash: bytes32
    effective_at: uint64

event ChangeCancelled:
    reason: String[16]

event ChangeApplied:
    config_hash: bytes32
    at: uint64

event Executed:
    target: indexed(address)
    amount: uint256

# --- storage ----------------------------------------------------------------------------------

vault: public(bytes32)
owner: public(address)
created_at: public(uint64)
clock: public(uint64)
locked_until: public(uint64)

# Configurations are numbered; each lives in its own slots, so a proposed one is stored beside
# the current one and taking effect is a switch of `epoch`.
epoch: public(uint256)
epochs: uint256
config_hashes: HashMap[uint256, bytes32]
security_periods: HashMap[uint256, uint64]
lock_periods: HashMap[uint256, uint64]
guardian_slot: HashMap[uint256, HashMap[address, uint256]]  # (weight << 8) | (index + 1)
policies: HashMap[uint256, HashMap[bytes32, uint256]]  # a Policy packed in one word (_pack_policy)

pending_epoch: uint256
pending: PendingChange

requests: HashMap[bytes32, StoredRequest]
request_count: public(uint256)
request_at: public(HashMap[uint256, bytes32])
open_requests: DynArray[bytes32, MAX_OPEN_REQUESTS]
approvals: HashMap[bytes32, DynArray[address, MAX_GUARDIANS]]
vetoes: HashMap[bytes32, DynArray[address, MAX_GUARDIANS]]
escrow: HashMap[bytes32, DynArray[EscrowedShare, MAX_GUARDIANS]]
marks: HashMap[bytes32, HashMap[address, uint256]]

# signer => nonce => the expiry of the message that used it (fresh again once that has passed)
nonce_expiry: public(HashMap[address, HashMap[uint256, uint64]])

initialized: bool


@deploy
def __init__():
    """
    @notice The implementation every vault's proxy delegates to (RecoveryModuleFactory): it is
            marked initialized at once, so it can never hold a vault itself.
    """
    self.initialized = True


@external
def initialize(
    vault: bytes32,
    config: VaultConfig,
    nonce: uint256,
    not_before: uint64,
    expiry: uint64,
    signer: address,
    signature: Bytes[65],
):
    """
    @notice Create the vault from the owner's signed CreateVault (signed for this proxy's
            address): `signer`, whose signature it must be, becomes the owner, as off-chain.
    """
    assert not self.initialized, "vault_exists"
    self.initialized = True
    now: uint256 = block.timestamp
    self._check_lifetime(nonce, not_before, expiry, now)
    config_hash: bytes32 = self._config_hash(config)
    struct_hash: bytes32 = keccak256(
        abi_encode(CREATE_VAULT_TYPEHASH, vault, config_hash, nonce, not_before, expiry)
    )
    recovered: address = self._recover(self._digest(struct_hash), signature)
    assert recovered != empty(address) and recovered == signer, "bad_signature"
    self._store_config(1, config, signer)
    self.epoch = 1
    self.epochs = 1
    self.config_hashes[1] = config_hash
    self.vault = vault
    self.owner = signer
    self.created_at = convert(now, uint64)
    self.clock = convert(now, uint64)
    self.nonce_expiry[signer][nonce] = expiry
    log VaultCreated(vault=vault, owner=signer, config_hash=config_hash)


# --- the account ------------------------------------------------------------------------------


@external
@payable
def __default__():
    pass


@external
@payable
@nonreentrant
def execute(target: address, amount: uint256, data: Bytes[MAX_CALL_DATA]) -> Bytes[MAX_RETURN_DATA]:
    """
    @notice The owner calls `target` through the vault (sending `amount` wei of its balance).
            Refused while a guardian lock holds, and towards the vault itself.
    """
    assert msg.sender == self.owner, "not_authorized"
    assert block.timestamp >= convert(self.locked_until, uint256), "vault_locked"
    assert target != self, "not_authorized"
    log Executed(target=target, amount=amount)
    return raw_call(target, data, value=amount, max_outsize=MAX_RETURN_DATA, revert_on_failure=True)


# --- relaying signed messages -----------------------------------------------------------------


@external
@nonreentrant
def relay(batch: DynArray[SignedMessage, MAX_BATCH]):
    """
    @notice Apply signed messages in order, all or none: the first refusal reverts the whole
            batch with its refusal code. ProposeChange goes through `relay_change`.
    """
    for message: SignedMessage in batch:
        assert message.action != PROPOSE_CHANGE, "malformed_message"
        self._apply(message, empty(bytes32))


@external
@nonreentrant
def relay_change(message: SignedMessage, config: VaultConfig):
    """@notice Apply the owner's signed ProposeChange of `config`."""
    assert message.action == PROPOSE_CHANGE, "malformed_message"
    config_hash: bytes32 = self._config_hash(config)
    self._apply(message, config_hash)
    self._propose(message.signer, config, config_hash, convert(block.timestamp, uint64))
    self._advance(block.timestamp)


@external
@nonreentrant
def advance():
    """@notice Make the transitions time alone makes (expiries, a configuration change taking effect)."""
    self._advance(block.timestamp)
    self.clock = convert(block.timestamp, uint64)


# --- views ------------------------------------------------------------------------------------


@external
@view
def domain_separator() -> bytes32:
    return self._separator()


@external
@view
def config_hash() -> bytes32:
    return self.config_hashes[self.epoch]


@external
@view
def periods() -> (uint64, uint64):
    """@return (security period, lock period) of the current configuration."""
    return self.security_periods[self.epoch], self.lock_periods[self.epoch]


@external
@view
def pending_change() -> PendingChange:
    """@return the pending configuration change; all zero when none is pending."""
    if self.pending_epoch == 0:
        return empty(PendingChange)
    return self.pending


@external
@view
def guardian_weight(key: address) -> uint256:
    """@return the weight of guardian `key` in the current configuration, 0 if not a guardian."""
    return self.guardian_slot[self.epoch][key] >> 8


@external
@view
def policy(name: String[MAX_TEXT]) -> Policy:
    return self._unpack_policy(self.policies[self.epoch][keccak256(name)])


@external
@view
def request(request_id: bytes32) -> Request:
    """
    @return request `request_id` as of this block: an approved request whose recovery period is
            over reads EXECUTABLE, an open one past its deadline EXPIRED (closed at its deadline).
    """
    r: Request = self._load_request(request_id)
    if r.status == PENDING or r.status == APPROVED:
        if convert(r.deadline, uint256) <= block.timestamp:
            r.status = EXPIRED
            r.closed_at = r.deadline
        elif r.status == APPROVED and convert(r.executable_at, uint256) <= block.timestamp:
            r.status = EXECUTABLE
    return r


@external
@view
def approvals_of(request_id: bytes32) -> DynArray[address, MAX_GUARDIANS]:
    return self.approvals[request_id]


@external
@view
def vetoes_of(request_id: bytes32) -> DynArray[address, MAX_GUARDIANS]:
    return self.vetoes[request_id]


@external
@view
def escrow_of(request_id: bytes32) -> DynArray[EscrowedShare, MAX_GUARDIANS]:
    """@return the escrowed share digests; none once the request was cancelled or expired."""
    status: uint8 = self._status(request_id)
    if status == CANCELLED or status == EXPIRED:
        return []
    if status != EXECUTED and convert(self._deadline(request_id), uint256) <= block.timestamp:
        return []
    return self.escrow[request_id]


@external
@view
def open_request_ids() -> DynArray[bytes32, MAX_OPEN_REQUESTS]:
    return self.open_requests


@external
@pure
def key_hash(key: address) -> bytes32:
    """@return keccak256 of the key text `eip712:0x<40 lowercase hex>` (its EIP-712 encoding)."""
    return self._key_hash(key)


@external
@view
def message_digest(message: SignedMessage, config_hash: bytes32) -> bytes32:
    """@return the EIP-712 digest the signer signed (`config_hash` only for ProposeChange)."""
    return self._digest(self._struct_hash(message, config_hash))


@external
@pure
def hash_config(config: VaultConfig) -> bytes32:
    """@return hashStruct(VaultConfig) of `config`."""
    return self._config_hash(config)


# --- signatures -------------------------------------------------------------------------------


@internal
@view
def _separator() -> bytes32:
    """The EIP-712 domainSeparator, computed each time: `self` is the proxy's address."""
    return keccak256(abi_encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, chain.id, self))


@internal
@view
def _digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", self._separator(), struct_hash))


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    """The address that made the r || s || v signature (v 27 or 28, low s), or empty(address)."""
    if len(signature) != 65:
        return empty(address)
    r: uint256 = convert(extract32(signature, 0), uint256)
    s: uint256 = convert(extract32(signature, 32), uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v != 27 and v != 28:
        return empty(address)
    if r == 0 or r >= SECP256K1_N or s == 0 or s > SECP256K1_HALF_N:
        return empty(address)
    return ecrecover(digest, v, r, s)


@internal
@pure
def _key_hash(key: address) -> bytes32:
    """keccak256 of the key text `eip712:0x` + 40 lowercase hex digits."""
    x: uint256 = convert(key, uint256)
    high: uint256 = 0  # the first 32 hex digits, one ASCII byte each
    low: uint256 = 0  # the last 8
    for i: uint256 in range(40):
        nibble: uint256 = (x >> (156 - 4 * i)) & 15
        digit: uint256 = nibble + 48
        if nibble > 9:
            digit = nibble + 87
        if i < 32:
            high = high | (digit << (248 - 8 * i))
        else:
            low = low | (digit << (504 - 8 * i))
    return keccak256(concat(b"eip712:0x", convert(high, bytes32), slice(convert(low, bytes32), 0, 8)))


@internal
@pure
def _hash_words(words: DynArray[bytes32, MAX_GUARDIANS]) -> bytes32:
    """keccak256 of the words concatenated (the EIP-712 encoding of an array)."""
    return keccak256(slice(abi_encode(words), 64, 32 * len(words)))


@internal
@pure
def _config_hash(config: VaultConfig) -> bytes32:
    """hashStruct(VaultConfig), exactly as `lifeboat.recovery.messages.hash_struct`."""
    guardians: DynArray[bytes32, MAX_GUARDIANS] = []
    for g: GuardianEntry in config.guardians:
        guardians.append(
            keccak256(abi_encode(GUARDIAN_TYPEHASH, self._key_hash(g.key), g.weight, keccak256(g.label)))
        )
    policies: DynArray[bytes32, MAX_GUARDIANS] = []
    for p: PolicyEntry in config.policies:
        members: DynArray[bytes32, MAX_GUARDIANS] = []
        for key: address in p.guardians:
            members.append(self._key_hash(key))
        policies.append(
            keccak256(
                abi_encode(
                    POLICY_TYPEHASH,
                    keccak256(p.name),
                    self._hash_words(members),
                    p.threshold,
                    p.by_weight,
                    p.recovery_period,
                    p.expiry_window,
                    p.veto_guardians,
                )
            )
        )
    return keccak256(
        abi_encode(
            VAULT_CONFIG_TYPEHASH,
            self._hash_words(guardians),
            self._hash_words(policies),
            config.security_period,
            config.lock_period,
        )
    )


@internal
@pure
def _struct_hash(m: SignedMessage, config_hash: bytes32) -> bytes32:
    """hashStruct of the message's action (its fields in the signed order)."""
    if m.action == OPEN_REQUEST or m.action == APPROVE:
        typehash: bytes32 = APPROVE_TYPEHASH
        if m.action == OPEN_REQUEST:
            typehash = OPEN_REQUEST_TYPEHASH
        return keccak256(
            abi_encode(
                typehash,
                m.vault,
                m.request,
                self._key_hash(m.new_owner),
                keccak256(m.policy),
                m.nonce,
                m.not_before,
                m.expiry,
            )
        )
    if m.action == VETO or m.action == EXECUTE:
        typehash: bytes32 = EXECUTE_TYPEHASH
        if m.action == VETO:
            typehash = VETO_TYPEHASH
        return keccak256(abi_encode(typehash, m.vault, m.request, m.nonce, m.not_before, m.expiry))
    if m.action == UPLOAD_SHARE:
        return keccak256(
            abi_encode(UPLOAD_SHARE_TYPEHASH, m.vault, m.request, m.ciphertext, m.nonce, m.not_before, m.expiry)
        )
    if m.action == PROPOSE_CHANGE:
        return keccak256(
            abi_encode(PROPOSE_CHANGE_TYPEHASH, m.vault, config_hash, m.nonce, m.not_before, m.expiry)
        )
    typehash: bytes32 = LOCK_TYPEHASH
    if m.action == UNLOCK:
        typehash = UNLOCK_TYPEHASH
    elif m.action == CANCEL_CHANGE:
        typehash = CANCEL_CHANGE_TYPEHASH
    else:
        assert m.action == LOCK, "malformed_message"
    return keccak256(abi_encode(typehash, m.vault, m.nonce, m.not_before, m.expiry))


@internal
@pure
def _check_lifetime(nonce: uint256, not_before: uint64, expiry: uint64, now: uint256):
    """The message's range and validity at `now`, in the order `messages.verify` checks them."""
    assert nonce <= MAX_NONCE, "malformed_message"
    assert convert(not_before, uint256) <= MAX_TIME and convert(expiry, uint256) <= MAX_TIME, "malformed_message"
    assert now >= convert(not_before, uint256), "not_yet_valid"
    assert now < convert(expiry, uint256), "expired"
    assert convert(expiry, uint256) - now <= MAX_LIFETIME, "lifetime_too_long"


# --- configuration ----------------------------------------------------------------------------


@internal
def _store_config(epoch: uint256, config: VaultConfig, owner: address):
    """Check `config` against the rules of `lifeboat.recovery.config.check_config` (owner
    `owner`) and store it as configuration `epoch`; `invalid_config` names any broken rule."""
    assert len(config.guardians) >= 1, "invalid_config"
    index: uint256 = 0
    for g: GuardianEntry in config.guardians:
        assert g.key != owner, "invalid_config"
        assert self.guardian_slot[epoch][g.key] == 0, "invalid_config"
        assert g.weight >= 1 and g.weight <= MAX_WEIGHT, "invalid_config"
        self.guardian_slot[epoch][g.key] = (g.weight << 8) | (index + 1)
        index += 1
    assert len(config.policies) >= 1, "invalid_config"
    for p: PolicyEntry in config.policies:
        name: bytes32 = keccak256(p.name)
        assert len(p.name) >= 1, "invalid_config"
        assert self.policies[epoch][name] == 0, "invalid_config"
        assert len(p.guardians) >= 1, "invalid_config"
        members: uint256 = 0
        weight: uint256 = 0
        for key: address in p.guardians:
            slot: uint256 = self.guardian_slot[epoch][key]
            assert slot != 0, "invalid_config"
            bit: uint256 = 1 << ((slot & 255) - 1)
            assert members & bit == 0, "invalid_config"
            members = members | bit
            weight += slot >> 8
        most: uint256 = len(p.guardians)
        if p.by_weight:
            most = weight
        assert p.threshold >= 1 and p.threshold <= most, "invalid_config"
        assert p.veto_guardians <= len(p.guardians), "invalid_config"
        assert convert(p.recovery_period, uint256) <= MAX_PERIOD, "invalid_config"
        assert p.expiry_window >= 1 and convert(p.expiry_window, uint256) <= MAX_PERIOD, "invalid_config"
        self.policies[epoch][name] = self._pack_policy(
            Policy(
                members=members,
                member_count=len(p.guardians),
                threshold=p.threshold,
                by_weight=p.by_weight,
                recovery_period=p.recovery_period,
                expiry_window=p.expiry_window,
                veto_guardians=p.veto_guardians,
            )
        )
    assert convert(config.security_period, uint256) <= MAX_PERIOD, "invalid_config"
    assert config.lock_period >= 1 and convert(config.lock_period, uint256) <= MAX_PERIOD, "invalid_config"
    self.security_periods[epoch] = config.security_period
    self.lock_periods[epoch] = config.lock_period


# --- the policy -------------------------------------------------------------------------------


@internal
def _apply(m: SignedMessage, config_hash: bytes32):
    """One signed message, checked and applied as `messages.verify` then `policy.apply` do."""
    now: uint256 = block.timestamp
    assert m.action >= OPEN_REQUEST and m.action <= CANCEL_CHANGE, "malformed_message"
    assert m.vault == self.vault, "wrong_vault"
    self._check_lifetime(m.nonce, m.not_before, m.expiry, now)
    signer: address = self._recover(self._digest(self._struct_hash(m, config_hash)), m.signature)
    assert signer != empty(address) and signer == m.signer, "bad_signature"
    self._advance(now)
    assert convert(self.nonce_expiry[signer][m.nonce], uint256) <= now, "replayed_nonce"
    at: uint64 = convert(now, uint64)
    if m.action == OPEN_REQUEST:
        self._open(m, at)
    elif m.action == APPROVE:
        self._approve(m, at)
    elif m.action == VETO:
        self._veto(m, at)
    elif m.action == EXECUTE:
        self._execute_request(m, at)
    elif m.action == UPLOAD_SHARE:
        self._upload(m, at)
    elif m.action == LOCK:
        self._lock(signer, at)
    elif m.action == UNLOCK:
        self._unlock(signer, at)
    elif m.action == CANCEL_CHANGE:
        self._cancel_change(signer, at)
    # PROPOSE_CHANGE: the caller (relay_change) applies the configuration.
    self.nonce_expiry[signer][m.nonce] = m.expiry
    log MessageAccepted(signer=signer, action=m.action, nonce=m.nonce, expiry=m.expiry)
    if m.action != PROPOSE_CHANGE:
        self._advance(now)  # a zero recovery or security period takes effect at once
    self.clock = at


@internal
def _advance(now: uint256):
    """Every time-driven transition due by `now`, in time order (as `policy.advance`)."""
    if self.pending_epoch != 0 and convert(self.pending.effective_at, uint256) <= now:
        at: uint64 = self.pending.effective_at
        self._close_open(at, CONFIG_CHANGE)
        self.epoch = self.pending_epoch
        self.pending_epoch = 0
        log ChangeApplied(config_hash=self.pending.config_hash, at=at)
    kept: DynArray[bytes32, MAX_OPEN_REQUESTS] = []
    changed: bool = False
    for request_id: bytes32 in self.open_requests:
        deadline: uint64 = self._deadline(request_id)
        if convert(deadline, uint256) <= now:
            self._close(request_id, EXPIRED, 0, deadline)
            changed = True
        else:
            kept.append(request_id)
    if changed:
        self.open_requests = kept


@internal
def _close(request_id: bytes32, status: uint8, reason: uint8, at: uint64):
    """Give a request its one outcome (the caller takes it off the open list)."""
    r: Request = self._load_request(request_id)
    r.status = status
    r.reason = reason
    r.closed_at = at
    self._save_request(request_id, r)
    log RequestClosed(request=request_id, status=status, reason=reason, at=at)


@internal
def _close_open(at: uint64, reason: uint8):
    """Close every open request at `at`: expired if its deadline came first, else cancelled."""
    for request_id: bytes32 in self.open_requests:
        deadline: uint64 = self._deadline(request_id)
        if deadline <= at:
            self._close(request_id, EXPIRED, 0, deadline)
        else:
            self._close(request_id, CANCELLED, reason, at)
    self.open_requests = []


@internal
def _take_off_open(request_id: bytes32):
    kept: DynArray[bytes32, MAX_OPEN_REQUESTS] = []
    for other: bytes32 in self.open_requests:
        if other != request_id:
            kept.append(other)
    self.open_requests = kept


@internal
@view
def _open_request(request_id: bytes32) -> Request:
    r: Request = self._load_request(request_id)
    assert r.status != 0, "unknown_request"
    assert r.status == PENDING or r.status == APPROVED, "request_closed"
    return r


@internal
@view
def _policy(name: bytes32) -> Policy:
    word: uint256 = self.policies[self.epoch][name]
    assert word != 0, "unknown_policy"
    return self._unpack_policy(word)


@internal
@view
def _is_member(p: Policy, key: address) -> bool:
    slot: uint256 = self.guardian_slot[self.epoch][key]
    if slot == 0:
        return False
    return p.members & (1 << ((slot & 255) - 1)) != 0


@internal
def _count_approval(request_id: bytes32, p: Policy, guardian: address, at: uint64):
    self.approvals[request_id].append(guardian)
    self.marks[request_id][guardian] |= MARK_APPROVED
    log RequestApproval(request=request_id, guardian=guardian)
    r: Request = self._load_request(request_id)
    if p.by_weight:
        r.tally += self.guardian_slot[self.epoch][guardian] >> 8
    else:
        r.tally += 1
    if r.status == PENDING and r.tally >= p.threshold:
        r.status = APPROVED
        r.approved_at = at
        r.executable_at = at + p.recovery_period
        r.deadline = r.executable_at + p.expiry_window
        log RequestApproved(request=request_id, executable_at=r.executable_at)
    self._save_request(request_id, r)


@internal
def _open(m: SignedMessage, at: uint64):
    name: bytes32 = keccak256(m.policy)
    p: Policy = self._policy(name)
    assert self._is_member(p, m.signer), "not_authorized"
    assert self._status(m.request) == 0, "duplicate_request"
    assert m.new_owner != self.owner and self.guardian_slot[self.epoch][m.new_owner] == 0, "invalid_config"
    assert len(self.open_requests) < MAX_OPEN_REQUESTS, "too_many_requests"
    self._save_request(
        m.request,
        Request(
            policy=name,
        new_owner=m.new_owner,
        status=PENDING,
        reason=0,
        opened_at=at,
        deadline=at + p.expiry_window,
            approved_at=0,
            executable_at=0,
            closed_at=0,
            tally=0,
        ),
    )
    self.open_requests.append(m.request)
    self.request_at[self.request_count] = m.request
    self.request_count += 1
    log RequestOpened(request=m.request, new_owner=m.new_owner, policy=m.policy)
    self._count_approval(m.request, p, m.signer, at)


@internal
def _approve(m: SignedMessage, at: uint64):
    r: Request = self._open_request(m.request)
    assert m.new_owner == r.new_owner and keccak256(m.policy) == r.policy, "request_mismatch"
    p: Policy = self._policy(r.policy)
    assert self._is_member(p, m.signer), "not_authorized"
    assert self.marks[m.request][m.signer] & (MARK_APPROVED | MARK_VETOED) == 0, "duplicate_approval"
    self._count_approval(m.request, p, m.signer, at)


@internal
def _veto(m: SignedMessage, at: uint64):
    r: Request = self._open_request(m.request)
    if m.signer == self.owner:
        self._close(m.request, CANCELLED, OWNER_VETO, at)
        self._take_off_open(m.request)
        return
    p: Policy = self._policy(r.policy)
    assert p.veto_guardians != 0 and self._is_member(p, m.signer), "not_authorized"
    assert self.marks[m.request][m.signer] & (MARK_APPROVED | MARK_VETOED) == 0, "duplicate_approval"
    self.vetoes[m.request].append(m.signer)
    self.marks[m.request][m.signer] |= MARK_VETOED
    log GuardianVeto(request=m.request, guardian=m.signer)
    if len(self.vetoes[m.request]) >= p.veto_guardians:
        self._close(m.request, CANCELLED, GUARDIAN_VETO, at)
        self._take_off_open(m.request)


@internal
def _execute_request(m: SignedMessage, at: uint64):
    r: Request = self._open_request(m.request)
    p: Policy = self._policy(r.policy)
    assert m.signer == r.new_owner or self._is_member(p, m.signer), "not_authorized"
    assert r.status == APPROVED and r.executable_at <= at, "too_early"
    previous: address = self.owner
    self._close(m.request, EXECUTED, 0, at)
    self._take_off_open(m.request)
    log OwnerChanged(request=m.request, previous=previous, owner=r.new_owner)
    self.owner = r.new_owner
    self.locked_until = 0
    self._close_open(at, SUPERSEDED)
    if self.pending_epoch != 0:
        self.pending_epoch = 0
        log ChangeCancelled(reason="owner_changed")


@internal
def _upload(m: SignedMessage, at: uint64):
    status: uint8 = self._status(m.request)
    assert status != 0, "unknown_request"
    assert status == PENDING or status == APPROVED, "escrow_refused"
    mark: uint256 = self.marks[m.request][m.signer]
    assert mark & MARK_APPROVED != 0, "not_authorized"
    assert mark & MARK_ESCROWED == 0, "escrow_refused"
    self.escrow[m.request].append(EscrowedShare(guardian=m.signer, ciphertext=m.ciphertext))
    self.marks[m.request][m.signer] = mark | MARK_ESCROWED
    log ShareEscrowed(request=m.request, guardian=m.signer, ciphertext=m.ciphertext)


@internal
def _lock(guardian: address, at: uint64):
    assert self.guardian_slot[self.epoch][guardian] != 0, "not_authorized"
    until: uint64 = max(self.locked_until, at + self.lock_periods[self.epoch])
    self.locked_until = until
    log VaultLocked(guardian=guardian, until=until)
    if self.pending_epoch != 0:
        self.pending_epoch = 0
        log ChangeCancelled(reason="lock")


@internal
def _unlock(guardian: address, at: uint64):
    assert self.guardian_slot[self.epoch][guardian] != 0, "not_authorized"
    assert at < self.locked_until, "not_locked"
    self.locked_until = at
    log VaultUnlocked(guardian=guardian)


@internal
@view
def _check_owner(signer: address, at: uint64):
    assert signer == self.owner, "not_authorized"
    assert at >= self.locked_until, "vault_locked"


@internal
def _cancel_change(signer: address, at: uint64):
    self._check_owner(signer, at)
    assert self.pending_epoch != 0, "no_pending_change"
    self.pending_epoch = 0
    log ChangeCancelled(reason="owner")


@internal
def _propose(signer: address, config: VaultConfig, config_hash: bytes32, at: uint64):
    self._check_owner(signer, at)
    epoch: uint256 = self.epochs + 1
    self._store_config(epoch, config, self.owner)
    self.epochs = epoch
    self.config_hashes[epoch] = config_hash
    if self.pending_epoch != 0:
        log ChangeCancelled(reason="replaced")
    effective_at: uint64 = at + self.security_periods[self.epoch]
    self.pending_epoch = epoch
    self.pending = PendingChange(config_hash=config_hash, proposed_at=at, effective_at=effective_at)
    log ChangeProposed(config_hash=config_hash, effective_at=effective_at)
    self._close_open(at, CONFIG_CHANGE)


# --- packed storage ---------------------------------------------------------------------------

MASK_64: constant(uint256) = 18446744073709551615
MASK_160: constant(uint256) = 1461501637330902918203684832716283019655932542975


@internal
@view
def _status(request_id: bytes32) -> uint8:
    """A request's stored status (0: no such request)."""
    return convert((self.requests[request_id].head >> 160) & 255, uint8)


@internal
@view
def _deadline(request_id: bytes32) -> uint64:
    return convert(self.requests[request_id].times & MASK_64, uint64)


@internal
@view
def _load_request(request_id: bytes32) -> Request:
    stored: StoredRequest = self.requests[request_id]
    return Request(
        policy=stored.policy,
        new_owner=convert(stored.head & MASK_160, address),
        status=convert((stored.head >> 160) & 255, uint8),
        reason=convert((stored.head >> 168) & 255, uint8),
        opened_at=convert((stored.head >> 176) & MASK_64, uint64),
        deadline=convert(stored.times & MASK_64, uint64),
        approved_at=convert((stored.times >> 64) & MASK_64, uint64),
        executable_at=convert((stored.times >> 128) & MASK_64, uint64),
        closed_at=convert(stored.times >> 192, uint64),
        tally=stored.tally,
    )


@internal
def _save_request(request_id: bytes32, r: Request):
    self.requests[request_id] = StoredRequest(
        policy=r.policy,
        head=convert(r.new_owner, uint256)
        | (convert(r.status, uint256) << 160)
        | (convert(r.reason, uint256) << 168)
        | (convert(r.opened_at, uint256) << 176),
        times=convert(r.deadline, uint256)
        | (convert(r.approved_at, uint256) << 64)
        | (convert(r.executable_at, uint256) << 128)
        | (convert(r.closed_at, uint256) << 192),
        tally=r.tally,
    )


@internal
@pure
def _pack_policy(p: Policy) -> uint256:
    """A policy in one word: members (64 bits), member_count (8), threshold (32; at most 64 * 10**6),
    by_weight (8), recovery_period (64), expiry_window (64), veto_guardians (8)."""
    return (
        p.members
        | (p.member_count << 64)
        | (p.threshold << 72)
        | (convert(p.by_weight, uint256) << 104)
        | (convert(p.recovery_period, uint256) << 112)
        | (convert(p.expiry_window, uint256) << 176)
        | (p.veto_guardians << 240)
    )


@internal
@pure
def _unpack_policy(word: uint256) -> Policy:
    return Policy(
        members=word & MASK_64,
        member_count=(word >> 64) & 255,
        threshold=(word >> 72) & 4294967295,
        by_weight=(word >> 104) & 255 != 0,
        recovery_period=convert((word >> 112) & MASK_64, uint64),
        expiry_window=convert((word >> 176) & MASK_64, uint64),
        veto_guardians=word >> 240,
    )
