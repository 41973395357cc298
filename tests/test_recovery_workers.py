"""Several writers on one SQLite database: the writer lock (threads and processes take turns and
"database is locked" never surfaces), ``lifeboat serve --workers N`` executing a raced request
exactly once, and the hot path's remembered values (parsed keys, EIP-712 hashes, the webhook
check) never going stale when a vault's guardians or subscriptions change."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from lifeboat.errors import RecoveryError
from lifeboat.recovery import audit, db, messages, migrations, refusals
from lifeboat.recovery.config import Guardian, Policy, VaultConfig
from lifeboat.recovery.db import OUTBOX, Database, writer_lock, writer_lock_path
from lifeboat.recovery.keys import KeyKind, PublicKey
from lifeboat.recovery.messages import Approve, CreateVault, Execute, OpenRequest, ProposeChange
from lifeboat.recovery.service.actions import apply_signed
from lifeboat.recovery.service.settings import Settings, load_or_create_key
from recovery_helpers import (
    DAY,
    SERVICE,
    VAULT,
    counter_step,
    private_key,
    request_id,
    running_service,
    signed,
)

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

COUNTER = sa.Table("counter", sa.MetaData(), sa.Column("n", sa.Integer))


@pytest.fixture
def impatient(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own busy wait cut to 20 ms: without the writer lock, a writer that finds another
    one in its transaction fails with "database is locked" almost at once."""
    monkeypatch.setattr(db, "SQLITE_BUSY_MS", 20)


def counter_database(path: Path) -> Database:
    database = Database(f"sqlite:///{path}")
    with database.begin() as connection:
        COUNTER.create(connection, checkfirst=True)
        if connection.execute(sa.select(sa.func.count()).select_from(COUNTER)).scalar_one() == 0:
            connection.execute(COUNTER.insert().values(n=0))
    return database


def bump(database: Database, hold: float = 0.0) -> None:
    """One plain write transaction (no retry), held open ``hold`` seconds."""
    with database.begin() as connection:
        connection.execute(COUNTER.update().values(n=COUNTER.c.n + 1))
        time.sleep(hold)


def count(database: Database) -> int:
    with database.reader.connect() as connection:
        return int(connection.execute(sa.select(COUNTER.c.n)).scalar_one())


def test_threads_take_turns_instead_of_failing(tmp_path: Path, impatient: None) -> None:
    database = counter_database(tmp_path / "r.db")
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: bump(database, 0.002), range(120)))
        assert count(database) == 120
    finally:
        database.dispose()
    assert writer_lock_path(tmp_path / "r.db").exists()


HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from test_recovery_workers import counter_database
database = counter_database(__import__("pathlib").Path(sys.argv[1]))
with database.begin() as connection:
    connection.exec_driver_sql("UPDATE counter SET n = n + 1")
    print("holding", flush=True)
    time.sleep(1.0)
print("done", flush=True)
"""


def test_another_process_waits_for_the_writer_then_writes(tmp_path: Path, impatient: None) -> None:
    path = tmp_path / "r.db"
    counter_database(path).dispose()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(TESTS)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        start = time.monotonic()
        database = Database(f"sqlite:///{path}")
        bump(database)  # would be "database is locked" after 20 ms without the lock
        waited = time.monotonic() - start
        assert count(database) == 2
        database.dispose()
        assert waited > 0.5  # it queued behind the other process's transaction
        assert holder.stdout.readline().strip() == "done"
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_given_back_after_a_refusal_a_rollback_and_an_error(
    tmp_path: Path, impatient: None
) -> None:
    database = counter_database(tmp_path / "r.db")
    migrations.upgrade(database.engine)
    lock = writer_lock(database.engine)
    assert lock is not None
    try:

        def refuse(state: bytes | None, now: int) -> db.Transition:
            raise refusals.NotAuthorized("no")

        with pytest.raises(refusals.NotAuthorized):
            database.transact("v", refuse)
        assert lock.holder is None
        with pytest.raises(ZeroDivisionError), database.begin() as connection:
            connection.execute(COUNTER.update().values(n=COUNTER.c.n + 1))
            _ = 1 / 0
        assert lock.holder is None
        with database.reader.connect() as connection:  # readers never take it
            connection.execute(sa.select(COUNTER.c.n)).scalar_one()
            assert lock.holder is None
        # another thread gets it at once
        worker = threading.Thread(target=bump, args=(database,))
        worker.start()
        worker.join(5)
        assert not worker.is_alive()
        assert count(database) == 1
        database.transact("v", counter_step())
        assert lock.holder is None
    finally:
        database.dispose()


def test_postgresql_has_no_writer_lock(tmp_path: Path) -> None:
    from recovery_helpers import fresh_pg_schema

    with fresh_pg_schema() as url:
        database = Database(url)
        assert writer_lock(database.engine) is None
        database.dispose()


# --- what the hot path remembers ----------------------------------------------------------------


def test_parsed_keys_are_remembered_and_refusals_are_not() -> None:
    key = private_key(KeyKind.BIP340, "remembered").public_key
    assert PublicKey.parse(key.text) is PublicKey.parse(key.text)
    assert PublicKey.parse(key.text.upper().replace("BIP340", "bip340")) == key
    bad = "bip340:" + "00" * 32  # not the x coordinate of a point
    for _ in range(2):
        with pytest.raises(refusals.MalformedKey):
            PublicKey.parse(bad)
    with pytest.raises(refusals.MalformedKey):
        PublicKey.parse("ed25519:" + "ab" * 1000)  # too long to be remembered, refused all the same


def test_the_eip712_digest_follows_the_service_domain() -> None:
    message = messages.Message(VAULT, messages.Lock(), 1, 0, 100)
    other = messages.Service(SERVICE.chain_id + 1, SERVICE.verifying_contract)
    assert messages.digest(SERVICE, message) != messages.digest(other, message)
    assert SERVICE.separator() == messages.hash_struct("EIP712Domain", SERVICE.domain())
    assert other.separator() == messages.hash_struct("EIP712Domain", other.domain())


def _config(keys: list[PublicKey], period: int = 0) -> VaultConfig:
    return VaultConfig(
        guardians=tuple(Guardian(k, 1, f"G{n}") for n, k in enumerate(keys)),
        policies=(Policy("p", tuple(keys), 2, recovery_period=period, expiry_window=DAY),),
        security_period=60,
        lock_period=DAY,
    )


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sqlite_db(tmp_path: Path, clock: Clock) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'recovery.db'}", clock=clock)
    migrations.upgrade(database.engine)
    yield database
    database.dispose()


def test_a_changed_guardian_set_is_what_counts(sqlite_db: Database, clock: Clock) -> None:
    owner = private_key(KeyKind.ED25519, "owner")
    old = [private_key(kind, f"old {kind.value}") for kind in KeyKind]
    new = [private_key(kind, f"new {kind.value}") for kind in KeyKind]
    now = sqlite_db.now()
    apply_signed(sqlite_db, SERVICE, signed(owner, CreateVault(_config([k.public_key for k in old])), now))
    apply_signed(sqlite_db, SERVICE, signed(owner, ProposeChange(_config([k.public_key for k in new])), now))
    clock.now += 120  # past the security period: the change applies
    now = sqlite_db.now()
    newcomer = private_key(KeyKind.ED25519, "newcomer").public_key
    with pytest.raises(refusals.NotAuthorized):
        apply_signed(sqlite_db, SERVICE, signed(old[1], OpenRequest(request_id(1), newcomer, "p"), now))
    apply_signed(sqlite_db, SERVICE, signed(new[1], OpenRequest(request_id(1), newcomer, "p"), now))
    with pytest.raises(refusals.NotAuthorized):
        apply_signed(sqlite_db, SERVICE, signed(old[2], Approve(request_id(1), newcomer, "p"), now))
    result = apply_signed(sqlite_db, SERVICE, signed(new[2], Approve(request_id(1), newcomer, "p"), now))
    assert "request_approved" in [e.kind for e in result.events]


def outbox_rows(database: Database) -> int:
    with database.reader.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(OUTBOX)).scalar_one())


def test_a_webhook_added_later_is_notified_of_the_next_entry(sqlite_db: Database) -> None:
    owner = private_key(KeyKind.ED25519, "owner")
    guardians = [private_key(kind, f"hooked {kind.value}") for kind in KeyKind]
    now = sqlite_db.now()
    apply_signed(
        sqlite_db, SERVICE, signed(owner, CreateVault(_config([k.public_key for k in guardians])), now)
    )
    newcomer = private_key(KeyKind.ED25519, "newcomer").public_key
    opening = signed(guardians[0], OpenRequest(request_id(2), newcomer, "p"), now)
    assert apply_signed(sqlite_db, SERVICE, opening).deliveries == 0
    assert outbox_rows(sqlite_db) == 0  # nobody subscribed: no deliveries
    sqlite_db.add_webhook("http://127.0.0.1:9/hook", vault_id=VAULT.hex())
    result = apply_signed(
        sqlite_db, SERVICE, signed(guardians[1], Approve(request_id(2), newcomer, "p"), now)
    )
    assert outbox_rows(sqlite_db) == result.deliveries == len(result.events) > 0
    sqlite_db.add_webhook("http://127.0.0.1:9/all")  # every vault's entries
    before = outbox_rows(sqlite_db)
    result = apply_signed(
        sqlite_db, SERVICE, signed(guardians[2], Approve(request_id(2), newcomer, "p"), now)
    )
    assert outbox_rows(sqlite_db) == before + 2 * len(result.events)


# --- lifeboat serve --workers ------------------------------------------------------------------


def test_settings_travel_to_workers_whole() -> None:
    settings = Settings(
        database="sqlite:////tmp/x.db",
        home=Path("/tmp/home"),
        rate_per_second=3.5,
        rate_burst=7,
        simulated_clock=True,
        chain_id=5,
        verifying_contract=bytes(range(20)),
    )
    assert Settings.from_environment(settings.to_environment()) == settings
    assert Settings.from_environment(Settings().to_environment()) == Settings()
    with pytest.raises(RecoveryError, match="damaged"):
        Settings.from_environment('{"database": null}')


def _workers_of(port: int) -> list[int]:
    """The child processes of the ``lifeboat serve --port PORT`` process."""
    entries = [e for e in os.scandir("/proc") if e.name.isdigit()]
    serve, parents = None, {}
    for entry in entries:
        with contextlib.suppress(OSError):
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            if (
                b"serve" in argv
                and b"--port" in argv
                and argv[argv.index(b"--port") + 1] == str(port).encode()
            ):
                serve = int(entry.name)
            parents[int(entry.name)] = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
    return [pid for pid, parent in parents.items() if serve is not None and parent == serve]


@pytest.mark.slow
def test_two_workers_racing_one_request_execute_it_once(tmp_path: Path) -> None:
    key_file = tmp_path / "service-key.json"
    options = [
        "--workers",
        "2",
        "--database",
        f"sqlite:///{tmp_path / 'recovery.db'}",
        "--service-key",
        str(key_file),
        "--chain-id",
        str(SERVICE.chain_id),
        "--verifying-contract",
        "0x" + SERVICE.verifying_contract.hex(),
    ]
    with running_service(tmp_path, *options) as base:
        port = int(base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while len(_workers_of(port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_workers_of(port)) >= 2  # uvicorn's two workers
        now = int(httpx.get(f"{base}/v1/service").json()["now"])
        owner = private_key(KeyKind.ED25519, "owner")
        guardians = [private_key(kind, f"racer {kind.value}") for kind in KeyKind]
        new_owner = private_key(KeyKind.ED25519, "new owner")

        def post(message: messages.SignedMessage) -> httpx.Response:
            body = {"signed": messages.signed_to_json(message)}
            with httpx.Client() as client:  # a new connection each time: both workers take some
                return client.post(f"{base}/v1/actions", json=body, timeout=30)

        config = _config([k.public_key for k in guardians])
        assert post(signed(owner, CreateVault(config), now)).status_code == 200
        request = OpenRequest(request_id(3), new_owner.public_key, "p")
        assert post(signed(guardians[0], request, now)).status_code == 200
        approve = Approve(request_id(3), new_owner.public_key, "p")
        assert post(signed(guardians[1], approve, now)).status_code == 200  # executable at once
        racers = [signed(k, Execute(request_id(3)), now) for k in [new_owner, *guardians] for _ in range(5)]
        with concurrent.futures.ThreadPoolExecutor(len(racers)) as pool:
            answers = list(pool.map(post, racers))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(200) == 1, [a.text for a in answers if a.status_code != 410][:3]
        assert set(statuses) == {200, 410}  # the others: request_closed, and never a 500
        export = httpx.get(f"{base}/v1/audit/export", timeout=30).content
        entries = audit.verify(export, load_or_create_key(key_file).public_key).entries
        assert [e.action for e in entries].count("request_executed") == 1
        assert [e.action for e in entries].count("owner_changed") == 1
    assert "database is locked" not in (tmp_path / "serve.log").read_text()


def test_a_serve_process_freezes_its_start_up_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from lifeboat.recovery.service import app

    before = gc.get_threshold()
    try:
        app.tune_garbage_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == app.GC_YOUNG_THRESHOLD
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    monkeypatch.delenv(app.SETTINGS_ENV, raising=False)
    with pytest.raises(RecoveryError, match="--workers"):
        app.create_app_from_environment()
