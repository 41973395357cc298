"""The glue between the HTTP shell and the policy: one signed action in, one committed transition out.

For each action the service verifies the signature *outside* the database transaction (it is the
expensive part, and it does not depend on the vault's state), then hands
:meth:`~lifeboat.recovery.db.Database.transact` a pure step: decode the state, ``policy.apply``,
encode the new state, and say what to record with it (audit entries, the nonce consumed, the
escrowed ciphertext, the escrow to destroy, when the vault is next due). The step may run again
when replicas race; only the run whose compare-and-swap wins is committed, so the events returned
are that run's.

The sweep (:func:`sweep_due`) runs ``policy.advance`` through the same ``transact`` for vaults
whose ``due_at`` has passed, so "request executable", "request expired" and "change applied" are
logged (and their webhooks sent) when they happen, not when someone next looks, also after a
restart: ``due_at`` lives in the database.
"""

from __future__ import annotations

import binascii
import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lifeboat.errors import RecoveryError
from lifeboat.recovery import escrow, messages, policy
from lifeboat.recovery.db import Committed, Database, EscrowItem, Event, Transition, VaultNotFound
from lifeboat.recovery.keys import PublicKey
from lifeboat.recovery.messages import Service, SignedMessage, UploadShare, VerifiedAction
from lifeboat.recovery.refusals import (
    EscrowDestroyed,
    EscrowNotReleased,
    EscrowRefused,
    MalformedMessage,
    UnknownRequest,
)
from lifeboat.recovery.worker import PeriodicWorker

__all__ = [
    "SERVICE_ACTOR",
    "ActionResult",
    "Sweeper",
    "apply_signed",
    "decode_ciphertext",
    "escrow_bundle",
    "parse_vault_id",
    "sweep_due",
    "vault_key",
    "view_vault",
]

#: The audit actor of transitions time makes (no signer).
SERVICE_ACTOR: Final = "service"
log = logging.getLogger("lifeboat.recovery.service")


@dataclass(frozen=True)
class ActionResult:
    vault: str
    version: int
    events: tuple[policy.Event, ...]
    #: Webhook deliveries the action queued (0: no need to wake the outbox worker).
    deliveries: int = 0


def vault_key(vault: bytes) -> str:
    """The database key of a vault: its 32-byte id in lowercase hex, no prefix."""
    return vault.hex()


def parse_vault_id(text: str, what: str = "vault id") -> bytes:
    """A 32-byte id written as 64 hex digits, with or without 0x."""
    body = text[2:] if text.startswith("0x") else text
    if len(body) != 64:
        raise MalformedMessage(f"a {what} is 64 hex digits (optionally after 0x)")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise MalformedMessage(f"a {what} is not hex") from None


def decode_ciphertext(text: str) -> bytes:
    """Strict base64 of an escrowed ciphertext, at most :data:`escrow.MAX_ESCROW_BYTES`."""
    if len(text) > 4 * (escrow.MAX_ESCROW_BYTES // 3 + 1):
        raise MalformedMessage(f"an escrowed ciphertext is at most {escrow.MAX_ESCROW_BYTES} bytes")
    try:
        data = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedMessage("the ciphertext is not base64") from None
    if not data or len(data) > escrow.MAX_ESCROW_BYTES:
        raise MalformedMessage(f"an escrowed ciphertext is 1 to {escrow.MAX_ESCROW_BYTES} bytes")
    return data


def _audit_event(event: policy.Event, signer: str, message: bytes) -> Event:
    actor = event.actor.text if event.actor is not None else signer
    return Event(actor, event.kind, message, event.to_json())


def _record(
    events: Sequence[policy.Event], *, signer: str = SERVICE_ACTOR, message: bytes = b""
) -> list[Event]:
    return [_audit_event(e, signer, message) for e in events]


def _destroyed(events: Sequence[policy.Event]) -> list[str]:
    return [e.request.hex() for e in events if e.kind == "escrow_destroyed" and e.request is not None]


def _decode(state: bytes | None) -> policy.VaultState | None:
    return None if state is None else policy.vault_state_from_json(state)


def apply_signed(
    database: Database,
    service: Service,
    signed: SignedMessage,
    ciphertext: bytes | None = None,
    *,
    admit: Callable[[PublicKey], None] | None = None,
) -> ActionResult:
    """Verify ``signed`` for this service and apply it to its vault in one transaction.

    ``admit`` is called with the signer once the signature holds, before the database is touched
    (the per-key rate limit: it raises to refuse). Only a verified key is charged, so nobody can
    use up a guardian's allowance by sending junk in their name.

    Refusals (:class:`~lifeboat.recovery.refusals.Refusal`, or the database's
    :class:`~lifeboat.recovery.db.ReplayError`) leave the vault as it was.
    """
    action = signed.message.action
    if isinstance(action, UploadShare):
        if ciphertext is None:
            raise MalformedMessage("an UploadShare comes with its ciphertext")
        if not hmac.compare_digest(escrow.ciphertext_digest(ciphertext), action.ciphertext):
            raise EscrowRefused("the ciphertext's SHA-256 is not the digest the UploadShare signs")
    elif ciphertext is not None:
        raise MalformedMessage("only an UploadShare carries a ciphertext")
    verified = messages.verify(signed, service, database.now())
    if admit is not None:
        admit(verified.signer)
    wire = messages.encode_signed(signed)
    committed_events: list[tuple[policy.Event, ...]] = []

    def step(state_bytes: bytes | None, now: int) -> Transition:
        state = _decode(state_bytes)
        earlier: list[policy.Event] = []
        if state is not None and not isinstance(action, messages.CreateVault):
            state, earlier = policy.advance(state, now)  # what time did before this action
        new_state, events = policy.apply(state, verified, now)
        committed_events.append((*earlier, *events))
        return _transition(new_state, verified, earlier, events, wire, ciphertext)

    committed: Committed = database.transact(vault_key(signed.message.vault), step)
    return ActionResult(
        "0x" + committed.vault_id, committed.version, committed_events[-1], committed.deliveries
    )


def _transition(
    state: policy.VaultState,
    verified: VerifiedAction,
    earlier: Sequence[policy.Event],
    events: Sequence[policy.Event],
    wire: bytes,
    ciphertext: bytes | None,
) -> Transition:
    signer = verified.signer.text
    action = verified.message.action
    put: list[EscrowItem] = []
    if isinstance(action, UploadShare):
        assert ciphertext is not None
        put.append(EscrowItem(action.request.hex(), signer, ciphertext))
    return Transition(
        state=policy.vault_state_to_json(state),
        events=[*_record(earlier), *_record(events, signer=signer, message=wire)],
        nonces=[(signer, str(verified.message.nonce))],
        escrow_put=put,
        escrow_destroy=_destroyed([*earlier, *events]),
        due_at=policy.next_due(state),
    )


def _advance_step(state_bytes: bytes | None, now: int) -> Transition:
    if state_bytes is None:
        raise VaultNotFound("the vault disappeared")
    state = policy.vault_state_from_json(state_bytes)
    advanced, events = policy.advance(state, now)
    if not events:
        return Transition(state=state_bytes, due_at=policy.next_due(state))  # nothing to commit
    return Transition(
        state=policy.vault_state_to_json(advanced),
        events=_record(events),
        escrow_destroy=_destroyed(events),
        due_at=policy.next_due(advanced),
    )


def sweep_due(database: Database, *, limit: int = 500) -> int:
    """Advance every vault whose time-driven transition is due; returns how many moved.

    A vault that fails (a damaged state) is logged and skipped, so one bad vault does not stop
    the others' transitions.
    """
    moved = 0
    for vault_id in database.due_vaults(database.now(), limit):
        try:
            committed = database.transact(vault_id, _advance_step)
        except RecoveryError as error:
            log.error("sweep of vault %s failed: %s", vault_id, type(error).__name__)
            continue
        moved += bool(committed.entries)
    return moved


def view_vault(database: Database, vault: bytes) -> tuple[int, int, policy.VaultState]:
    """(version, now, state advanced to now) of a vault, without writing."""
    version, state_bytes = database.load(vault_key(vault))
    now = database.now()
    state, _ = policy.advance(policy.vault_state_from_json(state_bytes), now)
    return version, now, state


def escrow_bundle(database: Database, vault: bytes, request: bytes) -> list[EscrowItem]:
    """The escrowed ciphertexts of an executed request; refusals say why not."""
    _, _, state = view_vault(database, vault)
    found = state.request(request)
    if found is None:
        raise UnknownRequest(f"vault 0x{vault.hex()} has no request 0x{request.hex()}")
    if found.status is policy.Status.EXECUTED:
        return database.escrow_bundle(vault_key(vault), request.hex())
    if found.status.is_open:
        raise EscrowNotReleased(
            f"request 0x{request.hex()} is {found.status.value}; its escrow is released only after execution"
        )
    raise EscrowDestroyed(f"request 0x{request.hex()} is {found.status.value}; its escrow was destroyed")


def event_json(events: Sequence[policy.Event]) -> list[Mapping[str, Any]]:
    return [e.to_json() for e in events]


class Sweeper(PeriodicWorker):
    """A background thread that runs :func:`sweep_due` every ``interval`` seconds (or when woken).

    Every replica may sweep: ``transact`` makes each transition land once, and a replica that
    finds nothing left to do commits nothing.
    """

    def __init__(self, database: Database, *, interval: float = 1.0) -> None:
        self.database = database
        super().__init__(self._sweep, name="lifeboat-recovery-sweep", interval=interval)

    def _sweep(self) -> bool:
        sweep_due(self.database)
        return False
