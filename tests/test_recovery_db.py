"""The recovery database (lifeboat.recovery.db): migrations that match the models, and transact,
which commits a step's state, audit entries, outbox rows, nonces and escrow together, exactly once."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lifeboat.errors import RecoveryError, UsageError
from lifeboat.recovery import audit, migrations
from lifeboat.recovery.db import (
    OUTBOX,
    Base,
    Database,
    EscrowItem,
    Event,
    ReplayError,
    Step,
    Transition,
    VaultNotFound,
    writer_lock,
)
from recovery_helpers import counter_step, fresh_pg_schema

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'recovery.db'}")
    migrations.upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def pg_db() -> Iterator[Database]:
    with fresh_pg_schema() as url:
        database = Database(url)
        migrations.upgrade(database.engine)
        yield database
        database.dispose()


def schema_differences(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": migrations.VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_head_on_an_empty_sqlite_gives_exactly_the_models(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'new.db'}")
    assert migrations.current(database.engine) is None
    migrations.upgrade(database.engine)
    assert migrations.current(database.engine) == migrations.head()
    assert schema_differences(database) == []
    migrations.upgrade(database.engine)  # again: nothing to do
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_upgrade_head_on_an_empty_postgresql_schema_gives_exactly_the_models() -> None:
    with fresh_pg_schema() as url:
        database = Database(url)
        migrations.upgrade(database.engine)
        assert migrations.current(database.engine) == migrations.head()
        assert schema_differences(database) == []
        with database.engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
        assert tables == set(Base.metadata.tables) | {migrations.VERSION_TABLE}
        database.dispose()


def test_the_comparison_would_notice_a_drifted_schema(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'drift.db'}")
    migrations.upgrade(database.engine)
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE vaults ADD COLUMN stray TEXT")
    assert schema_differences(database) != []
    database.dispose()


def test_unsupported_or_in_memory_urls_are_refused() -> None:
    with pytest.raises(UsageError, match="must be a file"):
        Database("sqlite://")
    with pytest.raises(UsageError, match="unsupported recovery database"):
        Database("mysql://u:secret@h/d")


def test_transact_creates_updates_and_logs(sqlite_db: Database) -> None:
    first = sqlite_db.transact("v1", counter_step())
    second = sqlite_db.transact("v1", counter_step())
    assert (first.version, second.version) == (1, 2)
    assert sqlite_db.load("v1") == (2, b'{"count": 2}')
    assert [e.seq for e in (*first.entries, *second.entries)] == [1, 2]
    assert second.entries[0].prev == first.entries[0].hash
    assert sqlite_db.audit_head() == (2, second.entries[0].hash)
    with pytest.raises(VaultNotFound):
        sqlite_db.load("v2")


def test_a_step_that_changes_nothing_writes_nothing(sqlite_db: Database) -> None:
    sqlite_db.transact("v1", counter_step())
    same = sqlite_db.transact("v1", lambda state, now: Transition(state or b""))
    assert same.version == 1 and same.entries == ()
    assert sqlite_db.audit_head()[0] == 1


def test_a_refused_step_leaves_no_trace(sqlite_db: Database) -> None:
    sqlite_db.add_webhook("http://127.0.0.1:9/hook")
    sqlite_db.transact("v1", counter_step())

    def refuse(state: bytes | None, now: int) -> Transition:
        raise RecoveryError("not now")

    with pytest.raises(RecoveryError, match="not now"):
        sqlite_db.transact("v1", refuse)
    assert sqlite_db.load("v1")[0] == 1
    assert sqlite_db.audit_head()[0] == 1
    with sqlite_db.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(OUTBOX)).scalar() == 1


def test_a_used_nonce_refuses_the_whole_step(sqlite_db: Database) -> None:
    def approve(state: bytes | None, now: int) -> Transition:
        return Transition((state or b"") + b"!", [Event("g1", "approve", b"sig")], nonces=[("g1", "n-1")])

    sqlite_db.transact("v1", approve)
    with pytest.raises(ReplayError, match="already used"):
        sqlite_db.transact("v1", approve)
    assert sqlite_db.load("v1") == (1, b"!")
    assert sqlite_db.audit_head()[0] == 1


def test_escrow_is_stored_with_the_step_and_destroyed_by_a_later_one(sqlite_db: Database) -> None:
    put = Transition(
        b"approved",
        [Event("g1", "escrow")],
        escrow_put=[EscrowItem("r1", "g1", b"age-ciphertext-1"), EscrowItem("r1", "g2", b"age-ciphertext-2")],
    )
    sqlite_db.transact("v1", lambda state, now: put)
    assert [item.guardian_id for item in sqlite_db.escrow_bundle("v1", "r1")] == ["g1", "g2"]
    sqlite_db.transact(
        "v1", lambda state, now: Transition(b"vetoed", [Event("owner", "veto")], escrow_destroy=["r1"])
    )
    assert sqlite_db.escrow_bundle("v1", "r1") == []


def test_outbox_rows_follow_each_entry_to_each_subscribed_endpoint(sqlite_db: Database) -> None:
    sqlite_db.add_webhook("https://owner.example/hook", vault_id="v1")
    sqlite_db.add_webhook("https://ops.example/all")
    sqlite_db.add_webhook("https://other.example/hook", vault_id="v2")
    sqlite_db.transact("v1", lambda state, now: Transition(b"s", [Event("o", "a"), Event("o", "b")]))
    with sqlite_db.engine.connect() as connection:
        rows = connection.execute(sa.select(OUTBOX.c.url, OUTBOX.c.audit_seq, OUTBOX.c.payload)).all()
    assert sorted((r.url, r.audit_seq) for r in rows) == [
        ("https://ops.example/all", 1),
        ("https://ops.example/all", 2),
        ("https://owner.example/hook", 1),
        ("https://owner.example/hook", 2),
    ]
    body = json.loads(rows[0].payload)
    assert body["type"] == "lifeboat.recovery.event" and body["entry"]["vault"] == "v1"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_removing_a_webhook_drops_its_undelivered_rows(backend: str, request: pytest.FixtureRequest) -> None:
    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    gone, _ = db.add_webhook("https://gone.example/hook")
    db.add_webhook("https://kept.example/hook")
    db.transact("v1", lambda state, now: Transition(b"s", [Event("o", "a")]))
    assert db.remove_webhook(gone) and not db.remove_webhook(gone)
    with db.engine.connect() as connection:
        urls = connection.execute(sa.select(OUTBOX.c.url)).scalars().all()
    assert urls == ["https://kept.example/hook"]
    assert [(h.url, dict(h.deliveries)) for h in db.webhooks()] == [
        ("https://kept.example/hook", {"pending": 1, "delivered": 0, "dead": 0})
    ]


def test_the_stored_chain_exports_and_verifies(sqlite_db: Database) -> None:
    for vault in ("a", "b", "a"):
        sqlite_db.transact(vault, counter_step())
    seed = bytes(range(32))
    seq, head_hash = sqlite_db.audit_head()
    head = audit.sign_head(seed, seq, head_hash, 1)
    data = b"".join(audit.export_lines(sqlite_db.audit_entries(batch=2), head))
    verified = audit.verify(data, bytes(nacl.signing.SigningKey(seed).verify_key))
    assert [e.vault for e in verified.entries] == ["a", "b", "a"]


def race_threads(database: Database, threads: int, each: int) -> int:
    retries = [0] * threads

    def work(index: int) -> None:
        step = counter_step(f"t{index}")
        for _ in range(each):
            retries[index] += database.transact("hot", step).attempts - 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(retries)


def assert_exactly_once(database: Database, total: int) -> None:
    version, state = database.load("hot")
    assert json.loads(state)["count"] == total
    assert version == total
    entries = list(database.audit_entries())
    assert [e.seq for e in entries] == list(range(1, total + 1))
    assert sorted(e.details["count"] for e in entries) == list(range(1, total + 1))
    prev = audit.GENESIS
    for entry in entries:
        assert entry.prev == prev and audit.entry_hash(prev, audit.entry_body(entry)) == entry.hash
        prev = entry.hash


def test_threads_racing_on_sqlite_lose_and_double_nothing(sqlite_db: Database) -> None:
    race_threads(sqlite_db, 4, 25)
    assert_exactly_once(sqlite_db, 100)


def test_threads_racing_on_postgresql_lose_and_double_nothing(pg_db: Database) -> None:
    retries = race_threads(pg_db, 6, 30)
    assert_exactly_once(pg_db, 180)
    assert retries > 0, "the threads never raced; the test proves nothing"


HAMMER = """
import sys
import time
sys.path.insert(0, sys.argv[3])
from recovery_helpers import counter_step
from lifeboat.recovery.db import Database
database = Database(sys.argv[1])
step = counter_step(sys.argv[4])
database.check()  # connected and warm: then wait for the other process, so the two overlap
print("ready", flush=True)
sys.stdin.readline()
retries = 0
for _ in range(int(sys.argv[2])):
    retries += database.transact("hot", step).attempts - 1
    time.sleep(0.002)  # requests arrive apart, as they do: a loser that backs off gets its turn
print(retries)
"""


def test_two_processes_hammering_one_vault_on_postgresql_are_exactly_once(pg_db: Database) -> None:
    url = str(pg_db.engine.url.render_as_string(hide_password=False))
    each = 150
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", HAMMER, url, str(each), str(TESTS), f"replica{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    for process in processes:  # both started and connected before either begins
        assert process.stdout is not None and process.stdout.readline().strip() == "ready", process.args
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert_exactly_once(pg_db, 2 * each)
    actors = [e.actor for e in pg_db.audit_entries()]
    switches = sum(a != b for a, b in itertools.pairwise(actors))
    assert set(actors) == {"replica0", "replica1"}
    assert switches > 2, "the processes ran one after the other; the test proves nothing"


# --- SQLite: the step runs before the writer lock, and is only a proposal -------------------------


def counted(step: Step, calls: list[tuple[bytes | None, int]]) -> Step:
    def wrapper(state: bytes | None, now: int) -> Transition:
        calls.append((state, now))
        return step(state, now)

    return wrapper


def test_an_early_step_is_committed_when_nothing_moved(sqlite_db: Database) -> None:
    sqlite_db.transact("v", counter_step())
    lock = writer_lock(sqlite_db.engine)
    assert lock is not None
    held: list[bool] = []

    def step(state: bytes | None, now: int) -> Transition:
        held.append(lock.holder is not None)
        return counter_step()(state, now)

    committed = sqlite_db.transact("v", step)
    assert held == [False]  # computed before the writer lock, used under it as it was
    assert json.loads(committed.state) == {"count": 2} and committed.version == 2


def test_a_writer_between_the_early_step_and_the_lock_makes_it_run_again(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_db.transact("v", counter_step())
    early = Database._step_early

    def then_another_writer(self: Database, vault_id: str, step: Step) -> Any:
        proposal = early(self, vault_id, step)
        monkeypatch.setattr(Database, "_step_early", early)
        self.transact(vault_id, counter_step("other"))  # commits version 2 meanwhile
        return proposal

    monkeypatch.setattr(Database, "_step_early", then_another_writer)
    calls: list[tuple[bytes | None, int]] = []
    committed = sqlite_db.transact("v", counted(counter_step(), calls))
    assert [json.loads(state or b"null")["count"] for state, _ in calls] == [1, 2]
    assert json.loads(committed.state) == {"count": 3} and committed.version == 3
    actions = [(e.actor, e.details) for e in sqlite_db.audit_entries()]
    assert actions == [("tester", {"count": 1}), ("other", {"count": 2}), ("tester", {"count": 3})]


def test_a_clock_tick_between_the_early_step_and_the_lock_makes_it_run_again(sqlite_db: Database) -> None:
    sqlite_db.transact("v", counter_step())
    readings = itertools.chain([1000.0], itertools.repeat(1001.0))
    sqlite_db.clock = lambda: next(readings)  # the second ticks between the early read and the lock
    calls: list[tuple[bytes | None, int]] = []
    sqlite_db.transact("v", counted(counter_step(), calls))
    assert [now for _, now in calls] == [1000, 1001]  # the committed run saw the later time
    assert [e.time for e in sqlite_db.audit_entries()][-1] == 1001


def test_a_step_refused_early_is_decided_under_the_lock(sqlite_db: Database) -> None:
    sqlite_db.transact("v", counter_step())
    calls: list[tuple[bytes | None, int]] = []

    def refuse(state: bytes | None, now: int) -> Transition:
        calls.append((state, now))
        raise RecoveryError("refused")

    with pytest.raises(RecoveryError, match="refused"):
        sqlite_db.transact("v", refuse)
    assert len(calls) == 2 and sqlite_db.load("v")[0] == 1  # the locked run raised; nothing written
