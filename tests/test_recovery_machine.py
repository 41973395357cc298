"""The recovery policy under random interleavings of every action, every actor and clock jumps.

The machine drives one vault through :func:`apply` and :func:`advance` with signed, verified
messages, and tracks what the events say happened. After every step it checks: no execution
without quorum, none before the recovery period ends, none after a veto or expiry, exactly one
outcome per request and outcomes never change, a refused action changes nothing, a replayed
message is always refused, the owner is never a guardian, and the state's JSON round-trips exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lifeboat.recovery import messages, refusals
from lifeboat.recovery.config import Policy, VaultConfig
from lifeboat.recovery.keys import KeyKind, PrivateKey, PublicKey
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
    Unlock,
    UploadShare,
    VerifiedAction,
    Veto,
)
from lifeboat.recovery.policy import (
    Event,
    Status,
    VaultState,
    advance,
    apply,
    vault_state_from_json,
    vault_state_to_json,
)
from recovery_helpers import DAY, HOUR, SERVICE, VAULT, family_config, private_key, request_id

T0 = 1_800_000_000
OWNER = private_key(KeyKind.ED25519, "owner")
CONFIG, FAMILY, LAWYER = family_config(OWNER)
CANDIDATES = [private_key(KeyKind.ED25519, "new owner 1"), private_key(KeyKind.EIP712, "new owner 2")]
STRANGER = private_key(KeyKind.BIP340, "stranger")
ACTORS = [OWNER, *FAMILY, LAWYER, *CANDIDATES, STRANGER]
BY_KEY = {k.public_key: k for k in ACTORS}
REQUEST_IDS = [request_id(n) for n in range(3)]
POLICIES = ["family", "family", "family", "lawyer", "nobody"]

CONFIGS = [
    CONFIG,
    replace(CONFIG, policies=CONFIG.policies[:1], security_period=0),
    replace(
        CONFIG,
        policies=(
            replace(CONFIG.policies[0], threshold=3, veto_guardians=0, recovery_period=HOUR),
            CONFIG.policies[1],
        ),
        lock_period=HOUR,
    ),
]

actors = st.sampled_from(ACTORS)
guardians = st.one_of(st.sampled_from([*FAMILY, LAWYER]), actors)  # half the time someone entitled
owner_side = st.one_of(st.sampled_from([OWNER, *CANDIDATES]), actors)
rids = st.sampled_from(REQUEST_IDS)
owners = st.sampled_from([*CANDIDATES, *CANDIDATES, OWNER, FAMILY[0]])
lifetimes = st.sampled_from([120, HOUR, DAY, 10 * DAY])
reuse = st.integers(0, 7)  # 0: sign with a nonce this signer used before


@dataclass
class Story:
    """What the events said about one request."""

    policy: Policy
    config: VaultConfig
    approvals: list[PublicKey] = field(default_factory=list)
    approved_at: int | None = None
    outcomes: list[tuple[str, int]] = field(default_factory=list)


def weight(config: VaultConfig, policy: Policy, keys: list[PublicKey]) -> int:
    members = [k for k in set(keys) if k in policy.guardians]
    return sum(g.weight for g in config.guardians if g.key in members) if policy.by_weight else len(members)


class RecoveryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.state: VaultState
        self.counter = itertools.count(1)
        self.used: dict[PublicKey, list[int]] = {}
        self.accepted: list[VerifiedAction] = []
        self.stories: dict[bytes, Story] = {}
        self.final: dict[bytes, tuple[Status, int | None]] = {}

    @initialize(policy=st.sampled_from(["family", "lawyer"]), new_owner=st.sampled_from(CANDIDATES))
    def create(self, policy: str, new_owner: PrivateKey) -> None:
        """A vault with one request already open, so every run starts where it gets interesting."""
        verified = self.verified(OWNER, CreateVault(CONFIG), HOUR, 1)
        self.state, events = apply(None, verified, self.now)
        self.accepted.append(verified)
        self.record(events)
        opener = FAMILY[0] if policy == "family" else LAWYER
        self.step(opener, OpenRequest(REQUEST_IDS[0], new_owner.public_key, policy))
        assert self.state.request(REQUEST_IDS[0]) is not None

    # --- helpers ---------------------------------------------------------------------------

    def verified(self, key: PrivateKey, action: Action, lifetime: int, reuse_choice: int) -> VerifiedAction:
        used = self.used.get(key.public_key, [])
        nonce = used[reuse_choice % len(used)] if used and reuse_choice == 0 else next(self.counter)
        self.used.setdefault(key.public_key, []).append(nonce)
        message = Message(VAULT, action, nonce, self.now - 60, self.now + lifetime)
        return messages.verify(messages.sign(SERVICE, message, key), SERVICE, self.now, VAULT)

    def step(self, key: PrivateKey, action: Action, lifetime: int = HOUR, reuse_choice: int = 1) -> None:
        verified = self.verified(key, action, lifetime, reuse_choice)
        before = vault_state_to_json(self.state)
        replayed = any(
            a.signer == verified.signer
            and a.message.nonce == verified.message.nonce
            and a.message.expiry > self.now
            for a in self.accepted
        )
        try:
            state, events = apply(self.state, verified, self.now)
        except refusals.Refusal as refusal:
            assert vault_state_to_json(self.state) == before  # a refusal changes nothing
            assert not replayed or isinstance(refusal, refusals.ReplayedNonce), refusal
            event(f"refused {type(action).__name__}: {refusal.code}")
            return
        assert not replayed, "a reused nonce was accepted"
        event(f"applied {type(action).__name__}")
        self.check_executions(events)
        self.state = state
        self.accepted.append(verified)
        self.record(events)

    def record(self, events: list[Event]) -> None:
        for e in events:
            assert e.at <= self.now
            if e.kind == "request_opened":
                assert e.request is not None and e.request not in self.stories
                policy = self.state.config.policy(dict(e.detail)["policy"])
                assert policy is not None
                self.stories[e.request] = Story(policy, self.state.config)
            elif e.kind == "request_approval":
                assert e.request is not None and e.actor is not None
                self.stories[e.request].approvals.append(e.actor)
            elif e.kind == "request_approved":
                assert e.request is not None
                story = self.stories[e.request]
                assert story.approved_at is None
                story.approved_at = e.at
            elif e.kind in ("request_executed", "request_cancelled", "request_expired"):
                assert e.request is not None
                self.stories[e.request].outcomes.append((e.kind, e.at))
                event(e.kind)

    def check_executions(self, events: list[Event]) -> None:
        """Every execution in ``events``: quorum met, period over, no earlier outcome, before expiry."""
        for e in events:
            if e.kind != "request_executed":
                continue
            assert e.request is not None
            story = self.stories[e.request]
            assert weight(story.config, story.policy, story.approvals) >= story.policy.threshold
            assert story.approved_at is not None and e.at >= story.approved_at + story.policy.recovery_period
            assert e.at < story.approved_at + story.policy.recovery_period + story.policy.expiry_window
            assert story.outcomes == [], "executed after a veto, an expiry or another outcome"

    def pick(self, rid: bytes, choice: int) -> bytes:
        """Mostly an open request of the vault (the interesting case), sometimes any id at all."""
        open_ids = [r.id for r in self.state.requests if r.status.is_open]
        return open_ids[choice % len(open_ids)] if open_ids and choice > 0 else rid

    # --- rules: every action, by any actor -------------------------------------------------

    @rule(
        key=actors, rid=rids, new_owner=owners, policy=st.sampled_from(POLICIES), life=lifetimes, again=reuse
    )
    def open_request(
        self, key: PrivateKey, rid: bytes, new_owner: PrivateKey, policy: str, life: int, again: int
    ) -> None:
        self.step(key, OpenRequest(rid, new_owner.public_key, policy), life, again)

    @rule(key=guardians, rid=rids, matching=st.integers(0, 4), life=lifetimes, again=reuse)
    def approve(self, key: PrivateKey, rid: bytes, matching: int, life: int, again: int) -> None:
        request = self.state.request(self.pick(rid, matching))
        if request is not None and matching > 0:
            action = Approve(rid, request.new_owner, request.policy)
        else:
            action = Approve(rid, CANDIDATES[0].public_key, "family")
        self.step(key, action, life, again)

    @rule(
        key=st.one_of(owner_side, guardians), rid=rids, choice=st.integers(0, 3), life=lifetimes, again=reuse
    )
    def veto(self, key: PrivateKey, rid: bytes, choice: int, life: int, again: int) -> None:
        self.step(key, Veto(self.pick(rid, choice)), life, again)

    @rule(
        key=st.one_of(st.sampled_from(CANDIDATES), guardians),
        rid=rids,
        choice=st.integers(0, 3),
        life=lifetimes,
        again=reuse,
    )
    def execute(self, key: PrivateKey, rid: bytes, choice: int, life: int, again: int) -> None:
        self.step(key, Execute(self.pick(rid, choice)), life, again)

    @rule(choice=st.integers(1, 3), again=reuse)
    def execute_as_new_owner(self, choice: int, again: int) -> None:
        """The request's own new owner executes it, whatever its state."""
        request = self.state.request(self.pick(REQUEST_IDS[0], choice))
        if request is not None:
            self.step(BY_KEY[request.new_owner], Execute(request.id), HOUR, again)

    @rule(
        key=guardians,
        rid=rids,
        choice=st.integers(0, 3),
        digest=st.binary(min_size=32, max_size=32),
        again=reuse,
    )
    def upload(self, key: PrivateKey, rid: bytes, choice: int, digest: bytes, again: int) -> None:
        self.step(key, UploadShare(self.pick(rid, choice), digest), HOUR, again)

    @rule(key=actors, again=reuse)
    def lock(self, key: PrivateKey, again: int) -> None:
        self.step(key, Lock(), HOUR, again)

    @rule(key=actors, again=reuse)
    def unlock(self, key: PrivateKey, again: int) -> None:
        self.step(key, Unlock(), HOUR, again)

    @rule(key=actors, config=st.sampled_from(CONFIGS), again=reuse)
    def propose(self, key: PrivateKey, config: VaultConfig, again: int) -> None:
        self.step(key, ProposeChange(config), HOUR, again)

    @rule(key=owner_side, again=reuse)
    def cancel_change(self, key: PrivateKey, again: int) -> None:
        self.step(key, CancelChange(), HOUR, again)

    @precondition(lambda self: len(self.accepted) > 0)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """An accepted message sent again is refused: as a replay, or as expired."""
        verified = data.draw(st.sampled_from(self.accepted))
        try:
            apply(self.state, verified, self.now)
        except (refusals.ReplayedNonce, refusals.Expired, refusals.VaultExists):
            return
        raise AssertionError("a replayed message was accepted")

    @rule(choice=st.integers(1, 3), count=st.integers(1, 3))
    def gather(self, choice: int, count: int) -> None:
        """Guardians of an open request's policy approve it, one after another."""
        request = self.state.request(self.pick(REQUEST_IDS[0], choice))
        if request is None or (policy := self.state.config.policy(request.policy)) is None:
            return
        done = (*request.approvals, *request.vetoes)
        for key in [
            k for k in [*FAMILY, LAWYER] if k.public_key in policy.guardians and k.public_key not in done
        ][:count]:
            self.step(key, Approve(request.id, request.new_owner, request.policy))

    @rule(choice=st.integers(1, 3), offset=st.sampled_from([-1, 0, 1]), deadline=st.booleans())
    def wait_for(self, choice: int, offset: int, deadline: bool) -> None:
        """Jump to just before, at or after a request's executable time or deadline: the edges."""
        request = self.state.request(self.pick(REQUEST_IDS[0], choice))
        if request is None:
            return
        target = request.deadline if deadline or request.executable_at is None else request.executable_at
        self.now = max(self.now, target + offset)

    @rule(seconds=st.sampled_from([1, 60, HOUR, DAY, 2 * DAY, 3 * DAY, 8 * DAY]))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    @rule()
    def tick(self) -> None:
        self.state, events = advance(self.state, self.now)
        self.check_executions(events)
        self.record(events)

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def one_outcome_and_final(self) -> None:
        for rid, story in self.stories.items():
            assert len(story.outcomes) <= 1, f"request {rid.hex()[:8]} has outcomes {story.outcomes}"
        for request in self.state.requests:
            if request.status.is_open:
                assert request.id not in self.final
                continue
            seen = self.final.setdefault(request.id, (request.status, request.closed_at))
            assert seen == (request.status, request.closed_at), "an outcome changed"

    @invariant()
    def executed_requests_met_quorum_and_waited(self) -> None:
        for request in self.state.requests:
            if request.status is Status.EXECUTED:
                story = self.stories[request.id]
                policy = story.policy
                assert weight(story.config, policy, list(request.approvals)) >= policy.threshold
                assert request.approved_at is not None and request.closed_at is not None
                assert request.closed_at >= request.approved_at + policy.recovery_period
            if request.status is Status.EXECUTED or not request.status.is_open:
                assert request.escrow == () or request.status is Status.EXECUTED

    @invariant()
    def owner_is_never_a_guardian(self) -> None:
        assert self.state.config.guardian(self.state.owner) is None
        if self.state.pending_change is not None:
            assert self.state.pending_change.config.guardian(self.state.owner) is None

    @invariant()
    def json_round_trips(self) -> None:
        data = vault_state_to_json(self.state)
        assert vault_state_from_json(data) == self.state
        assert vault_state_to_json(vault_state_from_json(data)) == data


class QuietRecoveryMachine(RecoveryMachine):
    """The same machine without vetoes and configuration changes, so that runs reach executions
    (and the invariants about them) far more often; the full machine covers the interleavings."""

    def veto(self) -> None:
        """Not a rule here."""

    def propose(self) -> None:
        """Not a rule here."""


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
RecoveryMachine.TestCase.settings = SETTINGS
QuietRecoveryMachine.TestCase.settings = SETTINGS
test_recovery_machine = RecoveryMachine.TestCase
test_quiet_recovery_machine = QuietRecoveryMachine.TestCase
