"""Where the recovery service keeps its state: SQLAlchemy 2 models and one transaction shape.

A vault's state is an opaque, versioned JSON document (the policy's to read). Every change goes
through :meth:`Database.transact`: load the vault, call a pure *step* ``(state, now) ->
Transition``, and commit the new state, its audit entries, the webhook deliveries for them, the
nonces it consumed and its escrow changes in one transaction. The write is a compare-and-swap on
the vault's ``version``; a replica that lost the race rolls back and runs the step again on the
fresh state, so each change lands exactly once however many replicas race.

SQLite (the default, one file under the Lifeboat home) runs in WAL mode with foreign keys on and
takes the write lock when a transaction begins (``BEGIN IMMEDIATE``), so writers queue rather
than fail. PostgreSQL serves several replicas behind one database; there the audit chain's head
row is locked (``SELECT ... FOR UPDATE``) after the vault's compare-and-swap, always in that
order, so the chain stays one line without deadlocks.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import secrets
import threading
import time as _time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lifeboat.documents import canonical_json
from lifeboat.errors import RecoveryError, UsageError
from lifeboat.recovery import audit, webhooks
from lifeboat.recovery.audit import AuditEntry

__all__ = [
    "AUDIT",
    "DATABASE_FILE",
    "OUTBOX",
    "WEBHOOKS",
    "Base",
    "Committed",
    "ConflictError",
    "Database",
    "EscrowItem",
    "Event",
    "ReplayError",
    "Transition",
    "VaultNotFound",
    "WriterLock",
    "default_url",
    "make_engine",
    "writer_lock",
    "writer_lock_path",
]

DATABASE_FILE: Final = "recovery.db"
#: Times a step is re-run after losing a race before :class:`ConflictError`.
MAX_ATTEMPTS: Final = 64
SQLITE_BUSY_MS: Final = 30_000
#: Execution option of connections that only read (SQLite: a deferred transaction).
READ_ONLY: Final = "lifeboat_read_only"
_ID = 128


class ConflictError(RecoveryError):
    """A vault changed under every attempt; the caller may retry later."""


class ReplayError(RecoveryError):
    """A signed message whose nonce was already used."""


class VaultNotFound(RecoveryError):
    """No vault with the given id."""


# --- models ------------------------------------------------------------------------------------

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class VaultRow(Base):
    """A vault: its policy state as versioned JSON bytes, and a version for compare-and-swap."""

    __tablename__ = "vaults"
    id: Mapped[str] = mapped_column(sa.String(_ID), primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger)
    state: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[int] = mapped_column(sa.BigInteger)
    #: When the state next changes by time alone (None: never); the sweep reads this index.
    due_at: Mapped[int | None] = mapped_column(sa.BigInteger, index=True)


class AuditRow(Base):
    """One audit entry (see :mod:`.audit`); never updated or deleted."""

    __tablename__ = "audit_entries"
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[int] = mapped_column(sa.BigInteger)
    vault_id: Mapped[str] = mapped_column(sa.String(_ID), index=True)
    actor: Mapped[str] = mapped_column(sa.String(audit.MAX_TEXT))
    action: Mapped[str] = mapped_column(sa.String(audit.MAX_TEXT))
    message: Mapped[bytes] = mapped_column(sa.LargeBinary)
    details: Mapped[str] = mapped_column(sa.Text)
    prev: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), unique=True)


class AuditHeadRow(Base):
    """The chain's newest (seq, hash): one row, locked by every append."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))


class EscrowRow(Base):
    """A guardian's share, encrypted to the new owner; only ciphertext is ever stored."""

    __tablename__ = "escrow"
    __table_args__ = (sa.UniqueConstraint("vault_id", "request_id", "guardian_id"),)
    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    vault_id: Mapped[str] = mapped_column(sa.ForeignKey("vaults.id"), index=True)
    request_id: Mapped[str] = mapped_column(sa.String(_ID))
    guardian_id: Mapped[str] = mapped_column(sa.String(_ID))
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


class NonceRow(Base):
    """A (signer, nonce) pair already used: the primary key is the replay guard."""

    __tablename__ = "used_nonces"
    signer: Mapped[str] = mapped_column(sa.String(_ID), primary_key=True)
    nonce: Mapped[str] = mapped_column(sa.String(_ID), primary_key=True)
    vault_id: Mapped[str] = mapped_column(sa.String(_ID))
    used_at: Mapped[int] = mapped_column(sa.BigInteger)


class WebhookRow(Base):
    """An endpoint notified of every entry of one vault (or of every vault when vault_id is null)."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(sa.String(_ID), primary_key=True)
    vault_id: Mapped[str | None] = mapped_column(sa.String(_ID), index=True)
    url: Mapped[str] = mapped_column(sa.Text)
    secret: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


class OutboxRow(Base):
    """One webhook delivery, written with its entry and worked off by :mod:`.outbox`."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_status_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    webhook_id: Mapped[str] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    audit_seq: Mapped[int] = mapped_column(sa.BigInteger)
    url: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer)
    next_attempt_at: Mapped[float] = mapped_column(sa.Float)
    lease_until: Mapped[float | None] = mapped_column(sa.Float)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(sa.BigInteger)


class ServiceKeyRow(Base):
    """A public key the service has signed chain heads with (the seed stays in a 0600 file)."""

    __tablename__ = "service_keys"
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary(32), primary_key=True)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


class ServiceSettingsRow(Base):
    """The service instance's identity (the EIP-712 domain vaults are bound to) and its clock offset.

    One row, made at first start: every replica and every restart signs for the same domain and
    reads the same simulated time (wall clock + ``clock_offset``).
    """

    __tablename__ = "service_settings"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    chain_id: Mapped[str] = mapped_column(sa.String(80))
    verifying_contract: Mapped[bytes] = mapped_column(sa.LargeBinary(20))
    clock_offset: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[int] = mapped_column(sa.BigInteger)


def _table(model: type[Base]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


VAULTS = _table(VaultRow)
AUDIT = _table(AuditRow)
AUDIT_HEAD = _table(AuditHeadRow)
ESCROW = _table(EscrowRow)
NONCES = _table(NonceRow)
WEBHOOKS = _table(WebhookRow)
OUTBOX = _table(OutboxRow)
SERVICE_KEYS = _table(ServiceKeyRow)
SERVICE_SETTINGS = _table(ServiceSettingsRow)

# Outbox statuses.
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
HEAD_ROW = 1

# --- the statements of the write path, built once ------------------------------------------------
# Building a Core statement and its cache key costs more than running it on SQLite; these are
# built at import and run with bound parameters.


def _subscribed(vault: Any) -> Any:
    """Webhooks that want the entries of ``vault`` (a column or a bound parameter)."""
    return sa.or_(WEBHOOKS.c.vault_id == vault, WEBHOOKS.c.vault_id.is_(None))


#: The vault's (version, state) and whether any webhook wants its entries, in one round trip.
_LOAD_FOR_WRITE = sa.select(
    VAULTS.c.version,
    VAULTS.c.state,
    sa.exists().where(_subscribed(VAULTS.c.id)).label("subscribed"),
).where(VAULTS.c.id == sa.bindparam("vault_id"))
#: SQLite: the same and the audit chain's head too. The transaction began with BEGIN IMMEDIATE
#: under the writer lock, so nobody else can move the head before this one commits.
_LOAD_FOR_WRITE_AND_HEAD = _LOAD_FOR_WRITE.add_columns(
    sa.select(AUDIT_HEAD.c.seq).where(AUDIT_HEAD.c.id == HEAD_ROW).scalar_subquery().label("head_seq"),
    sa.select(AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == HEAD_ROW).scalar_subquery().label("head_hash"),
)
_LOAD_STATE = sa.select(VAULTS.c.version, VAULTS.c.state).where(VAULTS.c.id == sa.bindparam("vault_id"))
_NONCE_USED = sa.select(NONCES.c.vault_id).where(
    NONCES.c.signer == sa.bindparam("signer"), NONCES.c.nonce == sa.bindparam("nonce")
)
_INSERT_VAULT = VAULTS.insert()
_SWAP_VAULT = (
    VAULTS.update()
    .where(VAULTS.c.id == sa.bindparam("vault_id"), VAULTS.c.version == sa.bindparam("expected"))
    .values(
        version=sa.bindparam("new_version"),
        state=sa.bindparam("new_state"),
        updated_at=sa.bindparam("now"),
        due_at=sa.bindparam("new_due_at"),
    )
)
_INSERT_NONCES = NONCES.insert()
_DESTROY_ESCROW = ESCROW.delete().where(
    ESCROW.c.vault_id == sa.bindparam("vault_id"), ESCROW.c.request_id == sa.bindparam("destroyed")
)
_INSERT_ESCROW = ESCROW.insert()
_LOCK_HEAD = (
    sa.select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == HEAD_ROW).with_for_update()
)
_INSERT_HEAD = AUDIT_HEAD.insert()
_MOVE_HEAD = (
    AUDIT_HEAD.update()
    .where(AUDIT_HEAD.c.id == HEAD_ROW)
    .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash"))
)
_INSERT_AUDIT = AUDIT.insert()
_TARGETS = sa.select(WEBHOOKS.c.id, WEBHOOKS.c.url).where(_subscribed(sa.bindparam("vault_id")))
_INSERT_OUTBOX = OUTBOX.insert()


# --- what a step returns -----------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """A subscribed endpoint and how its deliveries stand (the secret is not part of it)."""

    id: str
    vault_id: str | None
    url: str
    created_at: int
    deliveries: Mapping[str, int]


@dataclass(frozen=True)
class Event:
    """Something that happened, for the audit log: who did what, and the signed message that said so."""

    actor: str
    action: str
    message: bytes = b""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EscrowItem:
    request_id: str
    guardian_id: str
    ciphertext: bytes


@dataclass(frozen=True)
class Transition:
    """A step's result: the vault's new state and what to record with it, committed together.

    ``nonces`` are (signer, nonce) pairs the step consumed; one already used refuses the whole
    step with :class:`ReplayError`. ``escrow_put`` stores ciphertexts; ``escrow_destroy`` deletes
    every ciphertext of the named requests (veto, expiry). ``due_at`` is when the new state next
    changes by time alone (None: never), for the sweep that makes those changes on time.
    """

    state: bytes
    events: Sequence[Event] = ()
    nonces: Sequence[tuple[str, str]] = ()
    escrow_put: Sequence[EscrowItem] = ()
    escrow_destroy: Sequence[str] = ()
    due_at: int | None = None


#: A pure step: the vault's current state (None when it does not exist yet) and the time.
Step = Callable[[bytes | None, int], Transition]


@dataclass(frozen=True)
class Committed:
    vault_id: str
    version: int
    state: bytes
    entries: tuple[AuditEntry, ...]
    attempts: int
    #: Webhook deliveries written to the outbox with the entries (0: nobody to notify).
    deliveries: int = 0


# --- engines -----------------------------------------------------------------------------------


def default_url(home: Path) -> str:
    """The default database: ``recovery.db`` in the Lifeboat home."""
    return f"sqlite:///{Path(home) / DATABASE_FILE}"


def _normalise(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(f"{str(url).split('://', 1)[0]}://... is not a database URL") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise UsageError("the recovery database must be a file: write sqlite:///PATH")
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    raise UsageError(
        f"unsupported recovery database {parsed.render_as_string(hide_password=True)}: "
        "give sqlite:///PATH or postgresql://USER@HOST/DB"
    )


class WriterLock:
    """One SQLite writer at a time, across the threads of a process and across processes.

    SQLite lets one connection write at a time. Left to itself, a second writer (another thread,
    or another ``lifeboat serve`` worker on the same file) polls with sleeps that grow to 100 ms,
    which makes the latency tail long, and gives up with "database is locked" after the busy
    timeout. Instead every write transaction first takes an in-process lock and then an
    exclusive ``flock`` on ``<database>-writer.lock`` beside the database file: waiters sleep in
    the kernel and wake the moment the writer before them is done, and "database is locked"
    never surfaces. The lock is held from ``BEGIN IMMEDIATE`` until the connection goes back to
    the pool (after its commit or rollback); read-only connections never take it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._threads = threading.Lock()
        self._fd: int | None = None
        #: The DB-API connection holding the lock (None: free).
        self.holder: object | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def acquire(self, holder: object) -> None:
        self._threads.acquire()
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self.holder = holder

    def release(self, holder: object) -> None:
        """Give the lock up if ``holder`` holds it (a no-op for any other connection)."""
        if self.holder is not holder or holder is None:
            return
        self.holder = None
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writer_lock_path(database: str | Path) -> Path:
    """Where the writer lock of the SQLite database file ``database`` lives."""
    return Path(f"{database}-writer.lock")


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url`` set up for the service (SQLite: WAL, foreign keys, and every write
    transaction ``BEGIN IMMEDIATE`` under the database's :class:`WriterLock`)."""
    parsed = _normalise(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None  # _normalise refuses in-memory databases
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        writer = WriterLock(writer_lock_path(parsed.database))
        _WRITER_LOCKS[engine] = writer

        @sa_event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below opens transactions
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @sa_event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # writers take the lock at once (no upgrade that could fail); readers share the WAL
            if connection.get_execution_options().get(READ_ONLY, False):
                connection.exec_driver_sql("BEGIN")
                return
            holder = connection.connection.dbapi_connection
            if writer.holder is not holder:
                writer.acquire(holder)
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                writer.release(holder)
                raise

        @sa_event.listens_for(engine, "checkin")
        def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
            writer.release(dbapi_connection)  # its transaction ended (commit or rollback) before

        @sa_event.listens_for(engine, "invalidate")
        def _on_invalidate(dbapi_connection: Any, _record: Any, _error: Any) -> None:
            writer.release(dbapi_connection)

        @sa_event.listens_for(engine, "engine_disposed")
        def _on_disposed(_engine: Engine) -> None:
            writer.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


#: The writer lock of each SQLite engine (:func:`writer_lock`).
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()


def writer_lock(engine: Engine) -> WriterLock | None:
    """The :class:`WriterLock` of an engine :func:`make_engine` made (None: not SQLite)."""
    return _WRITER_LOCKS.get(engine)


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    """A lost race the next attempt can win: a unique key taken meanwhile, a serialization
    failure or deadlock (PostgreSQL), a lock still held after the busy timeout (SQLite)."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None)
    if code in ("40001", "40P01"):
        return True
    return "database is locked" in str(exc.orig)


class Database:
    """The recovery service's database: vaults, audit log, escrow, webhooks and their outbox."""

    def __init__(self, url: str | URL, *, clock: Callable[[], float] = _time.time) -> None:
        self.engine = make_engine(url)
        self.reader = self.engine.execution_options(**{READ_ONLY: True})
        self.clock = clock
        #: Seconds added to ``clock`` (the simulated clock). With ``live_offset`` the offset is
        #: read from the database each time (another replica may have moved it); else the value
        #: :meth:`load_clock_offset` read at start is used.
        self.clock_offset = 0
        self.live_offset = False
        #: SQLite: one writer at a time, under the writer lock. So the audit head is read with the
        #: vault (one round trip less; see _LOAD_FOR_WRITE_AND_HEAD), and the step runs before
        #: the lock (:meth:`_step_early`). PostgreSQL locks the head row after the vault's
        #: compare-and-swap, always in that order.
        self._single_writer = self.engine.dialect.name == "sqlite"
        self._load_for_write = _LOAD_FOR_WRITE_AND_HEAD if self._single_writer else _LOAD_FOR_WRITE

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def now(self, connection: Connection | None = None) -> int:
        """The service time: the wall clock plus the clock offset."""
        offset = self.clock_offset
        if self.live_offset:
            offset = self._read_offset(connection)
        return int(self.clock()) + offset

    def _read_offset(self, connection: Connection | None) -> int:
        query = sa.select(SERVICE_SETTINGS.c.clock_offset).where(SERVICE_SETTINGS.c.id == HEAD_ROW)
        if connection is not None:
            found = connection.execute(query).scalar()
        else:
            with self.reader.connect() as reading:
                found = reading.execute(query).scalar()
        return int(found or 0)

    def load_clock_offset(self) -> int:
        """Read the stored clock offset into :attr:`clock_offset` (at start)."""
        self.clock_offset = self._read_offset(None)
        return self.clock_offset

    def advance_clock(self, seconds: int) -> int:
        """Move the simulated clock ``seconds`` ahead for every replica; returns the new time."""
        if seconds < 0:
            raise UsageError("the clock only moves forward")
        table = SERVICE_SETTINGS
        with self.engine.begin() as connection:
            moved = connection.execute(
                table.update()
                .where(table.c.id == HEAD_ROW)
                .values(clock_offset=table.c.clock_offset + seconds)
            )
            if moved.rowcount != 1:
                raise RecoveryError("the service settings row is missing: start the service once first")
            offset = int(
                connection.execute(sa.select(table.c.clock_offset).where(table.c.id == HEAD_ROW)).scalar_one()
            )
        self.clock_offset = offset
        return int(self.clock()) + offset

    def service_identity(self, chain_id: int, verifying_contract: bytes) -> tuple[int, bytes]:
        """The stored (chainId, verifyingContract), or the given pair stored now at first start."""
        table = SERVICE_SETTINGS
        for _ in range(3):
            with self.reader.connect() as connection:
                row = connection.execute(
                    sa.select(table.c.chain_id, table.c.verifying_contract).where(table.c.id == HEAD_ROW)
                ).one_or_none()
            if row is not None:
                return int(row.chain_id), bytes(row.verifying_contract)
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        table.insert().values(
                            id=HEAD_ROW,
                            chain_id=str(chain_id),
                            verifying_contract=verifying_contract,
                            clock_offset=0,
                            created_at=int(self.clock()),
                        )
                    )
                return chain_id, verifying_contract
            except sa.exc.IntegrityError:
                continue  # another replica made it first: read theirs
        raise ConflictError("the service settings row could not be read or made")

    def due_vaults(self, now: int, limit: int = 500) -> list[str]:
        """Vaults whose state changes by time alone at or before ``now``, the most overdue first."""
        vaults = VAULTS
        with self.reader.connect() as connection:
            return list(
                connection.execute(
                    sa.select(vaults.c.id)
                    .where(vaults.c.due_at.is_not(None), vaults.c.due_at <= now)
                    .order_by(vaults.c.due_at)
                    .limit(limit)
                ).scalars()
            )

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def check(self) -> None:
        """Raise if the database cannot be reached (for ``/healthz``)."""
        with self.reader.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    # -- the one way state changes ------------------------------------------------------------

    def transact(self, vault_id: str, step: Step) -> Committed:
        """Run ``step`` on the vault's state and commit what it returns, exactly once.

        The step must be pure: it may run several times when other writers race (each time on
        the newest state), and only the run whose compare-and-swap succeeds is committed. A
        :class:`RecoveryError` from the step refuses the change and is raised unchanged.
        """
        if not vault_id or len(vault_id) > _ID:
            raise RecoveryError(f"a vault id must be 1 to {_ID} characters")
        early = self._step_early(vault_id, step) if self._single_writer else None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    result = self._attempt(connection, vault_id, step, attempt, early)
                return result
            except _LostRace:
                pass
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc):
                    raise
            _time.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.05)))  # noqa: S311 - jitter
        raise ConflictError(f"vault {vault_id!r} kept changing under {MAX_ATTEMPTS} attempts; try again")

    def _step_early(self, vault_id: str, step: Step) -> _Early | None:
        """SQLite: run the step before the writer lock, on the vault as a reader sees it now.

        A writer holds the database's one writer lock for its whole transaction; running the
        step (decoding the state, the policy, encoding) before taking it shortens that hold. The
        result is only a proposal: :meth:`_attempt` uses it when, under the lock, the vault's
        version and the service time are still those it was computed for, and otherwise runs
        the step again. A step is pure, so either way the committed transition is the one the
        step gives on the state and time under the lock. Refusals and new vaults are left to
        the locked run, which decides them on the state it holds."""
        try:
            with self.reader.connect() as connection:
                row = connection.execute(_LOAD_STATE, {"vault_id": vault_id}).one_or_none()
                now = self.now(connection)
        except sa.exc.DBAPIError:
            return None
        if row is None:
            return None
        try:
            transition = step(bytes(row.state), now)
        except Exception:  # refused (or failed) on this state: the locked run decides and raises
            return None
        return _Early(row.version, now, transition)

    def _attempt(
        self, connection: Connection, vault_id: str, step: Step, attempt: int, early: _Early | None = None
    ) -> Committed:
        row = connection.execute(self._load_for_write, {"vault_id": vault_id}).one_or_none()
        now = self.now(connection)
        version, state = (row.version, bytes(row.state)) if row is not None else (0, None)
        if early is not None and row is not None and (early.version, early.now) == (version, now):
            transition = early.transition
        else:
            transition = step(state, now)
        if not isinstance(transition.state, bytes):
            raise TypeError("a step must return the new state as bytes")
        if transition.state == state and not transition.events:
            return Committed(vault_id, version, transition.state, (), attempt)
        if attempt > 1:
            # The first attempt lets the primary key of used_nonces refuse a used nonce (one round
            # trip less); its IntegrityError brings us here, where the replay is named.
            for signer, nonce in transition.nonces:
                used = connection.execute(_NONCE_USED, {"signer": signer, "nonce": nonce}).first()
                if used is not None:
                    raise ReplayError(f"the message with nonce {nonce!r} from {signer!r} was already used")
        if row is None:
            connection.execute(
                _INSERT_VAULT,
                {
                    "id": vault_id,
                    "version": 1,
                    "state": transition.state,
                    "created_at": now,
                    "updated_at": now,
                    "due_at": transition.due_at,
                },
            )  # a concurrent creator makes this an IntegrityError: the next attempt sees its vault
        else:
            swapped = connection.execute(
                _SWAP_VAULT,
                {
                    "vault_id": vault_id,
                    "expected": version,
                    "new_version": version + 1,
                    "new_state": transition.state,
                    "now": now,
                    "new_due_at": transition.due_at,
                },
            )
            if swapped.rowcount != 1:
                raise _LostRace
        if transition.nonces:
            connection.execute(
                _INSERT_NONCES,
                [
                    {"signer": signer, "nonce": nonce, "vault_id": vault_id, "used_at": now}
                    for signer, nonce in transition.nonces
                ],
            )
        for request_id in transition.escrow_destroy:
            connection.execute(_DESTROY_ESCROW, {"vault_id": vault_id, "destroyed": request_id})
        if transition.escrow_put:
            connection.execute(
                _INSERT_ESCROW,
                [
                    {
                        "vault_id": vault_id,
                        "request_id": item.request_id,
                        "guardian_id": item.guardian_id,
                        "ciphertext": item.ciphertext,
                        "created_at": now,
                    }
                    for item in transition.escrow_put
                ],
            )
        head = (row.head_seq, row.head_hash) if self._single_writer and row is not None else None
        entries = self._append(connection, vault_id, transition.events, now, head)
        deliveries = 0
        if row is None or row.subscribed:  # a new vault: only the lookup knows (rare)
            deliveries = self._enqueue(connection, vault_id, entries, now)
        return Committed(vault_id, version + 1, transition.state, tuple(entries), attempt, deliveries)

    def _append(
        self,
        connection: Connection,
        vault_id: str,
        events: Sequence[Event],
        now: int,
        head: tuple[int | None, bytes | None] | None = None,
    ) -> list[AuditEntry]:
        """Chain ``events`` onto the audit log; ``head`` is the (seq, hash) already read in this
        transaction under the SQLite writer lock (None: lock and read the head row now)."""
        if not events:
            return []
        current: Any
        if head is not None:
            current = None if head[0] is None or head[1] is None else _Head(head[0], bytes(head[1]))
        else:
            current = connection.execute(_LOCK_HEAD).one_or_none()
        if current is None:
            seq, prev = 0, audit.GENESIS
            connection.execute(_INSERT_HEAD, {"id": HEAD_ROW, "seq": 0, "hash": prev})
        else:
            seq, prev = current.seq, bytes(current.hash)
        entries: list[AuditEntry] = []
        for item in events:
            seq += 1
            entry = audit.append(
                prev,
                seq,
                time=now,
                vault=vault_id,
                actor=item.actor,
                action=item.action,
                message=item.message,
                details=item.details,
            )
            entries.append(entry)
            prev = entry.hash
        connection.execute(
            _INSERT_AUDIT,
            [
                {
                    "seq": e.seq,
                    "time": e.time,
                    "vault_id": e.vault,
                    "actor": e.actor,
                    "action": e.action,
                    "message": e.message,
                    "details": _details_text(e.details),
                    "prev": e.prev,
                    "hash": e.hash,
                }
                for e in entries
            ],
        )
        connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
        return entries

    def _enqueue(self, connection: Connection, vault_id: str, entries: Sequence[AuditEntry], now: int) -> int:
        """Write the outbox rows of ``entries``; returns how many."""
        if not entries:
            return 0
        targets = connection.execute(_TARGETS, {"vault_id": vault_id}).all()
        rows = []
        for entry in entries:
            for target in targets:
                delivery = secrets.token_hex(16)
                rows.append(
                    {
                        "delivery_id": delivery,
                        "webhook_id": target.id,
                        "audit_seq": entry.seq,
                        "url": target.url,
                        "payload": webhooks.payload(delivery, entry),
                        "status": PENDING,
                        "attempts": 0,
                        "next_attempt_at": float(now),
                        "lease_until": None,
                        "last_error": None,
                        "created_at": now,
                        "delivered_at": None,
                    }
                )
        if rows:
            connection.execute(_INSERT_OUTBOX, rows)
        return len(rows)

    # -- reads --------------------------------------------------------------------------------

    def load(self, vault_id: str) -> tuple[int, bytes]:
        """The vault's (version, state); :class:`VaultNotFound` when there is none."""
        vaults = VAULTS
        with self.reader.connect() as connection:
            row = connection.execute(
                sa.select(vaults.c.version, vaults.c.state).where(vaults.c.id == vault_id)
            ).one_or_none()
        if row is None:
            raise VaultNotFound(f"no vault {vault_id!r}")
        return row.version, bytes(row.state)

    def vault_ids(self) -> list[str]:
        vaults = VAULTS
        with self.reader.connect() as connection:
            return list(connection.execute(sa.select(vaults.c.id).order_by(vaults.c.id)).scalars())

    def escrow_bundle(self, vault_id: str, request_id: str) -> list[EscrowItem]:
        """The ciphertexts stored for one request, by guardian."""
        escrow = ESCROW
        with self.reader.connect() as connection:
            rows = connection.execute(
                sa.select(escrow.c.request_id, escrow.c.guardian_id, escrow.c.ciphertext)
                .where(escrow.c.vault_id == vault_id, escrow.c.request_id == request_id)
                .order_by(escrow.c.guardian_id)
            ).all()
        return [EscrowItem(r.request_id, r.guardian_id, bytes(r.ciphertext)) for r in rows]

    def audit_head(self) -> tuple[int, bytes]:
        """The chain's newest (seq, hash); (0, zeros) before the first entry."""
        head = AUDIT_HEAD
        with self.reader.connect() as connection:
            row = connection.execute(
                sa.select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ROW)
            ).one_or_none()
        return (0, audit.GENESIS) if row is None else (row.seq, bytes(row.hash))

    def audit_hash_at(self, seq: int) -> bytes | None:
        """The hash of entry ``seq`` (None when the chain is shorter)."""
        with self.reader.connect() as connection:
            found = connection.execute(sa.select(AUDIT.c.hash).where(AUDIT.c.seq == seq)).scalar()
        return None if found is None else bytes(found)

    def audit_entries(self, *, up_to: int | None = None, batch: int = 1000) -> Iterator[AuditEntry]:
        """Every entry from seq 1 (to ``up_to``), read in batches so an export streams."""
        rows = AUDIT
        after = 0
        while True:
            query = sa.select(rows).where(rows.c.seq > after).order_by(rows.c.seq).limit(batch)
            if up_to is not None:
                query = query.where(rows.c.seq <= up_to)
            with self.reader.connect() as connection:
                found = connection.execute(query).all()
            for r in found:
                yield AuditEntry(
                    r.seq,
                    r.time,
                    r.vault_id,
                    r.actor,
                    r.action,
                    bytes(r.message),
                    _details_value(r.details),
                    bytes(r.prev),
                    bytes(r.hash),
                )
            if len(found) < batch:
                return
            after = found[-1].seq

    # -- webhooks and service keys ------------------------------------------------------------

    def add_webhook(
        self, url: str, *, vault_id: str | None = None, secret: bytes | None = None
    ) -> tuple[str, bytes]:
        """Subscribe ``url`` to one vault's entries (or every vault's); returns (id, secret)."""
        if not url.startswith(("https://", "http://")) or len(url) > 2048:
            raise webhooks.WebhookError(
                f"a webhook URL must be http(s):// and at most 2048 characters, not {url[:80]!r}"
            )
        hook_id = "wh-" + secrets.token_hex(8)
        secret = webhooks.new_secret() if secret is None else secret
        with self.engine.begin() as connection:
            connection.execute(
                WEBHOOKS.insert().values(
                    id=hook_id, vault_id=vault_id, url=url, secret=secret, created_at=self.now()
                )
            )
        return hook_id, secret

    def webhooks(self) -> list[Webhook]:
        """Every subscribed endpoint, oldest first, with its deliveries counted by status."""
        hooks, outbox = WEBHOOKS, OUTBOX
        with self.reader.connect() as connection:
            rows = connection.execute(
                sa.select(hooks.c.id, hooks.c.vault_id, hooks.c.url, hooks.c.created_at).order_by(
                    hooks.c.created_at, hooks.c.id
                )
            ).all()
            counts: dict[str, dict[str, int]] = {}
            for hook_id, status, number in connection.execute(
                sa.select(outbox.c.webhook_id, outbox.c.status, sa.func.count()).group_by(
                    outbox.c.webhook_id, outbox.c.status
                )
            ):
                counts.setdefault(hook_id, {})[status] = int(number)
        return [
            Webhook(
                id=r.id,
                vault_id=r.vault_id,
                url=r.url,
                created_at=int(r.created_at),
                deliveries={s: counts.get(r.id, {}).get(s, 0) for s in (PENDING, DELIVERED, DEAD)},
            )
            for r in rows
        ]

    def remove_webhook(self, hook_id: str) -> bool:
        """Unsubscribe an endpoint; its outbox rows go with it (the schema's ON DELETE CASCADE), so
        nothing more is sent to it."""
        with self.engine.begin() as connection:
            removed = connection.execute(WEBHOOKS.delete().where(WEBHOOKS.c.id == hook_id)).rowcount
        return bool(removed)

    def register_service_key(self, public_key: bytes) -> None:
        keys = SERVICE_KEYS
        for _ in range(3):
            try:
                with self.engine.begin() as connection:
                    known = connection.execute(
                        sa.select(keys.c.public_key).where(keys.c.public_key == public_key)
                    ).first()
                    if known is None:
                        connection.execute(keys.insert().values(public_key=public_key, created_at=self.now()))
                return
            except sa.exc.IntegrityError:
                continue  # another replica registered it at the same moment

    def service_keys(self) -> list[bytes]:
        keys = SERVICE_KEYS
        with self.reader.connect() as connection:
            return [
                bytes(k)
                for k in connection.execute(
                    sa.select(keys.c.public_key).order_by(keys.c.created_at)
                ).scalars()
            ]


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: bytes


@dataclass(frozen=True)
class _Early:
    """A step's transition computed before the writer lock, for this version and service time."""

    version: int
    now: int
    transition: Transition


class _LostRace(Exception):
    """The vault's version moved between read and write."""


def _details_text(details: Mapping[str, Any]) -> str:
    return canonical_json(dict(details)).decode("ascii")


def _details_value(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise RecoveryError("an audit entry's details in the database are not an object")
    return value
