"""The recovery policy: a pure state machine over a vault's state, with time passed in.

The whole state of one vault is a :class:`VaultState` (frozen dataclasses, no I/O, no clock). Two
functions move it:

* :func:`apply` ``(state, verified, now) -> (state, events)`` — one verified signed action
  (:func:`lifeboat.recovery.messages.verify` makes those). ``state`` is None only for
  ``CreateVault``. A refused action raises a :class:`~lifeboat.recovery.refusals.Refusal` naming
  the reason, and the caller keeps the state it had: nothing is half-applied.
* :func:`advance` ``(state, now) -> (state, events)`` — the transitions time alone makes: an
  approved request becomes executable when its recovery period ends, a request expires, a proposed
  configuration change takes effect. :func:`apply` advances to ``now`` first, so a caller that
  only applies actions never sees stale state; a service also calls :func:`advance` on a timer to
  announce executable and expired requests.

A request's life: pending → approved (threshold met; the policy's recovery period starts) →
executable (period over) → executed; or cancelled (an owner veto, enough guardian vetoes, the
owner key changed by another request, a configuration change) or expired (not approved within
the policy's expiry window of opening, or not executed within the window after becoming
executable). Executed, cancelled and expired are final: each request has exactly one outcome.

Replay protection keeps, per signer, each used nonce with its message's expiry; a nonce is
forgotten once its message has expired (a message lives at most 30 days, see
:data:`lifeboat.recovery.messages.MAX_LIFETIME`), so the record stays small and an expired
message is refused for its expiry anyway. Nonces need not be increasing: guardians sign offline
and their messages may arrive in any order.

Time never runs backwards inside a state: ``now`` below the state's clock (a replica whose clock
lags) is taken as the state's clock.

The service's whole loop, for one action:

>>> from lifeboat.recovery import messages
>>> from lifeboat.recovery.config import Guardian, Policy, VaultConfig
>>> from lifeboat.recovery.keys import KeyKind, PrivateKey
>>> service = messages.Service(1, bytes(20))
>>> owner, friend = (PrivateKey.from_seed(KeyKind.ED25519, bytes([i]) * 32) for i in (1, 2))
>>> config = VaultConfig((Guardian(friend.public_key),), (Policy("solo", (friend.public_key,), 1),))
>>> create = messages.Message(bytes(32), messages.CreateVault(config), nonce=1, not_before=0, expiry=60)
>>> signed = messages.sign(service, create, owner)
>>> state, events = apply(None, messages.verify(signed, service, now=10), now=10)
>>> state.owner == owner.public_key, [e.kind for e in events]
(True, ['vault_created'])
>>> vault_state_from_json(vault_state_to_json(state)) == state
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Final

from lifeboat.recovery.config import Policy, VaultConfig, check_config, config_from_json, config_to_json
from lifeboat.recovery.keys import PublicKey
from lifeboat.recovery.messages import (
    Approve,
    CancelChange,
    CreateVault,
    Execute,
    Lock,
    OpenRequest,
    ProposeChange,
    Service,
    Unlock,
    UploadShare,
    VerifiedAction,
    Veto,
)
from lifeboat.recovery.refusals import (
    DuplicateApproval,
    DuplicateRequest,
    EscrowRefused,
    Expired,
    InvalidConfig,
    MalformedKey,
    MalformedMessage,
    NoPendingChange,
    NotAuthorized,
    NotLocked,
    NotYetValid,
    ReplayedNonce,
    RequestClosed,
    RequestMismatch,
    TooEarly,
    TooManyRequests,
    UnknownPolicy,
    UnknownRequest,
    UnknownVault,
    UnknownVersion,
    VaultExists,
    VaultLocked,
    WrongService,
    WrongVault,
)

STATE_VERSION: Final = 1
#: Open (pending, approved or executable) requests a vault holds at once; more are refused, so a
#: rogue guardian cannot grow the state without bound.
MAX_OPEN_REQUESTS: Final = 16


class Status(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTABLE = "executable"
    EXECUTED = "executed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (Status.PENDING, Status.APPROVED, Status.EXECUTABLE)


@dataclass(frozen=True)
class EscrowedShare:
    """Guardian ``guardian`` uploaded a ciphertext whose digest is ``ciphertext`` (the service keeps it)."""

    guardian: PublicKey
    ciphertext: bytes


@dataclass(frozen=True)
class Request:
    """A recovery request and everything that happened to it.

    ``deadline`` is when it expires if nothing moves it on: ``opened_at + expiry_window`` while
    pending, ``executable_at + expiry_window`` once approved. ``reason`` says why a request was
    cancelled (``owner_veto``, ``guardian_veto``, ``superseded``, ``config_change``).
    """

    id: bytes
    policy: str
    new_owner: PublicKey
    opened_by: PublicKey
    opened_at: int
    status: Status
    deadline: int
    approvals: tuple[PublicKey, ...] = ()
    vetoes: tuple[PublicKey, ...] = ()
    approved_at: int | None = None
    executable_at: int | None = None
    closed_at: int | None = None
    reason: str | None = None
    escrow: tuple[EscrowedShare, ...] = ()


@dataclass(frozen=True)
class PendingChange:
    """A configuration the owner proposed; it replaces the current one at ``effective_at``."""

    config: VaultConfig
    proposed_at: int
    effective_at: int


@dataclass(frozen=True)
class UsedNonce:
    signer: PublicKey
    nonce: int
    expiry: int


@dataclass(frozen=True)
class VaultState:
    """One vault: owner, configuration, lock, pending change, requests, used nonces, clock."""

    vault: bytes
    service: Service
    owner: PublicKey
    config: VaultConfig
    created_at: int
    clock: int
    locked_until: int = 0
    pending_change: PendingChange | None = None
    requests: tuple[Request, ...] = ()
    nonces: tuple[UsedNonce, ...] = ()

    def request(self, request_id: bytes) -> Request | None:
        return next((r for r in self.requests if r.id == request_id), None)

    def locked(self, now: int) -> bool:
        return now < self.locked_until


@dataclass(frozen=True)
class Event:
    """Something that happened, for the audit log and webhooks.

    ``kind`` is one of: vault_created, request_opened, request_approval, request_approved,
    request_executable, request_executed, owner_changed, request_cancelled, request_expired,
    owner_veto, guardian_veto, share_escrowed, escrow_releasable, escrow_destroyed, vault_locked, vault_unlocked,
    change_proposed, change_cancelled, change_applied. ``at`` is when it happened (a time-driven
    transition carries its own time, not the time it was noticed).
    """

    kind: str
    at: int
    request: bytes | None = None
    actor: PublicKey | None = None
    detail: tuple[tuple[str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at,
            "request": None if self.request is None else "0x" + self.request.hex(),
            "actor": None if self.actor is None else self.actor.text,
            "detail": dict(self.detail),
        }


Events = list[Event]


# --- time -------------------------------------------------------------------------------------


def _close(request: Request, status: Status, at: int, reason: str | None, events: Events) -> Request:
    """Give an open request its one outcome; destroy its escrow unless it was executed."""
    assert request.status.is_open
    detail = () if reason is None else (("reason", reason),)
    events.append(Event(f"request_{status.value}", at, request.id, detail=detail))
    if status is Status.EXECUTED:
        if request.escrow:
            events.append(Event("escrow_releasable", at, request.id, detail=_escrow_detail(request)))
        return replace(request, status=status, closed_at=at)
    if request.escrow:
        events.append(Event("escrow_destroyed", at, request.id, detail=_escrow_detail(request)))
    return replace(request, status=status, closed_at=at, reason=reason, escrow=())


def _escrow_detail(request: Request) -> tuple[tuple[str, str], ...]:
    return tuple((share.guardian.text, "0x" + share.ciphertext.hex()) for share in request.escrow)


def _cancel_open(
    state: VaultState, at: int, reason: str, events: Events, keep: bytes | None = None
) -> VaultState:
    requests = tuple(
        _close(r, Status.CANCELLED, at, reason, events) if r.status.is_open and r.id != keep else r
        for r in state.requests
    )
    return replace(state, requests=requests)


def _next_transition(state: VaultState, now: int) -> tuple[int, int, int] | None:
    """(time, order, index) of the earliest due time-driven transition, or None.

    At one instant: a request becomes executable before any request expires, and requests move
    before a configuration change takes effect (index -1 stands for the change).
    """
    due: list[tuple[int, int, int]] = []
    for index, request in enumerate(state.requests):
        if request.status is Status.APPROVED and request.executable_at is not None:
            due.append((request.executable_at, 0, index))
        elif request.status in (Status.PENDING, Status.EXECUTABLE):
            due.append((request.deadline, 1, index))
    if state.pending_change is not None:
        due.append((state.pending_change.effective_at, 2, -1))
    ready = [d for d in due if d[0] <= now]
    return min(ready) if ready else None


def next_due(state: VaultState) -> int | None:
    """When :func:`advance` next has something to do (a request moves, a change takes effect),
    or None when only an action can change the state; a service sweeps vaults at this time."""
    transition = _next_transition(state, 2**63)
    return None if transition is None else max(transition[0], state.clock)


def advance(state: VaultState, now: int) -> tuple[VaultState, Events]:
    """Make every time-driven transition due by ``now``, in time order; forget expired nonces."""
    now = max(now, state.clock)
    events: Events = []
    while (transition := _next_transition(state, now)) is not None:
        at, order, index = transition
        if index < 0:
            change = state.pending_change
            assert change is not None
            events.append(Event("change_applied", at))
            state = replace(state, config=change.config, pending_change=None)
            state = _cancel_open(state, at, "config_change", events)
            continue
        request = state.requests[index]
        if order == 0:
            events.append(Event("request_executable", at, request.id))
            updated = replace(request, status=Status.EXECUTABLE)
        else:
            updated = _close(request, Status.EXPIRED, at, None, events)
        state = replace(state, requests=(*state.requests[:index], updated, *state.requests[index + 1 :]))
    nonces = tuple(n for n in state.nonces if n.expiry > now)
    return replace(state, clock=now, nonces=nonces), events


# --- actions ----------------------------------------------------------------------------------


def apply(state: VaultState | None, verified: VerifiedAction, now: int) -> tuple[VaultState, Events]:
    """Apply one verified action at time ``now``: the new state and what happened, or a refusal.

    The checks, in order: the vault exists (or, for CreateVault, does not), the service and vault
    match the state's, the message is still valid at ``now``, the signer's nonce is fresh; then
    the action's own rules (who may act, in which request state, whether the vault is locked).
    """
    message = verified.message
    action = message.action
    if isinstance(action, CreateVault):
        if state is not None:
            raise VaultExists(f"vault 0x{message.vault.hex()} already exists")
        _check_lifetime(verified, now)
        check_config(action.config, verified.signer)
        created = VaultState(
            vault=message.vault,
            service=verified.service,
            owner=verified.signer,
            config=action.config,
            created_at=now,
            clock=now,
            nonces=(UsedNonce(verified.signer, message.nonce, message.expiry),),
        )
        return created, [
            Event("vault_created", now, actor=verified.signer, detail=(("owner", verified.signer.text),))
        ]
    if state is None:
        raise UnknownVault(f"vault 0x{message.vault.hex()} does not exist")
    if verified.service != state.service:
        raise WrongService("the message was verified for another service than the vault's")
    if message.vault != state.vault:
        raise WrongVault(f"the message is for vault 0x{message.vault.hex()}, not 0x{state.vault.hex()}")
    now = max(now, state.clock)
    _check_lifetime(verified, now)
    state, events = advance(state, now)
    if any(n.signer == verified.signer and n.nonce == message.nonce for n in state.nonces):
        raise ReplayedNonce(f"{verified.signer.text} already used nonce {message.nonce} on this vault")
    state = _ACTIONS[type(action)](state, verified, now, events)
    state = replace(state, nonces=(*state.nonces, UsedNonce(verified.signer, message.nonce, message.expiry)))
    state, later = advance(state, now)  # a zero recovery period or security period takes effect at once
    return state, events + later


def _check_lifetime(verified: VerifiedAction, now: int) -> None:
    message = verified.message
    if now < message.not_before:
        raise NotYetValid(f"the message is valid from {message.not_before}; it is now {now}")
    if now >= message.expiry:
        raise Expired(f"the message expired at {message.expiry}; it is now {now}")


def _open_request(state: VaultState, verified: VerifiedAction, request_id: bytes) -> Request:
    request = state.request(request_id)
    if request is None:
        raise UnknownRequest(f"vault 0x{state.vault.hex()} has no request 0x{request_id.hex()}")
    if not request.status.is_open:
        raise RequestClosed(f"request 0x{request_id.hex()} is already {request.status.value}")
    return request


def _policy(state: VaultState, name: str) -> Policy:
    policy = state.config.policy(name)
    if policy is None:
        raise UnknownPolicy(f"vault 0x{state.vault.hex()} has no policy {name[:64]!r}")
    return policy


def _replace_request(state: VaultState, request: Request) -> VaultState:
    return replace(state, requests=tuple(request if r.id == request.id else r for r in state.requests))


def _approve(
    state: VaultState, request: Request, guardian: PublicKey, now: int, events: Events
) -> VaultState:
    policy = _policy(state, request.policy)
    request = replace(request, approvals=(*request.approvals, guardian))
    events.append(Event("request_approval", now, request.id, guardian))
    if (
        request.status is Status.PENDING
        and state.config.weight(policy, request.approvals) >= policy.threshold
    ):
        executable_at = now + policy.recovery_period
        request = replace(
            request,
            status=Status.APPROVED,
            approved_at=now,
            executable_at=executable_at,
            deadline=executable_at + policy.expiry_window,
        )
        events.append(
            Event("request_approved", now, request.id, detail=(("executable_at", str(executable_at)),))
        )
    return _replace_request(state, request)


def _do_open(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    action = verified.message.action
    assert isinstance(action, OpenRequest)
    policy = _policy(state, action.policy)
    if verified.signer not in policy.guardians:
        raise NotAuthorized(f"{verified.signer.text} is not a guardian of policy {policy.name!r}")
    if state.request(action.request) is not None:
        raise DuplicateRequest(f"request id 0x{action.request.hex()} is already used on this vault")
    if action.new_owner == state.owner or state.config.guardian(action.new_owner) is not None:
        raise InvalidConfig("the new owner must be neither the current owner nor a guardian")
    if sum(r.status.is_open for r in state.requests) >= MAX_OPEN_REQUESTS:
        raise TooManyRequests(f"a vault holds at most {MAX_OPEN_REQUESTS} open requests")
    request = Request(
        id=action.request,
        policy=policy.name,
        new_owner=action.new_owner,
        opened_by=verified.signer,
        opened_at=now,
        status=Status.PENDING,
        deadline=now + policy.expiry_window,
    )
    events.append(
        Event(
            "request_opened",
            now,
            request.id,
            verified.signer,
            (("new_owner", action.new_owner.text), ("policy", policy.name)),
        )
    )
    state = replace(state, requests=(*state.requests, request))
    return _approve(state, request, verified.signer, now, events)


def _do_approve(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    action = verified.message.action
    assert isinstance(action, Approve)
    request = _open_request(state, verified, action.request)
    if action.new_owner != request.new_owner or action.policy != request.policy:
        raise RequestMismatch("the approval names another new owner or policy than the request")
    policy = _policy(state, request.policy)
    if verified.signer not in policy.guardians:
        raise NotAuthorized(f"{verified.signer.text} is not a guardian of policy {policy.name!r}")
    if verified.signer in request.approvals or verified.signer in request.vetoes:
        raise DuplicateApproval(f"{verified.signer.text} already approved or vetoed this request")
    return _approve(state, request, verified.signer, now, events)


def _do_veto(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    action = verified.message.action
    assert isinstance(action, Veto)
    request = _open_request(state, verified, action.request)
    if verified.signer == state.owner:
        events.append(Event("owner_veto", now, request.id, verified.signer))
        return _replace_request(state, _close(request, Status.CANCELLED, now, "owner_veto", events))
    policy = _policy(state, request.policy)
    if policy.veto_guardians == 0 or verified.signer not in policy.guardians:
        raise NotAuthorized(f"{verified.signer.text} may not veto a request under policy {policy.name!r}")
    if verified.signer in request.approvals or verified.signer in request.vetoes:
        raise DuplicateApproval(f"{verified.signer.text} already approved or vetoed this request")
    request = replace(request, vetoes=(*request.vetoes, verified.signer))
    events.append(Event("guardian_veto", now, request.id, verified.signer))
    if len(request.vetoes) >= policy.veto_guardians:
        request = _close(request, Status.CANCELLED, now, "guardian_veto", events)
    return _replace_request(state, request)


def _do_execute(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    action = verified.message.action
    assert isinstance(action, Execute)
    request = _open_request(state, verified, action.request)
    policy = _policy(state, request.policy)
    if verified.signer != request.new_owner and verified.signer not in policy.guardians:
        raise NotAuthorized("only the new owner or a guardian of the request's policy may execute it")
    if request.status is not Status.EXECUTABLE:
        when = "once its threshold is met" if request.executable_at is None else f"at {request.executable_at}"
        raise TooEarly(
            f"request 0x{request.id.hex()} is {request.status.value}; it becomes executable {when}"
        )
    old_owner = state.owner
    state = _replace_request(state, _close(request, Status.EXECUTED, now, None, events))
    events.append(
        Event(
            "owner_changed",
            now,
            request.id,
            detail=(("from", old_owner.text), ("to", request.new_owner.text)),
        )
    )
    state = _cancel_open(replace(state, owner=request.new_owner, locked_until=0), now, "superseded", events)
    if state.pending_change is not None:
        events.append(Event("change_cancelled", now, detail=(("reason", "owner_changed"),)))
        state = replace(state, pending_change=None)
    return state


def _do_upload(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    action = verified.message.action
    assert isinstance(action, UploadShare)
    request = state.request(action.request)
    if request is None:
        raise UnknownRequest(f"vault 0x{state.vault.hex()} has no request 0x{action.request.hex()}")
    if not request.status.is_open:
        raise EscrowRefused(
            f"request 0x{request.id.hex()} is {request.status.value}; it takes no more shares"
        )
    if verified.signer not in request.approvals:
        raise NotAuthorized("only a guardian who approved the request may escrow a share for it")
    if any(share.guardian == verified.signer for share in request.escrow):
        raise EscrowRefused(f"{verified.signer.text} already escrowed a share for this request")
    share = EscrowedShare(verified.signer, action.ciphertext)
    events.append(
        Event(
            "share_escrowed",
            now,
            request.id,
            verified.signer,
            (("ciphertext", "0x" + share.ciphertext.hex()),),
        )
    )
    return _replace_request(state, replace(request, escrow=(*request.escrow, share)))


def _guardian(state: VaultState, verified: VerifiedAction) -> None:
    if state.config.guardian(verified.signer) is None:
        raise NotAuthorized(f"{verified.signer.text} is not a guardian of this vault")


def _owner(state: VaultState, verified: VerifiedAction, now: int) -> None:
    if verified.signer != state.owner:
        raise NotAuthorized(f"{verified.signer.text} is not the owner of this vault")
    if state.locked(now):
        raise VaultLocked(f"a guardian locked the vault's configuration until {state.locked_until}")


def _do_lock(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    _guardian(state, verified)
    until = max(state.locked_until, now + state.config.lock_period)
    events.append(Event("vault_locked", now, actor=verified.signer, detail=(("until", str(until)),)))
    if state.pending_change is not None:
        events.append(Event("change_cancelled", now, detail=(("reason", "lock"),)))
    return replace(state, locked_until=until, pending_change=None)


def _do_unlock(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    _guardian(state, verified)
    if not state.locked(now):
        raise NotLocked("the vault is not locked")
    events.append(Event("vault_unlocked", now, actor=verified.signer))
    return replace(state, locked_until=now)


def _do_propose(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    action = verified.message.action
    assert isinstance(action, ProposeChange)
    _owner(state, verified, now)
    check_config(action.config, state.owner)
    if state.pending_change is not None:
        events.append(Event("change_cancelled", now, detail=(("reason", "replaced"),)))
    effective_at = now + state.config.security_period
    events.append(
        Event("change_proposed", now, actor=verified.signer, detail=(("effective_at", str(effective_at)),))
    )
    state = replace(state, pending_change=PendingChange(action.config, now, effective_at))
    return _cancel_open(state, now, "config_change", events)


def _do_cancel_change(state: VaultState, verified: VerifiedAction, now: int, events: Events) -> VaultState:
    _owner(state, verified, now)
    if state.pending_change is None:
        raise NoPendingChange("no configuration change is pending")
    events.append(Event("change_cancelled", now, actor=verified.signer, detail=(("reason", "owner"),)))
    return replace(state, pending_change=None)


_ACTIONS: Final[dict[type, Callable[[VaultState, VerifiedAction, int, Events], VaultState]]] = {
    OpenRequest: _do_open,
    Approve: _do_approve,
    Veto: _do_veto,
    Execute: _do_execute,
    UploadShare: _do_upload,
    Lock: _do_lock,
    Unlock: _do_unlock,
    ProposeChange: _do_propose,
    CancelChange: _do_cancel_change,
}


def escrow_release(state: VaultState, request_id: bytes) -> tuple[EscrowedShare, ...]:
    """The escrowed shares the service may hand out for ``request_id``: only once it is executed."""
    request = state.request(request_id)
    if request is None:
        raise UnknownRequest(f"vault 0x{state.vault.hex()} has no request 0x{request_id.hex()}")
    if request.status is not Status.EXECUTED:
        raise EscrowRefused(
            f"request 0x{request_id.hex()} is {request.status.value}; shares are released only after execution"
        )
    return request.escrow


# --- JSON -------------------------------------------------------------------------------------


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _request_to_json(r: Request) -> dict[str, Any]:
    return {
        "id": _hex(r.id),
        "policy": r.policy,
        "newOwner": r.new_owner.text,
        "openedBy": r.opened_by.text,
        "openedAt": r.opened_at,
        "status": r.status.value,
        "deadline": r.deadline,
        "approvals": [k.text for k in r.approvals],
        "vetoes": [k.text for k in r.vetoes],
        "approvedAt": r.approved_at,
        "executableAt": r.executable_at,
        "closedAt": r.closed_at,
        "reason": r.reason,
        "escrow": [{"guardian": s.guardian.text, "ciphertext": _hex(s.ciphertext)} for s in r.escrow],
    }


def vault_state_to_json(state: VaultState) -> bytes:
    """The whole vault state as canonical JSON (sorted keys, no spaces, UTF-8), version 1."""
    change = state.pending_change
    body = {
        "version": STATE_VERSION,
        "vault": _hex(state.vault),
        "service": state.service.to_json(),
        "owner": state.owner.text,
        "config": config_to_json(state.config),
        "createdAt": state.created_at,
        "clock": state.clock,
        "lockedUntil": state.locked_until,
        "pendingChange": None
        if change is None
        else {
            "config": config_to_json(change.config),
            "proposedAt": change.proposed_at,
            "effectiveAt": change.effective_at,
        },
        "requests": [_request_to_json(r) for r in state.requests],
        "nonces": [
            {"signer": n.signer.text, "nonce": str(n.nonce), "expiry": n.expiry} for n in state.nonces
        ],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def vault_state_from_json(data: bytes) -> VaultState:
    """Read :func:`vault_state_to_json` output; :class:`UnknownVersion` for another version,
    :class:`MalformedMessage` for a damaged document."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise MalformedMessage("a vault state is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedMessage("a vault state is a JSON object")
    if body.get("version") != STATE_VERSION:
        raise UnknownVersion(
            f"unknown vault state version {str(body.get('version'))[:20]}; this Lifeboat reads 1"
        )
    try:
        change = body["pendingChange"]
        return VaultState(
            vault=bytes.fromhex(body["vault"][2:]),
            service=Service.from_json(body["service"]),
            owner=PublicKey.parse(body["owner"]),
            config=config_from_json(body["config"]),
            created_at=int(body["createdAt"]),
            clock=int(body["clock"]),
            locked_until=int(body["lockedUntil"]),
            pending_change=None
            if change is None
            else PendingChange(
                config_from_json(change["config"]), int(change["proposedAt"]), int(change["effectiveAt"])
            ),
            requests=tuple(_request_from_json(r) for r in body["requests"]),
            nonces=tuple(
                UsedNonce(PublicKey.parse(n["signer"]), int(n["nonce"]), int(n["expiry"]))
                for n in body["nonces"]
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError, MalformedKey) as error:
        raise MalformedMessage(f"a vault state is damaged: {type(error).__name__}") from None


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _request_from_json(r: dict[str, Any]) -> Request:
    return Request(
        id=bytes.fromhex(r["id"][2:]),
        policy=str(r["policy"]),
        new_owner=PublicKey.parse(r["newOwner"]),
        opened_by=PublicKey.parse(r["openedBy"]),
        opened_at=int(r["openedAt"]),
        status=Status(r["status"]),
        deadline=int(r["deadline"]),
        approvals=tuple(PublicKey.parse(k) for k in r["approvals"]),
        vetoes=tuple(PublicKey.parse(k) for k in r["vetoes"]),
        approved_at=_optional_int(r["approvedAt"]),
        executable_at=_optional_int(r["executableAt"]),
        closed_at=_optional_int(r["closedAt"]),
        reason=r["reason"],
        escrow=tuple(
            EscrowedShare(PublicKey.parse(s["guardian"]), bytes.fromhex(s["ciphertext"][2:]))
            for s in r["escrow"]
        ),
    )
