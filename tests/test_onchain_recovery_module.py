"""The recovery module on-chain against the recovery policy off-chain: the same machine twice.

Every action goes to both: :func:`lifeboat.recovery.messages.verify` then
:func:`lifeboat.recovery.policy.apply` in Python, :func:`lifeboat.onchain.recovery_module.relay`
to the contract on titanoboa's in-process chain. The outcome (``ok`` or the refusal code) must
be the same, and so must the state read back from the contract. The unit tests walk each flow
and each refusal through that harness; the differential test lets hypothesis pick the actions,
actors, perturbations and time jumps.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import CliRunner
from lifeboat.cli import chain_cmds
from lifeboat.onchain import recovery_module as chain
from lifeboat.onchain.errors import ChainError, ModuleRefusal, UnverifiableKey
from lifeboat.recovery import messages
from lifeboat.recovery.config import Guardian, Policy, VaultConfig, config_to_json
from lifeboat.recovery.keys import KeyKind, PrivateKey, PublicKey, keccak256
from lifeboat.recovery.messages import (
    Action,
    Approve,
    CancelChange,
    CreateVault,
    Execute,
    Lock,
    Message,
    OpenRequest,
    ProposeChange,
    Service,
    SignedMessage,
    Unlock,
    UploadShare,
    Veto,
)
from lifeboat.recovery.policy import Status, VaultState, advance, apply
from lifeboat.recovery.refusals import Refusal
from recovery_helpers import DAY, HOUR, VAULT, private_key, request_id

#: titanoboa notices that a module's code is a proxy, not the implementation it was compiled from
pytestmark = pytest.mark.filterwarnings("ignore:casted bytecode does not match")

T0 = 1_800_000_000
OWNER = private_key(KeyKind.EIP712, "chain owner")
GUARDIANS = [private_key(KeyKind.EIP712, f"chain guardian {i}") for i in range(4)]
CANDIDATES = [private_key(KeyKind.EIP712, f"chain new owner {i}") for i in range(2)]
STRANGER = private_key(KeyKind.EIP712, "chain stranger")
ACTORS = [OWNER, *GUARDIANS, *CANDIDATES, STRANGER]
BY_KEY = {k.public_key: k for k in ACTORS}
G = [k.public_key for k in GUARDIANS]
FAMILY = Policy("family", (G[0], G[1], G[2]), 2, recovery_period=HOUR, expiry_window=DAY, veto_guardians=1)
WEIGHTED = Policy("weighted", (G[1], G[3]), 4, by_weight=True, recovery_period=0, expiry_window=2 * HOUR)
CONFIG = VaultConfig(
    guardians=(
        Guardian(G[0], 1, "Ann"),
        Guardian(G[1], 2, "Bob"),
        Guardian(G[2], 1, "Cy"),
        Guardian(G[3], 3, "Notary"),
    ),
    policies=(FAMILY, WEIGHTED),
    security_period=2 * HOUR,
    lock_period=HOUR,
)
#: Configurations an owner may propose: two valid ones, then two the policy refuses.
CHANGES = [
    replace(CONFIG, policies=(FAMILY,), security_period=0),
    replace(
        CONFIG, guardians=CONFIG.guardians[:3], policies=(replace(FAMILY, threshold=3, veto_guardians=0),)
    ),
    replace(CONFIG, policies=(replace(FAMILY, threshold=4),)),
    replace(CONFIG, guardians=(*CONFIG.guardians, Guardian(OWNER.public_key))),
]
REQUESTS = [request_id(n) for n in range(3)]
CREATE_NONCE = 1


@dataclass(frozen=True)
class Deployed:
    factory: Any
    module: Any
    service: Service
    state: VaultState


@pytest.fixture(scope="module")
def deployed() -> Deployed:
    """One module, created at T0 from the owner's signed CreateVault; tests run on anchors of it."""
    boa.env.time_travel(seconds=T0 - boa.env.evm.patch.timestamp)
    factory = chain.deploy_factory()
    service = chain.module_service(factory, VAULT, OWNER.public_key)
    create = messages.sign(
        service, Message(VAULT, CreateVault(CONFIG), CREATE_NONCE, T0 - 60, T0 + HOUR), OWNER
    )
    module = chain.deploy(factory, create)
    state, _ = apply(None, messages.verify(create, service, T0, VAULT), T0)
    return Deployed(factory, module, service, state)


class Both:
    """One vault twice: the Python policy's state and the contract, driven by the same messages."""

    def __init__(self, deployed: Deployed) -> None:
        self.factory = deployed.factory
        self.module = deployed.module
        self.service = deployed.service
        self.state = deployed.state
        self.now = T0
        self.nonces = itertools.count(100)
        self.used: dict[PublicKey, list[int]] = {OWNER.public_key: [CREATE_NONCE]}

    # --- time and messages -------------------------------------------------------------------

    def later(self, seconds: int) -> None:
        self.now += seconds
        boa.env.time_travel(seconds=self.now - int(boa.env.evm.patch.timestamp))

    def sign(
        self,
        key: PrivateKey,
        action: Action,
        *,
        nonce: int | None = None,
        not_before: int | None = None,
        lifetime: int = HOUR,
        vault: bytes = VAULT,
        service: Service | None = None,
        forged_by: PrivateKey | None = None,
    ) -> SignedMessage:
        """``key`` signs ``action`` (or ``forged_by`` signs it in ``key``'s name)."""
        message = Message(
            vault,
            action,
            next(self.nonces) if nonce is None else nonce,
            self.now - 60 if not_before is None else not_before,
            self.now + lifetime,
        )
        signed = messages.sign(service or self.service, message, forged_by or key)
        self.used.setdefault(key.public_key, []).append(message.nonce)
        return replace(signed, signer=key.public_key)

    # --- the two machines --------------------------------------------------------------------

    def offchain(self, batch: list[SignedMessage]) -> tuple[str, VaultState]:
        state = self.state
        try:
            for signed in batch:
                state, _ = apply(state, messages.verify(signed, self.service, self.now, VAULT), self.now)
        except Refusal as refusal:
            return refusal.code, self.state
        return "ok", state

    def onchain(self, batch: list[SignedMessage]) -> str:
        try:
            chain.relay(self.module, batch)
        except ModuleRefusal as refusal:
            return refusal.code
        return "ok"

    def act(self, *batch: SignedMessage) -> str:
        """Apply ``batch`` to both; the outcomes and the states must agree. Returns the outcome."""
        expected, state = self.offchain(list(batch))
        outcome = self.onchain(list(batch))
        assert outcome == expected, (
            f"{[s.message.kind for s in batch]}: contract {outcome}, policy {expected}"
        )
        self.state = state
        if outcome == "ok":
            self.check()
        return outcome

    def do(self, key: PrivateKey, action: Action, **options: object) -> str:
        return self.act(self.sign(key, action, **options))  # type: ignore[arg-type]

    def sweep(self) -> None:
        """Both make their time-driven transitions (``advance``); the states must agree."""
        self.state, _ = advance(self.state, self.now)
        chain.advance(self.module)
        self.check()

    def read(self) -> VaultState:
        pairs = [(signer, nonce) for signer, used in self.used.items() for nonce in used]
        return chain.read_state(self.module, [CONFIG, *CHANGES], pairs)

    def check(self) -> None:
        expected = replace(
            self.state, nonces=tuple(sorted(self.state.nonces, key=lambda n: (n.signer.text, n.nonce)))
        )
        assert self.read() == expected


@pytest.fixture
def vault(deployed: Deployed) -> Iterator[Both]:
    with boa.env.anchor():
        yield Both(deployed)


def open_family(vault: Both, rid: bytes = REQUESTS[0], new_owner: PrivateKey = CANDIDATES[0]) -> None:
    assert vault.do(GUARDIANS[0], OpenRequest(rid, new_owner.public_key, "family")) == "ok"


def approve(
    vault: Both, guardian: int, rid: bytes = REQUESTS[0], new_owner: PrivateKey = CANDIDATES[0]
) -> str:
    return vault.do(GUARDIANS[guardian], Approve(rid, new_owner.public_key, "family"))


# --- the EIP-712 encoding ---------------------------------------------------------------------


def test_type_hashes_equal_the_recovery_messages(deployed: Deployed) -> None:
    constants = {"EIP712Domain": "DOMAIN", "VaultConfig": "VAULT_CONFIG", "CreateVault": "CREATE_VAULT"}
    constants |= {
        "OpenRequest": "OPEN_REQUEST",
        "UploadShare": "UPLOAD_SHARE",
        "ProposeChange": "PROPOSE_CHANGE",
    }
    constants |= {"CancelChange": "CANCEL_CHANGE"}
    for name in messages.TYPES:
        getter = getattr(deployed.module, f"{constants.get(name, name.upper())}_TYPEHASH")
        assert bytes(getter()) == messages.type_hash(name), name


def test_domain_separator_is_the_service_of_the_module(deployed: Deployed) -> None:
    assert deployed.service == chain.service_of(deployed.module)
    assert bytes(deployed.module.domain_separator()) == deployed.service.separator()


def test_key_and_config_hashes_equal_the_recovery_messages(deployed: Deployed) -> None:
    module = deployed.module
    for key in [OWNER, *GUARDIANS, *CANDIDATES]:
        assert bytes(module.key_hash("0x" + key.public_key.data.hex())) == keccak256(
            key.public_key.text.encode()
        )
    for config in [CONFIG, *CHANGES]:
        assert bytes(module.hash_config(chain.config_args(config))) == messages.hash_struct(
            "VaultConfig", config_to_json(config)
        )
    assert bytes(module.config_hash()) == messages.hash_struct("VaultConfig", config_to_json(CONFIG))


ALL_ACTIONS: list[Action] = [
    OpenRequest(REQUESTS[0], CANDIDATES[0].public_key, "family"),
    Approve(REQUESTS[1], CANDIDATES[1].public_key, "weighted ünïcode"),
    Veto(REQUESTS[0]),
    Execute(REQUESTS[2]),
    UploadShare(REQUESTS[0], hashlib.sha256(b"ciphertext").digest()),
    Lock(),
    Unlock(),
    ProposeChange(CHANGES[1]),
    CancelChange(),
]


@pytest.mark.parametrize("action", ALL_ACTIONS, ids=lambda a: type(a).__name__)
def test_the_contract_digest_is_the_message_digest(deployed: Deployed, action: Action) -> None:
    message = Message(VAULT, action, 2**64 - 1, 1_700_000_000, 1_900_000_000)
    signed = messages.sign(deployed.service, message, GUARDIANS[0])
    config_hash = bytes(32)
    if isinstance(action, ProposeChange):
        config_hash = messages.hash_struct("VaultConfig", config_to_json(action.config))
    digest = bytes(deployed.module.message_digest(chain.message_args(signed), config_hash))
    assert digest == messages.digest(deployed.service, message)


def test_the_factory_creates_a_module_at_the_address_the_owner_signed_for(vault: Both) -> None:
    factory, owner = vault.factory, CANDIDATES[0]
    service = chain.module_service(factory, VAULT, owner.public_key)
    create = messages.sign(service, Message(VAULT, CreateVault(CONFIG), 5, T0 - 60, T0 + HOUR), owner)
    elsewhere = replace(create, service=chain.module_service(factory, bytes(32), owner.public_key))
    with pytest.raises(ModuleRefusal) as refused:
        chain.deploy(factory, elsewhere)
    assert refused.value.code == "wrong_service"
    with boa.reverts("bad_signature"):  # the contract's own check: the digest names another address
        factory.create(
            *chain.create_args(
                replace(elsewhere, service=service, message=replace(create.message, vault=bytes(32)))
            )
        )
    module = chain.deploy(factory, create)
    assert bytes.fromhex(str(module.address)[2:]) == service.verifying_contract
    assert chain.read_state(module, [CONFIG]).owner == owner.public_key
    with boa.reverts("vault_exists"):
        module.initialize(*chain.create_args(create))
    with boa.reverts():  # the same vault and owner: the CREATE2 address is taken
        factory.create(*chain.create_args(create))


def test_the_implementation_holds_no_vault(deployed: Deployed) -> None:
    implementation = chain.module_at(deployed.factory.IMPLEMENTATION())
    with boa.reverts("vault_exists"):
        implementation.initialize(
            *chain.create_args(
                messages.sign(
                    deployed.service, Message(VAULT, CreateVault(CONFIG), 9, T0 - 60, T0 + HOUR), OWNER
                )
            )
        )


def test_invalid_creations_are_refused_by_both(vault: Both) -> None:
    factory, owner = vault.factory, CANDIDATES[1]
    service = chain.module_service(factory, VAULT, owner.public_key)
    for config, options, code in [
        (CHANGES[2], {}, "invalid_config"),
        (replace(CONFIG, guardians=(*CONFIG.guardians, Guardian(owner.public_key))), {}, "invalid_config"),
        (CONFIG, {"not_before": T0 + 1}, "not_yet_valid"),
        (CONFIG, {"expiry": T0}, "expired"),
        (CONFIG, {"expiry": T0 + 31 * DAY}, "lifetime_too_long"),
    ]:
        fields: dict[str, Any] = {"not_before": T0 - 60, "expiry": T0 + HOUR} | options
        create = messages.sign(service, Message(VAULT, CreateVault(config), 5, **fields), owner)
        with pytest.raises(Refusal) as offchain:
            apply(None, messages.verify(create, service, T0, VAULT), T0)
        with pytest.raises(ModuleRefusal) as onchain:
            chain.deploy(factory, create)
        assert onchain.value.code == offchain.value.code == code


# --- the flows --------------------------------------------------------------------------------


def test_quorum_relayed_in_one_transaction_then_executed(vault: Both) -> None:
    rid, new_owner = REQUESTS[0], CANDIDATES[0].public_key
    batch = [
        vault.sign(GUARDIANS[0], OpenRequest(rid, new_owner, "family")),
        vault.sign(GUARDIANS[1], Approve(rid, new_owner, "family")),
    ]
    assert vault.act(*batch) == "ok"
    assert vault.read().request(rid).status is Status.APPROVED  # type: ignore[union-attr]
    assert vault.do(CANDIDATES[0], Execute(rid)) == "too_early"
    vault.later(HOUR)
    vault.sweep()
    assert vault.read().request(rid).status is Status.EXECUTABLE  # type: ignore[union-attr]
    assert vault.do(CANDIDATES[0], Execute(rid)) == "ok"
    assert vault.read().owner == new_owner
    assert str(vault.module.owner()).lower() == "0x" + new_owner.data.hex()


def test_batch_is_all_or_nothing(vault: Both) -> None:
    rid, new_owner = REQUESTS[0], CANDIDATES[0].public_key
    batch = [
        vault.sign(GUARDIANS[0], OpenRequest(rid, new_owner, "family")),
        vault.sign(STRANGER, Approve(rid, new_owner, "family")),
    ]
    assert vault.act(*batch) == "not_authorized"
    assert vault.read().requests == ()


def test_weighted_policy_with_zero_recovery_period_is_executable_at_once(vault: Both) -> None:
    rid, new_owner = REQUESTS[1], CANDIDATES[1].public_key
    assert vault.do(GUARDIANS[3], OpenRequest(rid, new_owner, "weighted")) == "ok"  # weight 3 of 4
    assert vault.read().request(rid).status is Status.PENDING  # type: ignore[union-attr]
    assert vault.do(GUARDIANS[1], Approve(rid, new_owner, "weighted")) == "ok"  # weight 2: 5 >= 4
    assert vault.read().request(rid).status is Status.EXECUTABLE  # type: ignore[union-attr]
    assert vault.do(GUARDIANS[3], Execute(rid)) == "ok"


def test_vetoes(vault: Both) -> None:
    open_family(vault, REQUESTS[0])
    assert vault.do(OWNER, Veto(REQUESTS[0])) == "ok"
    assert vault.read().request(REQUESTS[0]).reason == "owner_veto"  # type: ignore[union-attr]
    open_family(vault, REQUESTS[1])
    assert vault.do(GUARDIANS[0], Veto(REQUESTS[1])) == "duplicate_approval"
    assert vault.do(GUARDIANS[3], Veto(REQUESTS[1])) == "not_authorized"
    assert vault.do(GUARDIANS[2], Veto(REQUESTS[1])) == "ok"
    assert vault.read().request(REQUESTS[1]).reason == "guardian_veto"  # type: ignore[union-attr]
    assert vault.do(OWNER, Veto(REQUESTS[1])) == "request_closed"


def test_lock_blocks_owner_changes_and_the_account_until_unlocked(vault: Both) -> None:
    assert vault.do(OWNER, ProposeChange(CHANGES[1])) == "ok"
    assert vault.do(GUARDIANS[2], Lock()) == "ok"
    assert vault.read().pending_change is None
    assert vault.do(OWNER, ProposeChange(CHANGES[1])) == "vault_locked"
    with boa.env.prank(vault.module.owner()), boa.reverts("vault_locked"):
        vault.module.execute(STRANGER.public_key.text[7:], 0, b"")
    assert vault.do(STRANGER, Unlock()) == "not_authorized"
    assert vault.do(GUARDIANS[3], Unlock()) == "ok"
    assert vault.do(GUARDIANS[3], Unlock()) == "not_locked"
    assert vault.do(OWNER, CancelChange()) == "no_pending_change"
    vault.later(10)
    assert vault.do(GUARDIANS[0], Lock()) == "ok"
    vault.later(HOUR)
    vault.sweep()
    assert vault.do(OWNER, ProposeChange(CHANGES[0])) == "ok"  # the lock ran out


def test_change_takes_effect_after_the_security_period_and_cancels_requests(vault: Both) -> None:
    assert vault.do(OWNER, ProposeChange(CHANGES[1])) == "ok"
    open_family(vault)
    vault.later(2 * HOUR - 1)
    assert approve(vault, 1) == "ok"
    vault.later(1)
    vault.sweep()
    state = vault.read()
    assert state.config == CHANGES[1] and state.pending_change is None
    assert state.request(REQUESTS[0]).reason == "config_change"  # type: ignore[union-attr]
    assert vault.do(GUARDIANS[3], Lock()) == "not_authorized"  # no longer a guardian


def test_invalid_changes_are_refused_by_both(vault: Both) -> None:
    assert vault.do(OWNER, ProposeChange(CHANGES[2])) == "invalid_config"
    assert vault.do(OWNER, ProposeChange(CHANGES[3])) == "invalid_config"
    assert vault.do(GUARDIANS[0], ProposeChange(CHANGES[0])) == "not_authorized"
    assert vault.do(OWNER, ProposeChange(CHANGES[0])) == "ok"  # after this config's security period
    vault.later(2 * HOUR)
    vault.sweep()
    assert vault.read().config == CHANGES[0]
    assert vault.do(OWNER, ProposeChange(CHANGES[1])) == "ok"  # CHANGES[0]'s is zero: at once
    assert vault.read().config == CHANGES[1]


def test_requests_expire_and_escrow_is_destroyed(vault: Both) -> None:
    open_family(vault)
    share = hashlib.sha256(b"share").digest()
    assert vault.do(GUARDIANS[1], UploadShare(REQUESTS[0], share)) == "not_authorized"
    assert vault.do(GUARDIANS[0], UploadShare(REQUESTS[0], share)) == "ok"
    assert vault.do(GUARDIANS[0], UploadShare(REQUESTS[0], share)) == "escrow_refused"
    assert vault.do(GUARDIANS[0], UploadShare(REQUESTS[1], share)) == "unknown_request"
    vault.later(DAY)
    vault.sweep()
    expired = vault.read().request(REQUESTS[0])
    assert expired is not None and expired.status is Status.EXPIRED and expired.escrow == ()
    assert vault.do(GUARDIANS[0], UploadShare(REQUESTS[0], share)) == "escrow_refused"
    assert approve(vault, 1) == "request_closed"


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"lifetime": -1}, "expired"),
        ({"lifetime": 31 * DAY}, "lifetime_too_long"),
        ({"not_before": T0 + 60}, "not_yet_valid"),
        ({"vault": bytes(32)}, "wrong_vault"),
        ({"forged_by": STRANGER}, "bad_signature"),
        ({"service": Service(1, bytes(20))}, "wrong_service"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else "",
)
def test_message_refusals(vault: Both, options: dict[str, object], code: str) -> None:
    assert vault.do(GUARDIANS[0], Lock(), **options) == code


def test_replayed_nonce_until_its_message_expires(vault: Both) -> None:
    assert vault.do(GUARDIANS[0], Lock(), nonce=7, lifetime=120) == "ok"
    assert vault.do(GUARDIANS[0], Unlock(), nonce=7) == "replayed_nonce"
    assert vault.do(GUARDIANS[1], Unlock(), nonce=7) == "ok"  # nonces are per signer
    vault.later(120)
    assert vault.do(GUARDIANS[0], Lock(), nonce=7) == "ok"


def test_request_refusals(vault: Both) -> None:
    c0, c1 = CANDIDATES[0].public_key, CANDIDATES[1].public_key
    assert vault.do(GUARDIANS[0], OpenRequest(REQUESTS[0], c0, "nobody")) == "unknown_policy"
    assert vault.do(GUARDIANS[3], OpenRequest(REQUESTS[0], c0, "family")) == "not_authorized"
    assert vault.do(GUARDIANS[0], OpenRequest(REQUESTS[0], OWNER.public_key, "family")) == "invalid_config"
    assert vault.do(GUARDIANS[0], OpenRequest(REQUESTS[0], G[3], "family")) == "invalid_config"
    assert vault.do(GUARDIANS[0], Approve(REQUESTS[0], c0, "family")) == "unknown_request"
    open_family(vault)
    assert vault.do(GUARDIANS[1], OpenRequest(REQUESTS[0], c0, "family")) == "duplicate_request"
    assert vault.do(GUARDIANS[1], Approve(REQUESTS[0], c1, "family")) == "request_mismatch"
    assert vault.do(GUARDIANS[1], Approve(REQUESTS[0], c0, "weighted")) == "request_mismatch"
    assert vault.do(GUARDIANS[0], Approve(REQUESTS[0], c0, "family")) == "duplicate_approval"
    assert vault.do(GUARDIANS[3], Approve(REQUESTS[0], c0, "family")) == "not_authorized"
    assert vault.do(STRANGER, Execute(REQUESTS[0])) == "not_authorized"
    assert vault.do(CANDIDATES[0], Execute(REQUESTS[0])) == "too_early"


def test_too_many_open_requests(vault: Both) -> None:
    for n in range(16):
        rid = request_id(100 + n)
        assert vault.do(GUARDIANS[0], OpenRequest(rid, CANDIDATES[0].public_key, "family")) == "ok"
    rid = request_id(200)
    assert vault.do(GUARDIANS[0], OpenRequest(rid, CANDIDATES[0].public_key, "family")) == "too_many_requests"


def test_execution_supersedes_other_requests_and_cancels_the_change(vault: Both) -> None:
    assert vault.do(OWNER, ProposeChange(CHANGES[1])) == "ok"
    assert vault.do(GUARDIANS[2], Lock()) == "ok"  # cancels the change
    assert vault.do(OWNER, CancelChange()) == "vault_locked"
    open_family(vault, REQUESTS[0], CANDIDATES[0])
    open_family(vault, REQUESTS[1], CANDIDATES[1])
    assert approve(vault, 1, REQUESTS[0], CANDIDATES[0]) == "ok"
    vault.later(HOUR)
    assert vault.do(GUARDIANS[2], Execute(REQUESTS[0])) == "ok"
    state = vault.read()
    assert state.request(REQUESTS[1]).reason == "superseded"  # type: ignore[union-attr]
    assert state.locked_until == 0 and state.owner == CANDIDATES[0].public_key
    assert vault.do(OWNER, ProposeChange(CHANGES[0])) == "not_authorized"  # no longer the owner
    assert vault.do(CANDIDATES[0], ProposeChange(CHANGES[0])) == "ok"


def test_the_account_holds_eth_and_only_the_owner_spends_it(vault: Both) -> None:
    module = vault.module
    boa.env.set_balance(module.address, 10**18)
    receiver = "0x" + STRANGER.public_key.data.hex()
    with boa.reverts("not_authorized"):
        module.execute(receiver, 1, b"")
    with boa.env.prank(module.owner()):
        module.execute(receiver, 10**17, b"")
        with boa.reverts("not_authorized"):
            module.execute(module.address, 0, b"")
    assert boa.env.get_balance(receiver) == 10**17


OWNED = """
# pragma version ~=0.4.3
owner: public(address)
value: public(uint256)

@deploy
def __init__(owner: address):
    self.owner = owner

@external
def set_value(new_value: uint256):
    assert msg.sender == self.owner, "only the owner"
    self.value = new_value
"""


def test_the_module_owns_other_contracts_and_recovery_hands_them_over(vault: Both) -> None:
    """A contract owned by the module obeys whoever owns the module: after a recovery, the new owner."""
    owned = boa.loads(OWNED, vault.module.address)
    with boa.env.prank(vault.module.owner()):
        vault.module.execute(owned.address, 0, owned.set_value.prepare_calldata(1))
    assert owned.value() == 1
    open_family(vault)
    assert approve(vault, 1) == "ok"
    vault.later(HOUR)
    assert vault.do(CANDIDATES[0], Execute(REQUESTS[0])) == "ok"
    with boa.env.prank("0x" + OWNER.public_key.data.hex()), boa.reverts("not_authorized"):
        vault.module.execute(owned.address, 0, owned.set_value.prepare_calldata(2))
    with boa.env.prank("0x" + CANDIDATES[0].public_key.data.hex()):
        vault.module.execute(owned.address, 0, owned.set_value.prepare_calldata(3))
    assert owned.value() == 3


def test_a_failing_call_reverts_with_the_callees_reason(vault: Both) -> None:
    implementation = vault.factory.IMPLEMENTATION()
    create = messages.sign(vault.service, Message(VAULT, CreateVault(CONFIG), 9, T0 - 60, T0 + HOUR), OWNER)
    data = chain.module_at(implementation).initialize.prepare_calldata(*chain.create_args(create))
    with boa.env.prank(vault.module.owner()), boa.reverts("vault_exists"):
        vault.module.execute(implementation, 0, data)


def test_the_documented_relay_calldata() -> None:
    """docs/onchain-recovery-module.md's worked example is what message_args and the ABI make."""
    service = Service(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
    guardian = PrivateKey.from_seed(KeyKind.EIP712, hashlib.sha256(b"example guardian").digest())
    new_owner = PrivateKey.from_seed(KeyKind.EIP712, hashlib.sha256(b"example new owner").digest())
    vault = bytes.fromhex("ae3a3c91acacbc1c917c080b5b8e936b6c06d41f238dd9097acb617a1e7fa416")
    rid = bytes.fromhex("f98aac4f00bb49f73feb4e4cd1e09626e467b9c7a27050d6478d1c5350300246")
    message = Message(vault, Approve(rid, new_owner.public_key, "family"), 7, 1_800_000_000, 1_800_003_600)
    signed = messages.sign(service, message, guardian)
    data = chain.calldata([signed])
    lines = [f"selector {data[:4].hex()}"]
    lines += [f"{i:04x}: {data[4 + i : 36 + i].hex()}" for i in range(0, len(data) - 4, 32)]
    doc = (Path(__file__).parents[1] / "docs" / "onchain-recovery-module.md").read_text()
    block = doc.split("<!-- relay-example:begin")[1].split("<!-- relay-example:end")[0]
    assert block.split("```text\n")[1].split("\n```")[0].splitlines() == lines
    assert messages.digest(service, message).hex() in doc
    assert data[:4].hex() == "5834522e"


@pytest.fixture
def chain_cli(cli: CliRunner) -> CliRunner:
    """``lifeboat chain recovery …``."""
    assert any(group.name == "recovery" for group in chain_cmds.chain_app.registered_groups)
    return cli


def test_cli_address_is_where_the_factory_puts_the_module(deployed: Deployed, chain_cli: CliRunner) -> None:
    factory = deployed.factory
    result = chain_cli(
        "--json", "chain", "recovery", "address", "--vault", VAULT.hex(), "--owner", OWNER.public_key.text,
        "--factory", str(factory.address), "--implementation", str(factory.IMPLEMENTATION()),
        "--chain-id", str(deployed.service.chain_id),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out)["service"] == deployed.service.to_json()


def test_cli_calldata_relays_a_quorum(vault: Both, chain_cli: CliRunner, tmp_path: Path) -> None:
    rid, new_owner = REQUESTS[0], CANDIDATES[0].public_key
    batch = [vault.sign(GUARDIANS[0], OpenRequest(rid, new_owner, "family"))]
    batch += [vault.sign(GUARDIANS[i], Approve(rid, new_owner, "family")) for i in (1, 2)]
    files = []
    for n, signed in enumerate(batch):
        files.append(tmp_path / f"{n}.json")
        files[-1].write_bytes(messages.encode_signed(signed))
    result = chain_cli("--json", "chain", "recovery", "calldata", *files)
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["to"] == "the module" and answer["module"] == "0x" + vault.service.verifying_contract.hex()
    boa.env.raw_call(vault.module.address, data=bytes.fromhex(answer["data"][2:]))
    expected, _ = vault.offchain(batch)
    assert expected == "ok" and vault.read().request(rid).status is Status.APPROVED  # type: ignore[union-attr]
    stranger = replace(
        CONFIG, guardians=(*CONFIG.guardians, Guardian(private_key(KeyKind.ED25519, "x").public_key))
    )
    create = vault.sign(OWNER, CreateVault(stranger))
    files[0].write_bytes(messages.encode_signed(create))
    refused = chain_cli("chain", "recovery", "calldata", files[0])
    assert refused.code == 1 and "no Ed25519 precompile" in refused.err


def test_keys_the_contract_cannot_check_are_refused_with_the_reason() -> None:
    ed25519 = private_key(KeyKind.ED25519, "chain ed25519").public_key
    bip340 = private_key(KeyKind.BIP340, "chain bip340").public_key
    for key, why in ((ed25519, "no Ed25519 precompile"), (bip340, "BIP-340")):
        config = replace(CONFIG, guardians=(*CONFIG.guardians, Guardian(key)))
        with pytest.raises(UnverifiableKey, match=why):
            chain.config_args(config)
    with pytest.raises(UnverifiableKey, match="Ethereum key"):
        chain.check_keys(CONFIG, owner=ed25519)


def test_out_of_range_nonce_and_unknown_action_are_malformed(vault: Both) -> None:
    signed = vault.sign(GUARDIANS[0], Lock(), nonce=2**64)
    with pytest.raises(ModuleRefusal) as refused:
        chain.relay(vault.module, [signed])
    assert refused.value.code == "malformed_message"
    args = list(chain.message_args(vault.sign(GUARDIANS[0], Lock())))
    args[0] = 10
    with boa.reverts("malformed_message"):
        vault.module.relay([tuple(args)])
    with pytest.raises(ChainError, match="deploy"):
        chain.message_args(vault.sign(OWNER, CreateVault(CONFIG)))


def test_gas_of_a_relayed_quorum(vault: Both) -> None:
    """Three approvals relayed in one transaction stay within a bound (bench/ has the figures)."""
    rid, new_owner = REQUESTS[0], CANDIDATES[0].public_key
    batch = [vault.sign(GUARDIANS[0], OpenRequest(rid, new_owner, "family"))]
    batch += [vault.sign(GUARDIANS[i], Approve(rid, new_owner, "family")) for i in (1, 2)]
    before = boa.env.get_gas_used()
    chain.relay(vault.module, batch)
    assert boa.env.get_gas_used() - before < 600_000


# --- the differential test --------------------------------------------------------------------

KINDS = ["open", "open", "approve", "approve", "approve", "batch", "batch", "veto", "execute", "execute"]
KINDS += ["upload", "lock", "unlock", "propose", "cancel"]
JUMPS = [0, 0, 0, 0, 1, 60, 600, HOUR, HOUR, 2 * HOUR, DAY]


@dataclass(frozen=True)
class Step:
    jump: int
    kind: str
    actor: int
    request: int
    new_owner: int
    policy: str
    change: int
    perturb: int
    lifetime: int
    sweep: bool


steps = st.builds(
    Step,
    jump=st.sampled_from(JUMPS),
    kind=st.sampled_from(KINDS),
    actor=st.integers(0, 29),
    request=st.integers(0, 9),
    new_owner=st.integers(0, 9),
    policy=st.sampled_from(["family", "family", "family", "weighted", "weighted", "nobody"]),
    change=st.integers(0, len(CHANGES) - 1),
    perturb=st.integers(0, 39),
    lifetime=st.sampled_from([120, HOUR, DAY, 10 * DAY]),
    sweep=st.booleans(),
)


def _members(vault: Both, policy_name: str) -> list[PrivateKey]:
    policy = vault.state.config.policy(policy_name)
    return [BY_KEY[k] for k in policy.guardians] if policy is not None else GUARDIANS


def _actor(vault: Both, step: Step) -> PrivateKey:
    """Mostly someone entitled to the action, sometimes anyone."""
    if step.actor < len(ACTORS):
        return ACTORS[step.actor]
    request = vault.state.request(_request(vault, step))
    owner = BY_KEY[vault.state.owner]
    if step.kind in ("propose", "cancel") or (step.kind == "veto" and step.actor % 3 == 0):
        return owner
    if step.kind == "execute" and request is not None and step.actor % 2 == 0:
        return BY_KEY[request.new_owner]
    if step.kind == "open":
        members = _members(vault, step.policy)
    elif request is not None:
        members = _members(vault, request.policy)
    else:
        members = [BY_KEY[g.key] for g in vault.state.config.guardians]
    return members[step.actor % len(members)]


def _request(vault: Both, step: Step) -> bytes:
    open_ids = [r.id for r in vault.state.requests if r.status.is_open]
    if step.request >= len(REQUESTS) and open_ids:
        return open_ids[step.request % len(open_ids)]
    return REQUESTS[step.request % len(REQUESTS)]


def _naming(vault: Both, step: Step, rid: bytes) -> tuple[PublicKey, str]:
    request = vault.state.request(rid)
    if request is not None and step.new_owner >= 3:
        return request.new_owner, request.policy
    return [*CANDIDATES, *CANDIDATES, OWNER, GUARDIANS[0]][step.new_owner % 6].public_key, step.policy


def _action(vault: Both, step: Step) -> Action:
    rid = _request(vault, step)
    if step.kind == "open" and step.request >= len(REQUESTS):
        rid = request_id(10 + len(vault.state.requests))  # a fresh id
    new_owner, policy = _naming(vault, step, rid)
    makers: dict[str, Callable[[], Action]] = {
        "open": lambda: OpenRequest(rid, new_owner, policy),
        "approve": lambda: Approve(rid, new_owner, policy),
        "veto": lambda: Veto(rid),
        "execute": lambda: Execute(rid),
        "upload": lambda: UploadShare(rid, hashlib.sha256(rid + bytes([step.actor])).digest()),
        "lock": Lock,
        "unlock": Unlock,
        "propose": lambda: ProposeChange(CHANGES[step.change]),
        "cancel": CancelChange,
    }
    return makers[step.kind]()


def _options(vault: Both, key: PrivateKey, step: Step) -> dict[str, object]:
    """The message's lifetime and, now and then, one thing wrong with it."""
    used = vault.used.get(key.public_key, [])
    perturbations: dict[int, dict[str, object]] = {
        0: {"nonce": used[-1]} if used else {},
        1: {"nonce": used[0]} if used else {},
        2: {"not_before": vault.now + 30},
        3: {"lifetime": -step.lifetime},
        4: {"lifetime": 31 * DAY},
        5: {"forged_by": STRANGER},
        6: {"vault": bytes(32)},
    }
    return {"lifetime": step.lifetime, **perturbations.get(step.perturb, {})}


def run(vault: Both, step: Step) -> None:
    vault.later(step.jump)
    if step.kind == "batch":
        rid = _request(vault, step)
        new_owner, policy = _naming(vault, step, rid)
        request = vault.state.request(rid)
        members = _members(vault, request.policy) if request is not None else GUARDIANS
        signers = [members[step.actor % len(members)], members[(step.actor + 1 + step.change) % len(members)]]
        batch = [vault.sign(key, Approve(rid, new_owner, policy), lifetime=step.lifetime) for key in signers]
        outcome = vault.act(*batch)
    else:
        key = _actor(vault, step)
        outcome = vault.act(vault.sign(key, _action(vault, step), **_options(vault, key, step)))  # type: ignore[arg-type]
    event(f"{step.kind}: {outcome}")
    if step.sweep:
        vault.sweep()


@pytest.mark.slow
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(approved=st.booleans(), story=st.lists(steps, min_size=4, max_size=30))
def test_contract_and_policy_are_the_same_machine(
    deployed: Deployed, approved: bool, story: list[Step]
) -> None:
    with boa.env.anchor():
        vault = Both(deployed)
        open_family(vault)  # every story starts with a request open, where it gets interesting
        if approved:
            assert approve(vault, 1) == "ok"
        for step in story:
            run(vault, step)
        vault.sweep()
