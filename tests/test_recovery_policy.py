"""The recovery policy, transition by transition and refusal by refusal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lifeboat.recovery import refusals
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.keys import KeyKind
from lifeboat.recovery.messages import (
    Approve,
    CancelChange,
    CreateVault,
    Execute,
    Lock,
    OpenRequest,
    ProposeChange,
    Unlock,
    UploadShare,
    Veto,
)
from lifeboat.recovery.policy import (
    MAX_OPEN_REQUESTS,
    Event,
    Status,
    VaultState,
    advance,
    apply,
    escrow_release,
    vault_state_from_json,
    vault_state_to_json,
)
from recovery_helpers import DAY, HOUR, SERVICE, VAULT, act, family_config, private_key, request_id

T0 = 1_800_000_000
OWNER = private_key(KeyKind.ED25519, "owner")
NEW_OWNER = private_key(KeyKind.BIP340, "new owner")
STRANGER = private_key(KeyKind.EIP712, "stranger")
CONFIG, FAMILY, LAWYER = family_config(OWNER)
ALICE, BOB, CAROL = FAMILY
R1, R2 = request_id(1), request_id(2)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def created(now: int = T0) -> VaultState:
    state, _ = apply(None, act(OWNER, CreateVault(CONFIG), now), now)
    return state


def opened(now: int = T0, policy: str = "family", rid: bytes = R1) -> VaultState:
    opener = ALICE if policy == "family" else LAWYER
    state, _ = apply(created(now), act(opener, OpenRequest(rid, NEW_OWNER.public_key, policy), now), now)
    return state


def approved(now: int = T0) -> VaultState:
    state, _ = apply(
        opened(now), act(BOB, Approve(R1, NEW_OWNER.public_key, "family"), now + HOUR), now + HOUR
    )
    return state


def refused(
    kind: type[refusals.Refusal], state: VaultState | None, key: object, action: object, now: int
) -> None:
    before = None if state is None else vault_state_to_json(state)
    with pytest.raises(kind):
        apply(state, act(key, action, now), now)  # type: ignore[arg-type]
    if state is not None:
        assert vault_state_to_json(state) == before


# --- creation ---------------------------------------------------------------------------------


def test_create_makes_the_signer_the_owner() -> None:
    state, events = apply(None, act(OWNER, CreateVault(CONFIG), T0), T0)
    assert state.owner == OWNER.public_key and state.config == CONFIG and state.vault == VAULT
    assert state.service == SERVICE and kinds(events) == ["vault_created"]


def test_create_twice_is_refused() -> None:
    refused(refusals.VaultExists, created(), OWNER, CreateVault(CONFIG), T0 + 1)


def test_actions_on_a_missing_vault_are_refused() -> None:
    refused(refusals.UnknownVault, None, ALICE, Lock(), T0)


def test_the_owner_cannot_be_a_guardian() -> None:
    refused(refusals.InvalidConfig, None, ALICE, CreateVault(CONFIG), T0)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: replace(c, guardians=()), "1 to 64 guardians"),
        (lambda c: replace(c, guardians=(*c.guardians, c.guardians[0])), "appears twice"),
        (lambda c: replace(c, guardians=(replace(c.guardians[0], weight=0), *c.guardians[1:])), "weight"),
        (
            lambda c: replace(c, guardians=(replace(c.guardians[0], label="a\nb"), *c.guardians[1:])),
            "control",
        ),
        (lambda c: replace(c, policies=()), "1 to 16 policies"),
        (lambda c: replace(c, policies=(c.policies[0], replace(c.policies[1], name="family"))), "same name"),
        (lambda c: replace(c, policies=(replace(c.policies[0], name=""),)), "empty"),
        (lambda c: replace(c, policies=(replace(c.policies[0], guardians=()),)), "no guardians"),
        (lambda c: replace(c, policies=(replace(c.policies[0], threshold=4),)), "threshold"),
        (lambda c: replace(c, policies=(replace(c.policies[0], threshold=0),)), "threshold"),
        (lambda c: replace(c, policies=(replace(c.policies[0], veto_guardians=4),)), "veto_guardians"),
        (lambda c: replace(c, policies=(replace(c.policies[0], expiry_window=0),)), "expiry_window"),
        (lambda c: replace(c, lock_period=0), "lock_period"),
        (
            lambda c: replace(c, policies=(replace(c.policies[0], guardians=(STRANGER.public_key,)),)),
            "not a guardian",
        ),
    ],
)
def test_bad_configurations_are_refused_with_the_rule(change: object, words: str) -> None:
    bad = change(CONFIG)  # type: ignore[operator]
    with pytest.raises(refusals.InvalidConfig, match=words):
        apply(None, act(OWNER, CreateVault(bad), T0), T0)


def test_a_weighted_threshold_counts_weights() -> None:
    weighted = replace(
        CONFIG,
        guardians=(replace(CONFIG.guardians[0], weight=3), *CONFIG.guardians[1:]),
        policies=(replace(CONFIG.policies[0], threshold=3, by_weight=True),),
    )
    state, _ = apply(None, act(OWNER, CreateVault(weighted), T0), T0)
    state, events = apply(state, act(ALICE, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0), T0)
    assert "request_approved" in kinds(events)  # Alice alone weighs 3
    state, _ = apply(state, act(OWNER, ProposeChange(weighted), T0 + 1), T0 + 1)  # cancels R1
    state, _ = advance(state, T0 + 3 * DAY)
    state, events = apply(
        state, act(BOB, OpenRequest(R2, NEW_OWNER.public_key, "family"), T0 + 3 * DAY), T0 + 3 * DAY
    )
    assert state.request(R2).status is Status.PENDING  # type: ignore[union-attr]
    state, events = apply(
        state, act(CAROL, Approve(R2, NEW_OWNER.public_key, "family"), T0 + 3 * DAY), T0 + 3 * DAY
    )
    assert "request_approved" not in kinds(events)  # Bob and Carol weigh 2 of the 3 needed


# --- requests ---------------------------------------------------------------------------------


def test_open_counts_as_the_openers_approval() -> None:
    state = opened()
    request = state.request(R1)
    assert request is not None and request.status is Status.PENDING
    assert request.approvals == (ALICE.public_key,) and request.deadline == T0 + 7 * DAY


def test_open_refusals() -> None:
    state = created()
    refused(refusals.UnknownPolicy, state, ALICE, OpenRequest(R1, NEW_OWNER.public_key, "friends"), T0)
    refused(refusals.NotAuthorized, state, LAWYER, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0)
    refused(refusals.NotAuthorized, state, OWNER, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0)
    refused(refusals.NotAuthorized, state, STRANGER, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0)
    refused(refusals.InvalidConfig, state, ALICE, OpenRequest(R1, OWNER.public_key, "family"), T0)
    refused(refusals.InvalidConfig, state, ALICE, OpenRequest(R1, BOB.public_key, "family"), T0)
    refused(refusals.DuplicateRequest, opened(), BOB, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0)


def test_open_requests_are_bounded() -> None:
    state = created()
    for n in range(MAX_OPEN_REQUESTS):
        state, _ = apply(
            state, act(ALICE, OpenRequest(request_id(100 + n), NEW_OWNER.public_key, "family"), T0), T0
        )
    refused(refusals.TooManyRequests, state, BOB, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0)


def test_threshold_met_starts_the_period() -> None:
    state, events = apply(
        opened(), act(BOB, Approve(R1, NEW_OWNER.public_key, "family"), T0 + HOUR), T0 + HOUR
    )
    assert kinds(events) == ["request_approval", "request_approved"]
    request = state.request(R1)
    assert request is not None and request.status is Status.APPROVED
    assert request.approved_at == T0 + HOUR and request.executable_at == T0 + HOUR + 3 * DAY
    assert request.deadline == T0 + HOUR + 10 * DAY


def test_approval_refusals() -> None:
    state = opened()
    refused(refusals.DuplicateApproval, state, ALICE, Approve(R1, NEW_OWNER.public_key, "family"), T0)
    refused(refusals.NotAuthorized, state, LAWYER, Approve(R1, NEW_OWNER.public_key, "family"), T0)
    refused(refusals.NotAuthorized, state, STRANGER, Approve(R1, NEW_OWNER.public_key, "family"), T0)
    refused(refusals.RequestMismatch, state, BOB, Approve(R1, STRANGER.public_key, "family"), T0)
    refused(refusals.RequestMismatch, state, BOB, Approve(R1, NEW_OWNER.public_key, "lawyer"), T0)
    refused(refusals.UnknownRequest, state, BOB, Approve(R2, NEW_OWNER.public_key, "family"), T0)


def test_a_late_approval_after_the_threshold_is_recorded_without_restarting_the_period() -> None:
    state, events = apply(
        approved(), act(CAROL, Approve(R1, NEW_OWNER.public_key, "family"), T0 + DAY), T0 + DAY
    )
    request = state.request(R1)
    assert kinds(events) == ["request_approval"] and request is not None
    assert request.executable_at == T0 + HOUR + 3 * DAY and len(request.approvals) == 3


def test_execution_waits_for_the_period_and_changes_the_owner() -> None:
    state = approved()
    almost = T0 + HOUR + 3 * DAY - 1
    refused(refusals.TooEarly, state, NEW_OWNER, Execute(R1), almost)
    refused(refusals.TooEarly, opened(), NEW_OWNER, Execute(R1), T0 + 5 * DAY)  # quorum never met
    at = almost + 1
    state, events = apply(state, act(NEW_OWNER, Execute(R1), at), at)
    assert kinds(events) == ["request_executable", "request_executed", "owner_changed"]
    assert events[0].at == at and state.owner == NEW_OWNER.public_key
    request = state.request(R1)
    assert request is not None and request.status is Status.EXECUTED and request.closed_at == at


def test_a_guardian_may_execute_but_a_stranger_may_not() -> None:
    at = T0 + HOUR + 3 * DAY
    refused(refusals.NotAuthorized, approved(), STRANGER, Execute(R1), at)
    refused(refusals.NotAuthorized, approved(), LAWYER, Execute(R1), at)
    state, _ = apply(approved(), act(CAROL, Execute(R1), at), at)
    assert state.owner == NEW_OWNER.public_key


def test_execution_supersedes_other_requests_and_the_pending_change() -> None:
    state = approved()
    state, _ = apply(state, act(LAWYER, OpenRequest(R2, STRANGER.public_key, "lawyer"), T0 + DAY), T0 + DAY)
    at = T0 + 4 * DAY
    state, _events = apply(state, act(NEW_OWNER, Execute(R1), at), at)
    other = state.request(R2)
    assert other is not None and other.status is Status.CANCELLED and other.reason == "superseded"
    refused(refusals.RequestClosed, state, NEW_OWNER, Execute(R1), at + 1)
    refused(refusals.RequestClosed, state, LAWYER, Execute(R2), at + 31 * DAY)


def test_the_new_owner_controls_the_vault_after_execution() -> None:
    at = T0 + 4 * DAY
    state, _ = apply(approved(), act(NEW_OWNER, Execute(R1), at), at)
    refused(refusals.NotAuthorized, state, OWNER, ProposeChange(CONFIG), at + 1)
    state, events = apply(state, act(NEW_OWNER, ProposeChange(CONFIG), at + 1), at + 1)
    assert "change_proposed" in kinds(events)


def test_a_zero_period_policy_is_executable_at_once() -> None:
    instant = replace(CONFIG, policies=(replace(CONFIG.policies[1], recovery_period=0),))
    state, _ = apply(None, act(OWNER, CreateVault(instant), T0), T0)
    state, events = apply(state, act(LAWYER, OpenRequest(R1, NEW_OWNER.public_key, "lawyer"), T0), T0)
    assert kinds(events)[-2:] == ["request_approved", "request_executable"]
    state, _ = apply(state, act(NEW_OWNER, Execute(R1), T0), T0)
    assert state.owner == NEW_OWNER.public_key


# --- expiry -----------------------------------------------------------------------------------


def test_a_pending_request_expires_after_the_window() -> None:
    state, events = advance(opened(), T0 + 7 * DAY - 1)
    assert events == []
    state, events = advance(state, T0 + 100 * DAY)
    assert kinds(events) == ["request_expired"] and events[0].at == T0 + 7 * DAY
    refused(refusals.RequestClosed, state, BOB, Approve(R1, NEW_OWNER.public_key, "family"), T0 + 100 * DAY)


def test_an_executable_request_expires_if_nobody_executes_it() -> None:
    executable_at = T0 + HOUR + 3 * DAY
    state, events = advance(approved(), T0 + 30 * DAY)
    assert kinds(events) == ["request_executable", "request_expired"]
    assert [e.at for e in events] == [executable_at, executable_at + 7 * DAY]
    refused(refusals.RequestClosed, state, NEW_OWNER, Execute(R1), T0 + 30 * DAY)


def test_advance_is_idempotent_and_time_never_runs_back() -> None:
    state, _ = advance(approved(), T0 + 4 * DAY)
    again, events = advance(state, T0 + 4 * DAY)
    assert events == [] and again == state
    back, events = advance(state, T0)
    assert events == [] and back.clock == state.clock


# --- vetoes -----------------------------------------------------------------------------------


def test_the_owner_vetoes_at_any_open_stage() -> None:
    for state, at in (
        (opened(), T0),
        (approved(), T0 + DAY),
        (advance(approved(), T0 + 4 * DAY)[0], T0 + 4 * DAY),
    ):
        after, events = apply(state, act(OWNER, Veto(R1), at), at)
        request = after.request(R1)
        assert request is not None and request.status is Status.CANCELLED and request.reason == "owner_veto"
        assert "request_cancelled" in kinds(events)
        refused(refusals.RequestClosed, after, NEW_OWNER, Execute(R1), T0 + 5 * DAY)


def test_a_locked_vault_still_takes_the_owners_veto() -> None:
    state, _ = apply(opened(), act(BOB, Lock(), T0 + 1), T0 + 1)
    state, _ = apply(state, act(OWNER, Veto(R1), T0 + 2), T0 + 2)
    assert state.request(R1).status is Status.CANCELLED  # type: ignore[union-attr]


def test_a_guardian_veto_needs_the_policy_to_allow_it() -> None:
    state, events = apply(opened(), act(CAROL, Veto(R1), T0 + 1), T0 + 1)  # family: 1 guardian veto
    assert kinds(events) == ["guardian_veto", "request_cancelled"]
    assert state.request(R1).reason == "guardian_veto"  # type: ignore[union-attr]
    lawyer_request = opened(policy="lawyer")
    refused(refusals.NotAuthorized, lawyer_request, ALICE, Veto(R1), T0 + 1)  # not in the lawyer policy
    refused(refusals.NotAuthorized, lawyer_request, STRANGER, Veto(R1), T0 + 1)


def test_a_policy_without_guardian_vetoes_refuses_its_own_guardians_veto() -> None:
    no_veto = replace(CONFIG, policies=(replace(CONFIG.policies[0], veto_guardians=0), CONFIG.policies[1]))
    state, _ = apply(None, act(OWNER, CreateVault(no_veto), T0), T0)
    state, _ = apply(state, act(ALICE, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0), T0)
    refused(refusals.NotAuthorized, state, BOB, Veto(R1), T0 + 1)


def test_a_guardian_who_approved_cannot_veto() -> None:
    refused(refusals.DuplicateApproval, opened(), ALICE, Veto(R1), T0 + 1)


def test_several_guardian_vetoes_when_the_policy_asks_for_them() -> None:
    two = replace(
        CONFIG, policies=(replace(CONFIG.policies[0], threshold=1, veto_guardians=2), CONFIG.policies[1])
    )
    state, _ = apply(None, act(OWNER, CreateVault(two), T0), T0)
    state, _ = apply(state, act(ALICE, OpenRequest(R1, NEW_OWNER.public_key, "family"), T0), T0)
    state, events = apply(state, act(BOB, Veto(R1), T0 + 1), T0 + 1)
    assert kinds(events) == ["guardian_veto"] and state.request(R1).status is Status.APPROVED  # type: ignore[union-attr]
    refused(refusals.DuplicateApproval, state, BOB, Veto(R1), T0 + 2)
    state, events = apply(state, act(CAROL, Veto(R1), T0 + 2), T0 + 2)
    assert state.request(R1).status is Status.CANCELLED  # type: ignore[union-attr]


# --- lock and configuration changes -----------------------------------------------------------


def test_a_guardian_lock_freezes_owner_changes_until_it_ends() -> None:
    state, events = apply(created(), act(BOB, Lock(), T0), T0)
    assert kinds(events) == ["vault_locked"] and state.locked_until == T0 + 5 * DAY
    refused(refusals.VaultLocked, state, OWNER, ProposeChange(CONFIG), T0 + 5 * DAY - 1)
    refused(refusals.NotAuthorized, state, STRANGER, Lock(), T0 + 1)
    refused(refusals.NotAuthorized, state, OWNER, Unlock(), T0 + 1)
    state, events = apply(state, act(OWNER, ProposeChange(CONFIG), T0 + 5 * DAY), T0 + 5 * DAY)
    assert "change_proposed" in kinds(events)


def test_unlock_lifts_the_lock() -> None:
    state, _ = apply(created(), act(BOB, Lock(), T0), T0)
    state, events = apply(state, act(ALICE, Unlock(), T0 + 1), T0 + 1)
    assert kinds(events) == ["vault_unlocked"] and not state.locked(T0 + 1)
    refused(refusals.NotLocked, state, ALICE, Unlock(), T0 + 2)
    apply(state, act(OWNER, ProposeChange(CONFIG), T0 + 2), T0 + 2)


def test_a_lock_cancels_a_pending_change() -> None:
    state, _ = apply(created(), act(OWNER, ProposeChange(CONFIG), T0), T0)
    state, events = apply(state, act(CAROL, Lock(), T0 + 1), T0 + 1)
    assert kinds(events) == ["vault_locked", "change_cancelled"] and state.pending_change is None


def test_a_change_waits_for_the_security_period_and_cancels_requests() -> None:
    smaller = replace(CONFIG, policies=CONFIG.policies[1:])
    state, events = apply(opened(), act(OWNER, ProposeChange(smaller), T0 + 1), T0 + 1)
    assert kinds(events) == ["change_proposed", "request_cancelled"]
    assert state.request(R1).reason == "config_change"  # type: ignore[union-attr]
    assert state.config == CONFIG
    # a request opened during the security period is cancelled when the change takes effect
    state, _ = apply(state, act(BOB, OpenRequest(R2, NEW_OWNER.public_key, "family"), T0 + DAY), T0 + DAY)
    state, events = advance(state, T0 + 3 * DAY)
    assert kinds(events) == ["change_applied", "request_cancelled"] and events[0].at == T0 + 1 + 2 * DAY
    assert state.config == smaller and state.pending_change is None


def test_change_refusals() -> None:
    state = created()
    refused(refusals.NotAuthorized, state, ALICE, ProposeChange(CONFIG), T0)
    refused(refusals.NoPendingChange, state, OWNER, CancelChange(), T0)
    with_owner_as_guardian = replace(CONFIG, guardians=(*CONFIG.guardians, Guardian(OWNER.public_key)))
    refused(refusals.InvalidConfig, state, OWNER, ProposeChange(with_owner_as_guardian), T0)
    state, _ = apply(state, act(OWNER, ProposeChange(CONFIG), T0), T0)
    state, events = apply(state, act(OWNER, CancelChange(), T0 + 1), T0 + 1)
    assert kinds(events) == ["change_cancelled"] and state.pending_change is None


def test_a_new_proposal_replaces_the_pending_one() -> None:
    state, _ = apply(created(), act(OWNER, ProposeChange(CONFIG), T0), T0)
    state, events = apply(state, act(OWNER, ProposeChange(CONFIG), T0 + DAY), T0 + DAY)
    assert kinds(events) == ["change_cancelled", "change_proposed"]
    assert state.pending_change is not None and state.pending_change.effective_at == T0 + 3 * DAY


# --- escrow -----------------------------------------------------------------------------------


def test_escrow_is_released_only_after_execution() -> None:
    digest = bytes(range(32))
    state, events = apply(approved(), act(ALICE, UploadShare(R1, digest), T0 + DAY), T0 + DAY)
    assert kinds(events) == ["share_escrowed"]
    with pytest.raises(refusals.EscrowRefused):
        escrow_release(state, R1)
    at = T0 + 4 * DAY
    state, events = apply(state, act(NEW_OWNER, Execute(R1), at), at)
    assert "escrow_releasable" in kinds(events)
    (share,) = escrow_release(state, R1)
    assert share.guardian == ALICE.public_key and share.ciphertext == digest
    with pytest.raises(refusals.UnknownRequest):
        escrow_release(state, R2)


def test_escrow_is_destroyed_on_veto_and_on_expiry() -> None:
    digest = bytes(32)
    state, _ = apply(approved(), act(BOB, UploadShare(R1, digest), T0 + DAY), T0 + DAY)
    vetoed, events = apply(state, act(OWNER, Veto(R1), T0 + DAY), T0 + DAY)
    destroyed = [e for e in events if e.kind == "escrow_destroyed"]
    assert destroyed and dict(destroyed[0].detail) == {BOB.public_key.text: "0x" + digest.hex()}
    assert vetoed.request(R1).escrow == ()  # type: ignore[union-attr]
    expired, events = advance(state, T0 + 60 * DAY)
    assert "escrow_destroyed" in kinds(events) and expired.request(R1).escrow == ()  # type: ignore[union-attr]
    with pytest.raises(refusals.EscrowRefused):
        escrow_release(expired, R1)


def test_escrow_upload_refusals() -> None:
    state = approved()
    refused(refusals.NotAuthorized, state, CAROL, UploadShare(R1, bytes(32)), T0 + DAY)  # did not approve
    refused(refusals.NotAuthorized, state, OWNER, UploadShare(R1, bytes(32)), T0 + DAY)
    refused(refusals.UnknownRequest, state, ALICE, UploadShare(R2, bytes(32)), T0 + DAY)
    state, _ = apply(state, act(ALICE, UploadShare(R1, bytes(32)), T0 + DAY), T0 + DAY)
    refused(refusals.EscrowRefused, state, ALICE, UploadShare(R1, bytes(32)), T0 + DAY)
    vetoed, _ = apply(state, act(OWNER, Veto(R1), T0 + DAY), T0 + DAY)
    refused(refusals.EscrowRefused, vetoed, BOB, UploadShare(R1, bytes(32)), T0 + DAY)


# --- messages against the state ---------------------------------------------------------------


def test_a_replayed_message_is_refused() -> None:
    state = opened()
    approval = act(BOB, Approve(R1, NEW_OWNER.public_key, "family"), T0 + 1)
    after, _ = apply(state, approval, T0 + 1)
    with pytest.raises(refusals.ReplayedNonce):
        apply(after, approval, T0 + 2)
    lock = act(BOB, Lock(), T0 + 2, nonce=approval.message.nonce)  # same signer, same nonce, other action
    with pytest.raises(refusals.ReplayedNonce):
        apply(after, lock, T0 + 2)
    other_signer = act(ALICE, Lock(), T0 + 2, nonce=approval.message.nonce)
    apply(after, other_signer, T0 + 2)


def test_used_nonces_are_forgotten_once_their_message_expired() -> None:
    state, _ = apply(opened(), act(BOB, Lock(), T0 + 1, lifetime=HOUR), T0 + 1)
    assert any(n.signer == BOB.public_key for n in state.nonces)
    later, _ = advance(state, T0 + 1 + HOUR)
    assert not any(n.signer == BOB.public_key for n in later.nonces)


def test_apply_checks_the_messages_lifetime_and_vault_again() -> None:
    state = opened()
    approval = act(BOB, Approve(R1, NEW_OWNER.public_key, "family"), T0 + 1, lifetime=HOUR)
    with pytest.raises(refusals.Expired):
        apply(state, approval, T0 + 1 + HOUR)
    early = act(BOB, Approve(R1, NEW_OWNER.public_key, "family"), T0 + HOUR)  # valid from T0 + HOUR - 60
    with pytest.raises(refusals.NotYetValid):
        apply(state, early, T0 + 1)
    apply(state, early, T0 + HOUR - 60)
    other_vault = replace(state, vault=bytes(32))
    with pytest.raises(refusals.WrongVault):
        apply(other_vault, approval, T0 + 1)
    with pytest.raises(refusals.WrongService):
        apply(replace(state, service=replace(SERVICE, chain_id=1)), approval, T0 + 1)


# --- JSON -------------------------------------------------------------------------------------


def test_state_json_round_trips_through_a_whole_history() -> None:
    state = approved()
    state, _ = apply(state, act(ALICE, UploadShare(R1, bytes(range(32))), T0 + DAY), T0 + DAY)
    state, _ = apply(state, act(LAWYER, OpenRequest(R2, STRANGER.public_key, "lawyer"), T0 + DAY), T0 + DAY)
    state, _ = apply(state, act(OWNER, Veto(R2), T0 + DAY), T0 + DAY)
    state, _ = apply(state, act(OWNER, ProposeChange(CONFIG), T0 + DAY), T0 + DAY)
    state, _ = apply(state, act(CAROL, Lock(), T0 + DAY + 1), T0 + DAY + 1)
    data = vault_state_to_json(state)
    assert vault_state_from_json(data) == state and vault_state_to_json(vault_state_from_json(data)) == data


def test_state_json_of_another_version_or_damaged_is_refused() -> None:
    data = vault_state_to_json(created())
    with pytest.raises(refusals.UnknownVersion):
        vault_state_from_json(data.replace(b'"version":1', b'"version":2'))
    with pytest.raises(refusals.MalformedMessage):
        vault_state_from_json(data.replace(b'"owner":"ed25519:', b'"owner":"ed25519:zz'))
    with pytest.raises(refusals.MalformedMessage):
        vault_state_from_json(data[:-5])


def test_a_config_with_all_kinds_of_guardian_json_round_trips() -> None:
    config = VaultConfig(
        (Guardian(STRANGER.public_key, 5, "Ünïcode ☂"),),
        (Policy("only", (STRANGER.public_key,), 5, by_weight=True, recovery_period=0, expiry_window=1),),
    )
    state, _ = apply(None, act(OWNER, CreateVault(config), T0), T0)
    assert vault_state_from_json(vault_state_to_json(state)).config == config
