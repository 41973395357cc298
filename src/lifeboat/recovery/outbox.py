"""Delivering webhooks from the outbox: persistent, retried with exponential backoff.

:meth:`Database.transact` writes one outbox row per (audit entry, subscribed endpoint) in the
same transaction as the entry, so a notification exists exactly when its event does. This module
works the rows off: it *leases* due rows (a compare-and-swap on ``lease_until``, so replicas
sharing a database do not send the same row at once), POSTs each signed body, and records the
outcome. A 2xx answer marks the row delivered; anything else (an error status, a refused
connection, a timeout) schedules the next attempt after ``base * 2**(attempts-1)`` seconds
(capped, with jitter) until ``max_attempts``, when the row is marked dead and kept for a look.

Delivery is at least once: a worker that dies after the receiver answered but before it recorded
the answer leaves the row to be sent again when its lease runs out. Receivers deduplicate by
the ``Lifeboat-Delivery`` header (also in the body). A restart loses nothing: the rows are in the
database, not in memory.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

import httpx
import sqlalchemy as sa

from lifeboat import __version__
from lifeboat.recovery import webhooks
from lifeboat.recovery.db import DEAD, DELIVERED, OUTBOX, PENDING, WEBHOOKS, Database
from lifeboat.recovery.worker import PeriodicWorker

__all__ = ["Backoff", "Outbox", "OutboxWorker", "PassReport"]

USER_AGENT: Final = f"lifeboat-recovery/{__version__}"
MAX_ERROR: Final = 200


@dataclass(frozen=True)
class Backoff:
    """When to try again: ``base * 2**(attempts-1)`` seconds, at most ``cap``, +/- ``jitter``."""

    base: float = 2.0
    cap: float = 3600.0
    max_attempts: int = 20
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        raw = min(self.cap, self.base * 2.0 ** max(0, attempts - 1))
        return float(raw) * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311 - spreading retries, not a secret


@dataclass(frozen=True)
class _Lease:
    row_id: int
    delivery_id: str
    url: str
    payload: bytes
    secret: bytes
    attempts: int


@dataclass(frozen=True)
class PassReport:
    """What one pass over the due rows did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.dead


class Outbox:
    """Sends due outbox rows of one database."""

    def __init__(
        self,
        database: Database,
        *,
        client: httpx.Client | None = None,
        backoff: Backoff = Backoff(),
        lease: float = 60.0,
        batch: int = 32,
        timeout: float = 10.0,
    ) -> None:
        self.database = database
        self.backoff = backoff
        self.lease = lease
        self.batch = batch
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._owns_client = client is None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _claim(self) -> list[_Lease]:
        rows, hooks = OUTBOX, WEBHOOKS
        now = self.database.clock()
        free = sa.or_(rows.c.lease_until.is_(None), rows.c.lease_until < now)
        leases: list[_Lease] = []
        is_due = sa.and_(rows.c.status == PENDING, rows.c.next_attempt_at <= now, free)
        with self.database.reader.connect() as connection:
            # most passes find nothing: look first without a write transaction (on SQLite that
            # would queue behind, and hold up, every writer)
            if connection.execute(sa.select(rows.c.id).where(is_due).limit(1)).first() is None:
                return leases
        with self.database.begin() as connection:
            due = connection.execute(
                sa.select(
                    rows.c.id, rows.c.delivery_id, rows.c.url, rows.c.payload, rows.c.attempts, hooks.c.secret
                )
                .join(hooks, hooks.c.id == rows.c.webhook_id)
                .where(is_due)
                .order_by(rows.c.next_attempt_at, rows.c.id)
                .limit(self.batch)
            ).all()
            for row in due:
                taken = connection.execute(
                    rows.update()
                    .where(rows.c.id == row.id, rows.c.status == PENDING, free)
                    .values(lease_until=now + self.lease)
                )
                if taken.rowcount == 1:
                    leases.append(
                        _Lease(
                            row.id,
                            row.delivery_id,
                            row.url,
                            bytes(row.payload),
                            bytes(row.secret),
                            row.attempts,
                        )
                    )
        return leases

    def _send(self, lease: _Lease) -> str | None:
        """POST one delivery; None on a 2xx answer, else a short reason (no secrets, no bodies)."""
        timestamp = int(self.database.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            webhooks.SIGNATURE_HEADER: webhooks.signature_header(lease.secret, timestamp, lease.payload),
            webhooks.DELIVERY_HEADER: lease.delivery_id,
        }
        try:
            answer = self._client.post(lease.url, content=lease.payload, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {str(exc)[:MAX_ERROR]}"
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def _record(self, lease: _Lease, failure: str | None) -> str:
        rows = OUTBOX
        now = self.database.clock()
        if failure is None:
            values: dict[str, object] = {
                "status": DELIVERED,
                "delivered_at": int(now),
                "lease_until": None,
                "attempts": lease.attempts + 1,
            }
            outcome = DELIVERED
        else:
            attempts = lease.attempts + 1
            outcome = DEAD if attempts >= self.backoff.max_attempts else PENDING
            values = {
                "status": outcome,
                "attempts": attempts,
                "next_attempt_at": now + self.backoff.delay(attempts),
                "lease_until": None,
                "last_error": failure,
            }
        with self.database.begin() as connection:
            connection.execute(
                rows.update().where(rows.c.id == lease.row_id, rows.c.status == PENDING).values(**values)
            )
        return outcome

    def deliver_due(self) -> PassReport:
        """One pass: lease the due rows, send each, record each outcome."""
        counts = {DELIVERED: 0, PENDING: 0, DEAD: 0}
        for lease in self._claim():
            counts[self._record(lease, self._send(lease))] += 1
        return PassReport(counts[DELIVERED], counts[PENDING], counts[DEAD])

    def counts(self) -> dict[str, int]:
        """Rows by status (for metrics)."""
        rows = OUTBOX
        with self.database.reader.connect() as connection:
            found = connection.execute(
                sa.select(rows.c.status, sa.func.count()).group_by(rows.c.status)
            ).all()
        return {PENDING: 0, DELIVERED: 0, DEAD: 0} | {status: int(n) for status, n in found}


class OutboxWorker(PeriodicWorker):
    """A background thread that keeps delivering: a pass, then a wait of ``interval`` (or a wake-up);
    no wait while a pass fills a whole batch."""

    def __init__(self, outbox: Outbox, *, interval: float = 1.0) -> None:
        self.outbox = outbox
        super().__init__(self._deliver, name="lifeboat-outbox", interval=interval)

    def _deliver(self) -> bool:
        return self.outbox.deliver_due().attempted >= self.outbox.batch
