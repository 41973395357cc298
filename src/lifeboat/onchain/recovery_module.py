"""The recovery module on a chain: one vault's ``RecoveryModule`` contract, driven by the same
signed messages the recovery service accepts.

The contract (``contracts/RecoveryModule.vy``) is the policy of :mod:`lifeboat.recovery.policy`
written a second time, for the EVM; this module holds no policy of its own. It turns the recovery
package's values into call arguments and the contract's storage back into a
:class:`~lifeboat.recovery.policy.VaultState`, so the two machines can be compared field by field:

* :func:`deploy_factory` — the implementation and the ``RecoveryModuleFactory`` once per chain;
  :func:`module_service` — the EIP-712 domain of a vault's module before it exists (its CREATE2
  address, from the vault id and the owner); the owner signs their ``CreateVault`` for it, and
  :func:`deploy` creates the module (an EIP-1167 proxy) from that message.
* :func:`relay` — apply a batch of signed messages in one transaction (a quorum of approvals);
  a refusal raises :class:`~lifeboat.onchain.errors.ModuleRefusal` with the off-chain code.
* :func:`read_state` — the contract's state as a ``VaultState``.

Only Ethereum keys (``eip712:0x…``) can act on-chain; :func:`check_keys` says why the others
cannot. Calls go to titanoboa's current environment (in-process by default; ``boa.set_network_env``
points it at a JSON-RPC node).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lifeboat.onchain.contracts import deployer
from lifeboat.onchain.errors import ChainError, ModuleRefusal, UnverifiableKey
from lifeboat.recovery import messages
from lifeboat.recovery.config import MAX_GUARDIANS, MAX_POLICIES, VaultConfig, config_to_json
from lifeboat.recovery.keys import KeyKind, PublicKey, keccak256
from lifeboat.recovery.messages import (
    Approve,
    CancelChange,
    CreateVault,
    Execute,
    Lock,
    OpenRequest,
    ProposeChange,
    Service,
    SignedMessage,
    Unlock,
    UploadShare,
    Veto,
)
from lifeboat.recovery.policy import EscrowedShare, PendingChange, Request, Status, UsedNonce, VaultState

CONTRACT: Final = "RecoveryModule"
FACTORY: Final = "RecoveryModuleFactory"
#: Vyper's ``create_minimal_proxy_to`` initcode (EIP-1167) around the implementation's address.
_PROXY_PREFIX: Final = bytes.fromhex("602d3d8160093d39f3363d3d373d3d3d363d73")
_PROXY_SUFFIX: Final = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
#: The contract's action codes (``SignedMessage.action``); CreateVault is the constructor.
ACTION_CODES: Final[dict[type, int]] = {
    OpenRequest: 1,
    Approve: 2,
    Veto: 3,
    Execute: 4,
    UploadShare: 5,
    Lock: 6,
    Unlock: 7,
    ProposeChange: 8,
    CancelChange: 9,
}
STATUSES: Final = {
    1: Status.PENDING,
    2: Status.APPROVED,
    3: Status.EXECUTED,
    4: Status.CANCELLED,
    5: Status.EXPIRED,
    6: Status.EXECUTABLE,
}
REASONS: Final = {0: None, 1: "owner_veto", 2: "guardian_veto", 3: "superseded", 4: "config_change"}
#: The contract's bounds (DynArray sizes): the same as the off-chain configuration's, and at most
#: this many messages per relayed batch.
MAX_BATCH: Final = 16
MAX_TEXT_BYTES: Final = 256
#: The ABI types of the contract's ``SignedMessage`` and ``VaultConfig`` structs, and the functions
#: that take them (docs/onchain-recovery-module.md, "Encoding a relayed message").
SIGNED_MESSAGE_ABI: Final = (
    "(uint8,bytes32,bytes32,address,string,bytes32,uint256,uint64,uint64,address,bytes)"
)
VAULT_CONFIG_ABI: Final = (
    "((address,uint256,string)[],(string,address[],uint256,bool,uint64,uint64,uint256)[],uint64,uint64)"
)
RELAY: Final = f"relay({SIGNED_MESSAGE_ABI}[])"
RELAY_CHANGE: Final = f"relay_change({SIGNED_MESSAGE_ABI},{VAULT_CONFIG_ABI})"
CREATE: Final = f"create(bytes32,{VAULT_CONFIG_ABI},uint256,uint64,uint64,address,bytes)"

_WHY_NOT: Final = {
    KeyKind.ED25519: (
        "the EVM has no Ed25519 precompile, and verifying Ed25519 in contract code costs over a "
        "million gas per signature"
    ),
    KeyKind.BIP340: (
        "the recovery module does not verify BIP-340 Schnorr signatures (possible through the "
        "ecrecover precompile, not built yet)"
    ),
}


def check_keys(config: VaultConfig, owner: PublicKey | None = None) -> None:
    """Raise :class:`UnverifiableKey` naming the first key of ``config`` (or ``owner``) that the
    contract cannot check, and why; only ``eip712:0x…`` keys act on-chain."""
    keys = [g.key for g in config.guardians] + [k for p in config.policies for k in p.guardians]
    for key in ([owner] if owner is not None else []) + keys:
        _address(key, "a key")


def _address(key: PublicKey, role: str) -> str:
    if key.kind is not KeyKind.EIP712:
        raise UnverifiableKey(
            f"{role} {key.text} cannot act on the recovery module: {_WHY_NOT[key.kind]}; "
            "use an Ethereum key (eip712:0x…) for every owner and guardian of an on-chain vault"
        )
    return "0x" + key.data.hex()


def _text(value: str, what: str) -> str:
    if len(value.encode()) > MAX_TEXT_BYTES:
        raise ModuleRefusal("invalid_config", f"{what} is longer than {MAX_TEXT_BYTES} UTF-8 bytes")
    return value


def config_args(config: VaultConfig) -> tuple[Any, ...]:
    """``config`` as the contract's ``VaultConfig`` tuple; :class:`UnverifiableKey` for a key the
    contract cannot check, ``invalid_config`` for a configuration beyond the contract's bounds."""
    check_keys(config)
    if len(config.guardians) > MAX_GUARDIANS or len(config.policies) > MAX_POLICIES:
        raise ModuleRefusal(
            "invalid_config", f"a vault has at most {MAX_GUARDIANS} guardians and {MAX_POLICIES} policies"
        )
    if any(len(p.guardians) > MAX_GUARDIANS for p in config.policies):
        raise ModuleRefusal("invalid_config", f"a policy names at most {MAX_GUARDIANS} guardians")
    return (
        [(_address(g.key, "guardian"), g.weight, _text(g.label, "a label")) for g in config.guardians],
        [
            (
                _text(p.name, "a policy name"),
                [_address(k, "guardian") for k in p.guardians],
                p.threshold,
                p.by_weight,
                p.recovery_period,
                p.expiry_window,
                p.veto_guardians,
            )
            for p in config.policies
        ],
        config.security_period,
        config.lock_period,
    )


def create_args(create: SignedMessage) -> tuple[Any, ...]:
    """The owner's signed ``CreateVault`` as the arguments of the factory's ``create``."""
    message = create.message
    if not isinstance(message.action, CreateVault):
        raise ChainError(f"a module is created from a CreateVault, not a {message.kind}")
    return (
        message.vault,
        config_args(message.action.config),
        message.nonce,
        message.not_before,
        message.expiry,
        _address(create.signer, "the owner"),
        create.signature,
    )


def calldata(batch: Sequence[SignedMessage]) -> bytes:
    """The transaction data that applies ``batch``: the factory's ``create`` for a CreateVault
    (alone), ``relay_change`` for a ProposeChange (alone), ``relay`` for anything else. Pure."""
    from boa.util.abi import abi_encode

    if not 1 <= len(batch) <= MAX_BATCH:
        raise ChainError(f"a relayed batch holds 1 to {MAX_BATCH} messages, not {len(batch)}")
    first = batch[0].message.action
    if isinstance(first, CreateVault | ProposeChange) and len(batch) != 1:
        raise ChainError(f"a {batch[0].message.kind} travels alone, not in a batch")
    if isinstance(first, CreateVault):
        function, arguments = CREATE, create_args(batch[0])
    elif isinstance(first, ProposeChange):
        function, arguments = RELAY_CHANGE, (message_args(batch[0]), config_args(first.config))
    else:
        function, arguments = RELAY, ([message_args(s) for s in batch],)
    encoded: bytes = abi_encode(function[function.index("(") :], arguments)
    return _selector(function) + encoded


def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


def message_args(signed: SignedMessage) -> tuple[Any, ...]:
    """``signed`` as the contract's ``SignedMessage`` tuple (fields an action lacks are zero)."""
    message = signed.message
    action = message.action
    if isinstance(action, CreateVault):
        raise ChainError("a CreateVault is the module's deployment: use deploy(), not relay()")
    request = getattr(action, "request", bytes(32))
    new_owner = getattr(action, "new_owner", None)
    return (
        ACTION_CODES[type(action)],
        message.vault,
        request,
        "0x" + bytes(20).hex() if new_owner is None else _address(new_owner, "the new owner"),
        _text(getattr(action, "policy", ""), "a policy name"),
        getattr(action, "ciphertext", bytes(32)),
        message.nonce,
        message.not_before,
        message.expiry,
        _address(signed.signer, "the signer"),
        signed.signature,
    )


# --- the chain --------------------------------------------------------------------------------


def _boa() -> Any:
    import boa

    return boa


def chain_id() -> int:
    """The chain id of titanoboa's current environment."""
    return int(_boa().env.evm.patch.chain_id)


def deploy_factory() -> Any:
    """Deploy the implementation and the factory that makes every vault's module (once per chain)."""
    implementation = deployer(CONTRACT).deploy()
    return deployer(FACTORY).deploy(implementation.address)


def proxy_address(factory: bytes, implementation: bytes, vault: bytes, owner: PublicKey) -> bytes:
    """The address a factory at ``factory`` (whose implementation is ``implementation``) gives the
    module of ``vault`` owned by ``owner``: CREATE2 with salt keccak256(vault || owner address) over
    the EIP-1167 proxy of the implementation. Pure: no chain needed."""
    salt = keccak256(vault + bytes.fromhex(_address(owner, "the owner")[2:]))
    initcode = _PROXY_PREFIX + implementation + _PROXY_SUFFIX
    return keccak256(b"\xff" + factory + salt + keccak256(initcode))[12:]


def module_address(factory: Any, vault: bytes, owner: PublicKey) -> bytes:
    """:func:`proxy_address` for a deployed factory."""
    implementation = bytes.fromhex(str(factory.IMPLEMENTATION())[2:])
    return proxy_address(bytes.fromhex(str(factory.address)[2:]), implementation, vault, owner)


def module_service(factory: Any, vault: bytes, owner: PublicKey) -> Service:
    """The EIP-712 domain of the module of ``vault`` owned by ``owner``, before it exists: what the
    owner signs their ``CreateVault`` for."""
    return Service(chain_id(), module_address(factory, vault, owner))


def service_of(module: Any) -> Service:
    """The EIP-712 domain of a deployed module."""
    return Service(chain_id(), bytes.fromhex(str(module.address)[2:]))


def revert_reason(error: BaseException) -> str:
    """The revert reason string of a titanoboa error (the refusal code), or '' if it has none."""
    frame = getattr(getattr(error, "stack_trace", None), "last_frame", None)
    vm_error = getattr(frame, "vm_error", None)
    data = vm_error.args[0] if vm_error is not None and vm_error.args else b""
    if isinstance(data, bytes) and data[:4] == bytes.fromhex("08c379a0") and len(data) >= 68:
        length = int.from_bytes(data[36:68], "big")
        return data[68 : 68 + length].decode(errors="replace")
    return ""


def _call(function: Any, *args: Any) -> Any:
    from boa.contracts.base_evm_contract import BoaError

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="casted bytecode does not match")
            return function(*args)
    except BoaError as error:
        reason = revert_reason(error)
        if not reason:
            raise ChainError("the recovery module reverted without a reason") from None
        raise ModuleRefusal(reason, f"the recovery module refused: {reason}") from None


def deploy(factory: Any, create: SignedMessage) -> Any:
    """Create the module of the owner's signed ``CreateVault`` (signed for :func:`module_service`);
    the signer becomes the owner. Returns the module (a contract at the proxy's address)."""
    action = create.message.action
    if not isinstance(action, CreateVault):
        raise ChainError(f"a module is deployed from a CreateVault, not a {create.message.kind}")
    message = create.message
    if create.service != module_service(factory, message.vault, create.signer):
        raise ModuleRefusal("wrong_service", "the CreateVault is not signed for this vault's module address")
    address = _call(factory.create, *create_args(create))
    return module_at(address)


def module_at(address: str) -> Any:
    """The module at ``address`` (a proxy: titanoboa's warning that its code is not the
    implementation's is expected and silenced)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="casted bytecode does not match")
        return deployer(CONTRACT).at(address)


def relay(module: Any, batch: Sequence[SignedMessage]) -> None:
    """Apply ``batch`` in one transaction, all or none. A ``ProposeChange`` travels alone (its
    configuration is a separate argument). :class:`ModuleRefusal` carries the first refusal's code."""
    if not 1 <= len(batch) <= MAX_BATCH:
        raise ChainError(f"a relayed batch holds 1 to {MAX_BATCH} messages, not {len(batch)}")
    service = service_of(module)
    for signed in batch:
        if signed.service != service:
            raise ModuleRefusal("wrong_service", "a message is signed for another service than this module")
    first = batch[0].message.action
    if isinstance(first, ProposeChange):
        if len(batch) != 1:
            raise ChainError("a ProposeChange is relayed alone")
        _call(module.relay_change, message_args(batch[0]), config_args(first.config))
        return
    _call(module.relay, [message_args(signed) for signed in batch])


def advance(module: Any) -> None:
    """Make the module's time-driven transitions (``policy.advance``) in a transaction."""
    _call(module.advance)


# --- reading the state back -------------------------------------------------------------------


def _key(address: Any) -> PublicKey:
    return PublicKey(KeyKind.EIP712, bytes.fromhex(str(address)[2:].lower()))


@dataclass(frozen=True)
class KnownConfigs:
    """The configurations a module may hold, found by their EIP-712 hash (the contract keeps only
    the hash of a configuration and the parts it needs to act)."""

    configs: tuple[VaultConfig, ...]

    def by_hash(self, config_hash: bytes) -> VaultConfig:
        for config in self.configs:
            if messages.hash_struct("VaultConfig", config_to_json(config)) == config_hash:
                return config
        raise ChainError(f"the module holds configuration 0x{config_hash.hex()}, none of those given")

    def policy_name(self, name_hash: bytes) -> str:
        for config in self.configs:
            for policy in config.policies:
                if keccak256(policy.name.encode()) == name_hash:
                    return policy.name
        raise ChainError(f"no given configuration has a policy whose name hashes to 0x{name_hash.hex()}")


def read_state(
    module: Any, configs: Iterable[VaultConfig], nonces: Iterable[tuple[PublicKey, int]] = ()
) -> VaultState:
    """The module's state as a :class:`VaultState`, as of the current block (an approved request
    whose period is over reads executable, an open one past its deadline expired).

    ``configs`` are the configurations the module may hold (it stores their hashes); ``nonces``
    the (signer, nonce) pairs to look up, since a contract cannot list a mapping's keys: the
    state's nonces are those of them still unexpired, sorted by signer text and nonce.
    """
    known = KnownConfigs(tuple(configs))
    now = int(_boa().env.evm.patch.timestamp)
    requests = []
    for index in range(int(module.request_count())):
        request_id = bytes(module.request_at(index))
        requests.append(_read_request(module, known, request_id))
    pending = module.pending_change()
    used = []
    for signer, nonce in sorted(set(nonces), key=lambda pair: (pair[0].text, pair[1])):
        expiry = int(module.nonce_expiry(_address(signer, "a signer"), nonce))
        if expiry > now:
            used.append(UsedNonce(signer, nonce, expiry))
    return VaultState(
        vault=bytes(module.vault()),
        service=service_of(module),
        owner=_key(module.owner()),
        config=known.by_hash(bytes(module.config_hash())),
        created_at=int(module.created_at()),
        clock=int(module.clock()),
        locked_until=int(module.locked_until()),
        pending_change=None
        if bytes(pending[0]) == bytes(32)
        else PendingChange(known.by_hash(bytes(pending[0])), int(pending[1]), int(pending[2])),
        requests=tuple(requests),
        nonces=tuple(used),
    )


def _read_request(module: Any, known: KnownConfigs, request_id: bytes) -> Request:
    (
        policy,
        new_owner,
        status,
        reason,
        opened_at,
        deadline,
        approved_at,
        executable_at,
        closed_at,
        _tally,
    ) = module.request(request_id)
    approvals = tuple(_key(a) for a in module.approvals_of(request_id))
    return Request(
        id=request_id,
        policy=known.policy_name(bytes(policy)),
        new_owner=_key(new_owner),
        opened_by=approvals[0],
        opened_at=int(opened_at),
        status=STATUSES[int(status)],
        deadline=int(deadline),
        approvals=approvals,
        vetoes=tuple(_key(a) for a in module.vetoes_of(request_id)),
        approved_at=int(approved_at) or None,
        executable_at=int(executable_at) if int(approved_at) else None,
        closed_at=int(closed_at) or None,
        reason=REASONS[int(reason)],
        escrow=tuple(EscrowedShare(_key(g), bytes(c)) for g, c in module.escrow_of(request_id)),
    )
