"""Record snapshots in a repository: prolly nodes, signed statements, journals, known-good rollback.

The pure parts live beside this module: the tree (:mod:`~lifeboat.state.prolly`), what a
snapshot asserts and its signature (:mod:`~lifeboat.state.statement`), record changes
(:mod:`~lifeboat.state.journal`), invariants (:mod:`~lifeboat.state.invariants`) and the
sources and sinks (:mod:`~lifeboat.state.records`). This module stores and reads them:

* every tree node is a blob of type ``BLOB_STATE`` stored under its own node id, so a new
  snapshot writes only the nodes the repository does not have yet (the changed paths);
* a snapshot is a repository manifest of kind ``state`` holding the statement and, once signed,
  its signature; statements of one name form a hash chain through ``previous``;
* a journal segment is a blob (the encoded changes) named by a manifest of kind
  ``state-journal``; restoring to a sequence number replays the segments after a snapshot.

Readers check every node against its id (:class:`~lifeboat.state.prolly.NodeSource` readers
do), and every statement against its signature before trusting what it says.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from lifeboat.errors import InputError, LifeboatError, RecordError, StateError, UsageError
from lifeboat.state import journal as journal_format
from lifeboat.state import parallel, prolly
from lifeboat.state.invariants import InvariantChecker, InvariantReport, Invariants
from lifeboat.state.journal import Change
from lifeboat.state.record import show_key
from lifeboat.state.records import JsonLinesSource, RecordSpec, Source, SourceRecord, open_sink, open_source
from lifeboat.state.statement import (
    Signer,
    Statement,
    check_chain,
    check_record,
    record_spec,
    sign,
    utc_now,
    verify_signature,
)
from lifeboat.store.packs import BLOB_DATA, BLOB_STATE
from lifeboat.store.repository import Manifest, Repository

__all__ = [
    "DEFAULT_FANOUT",
    "DEFAULT_LEAF_FANOUT",
    "JOURNAL_KIND",
    "STATE_KIND",
    "JournalResult",
    "RepositoryNodes",
    "Rollback",
    "Signing",
    "SnapshotResult",
    "StateDiff",
    "StateSnapshot",
    "VerifyReport",
    "Written",
    "append_and_apply_journal",
    "append_journal",
    "apply_journal",
    "attach_signature",
    "check_records",
    "diff_records",
    "diff_snapshots",
    "find_state",
    "journal_segments",
    "known_good",
    "records_at",
    "repository_signing",
    "roll_back",
    "snapshot_records",
    "state_snapshots",
    "verify_states",
]

STATE_KIND: Final = "state"
JOURNAL_KIND: Final = "state-journal"
DEFAULT_FANOUT: Final = 64
#: Small leaves keep the bytes a scattered change rewrites low: with 7, 1% of changed records
#: rewrite 14.6% of the node bytes, with 8 15.8%, with 6 13.5% (docs/benchmarks.md).
DEFAULT_LEAF_FANOUT: Final = 7
#: Keys of examples kept in a diff report.
DIFF_EXAMPLES: Final = 20

Progress = Callable[[int], None]


class RepositoryNodes:
    """Tree nodes read from a repository (the tree's reader checks each against its id).

    :meth:`prefetch` decodes a node's pack on a background thread (:func:`prolly.scan` announces
    the leaves it will read), so that reading a whole tree overlaps waiting for the stores and
    decoding with parsing: state nodes live in small packs (``STATE_PACK_SIZE``).
    """

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._ahead: OrderedDict[bytes, Future[object]] = OrderedDict()

    def get(self, node_id: bytes, /) -> bytes:
        if self._ahead:
            location = self.repo.index.lookup(node_id)
            pending = None if location is None else self._ahead.get(location.pack)
            if pending is not None:
                # its error, if any, is raised again by load_blob on this thread
                concurrent.futures.wait([pending])
        return self.repo.load_blob(node_id)

    def prefetch(self, node_id: bytes, /) -> None:
        location = self.repo.index.lookup(node_id)
        if location is None or location.pack in self._ahead:
            return
        self._ahead[location.pack] = _read_ahead().submit(self.repo.load_pack, location.pack)
        while len(self._ahead) > READ_AHEAD_PACKS:
            self._ahead.popitem(last=False)


#: Packs :class:`RepositoryNodes` remembers having asked for ahead (a few more than a scan's window).
READ_AHEAD_PACKS: Final = 64
_read_ahead_pool: list[ThreadPoolExecutor] = []


def _read_ahead() -> ThreadPoolExecutor:
    """The threads that decode packs ahead of a reader (one process-wide pool, made on first use)."""
    if not _read_ahead_pool:
        _read_ahead_pool.append(ThreadPoolExecutor(max_workers=2, thread_name_prefix="lifeboat-read-ahead"))
    return _read_ahead_pool[0]


@dataclass(frozen=True)
class Signing:
    """Who signs new statements: an Ed25519 seed, or nobody yet (a FROST group signs later)."""

    signer: Signer
    seed: bytes | None

    def signature_for(self, statement: Statement) -> bytes | None:
        return None if self.seed is None else sign(statement, self.seed)


def repository_signing(repo: Repository) -> Signing:
    """Sign with the repository's own Ed25519 key (the default)."""
    return Signing(Signer("ed25519", repo.signing_key), repo.signing_seed)


@dataclass(frozen=True)
class StateSnapshot:
    """A stored record snapshot: its manifest, its statement, and its signature (None: unsigned)."""

    manifest: Manifest
    statement: Statement
    signature: bytes | None

    @property
    def digest(self) -> bytes:
        return self.statement.digest()

    @property
    def short_id(self) -> str:
        return self.digest.hex()[:8]

    def signature_problem(self, trust: bytes | None = None) -> str | None:
        """Why the statement is not validly signed (by ``trust``, if given), or None."""
        if self.signature is None:
            return "not signed yet (awaiting its FROST signature: `lifeboat state attest`)"
        try:
            verify_signature(self.statement, self.signature)
        except StateError as exc:
            return str(exc)
        if trust is not None and self.statement.signer.public_key != trust:
            return f"signed by {self.statement.signer.public_key.hex()}, not by the trusted key {trust.hex()}"
        return None


def _state_of(manifest: Manifest) -> StateSnapshot:
    payload = manifest.payload
    statement = Statement.from_json(payload.get("statement"), what=f"state snapshot {manifest.short_id}")
    attestation = payload.get("attestation")
    signature: bytes | None = None
    if attestation is not None:
        try:
            signature = bytes.fromhex(str(attestation["signature"]))
        except (TypeError, KeyError, ValueError):
            raise StateError(f"state snapshot {manifest.short_id} has a malformed attestation") from None
    return StateSnapshot(manifest, statement, signature)


@dataclass(frozen=True)
class Damaged:
    """A manifest that may be a record snapshot but cannot be read: its dataset name when the
    manifest says (None for a manifest that cannot be read at all) and why, naming it."""

    name: str | None
    why: str


def _read_states(repo: Repository) -> tuple[list[StateSnapshot], list[Damaged]]:
    found: list[StateSnapshot] = []
    damaged: list[Damaged] = []
    for manifest in repo.manifests(STATE_KIND):
        try:
            found.append(_state_of(manifest))
        except LifeboatError as exc:
            statement = manifest.payload.get("statement")
            named = statement.get("name") if isinstance(statement, dict) else None
            damaged.append(Damaged(named if isinstance(named, str) else None, str(exc)))
    damaged.extend(Damaged(None, f"{key}: {why}") for key, why in repo.bad_manifests.items())
    return found, damaged


def state_snapshots(repo: Repository, name: str | None = None) -> tuple[list[StateSnapshot], list[str]]:
    """The record snapshots (of ``name``), oldest first, and why any could not be read."""
    return _unique(_read_states(repo), name)


def _unique(
    read: tuple[list[StateSnapshot], list[Damaged]], name: str | None
) -> tuple[list[StateSnapshot], list[str]]:
    found = [snap for snap in read[0] if name is None or snap.statement.name == name]
    problems = [damage.why for damage in read[1]]
    # One statement may be stored twice (an `attest` interrupted between writing the signed copy
    # and deleting the unsigned one): keep one copy, the signed one if there is one.
    unique: dict[bytes, StateSnapshot] = {}
    for snap in found:
        kept = unique.get(snap.digest)
        if kept is None or (kept.signature is None and snap.signature is not None):
            unique[snap.digest] = snap
    found = sorted(unique.values(), key=lambda s: (s.statement.time, s.statement.sequence, s.digest))
    return found, problems


def _one_name(snapshots: Sequence[StateSnapshot], name: str | None) -> str:
    names = sorted({s.statement.name for s in snapshots})
    if name is not None:
        return name
    if len(names) > 1:
        raise UsageError(
            f"the repository holds record snapshots of {', '.join(names)}; choose one with --name"
        )
    if not names:
        raise InputError("the repository has no record snapshots yet (`lifeboat state snapshot`)")
    return names[0]


def find_state(repo: Repository, ref: str, name: str | None = None) -> StateSnapshot:
    """A record snapshot by id prefix (of its statement digest, 4+ hex digits) or ``latest``."""
    snapshots, _ = state_snapshots(repo, name)
    if ref == "latest":
        chosen = _one_name(snapshots, name)
        ofname = [s for s in snapshots if s.statement.name == chosen]
        if not ofname:
            raise InputError(f"no record snapshot named {chosen!r}")
        return ofname[-1]
    text = ref.lower()
    if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"record snapshot {ref!r}: give 'latest' or at least 4 hex digits of its id")
    matches = [s for s in snapshots if s.digest.hex().startswith(text)]
    if not matches:
        raise InputError(f"no record snapshot with id {ref!r}; `lifeboat state list` shows them")
    if len(matches) > 1:
        raise InputError(f"record snapshot id {ref!r} is ambiguous ({len(matches)} match); give more digits")
    return matches[0]


# --- snapshotting ------------------------------------------------------------------------------


@dataclass
class Written:
    """The tree nodes a snapshot stored and found already stored."""

    nodes_new: int = 0
    nodes_known: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0


@dataclass
class SnapshotResult:
    """What :func:`snapshot_records` or :func:`apply_journal` stored."""

    snapshot: StateSnapshot
    written: Written


def _latest(repo: Repository, name: str) -> StateSnapshot | None:
    """The newest snapshot of ``name``, for a new one to follow (refused while any cannot be read:
    the unreadable one might be the newest, and linking past it would fork the chain)."""
    snapshots, problems = state_snapshots(repo, name)
    if problems:
        raise StateError(
            f"{len(problems)} snapshot manifest(s) cannot be read ({problems[0]}); a new record snapshot "
            "could fork its chain: run `lifeboat check` and `lifeboat repair` first"
        )
    return snapshots[-1] if snapshots else None


def _time_after(previous: StateSnapshot | None) -> str:
    """Now, or the previous statement's time if the clock is behind it (times never go back)."""
    now = utc_now()
    return now if previous is None or now >= previous.statement.time else previous.statement.time


def _journal_end(repo: Repository, name: str) -> int | None:
    segments = journal_segments(repo, name)
    return max((segment.last for segment in segments), default=None)


class _TreeWriters:
    """Stores a tree's nodes: the leaves in packs of their own, the internal nodes in others.

    A proof reads a node of every level; kept apart, the few internal nodes fill a few packs,
    which stay decoded in the repository's pack cache, and a proof made cold decodes little
    more than its leaf's pack (``STATE_PACK_SIZE``, docs/formats.md).
    """

    def __init__(self, repo: Repository) -> None:
        self.leaves = repo.writer()
        self.upper = repo.writer()
        self.added = 0

    def __enter__(self) -> _TreeWriters:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.upper.__exit__(exc_type, exc, tb)
        finally:
            self.leaves.__exit__(exc_type, exc, tb)

    def store(self, nodes: Iterable[prolly.Node]) -> None:
        leaves, upper = self.leaves.add_blob, self.upper.add_blob
        for node in nodes:
            (upper if node.level else leaves)(BLOB_STATE, node.data, node.node_id)
            self.added += 1

    def written(self) -> Written:
        """What was stored (once both writers are flushed); a node added twice counts as known."""
        stats = (self.leaves.stats, self.upper.stats)
        new = sum(s.blobs_new for s in stats)
        return Written(
            nodes_new=new,
            nodes_known=self.added - new,
            bytes_new=sum(s.bytes_new_raw for s in stats),
            bytes_stored=sum(s.bytes_stored for s in stats),
        )


def _store_tree(repo: Repository, nodes: Iterable[prolly.Node]) -> Written:
    with _TreeWriters(repo) as writers:
        writers.store(nodes)
    return writers.written()


def _build_full(
    repo: Repository,
    source: Source,
    records: Callable[[], Iterable[tuple[bytes, bytes, tuple[int, ...]]]],
    *,
    one_by_one: bool,
    fanout: int,
    leaf_fanout: int,
    progress: Progress | None,
) -> tuple[prolly.Build, Written]:
    """Build and store the tree of every record of ``source``: a large JSON Lines file is cut
    into leaves on worker processes (:mod:`lifeboat.state.parallel`), unless ``one_by_one``
    (the records are checked against invariants) or its lines need the careful reading."""
    sum_fields = len(source.spec.sum_fields)
    workers = parallel.worker_count()
    with _TreeWriters(repo) as writers:
        build: prolly.Build | None = None
        if (
            not one_by_one
            and workers
            and isinstance(source, JsonLinesSource)
            and (source.total or 0) >= parallel.MIN_PARALLEL_BYTES
        ):
            counted: list[int] = []
            source.progress = progress
            runs = parallel.leaf_runs(
                source.blocks(),
                source.spec,
                fanout=fanout,
                leaf_fanout=leaf_fanout,
                workers=workers,
                counted=counted,
            )
            joined = prolly.build_runs(runs, fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
            try:
                with contextlib.closing(runs):
                    writers.store(joined)
                build = joined
                source.records = sum(counted)
            except parallel.Unusual:
                # Read again one record at a time: the same tree (the nodes stored so far are
                # its own, known now), or the error that names the line.
                source.progress = None
                source.rewind()
                writers.added = 0
        if build is None:
            build = prolly.build(records(), fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
            writers.store(build)
    return build, writers.written()


def _put_statement(repo: Repository, statement: Statement, signature: bytes | None) -> StateSnapshot:
    payload: dict[str, Any] = {
        "kind": STATE_KIND,
        "name": statement.name,
        "statement": statement.to_json(),
        "attestation": None if signature is None else {"signature": signature.hex()},
        "time": statement.time,
    }
    manifest = repo.put_manifest(payload)
    return StateSnapshot(manifest, statement, signature)


def snapshot_records(
    repo: Repository,
    source: Source,
    spec: RecordSpec,
    *,
    name: str,
    signing: Signing,
    invariants: Invariants | None = None,
    sequence: int | None = None,
    fanout: int = DEFAULT_FANOUT,
    leaf_fanout: int = DEFAULT_LEAF_FANOUT,
    progress: Progress | None = None,
) -> SnapshotResult:
    """Snapshot every record of ``source``: the tree's new nodes, then the signed statement."""
    if not name:
        raise UsageError("a record snapshot needs a name (--name)")
    # Exclusive: two writers reading the same newest statement would both link to it (a fork).
    with repo.lock(exclusive=True, operation="state snapshot"):
        repo.reload_index()
        previous = _latest(repo, name)
        _check_signer(previous, signing.signer)
        sequence = _sequence_for(repo, name, previous, sequence)
        checker = None if invariants is None else InvariantChecker(invariants)

        def records() -> Iterator[tuple[bytes, bytes, tuple[int, ...]]]:
            for count, record in enumerate(source, 1):
                if checker is not None:
                    checker.feed(record.key.decode("utf-8", "surrogateescape"), record.document)
                yield record.key, record.value, record.sums
                if progress is not None and count % 4096 == 0:
                    progress(source.bytes_read)
            if progress is not None:
                progress(source.bytes_read)

        if _can_update(previous, checker, spec, fanout, leaf_fanout):
            assert previous is not None
            # Only what differs from the previous snapshot is read closely and rewritten.
            nodes = RepositoryNodes(repo)
            source.progress = progress
            edits = _as_edits(source.differences(prolly.scan(nodes, previous.statement.root)))
            # verify=False: nodes come out of AEAD-sealed packs (docs/threat-model.md).
            build = prolly.update(nodes, previous.statement.root, edits, verify=False)
            written = _store_tree(repo, build)
        else:
            build, written = _build_full(
                repo,
                source,
                records,
                one_by_one=checker is not None,
                fanout=fanout,
                leaf_fanout=leaf_fanout,
                progress=progress,
            )
        tree = build.tree
        if tree.count != source.records:
            # The update path trusts the old tree's records (read without hashing); a damaged one
            # that lost or gained records shows here, before anything is signed.
            raise StateError(
                f"the new tree holds {tree.count} records, the source {source.records}; the previous "
                "snapshot's tree is damaged: run `lifeboat state verify --read-data`"
            )
        report = None if checker is None else checker.finish().to_json()
        statement = Statement(
            name=name,
            root=tree.root,
            count=tree.count,
            sum_fields=spec.sum_fields,
            totals=tree.totals,
            fanout=tree.fanout,
            leaf_fanout=tree.leaf_fanout,
            key_field=spec.key_field,
            source=source.describe(),
            time=_time_after(previous),
            sequence=sequence,
            invariants=report,
            previous=None if previous is None else previous.digest,
            signer=signing.signer,
        )
        return SnapshotResult(_put_statement(repo, statement, signing.signature_for(statement)), written)


def _can_update(
    previous: StateSnapshot | None,
    checker: InvariantChecker | None,
    spec: RecordSpec,
    fanout: int,
    leaf_fanout: int,
) -> bool:
    """Whether a new snapshot can be made as an update of ``previous`` (the same tree shape and
    record spec; and no invariants to check, which need every record parsed anyway)."""
    if previous is None or checker is not None:
        return False
    s = previous.statement
    return (s.key_field, s.sum_fields, s.fanout, s.leaf_fanout) == (
        spec.key_field,
        spec.sum_fields,
        fanout,
        leaf_fanout,
    )


def _as_edits(differences: Iterable[SourceRecord | bytes]) -> Iterator[prolly.Record | prolly.Delete]:
    for item in differences:
        yield (
            prolly.Delete(item) if isinstance(item, bytes) else prolly.Record(item.key, item.value, item.sums)
        )


def _sequence_for(repo: Repository, name: str, previous: StateSnapshot | None, sequence: int | None) -> int:
    """The journal sequence number a new snapshot from a source reflects."""
    before = previous.statement.sequence if previous is not None else 0
    if sequence is not None:
        if sequence < before:
            raise UsageError(
                f"--sequence {sequence} is below the newest snapshot's ({before}); sequence numbers never go back"
            )
        return sequence
    end = _journal_end(repo, name)
    if end is not None and end > before:
        raise UsageError(
            f"the journal of {name!r} holds changes {before + 1}..{end} after the newest snapshot; "
            "say which of them the source already includes with --sequence N"
        )
    return before


def _check_signer(previous: StateSnapshot | None, signer: Signer) -> None:
    if previous is not None and previous.statement.signer != signer:
        raise UsageError(
            f"the chain of {previous.statement.name!r} is signed by {previous.statement.signer.scheme} key "
            f"{previous.statement.signer.public_key.hex()}; sign new snapshots with the same key "
            "(or start a new chain under another --name)"
        )


def attach_signature(repo: Repository, snap: StateSnapshot, signature: bytes) -> StateSnapshot:
    """Store ``snap`` again with ``signature`` (a FROST group's), after checking it; drop the unsigned copy."""
    verify_signature(snap.statement, signature)
    with repo.lock(exclusive=True, operation="state attest"):
        copies = [m for m in repo.manifests(STATE_KIND) if _digest_of(m) == snap.digest]
        signed = next((m for m in copies if m.payload.get("attestation") is not None), None)
        leftovers = [m for m in copies if m.payload.get("attestation") is None]
        if signed is not None and not leftovers:
            raise UsageError(f"record snapshot {snap.short_id} is already signed")
        result = _state_of(signed) if signed is not None else _put_statement(repo, snap.statement, signature)
        for manifest in leftovers:  # the unsigned copy (also the one an interrupted attest left)
            repo.delete_manifest(manifest.id)
        return result


def _digest_of(manifest: Manifest) -> bytes | None:
    try:
        return _state_of(manifest).digest
    except LifeboatError:
        return None


# --- journals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stored journal segment: its manifest and its header fields."""

    manifest: Manifest
    name: str
    base: bytes
    first: int
    last: int
    count: int
    blob: bytes


@dataclass
class JournalResult:
    """What :func:`append_journal` did."""

    stored: int = 0
    skipped: int = 0
    first: int | None = None
    last: int | None = None
    segment: Segment | None = None
    #: True when every change after the snapshot was stored already (the same journal appended
    #: twice); ``first`` and ``last`` then say which.
    duplicate: bool = False


def journal_segments(repo: Repository, name: str) -> list[Segment]:
    """The journal segments of ``name``, in order of their first sequence number."""
    segments = []
    for manifest in repo.manifests(JOURNAL_KIND):
        payload = manifest.payload
        if payload.get("name") != name:
            continue
        try:
            segments.append(
                Segment(
                    manifest,
                    name,
                    bytes.fromhex(str(payload["base"])),
                    int(payload["first"]),
                    int(payload["last"]),
                    int(payload["count"]),
                    bytes.fromhex(str(payload["blob"])),
                )
            )
        except (KeyError, TypeError, ValueError):
            raise StateError(f"journal segment {manifest.short_id} is malformed") from None
    segments.sort(key=lambda s: (s.first, s.last, s.manifest.id))
    return segments


def append_journal(repo: Repository, name: str, lines: Iterable[bytes], *, what: str) -> JournalResult:
    """Store the changes in ``lines`` that come after the newest snapshot of ``name``.

    The journal is append-only. Changes at or below the snapshot's sequence number are already
    in it and are skipped. Changes at or below the last stored sequence number must be stored
    changes, byte for byte (appending the same journal again, or a longer copy of it, stores
    only what is new); one that differs or that was never stored is refused, since it would
    rewrite the history earlier point-in-time restores read. A delete must name a key that
    exists at that point of the history. Nothing is stored when a change is refused.
    """
    with repo.lock(exclusive=True, operation="state journal"):
        repo.reload_index()
        base = _latest(repo, name)
        if base is None:
            raise InputError(f"no record snapshot named {name!r}; a journal follows a snapshot")
        return _append(repo, name, base, lines, what=what).result


@dataclass
class _Appended:
    """What :func:`_append` did, and every change after the base snapshot (stored before, then new)."""

    result: JournalResult
    changes: list[Change]


def _append(
    repo: Repository, name: str, base: StateSnapshot, lines: Iterable[bytes], *, what: str
) -> _Appended:
    """:func:`append_journal` under its lock, ``base`` the newest snapshot of ``name``."""
    key_field = base.statement.key_field
    spec = _spec_of(base.statement)
    after = base.statement.sequence
    try:
        stored = _changes(repo, name, after, None)
    except StateError as exc:
        raise StateError(f"{exc}; the stored journal of {name!r} must be readable to append to it") from None
    stored_at = {change.seq: change for change in stored}
    end = stored[-1].seq if stored else after
    # Whether each key touched since the snapshot exists; other keys are looked up in it.
    exists = {change.key: change.value is not None for change in stored}
    nodes = RepositoryNodes(repo)
    result = JournalResult()
    fresh: list[Change] = []
    repeated: list[Change] = []
    for change in journal_format.parse_changes(lines, key_field=key_field, what=what):
        if change.seq <= after:
            result.skipped += 1
            continue
        if change.seq <= end:
            known = stored_at.get(change.seq)
            if known is None:
                raise RecordError(
                    f"{what}: change {change.seq} comes before the last stored change {end} of the "
                    f"journal of {name!r}, which is append-only: new changes must come after {end}"
                )
            if known != change:
                raise RecordError(
                    f"{what}: journal seq {change.seq} appears twice with different changes "
                    f"({known.op} {known.key!r} stored, {change.op} {change.key!r} given); "
                    "the stored journal keeps its changes"
                )
            repeated.append(change)
            continue
        where = f"{what}: change {change.seq}"
        key = change.key.encode("utf-8", "surrogateescape")
        if change.value is None:
            present = exists.get(change.key)
            if present is None:
                present = prolly.lookup(nodes, base.statement.root, key) is not None
            if not present:
                raise RecordError(
                    f"{where} deletes the key {change.key!r}, which does not exist at that point of "
                    f"the history; nothing was stored"
                )
        else:  # the record must be one a snapshot could hold
            document = orjson.loads(change.value)
            if key_field not in document or spec.key_of(document, where) != key:
                raise RecordError(f"{where}: the record must hold its key in the field {key_field!r}")
            spec.sums_of(document, where, key)
        exists[change.key] = change.value is not None
        fresh.append(change)
    result.skipped += len(repeated)
    if not fresh:
        if repeated:
            result.duplicate = True
            result.first, result.last = repeated[0].seq, repeated[-1].seq
        return _Appended(result, stored)
    data = journal_format.encode_segment(name, base.digest, fresh)
    blob_id = repo.blob_id(data)
    result.first, result.last = fresh[0].seq, fresh[-1].seq
    with repo.writer() as writer:
        writer.add_blob(BLOB_DATA, data, blob_id)
    manifest = repo.put_manifest(
        {
            "kind": JOURNAL_KIND,
            "name": name,
            "base": base.digest.hex(),
            "first": fresh[0].seq,
            "last": fresh[-1].seq,
            "count": len(fresh),
            "blob": blob_id.hex(),
        }
    )
    result.stored = len(fresh)
    result.segment = Segment(manifest, name, base.digest, fresh[0].seq, fresh[-1].seq, len(fresh), blob_id)
    # The segment stored is these changes: what apply reads back from it, not re-read here.
    return _Appended(result, stored + fresh)


def _changes(
    repo: Repository, name: str, after: int, through: int | None, segments: Sequence[Segment] | None = None
) -> list[Change]:
    """The changes of ``name``'s journal (of ``segments``, when already listed) in the window."""
    if segments is None:
        segments = journal_segments(repo, name)
    wanted = [s for s in segments if s.last > after and (through is None or s.first <= through)]
    return journal_format.merge(_segment_changes(repo, wanted), after=after, through=through)


def _segment_changes(repo: Repository, segments: Iterable[Segment]) -> list[Sequence[Change]]:
    """The changes stored in each of ``segments``."""
    return [
        journal_format.decode_segment(
            repo.load_blob(s.blob), f"journal segment {s.manifest.short_id}"
        ).changes
        for s in segments
    ]


def _edits(changes: Sequence[Change], spec: RecordSpec) -> list[prolly.Record | prolly.Delete]:
    """The last change of each key, as tree edits in key order."""
    last: dict[bytes, Change] = {}
    for change in changes:
        last[change.key.encode("utf-8", "surrogateescape")] = change
    edits: list[prolly.Record | prolly.Delete] = []
    for key in sorted(last):
        change = last[key]
        if change.value is None:
            edits.append(prolly.Delete(key))
        else:
            where = f"journal change {change.seq}"
            document = orjson.loads(change.value)
            edits.append(prolly.Record(key, change.value, spec.sums_of(document, where, key)))
    return edits


def _spec_of(statement: Statement) -> RecordSpec:
    return RecordSpec(statement.key_field, statement.sum_fields)


def apply_journal(
    repo: Repository,
    name: str,
    *,
    signing: Signing,
    through: int | None = None,
    invariants: Invariants | None = None,
) -> SnapshotResult | None:
    """A new snapshot: the newest one of ``name`` with its journal applied (None: nothing to apply).

    Only the paths the changes touch are read and rewritten. With ``invariants``, every
    record of the new tree is read once more to check them.
    """
    with repo.lock(exclusive=True, operation="state journal apply"):
        repo.reload_index()
        base = _latest(repo, name)
        if base is None:
            raise InputError(f"no record snapshot named {name!r}")
        _check_signer(base, signing.signer)
        changes = _changes(repo, name, base.statement.sequence, through)
        return _apply(repo, name, base, changes, signing=signing, invariants=invariants)


def append_and_apply_journal(
    repo: Repository,
    name: str,
    lines: Iterable[bytes],
    *,
    what: str,
    signing: Signing,
    invariants: Invariants | None = None,
) -> tuple[JournalResult, SnapshotResult | None]:
    """:func:`append_journal`, then :func:`apply_journal` of every change, under one lock.

    The new snapshot is the one the two calls make (the same root and statement fields but
    its time), but the stored journal is not read back: the changes already stored are
    decoded once, the new ones are the ones just parsed. Nothing is stored when a change is
    refused, or when the signer does not match the base snapshot's.
    """
    with repo.lock(exclusive=True, operation="state journal"):
        repo.reload_index()
        base = _latest(repo, name)
        if base is None:
            raise InputError(f"no record snapshot named {name!r}; a journal follows a snapshot")
        _check_signer(base, signing.signer)
        appended = _append(repo, name, base, lines, what=what)
        applied = _apply(repo, name, base, appended.changes, signing=signing, invariants=invariants)
        return appended.result, applied


def _apply(
    repo: Repository,
    name: str,
    base: StateSnapshot,
    changes: Sequence[Change],
    *,
    signing: Signing,
    invariants: Invariants | None,
) -> SnapshotResult | None:
    """A snapshot of ``base`` with ``changes`` (its journal after it, in seq order) applied."""
    if not changes:
        return None
    spec = _spec_of(base.statement)
    nodes = RepositoryNodes(repo)
    # Nodes come out of AEAD-sealed packs; their ids are not recomputed (docs/threat-model.md).
    build = prolly.update(nodes, base.statement.root, _edits(changes, spec), verify=False)
    written = _store_tree(repo, build)
    tree = build.tree
    report = None
    if invariants is not None:
        checker = InvariantChecker(invariants)
        for record in prolly.iterate(nodes, tree.root):
            checker.feed(record.key.decode("utf-8", "surrogateescape"), orjson.loads(record.value))
        report = checker.finish().to_json()
    source = dict(base.statement.source)
    source["journal"] = {
        "after": base.statement.sequence,
        "through": changes[-1].seq,
        "changes": len(changes),
    }
    statement = Statement(
        name=name,
        root=tree.root,
        count=tree.count,
        sum_fields=base.statement.sum_fields,
        totals=tree.totals,
        fanout=tree.fanout,
        leaf_fanout=tree.leaf_fanout,
        key_field=base.statement.key_field,
        source=source,
        time=_time_after(base),
        sequence=changes[-1].seq,
        invariants=report,
        previous=base.digest,
        signer=signing.signer,
        parent=base.digest,
    )
    return SnapshotResult(_put_statement(repo, statement, signing.signature_for(statement)), written)


def _replayed(repo: Repository, snap: StateSnapshot, through: int | None) -> list[Change]:
    """The journal changes to replay over ``snap`` up to ``through`` (None: none), refusing a
    ``through`` before the snapshot or past the end of the journal."""
    sequence = snap.statement.sequence
    if through is None or through == sequence:
        return []
    if through < sequence:
        raise InputError(
            f"record snapshot {snap.short_id} is at sequence {sequence}, after {through}; choose an older snapshot"
        )
    segments = journal_segments(repo, snap.statement.name)
    end = max((segment.last for segment in segments), default=None)
    if end is None or end < through:
        raise InputError(
            f"the journal of {snap.statement.name!r} ends at sequence {end or sequence}, "
            f"before {through}; nothing is known of the state at {through}"
        )
    return _changes(repo, snap.statement.name, sequence, through, segments)


def records_at(repo: Repository, snap: StateSnapshot, through: int | None = None) -> Iterator[prolly.Record]:
    """The records of ``snap`` with its name's journal replayed up to ``through`` (None: none)."""
    changes = _replayed(repo, snap, through)
    records = prolly.iterate(RepositoryNodes(repo), snap.statement.root)
    return _replay(records, _edits(changes, _spec_of(snap.statement))) if changes else records


def record_at(repo: Repository, snap: StateSnapshot, key: bytes, through: int | None = None) -> bytes | None:
    """One record's value in ``snap`` with the journal replayed up to ``through`` (None: absent).

    Reads the key's path in the tree and the journal, not every record.
    """
    mine = [c for c in _replayed(repo, snap, through) if c.key.encode("utf-8", "surrogateescape") == key]
    if mine:
        return mine[-1].value
    return prolly.lookup(RepositoryNodes(repo), snap.statement.root, key)


def _replay(
    records: Iterator[prolly.Record], edits: list[prolly.Record | prolly.Delete]
) -> Iterator[prolly.Record]:
    pending = iter(edits)
    edit = next(pending, None)
    for record in records:
        while edit is not None and edit.key < record.key:
            if isinstance(edit, prolly.Record):
                yield edit
            edit = next(pending, None)
        if edit is not None and edit.key == record.key:
            if isinstance(edit, prolly.Record):
                yield edit
            edit = next(pending, None)
            continue
        yield record
    while edit is not None:
        if isinstance(edit, prolly.Record):
            yield edit
        edit = next(pending, None)


# --- diffs -------------------------------------------------------------------------------------


@dataclass
class StateDiff:
    """How record set ``b`` differs from ``a``: counts, example keys, and the change of each summed field."""

    sum_fields: tuple[str, ...]
    added: int = 0
    removed: int = 0
    changed: int = 0
    deltas: list[int] = field(default_factory=list)
    examples: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.deltas:
            self.deltas = [0] * len(self.sum_fields)

    def note(self, kind: str, key: bytes, before: tuple[int, ...], after: tuple[int, ...]) -> None:
        if kind == "added":
            self.added += 1
        elif kind == "removed":
            self.removed += 1
        else:
            self.changed += 1
        for i, (x, y) in enumerate(zip(before, after, strict=True)):
            self.deltas[i] += y - x
        if len(self.examples) < DIFF_EXAMPLES:
            self.examples.append((kind, key.decode("utf-8", "backslashreplace")))

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "sum_deltas": {
                name: str(delta) for name, delta in zip(self.sum_fields, self.deltas, strict=True)
            },
            "examples": [{"change": kind, "key": key} for kind, key in self.examples],
        }


def diff_snapshots(repo: Repository, a: StateSnapshot, b: StateSnapshot) -> StateDiff:
    """What changed from ``a`` to ``b`` (shared subtrees are skipped unread)."""
    if a.statement.sum_fields != b.statement.sum_fields:
        raise UsageError(
            f"{a.short_id} sums {list(a.statement.sum_fields)} and {b.short_id} sums "
            f"{list(b.statement.sum_fields)}; only snapshots with the same sum fields can be compared"
        )
    nodes = RepositoryNodes(repo)
    result = StateDiff(a.statement.sum_fields)
    zero = (0,) * len(result.sum_fields)
    for change in prolly.diff(nodes, a.statement.root, nodes, b.statement.root):
        before = change.before.sums if change.before is not None else zero
        after = change.after.sums if change.after is not None else zero
        result.note(change.kind, change.key, before, after)
    return result


def diff_records(
    a: Iterable[prolly.Record | SourceRecord],
    b: Iterable[prolly.Record | SourceRecord],
    sum_fields: tuple[str, ...],
) -> StateDiff:
    """What changed from record stream ``a`` to ``b`` (both in key order), read once each."""
    result = StateDiff(sum_fields)
    zero = (0,) * len(sum_fields)
    left, right = iter(a), iter(b)
    x, y = next(left, None), next(right, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            assert x is not None
            result.note("removed", x[0], x[2], zero)
            x = next(left, None)
        elif x is None or y[0] < x[0]:
            result.note("added", y[0], zero, y[2])
            y = next(right, None)
        else:
            if x[1] != y[1] or x[2] != y[2]:
                result.note("changed", x[0], x[2], y[2])
            x, y = next(left, None), next(right, None)
    return result


def lenient_sums(sum_fields: Sequence[str], document: Mapping[str, Any]) -> tuple[int, ...]:
    """The sum fields of a record as they are, negative or not (0 where there is no integer):
    for reporting how a corrupted state differs, where the strict rules of a snapshot would
    refuse to read it at all."""
    found = []
    for path in sum_fields:
        value: Any = document.get(path, document)
        if value is document:
            value = document
            for part in path.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool):
            found.append(value)
        elif isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 200:
            found.append(int(value))
        else:
            found.append(0)
    return tuple(found)


# --- verification and the known-good snapshot -------------------------------------------------


#: How many records whose value does not match its key or sums `verify --read-data` names.
_UNBOUND_SHOWN: Final = 10


def _walk_nodes(repo: Repository, snap: StateSnapshot) -> list[str]:
    """Read every node of ``snap``'s tree (each checked against its id); problems found."""
    nodes = RepositoryNodes(repo)
    count = 0
    totals = [0] * len(snap.statement.sum_fields)
    problems = []
    unbound = 0
    try:
        spec = record_spec(snap.statement)
        for record in prolly.iterate(nodes, snap.statement.root):
            count += 1
            for i, value in enumerate(record.sums):
                totals[i] += value
            try:  # the value must hold the key and the sums the tree commits next to it
                check_record(snap.statement, record, what=f"record {show_key(record.key)}", spec=spec)
            except StateError as exc:
                unbound += 1
                if unbound <= _UNBOUND_SHOWN:
                    problems.append(f"{snap.short_id}: {exc}")
    except LifeboatError as exc:
        return [f"{snap.short_id}: tree cannot be read: {exc}"]
    if unbound > _UNBOUND_SHOWN:
        problems.append(
            f"{snap.short_id}: {unbound - _UNBOUND_SHOWN} more records do not match their key or sums"
        )
    if count != snap.statement.count:
        problems.append(
            f"{snap.short_id}: tree holds {count} records, the statement says {snap.statement.count}"
        )
    if tuple(totals) != snap.statement.totals:
        problems.append(f"{snap.short_id}: the records' sums differ from the statement's totals")
    return problems


def _ancestry(
    snap: StateSnapshot, by_digest: Mapping[bytes, StateSnapshot]
) -> tuple[list[StateSnapshot], str]:
    """The chain from the first statement to ``snap`` by its ``previous`` links (oldest first),
    and what is missing if a link leads nowhere."""
    path = [snap]
    seen = {snap.digest}
    while path[-1].statement.previous is not None:
        previous = path[-1].statement.previous
        found = by_digest.get(previous)
        if found is None or previous in seen:
            return [], f"{path[-1].short_id} follows {previous.hex()[:12]}, which is not in the repository"
        seen.add(previous)
        path.append(found)
    path.reverse()
    return path, ""


@dataclass
class VerifyReport:
    """Per name, the problems :func:`verify_states` found (none: the chain verifies)."""

    snapshots: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreadable and not any(self.problems.values())


def verify_states(
    repo: Repository,
    name: str | None = None,
    *,
    trust: bytes | None = None,
    read_data: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check every statement's signature, each name's hash chain, and with ``read_data`` every node."""
    snapshots, unreadable = state_snapshots(repo, name)
    if name is not None and not snapshots:
        raise InputError(f"no record snapshot named {name!r}; `lifeboat state list` shows them")
    report = VerifyReport(snapshots=len(snapshots), unreadable=unreadable)
    by_name: dict[str, list[StateSnapshot]] = {}
    for snap in snapshots:
        by_name.setdefault(snap.statement.name, []).append(snap)
    done = 0
    for chain_name, chain in sorted(by_name.items()):
        problems = report.problems.setdefault(chain_name, [])
        for snap in chain:
            why = snap.signature_problem(trust)
            if why is not None:
                problems.append(f"{snap.short_id}: {why}")
        problems.extend(check_chain([s.statement for s in chain]))
        if read_data:
            for snap in chain:
                problems.extend(_walk_nodes(repo, snap))
                done += 1
                if progress is not None:
                    progress(done, len(snapshots))
    return report


def known_good(
    repo: Repository, name: str | None, *, trust: bytes | None = None, skip_damaged: bool = False
) -> tuple[StateSnapshot | None, list[tuple[StateSnapshot, str]], list[str]]:
    """The newest snapshot whose signature, chain and invariants all hold, why newer ones failed,
    and the damaged snapshots gone past.

    A snapshot that cannot be read may be the newest good state, and the snapshots that follow
    it cannot show their chain: unless ``skip_damaged``, any damaged snapshot of the name (or
    a manifest that cannot be read at all, whose name is unknown) is a :class:`StateError`
    naming it, rather than a silent step back past it.
    """
    read = _read_states(repo)
    snapshots, _ = _unique(read, None)
    # With nothing readable to name the dataset, every damaged snapshot counts.
    chosen: str | None = None if name is None and not snapshots else _one_name(snapshots, name)
    damaged = [d.why for d in read[1] if chosen is None or d.name is None or d.name == chosen]
    if damaged and not skip_damaged:
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise StateError(
            f"damaged snapshot: {damaged[0]}{more}; rollback stops rather than go back past a snapshot "
            "that may hold the newest good state. Run `lifeboat state verify` and `lifeboat check` "
            "(`lifeboat repair` may restore it), or pass --skip-damaged to roll back past it"
        )
    chosen_name = _one_name(snapshots, name) if chosen is None else chosen
    chain = [s for s in snapshots if s.statement.name == chosen_name]
    rejected: list[tuple[StateSnapshot, str]] = []
    by_digest = {s.digest: s for s in chain}
    for position in range(len(chain) - 1, -1, -1):
        snap = chain[position]
        why = _good_problem(snap, by_digest, trust)
        if why is None:
            return snap, rejected, damaged
        rejected.append((snap, why))
    return None, rejected, damaged


def known_good_problem(repo: Repository, snap: StateSnapshot, *, trust: bytes | None = None) -> str | None:
    """Why ``snap`` is not known-good (its signature, its chain back to the first snapshot of its
    name, its invariants: the checks of :func:`known_good`), or None when it is."""
    chain, _ = state_snapshots(repo, snap.statement.name)
    return _good_problem(snap, {s.digest: s for s in chain}, trust)


def _good_problem(
    snap: StateSnapshot, by_digest: dict[bytes, StateSnapshot], trust: bytes | None
) -> str | None:
    why = snap.signature_problem(trust)
    if why is None:
        path, missing = _ancestry(snap, by_digest)
        broken = [missing] if missing else check_chain([s.statement for s in path])
        if not broken:
            broken = [f"{s.short_id}: {w}" for s in path if (w := s.signature_problem(trust))]
        if broken:
            why = "chain: " + broken[0]
    if why is None:
        passed = snap.statement.invariants_passed
        if passed is None:
            why = "its invariants were not checked"
        elif not passed:
            failed = [
                r["name"] for r in (snap.statement.invariants or {}).get("results", []) if not r.get("passed")
            ]
            why = "invariants failed: " + ", ".join(failed)
    return why


def check_records(
    source: Source, invariants: Invariants, *, progress: Progress | None = None
) -> InvariantReport:
    """Check every record of ``source`` (live state, not snapshotted) against ``invariants``.

    ``progress`` is called with the source's ``bytes_read`` every 4096 records.
    """
    checker = InvariantChecker(invariants)
    for count, record in enumerate(source, 1):
        checker.feed(record.key.decode("utf-8", "surrogateescape"), record.document)
        if progress is not None and count % 4096 == 0:
            progress(source.bytes_read)
    return checker.finish()


def tree_of(
    source: Source,
    *,
    fanout: int,
    leaf_fanout: int,
    sum_fields: int,
    checker: InvariantChecker | None = None,
) -> tuple[bytes, int]:
    """(root, record count) of the tree ``source``'s records make in this shape, built in memory
    (nothing is stored), feeding ``checker`` each record on the way: one read for both."""

    def records() -> Iterator[tuple[bytes, bytes, tuple[int, ...]]]:
        for record in source:
            if checker is not None:
                checker.feed(record.key.decode("utf-8", "surrogateescape"), record.document)
            yield record.key, record.value, record.sums

    build = prolly.build(records(), fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
    for _ in build:
        pass
    return build.tree.root, build.tree.count


@dataclass(frozen=True)
class Rollback:
    """What :func:`roll_back` did: the snapshot restored, the journal sequence it was replayed to
    (None: not replayed), how the state found at the target differed from what was restored
    (None when it could not be read: ``unreadable`` says why) and the records written."""

    snapshot: StateSnapshot
    through: int | None
    diff: StateDiff | None
    unreadable: str | None
    written: int


def roll_back(
    repo: Repository,
    good: StateSnapshot,
    target: str,
    *,
    table: str | None = None,
    through: int | None = None,
    dry_run: bool = False,
) -> Rollback:
    """Replace the (corrupted) state at ``target`` with ``good``'s records, its journal replayed
    up to ``through`` (None: not replayed), and report how the state found there differed.

    ``good`` is the caller's choice, normally the first answer of :func:`known_good`. The state
    found at ``target`` is read leniently (negative sums are reported, not refused); one that
    cannot be read at all is replaced whole. With ``dry_run`` nothing is written.
    """
    s = good.statement
    diff: StateDiff | None = None
    unreadable = None
    try:
        # Sums read as they are (a corrupted state may hold negative ones): keys and raw
        # values must still be readable and in order for a diff.
        with open_source(target, RecordSpec(s.key_field, ()), table=table) as current:
            diff = diff_records(
                records_at(repo, good, through),
                (prolly.Record(r.key, r.value, lenient_sums(s.sum_fields, r.document)) for r in current),
                s.sum_fields,
            )
    except (LifeboatError, OSError) as exc:  # corrupted or missing: report it, then replace it
        unreadable = str(exc)
    written = 0
    if not dry_run:
        sink = open_sink(target, table=table)
        written = sink.write(
            ((r.key, r.value) for r in records_at(repo, good, through)), s.source, key_field=s.key_field
        )
    return Rollback(good, through, diff, unreadable, written)
