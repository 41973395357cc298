"""Webhooks (lifeboat.recovery.webhooks, .outbox): signed, persistent, retried, surviving a restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from lifeboat.recovery import migrations, webhooks
from lifeboat.recovery.db import OUTBOX, Database, Event, Transition
from lifeboat.recovery.outbox import Backoff, Outbox, OutboxWorker
from recovery_helpers import counter_step

SECRET = b"s" * 32


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that fails its first ``failures`` requests."""

    failures: int
    secret: bytes = SECRET
    requests: int = 0
    received: list[dict[str, object]] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)
    refused_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(failures=3)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.requests += 1
                fail = state.requests <= state.failures
            if fail:
                self.send_response(503)
                self.end_headers()
                return
            try:
                webhooks.verify_signature(
                    state.secret, self.headers[webhooks.SIGNATURE_HEADER], body, int(time.time())
                )
            except webhooks.WebhookError:
                with state.lock:
                    state.refused_signatures += 1
                self.send_response(400)
                self.end_headers()
                return
            with state.lock:
                state.received.append(json.loads(body))
                state.deliveries.append(self.headers[webhooks.DELIVERY_HEADER])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def open_db(path: Path) -> Database:
    database = Database(f"sqlite:///{path}")
    migrations.upgrade(database.engine)
    return database


FAST = Backoff(base=0.02, cap=0.2, max_attempts=10, jitter=0.0)


def drain(outbox: Outbox, until: float = 10.0) -> None:
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        outbox.deliver_due()
        if outbox.counts()["pending"] == 0:
            return
        time.sleep(0.01)
    raise AssertionError("the outbox did not drain")


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = webhooks.signature_header(SECRET, 1700000000, b'{"a":1}')
    mac = hmac.new(SECRET, b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert webhooks.verify_signature([b"old" * 11, SECRET], header, b'{"a":1}', 1700000100) == 1700000000


@pytest.mark.parametrize(
    ("secret", "body", "now", "reason"),
    [
        (b"wrong", b'{"a":1}', 1700000000, "no webhook signature matches"),
        (SECRET, b'{"a":2}', 1700000000, "no webhook signature matches"),
        (SECRET, b'{"a":1}', 1700000301, "more than 300 s"),
    ],
)
def test_a_wrong_secret_changed_body_or_stale_stamp_is_refused(
    secret: bytes, body: bytes, now: int, reason: str
) -> None:
    header = webhooks.signature_header(SECRET, 1700000000, b'{"a":1}')
    with pytest.raises(webhooks.WebhookError, match=reason):
        webhooks.verify_signature(secret, header, body, now)


@pytest.mark.parametrize("header", ["", "v1=00", "t=abc,v1=00", "t=1,t=2,v1=00", "garbage"])
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(webhooks.WebhookError):
        webhooks.verify_signature(SECRET, header, b"", 1)


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(base=2.0, cap=60.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    jittered = Backoff(base=10.0, jitter=0.1)
    assert all(9.0 <= jittered.delay(1) <= 11.0 for _ in range(100))


def test_deliveries_fail_then_succeed_and_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    database = open_db(tmp_path / "r.db")
    database.add_webhook(receiver.url, secret=SECRET)
    for _ in range(3):
        database.transact("v1", counter_step("owner"))
    outbox = Outbox(database, backoff=FAST)
    outbox.deliver_due()  # three requests, three 503s
    assert receiver.requests == 3 and receiver.received == []
    outbox.close()
    database.dispose()  # the service stops with every notification still pending

    database = open_db(tmp_path / "r.db")
    outbox = Outbox(database, backoff=FAST)
    assert outbox.counts()["pending"] == 3
    drain(outbox)
    assert receiver.refused_signatures == 0
    assert sorted(body["entry"]["seq"] for body in receiver.received) == [1, 2, 3]  # type: ignore[index]
    assert len(set(receiver.deliveries)) == 3
    for body, delivery in zip(receiver.received, receiver.deliveries, strict=True):
        assert body["delivery"] == delivery
    with database.engine.connect() as connection:
        rows = connection.execute(sa.select(OUTBOX.c.status, OUTBOX.c.attempts, OUTBOX.c.last_error)).all()
    assert sorted(r.status for r in rows) == ["delivered"] * 3
    assert sorted(r.attempts for r in rows) == [2, 2, 2]
    assert {r.last_error for r in rows} == {"HTTP 503"}
    outbox.close()
    database.dispose()


def test_a_dead_endpoint_is_retried_with_backoff_then_marked_dead(tmp_path: Path) -> None:
    database = open_db(tmp_path / "r.db")
    database.add_webhook("http://127.0.0.1:9/nothing-listens")
    database.transact("v1", lambda state, now: Transition(b"s", [Event("owner", "create")]))
    outbox = Outbox(database, backoff=Backoff(base=0.01, cap=0.01, max_attempts=3, jitter=0.0), timeout=2.0)
    reports = []
    deadline = time.monotonic() + 10
    while outbox.counts()["dead"] == 0 and time.monotonic() < deadline:
        reports.append(outbox.deliver_due())
        time.sleep(0.02)
    assert sum(r.retrying for r in reports) == 2 and sum(r.dead for r in reports) == 1
    with database.engine.connect() as connection:
        row = connection.execute(sa.select(OUTBOX.c.attempts, OUTBOX.c.last_error)).one()
    assert row.attempts == 3 and row.last_error.startswith("ConnectError")
    outbox.close()
    database.dispose()


def test_a_leased_row_is_not_sent_by_a_second_replica(tmp_path: Path, receiver: Receiver) -> None:
    receiver.failures = 0
    database = open_db(tmp_path / "r.db")
    database.add_webhook(receiver.url, secret=SECRET)
    database.transact("v1", counter_step())
    first, second = Outbox(database), Outbox(database)
    leases = first._claim()
    assert len(leases) == 1 and second._claim() == []
    first._record(leases[0], first._send(leases[0]))
    assert second.deliver_due().attempted == 0
    assert len(receiver.received) == 1
    first.close()
    second.close()
    database.dispose()


def test_the_worker_thread_delivers_in_the_background(tmp_path: Path, receiver: Receiver) -> None:
    receiver.failures = 1
    database = open_db(tmp_path / "r.db")
    database.add_webhook(receiver.url, secret=SECRET)
    worker = OutboxWorker(Outbox(database, backoff=FAST), interval=0.02)
    worker.start()
    try:
        database.transact("v1", counter_step())
        worker.wake()
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert [body["entry"]["action"] for body in receiver.received] == ["increment"]  # type: ignore[index]
    database.dispose()
