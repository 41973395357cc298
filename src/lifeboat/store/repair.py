"""``repair`` and ``replace-store``: put back every shard, config and key file a store should hold.

:func:`repair_repository` works on a repository whose stores all answer. For every object in any
store (packs, indexes, manifests; locks are transient and skipped) it reads the shards from all
``n`` stores and lets :func:`lifeboat.store.codec.repair` rebuild, byte for byte, the shards that
are missing, damaged or misplaced, then writes each to its store. A store without a valid config
gets its config back, and a store without a key file gets a copy. An object with fewer than ``k``
valid shards cannot be rebuilt: it is reported as lost and nothing is written for it. Running
repair twice rewrites nothing the second time.

:func:`replace_store` rebuilds one store from the others onto a new, empty backend: the old
store may be gone entirely (dead disk, deleted bucket). It writes the config first, so an
interrupted replacement resumes where it stopped, skipping the shards already in place.

:func:`assign_numbers` tells which store number a wiped store, or one whose config is damaged,
takes (its own shards say, else a free number), and :func:`rebuild_index` writes a fresh index
from the tables of the packs themselves when the index objects are lost beyond repair.

All of them change the stores, so the caller should hold the repository's exclusive lock while they run
(a backup writing at the same time could make its half-written packs look lost).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lifeboat.errors import InputError, LifeboatError, StorageError
from lifeboat.store import codec
from lifeboat.store.backends.base import Backend
from lifeboat.store.check import (
    CODEC_KINDS,
    PACKS_IN_FLIGHT,
    Progress,
    StoreReader,
    bounded_map,
    config_problem,
    good_key_file,
    object_id_of,
    survey_shards,
)
from lifeboat.store.codec import CodecParams, ShardError
from lifeboat.store.config import CONFIG_KEY, encode_config
from lifeboat.store.errors import RepositoryError, StoreDown
from lifeboat.store.index import PackEntry, encode_index

if TYPE_CHECKING:
    from lifeboat.store.repository import Repository

__all__ = [
    "IndexRebuildReport",
    "RepairReport",
    "assign_numbers",
    "number_from_shards",
    "rebuild_index",
    "repair_repository",
    "replace_store",
]


@dataclass
class RepairReport:
    """What :func:`repair_repository` or :func:`replace_store` did (or, with ``dry_run``, would do)."""

    #: Codec objects looked at (packs, indexes, manifests).
    objects_checked: int = 0
    #: store number -> shards written to it.
    shards_rewritten: dict[int, int] = field(default_factory=dict)
    #: store number -> bytes of the shards written to it.
    bytes_rewritten: dict[int, int] = field(default_factory=dict)
    #: Objects at least one shard of which was (or would be) written.
    objects_rebuilt: int = 0
    #: store number -> name of the store rebuilt whole (an empty or replaced store), in this run.
    stores_rebuilt: dict[int, str] = field(default_factory=dict)
    #: Keys of the objects with fewer than ``k`` valid shards (nothing can rebuild them); never written.
    objects_lost: list[str] = field(default_factory=list)
    #: key -> why, for every lost object (and key file without a well-formed copy).
    problems: dict[str, str] = field(default_factory=dict)
    #: Stores whose config was missing or damaged and was written again.
    configs_rewritten: int = 0
    #: Key files copied to stores that lacked them (or held a damaged copy).
    key_files_copied: int = 0
    #: Objects with fewer than ``k`` shards, all valid, while every store answers: the residue
    #: of a write that was interrupted (nothing refers to them); left for prune to remove.
    objects_incomplete: list[str] = field(default_factory=list)
    #: Objects left alone because their names are not object ids.
    objects_skipped: list[str] = field(default_factory=list)
    dry_run: bool = False

    def wrote(self, store: int, size: int) -> None:
        """Count one shard of ``size`` bytes written (or, with ``dry_run``, to be written) to ``store``."""
        self.shards_rewritten[store] = self.shards_rewritten.get(store, 0) + 1
        self.bytes_rewritten[store] = self.bytes_rewritten.get(store, 0) + size

    def merge(self, other: RepairReport) -> None:
        """Add what ``other`` (a store rebuilt whole before the repair) did to this report."""
        for store, count in other.shards_rewritten.items():
            self.shards_rewritten[store] = self.shards_rewritten.get(store, 0) + count
        for store, size in other.bytes_rewritten.items():
            self.bytes_rewritten[store] = self.bytes_rewritten.get(store, 0) + size
        self.objects_rebuilt += other.objects_rebuilt
        self.stores_rebuilt.update(other.stores_rebuilt)
        self.configs_rewritten += other.configs_rewritten
        self.key_files_copied += other.key_files_copied
        for key in other.objects_lost:
            if key not in self.problems:
                self.lost(key, other.problems.get(key, "lost"))

    @property
    def bytes_total(self) -> int:
        """Shard bytes written to all stores."""
        return sum(self.bytes_rewritten.values())

    @property
    def shards_total(self) -> int:
        """Shards written to all stores."""
        return sum(self.shards_rewritten.values())

    @property
    def changed(self) -> bool:
        """True if anything was (or, with ``dry_run``, would be) written."""
        return bool(self.shards_total or self.configs_rewritten or self.key_files_copied)

    def lost(self, key: str, why: str) -> None:
        """Record ``key`` as lost, for the reason ``why``."""
        self.objects_lost.append(key)
        self.problems[key] = why

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (``lifeboat repair --json``)."""
        return {
            "dry_run": self.dry_run,
            "objects_checked": self.objects_checked,
            "shards_rewritten": {str(store): count for store, count in sorted(self.shards_rewritten.items())},
            "bytes_rewritten": {str(store): size for store, size in sorted(self.bytes_rewritten.items())},
            "objects_rebuilt": self.objects_rebuilt,
            "stores_rebuilt": {str(store): name for store, name in sorted(self.stores_rebuilt.items())},
            "objects_lost": list(self.objects_lost),
            "objects_incomplete": list(self.objects_incomplete),
            "problems": dict(self.problems),
            "configs_rewritten": self.configs_rewritten,
            "key_files_copied": self.key_files_copied,
            "objects_skipped": list(self.objects_skipped),
        }


def _tick(progress: Progress | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)


def _put(reader: StoreReader, store: int, key: str, data: bytes) -> None:
    backend = reader.stores[store]
    if backend is None:  # pragma: no cover - callers only write to reachable stores
        raise StoreDown(f"{reader.name(store)} is not available")
    try:
        backend.put(key, data)
    except StorageError as exc:
        raise StoreDown(
            f"{reader.name(store)}: writing {key} failed ({exc}); what was repaired so far stays "
            "repaired: run the command again when the store answers"
        ) from exc


def _copy_key_files(
    repo: Repository,
    reader: StoreReader,
    sources: Iterable[int],
    targets: Iterable[int],
    report: RepairReport,
) -> None:
    """Give every store in ``targets`` the good copy of every key file that ``sources`` hold."""
    sources = list(sources)
    for key in reader.keys_of("keys"):
        holders = reader.holders(key) & set(sources)
        shards, _ = reader.read_many(key, holders | (reader.holders(key) & set(targets)))
        best, _ = good_key_file(
            repo, key, (data for store, data in shards.items() if data is not None and store in holders)
        )
        if best is None:
            if holders:
                report.lost(key, "no well-formed copy of this key file")
            continue
        for store in targets:
            if shards.get(store) != best:
                if not report.dry_run:
                    _put(reader, store, key, best)
                report.key_files_copied += 1


# --- repair ---------------------------------------------------------------------------------


def repair_repository(
    repo: Repository, *, progress: Progress | None = None, dry_run: bool = False
) -> RepairReport:
    """Rebuild every missing, damaged or misplaced shard, config and key file in ``repo``'s stores.

    Every store must answer: repair reads all ``n`` shards of every object and writes the ones
    that are wrong; :class:`StoreDown` names a store that does not (bring it back, or rebuild it
    elsewhere with :func:`replace_store`). ``dry_run`` reads and decodes everything but writes
    nothing; the report says what would be written. ``progress(phase, done, total)`` is called
    with the phases ``list``, ``config``, ``keys`` and ``objects``.
    """
    down = {
        store: repo.unavailable.get(store, "not available")
        for store in range(repo.n)
        if repo.stores[store] is None or store in repo.unavailable
    }
    with StoreReader(repo.stores, down) as reader:
        reader.list_stores(range(repo.n))
        _tick(progress, "list", repo.n, repo.n)
        if reader.errors:
            raise StoreDown(
                "repair writes to every store, and "
                + "; ".join(
                    f"{reader.name(store)} is down: {why}" for store, why in sorted(reader.errors.items())
                )
                + ". Bring it back and run repair again, or rebuild it on a new store with "
                "`lifeboat repo replace-store`"
            )
        report = RepairReport(dry_run=dry_run)
        _repair_configs(repo, reader, report)
        _tick(progress, "config", 1, 1)
        _copy_key_files(repo, reader, range(repo.n), range(repo.n), report)
        _tick(progress, "keys", 1, 1)
        _repair_objects(repo, reader, report, progress)
        return report


def _repair_configs(repo: Repository, reader: StoreReader, report: RepairReport) -> None:
    holders = reader.holders(CONFIG_KEY)
    shards, _ = reader.read_many(CONFIG_KEY, holders)
    for store in range(repo.n):
        data = shards.get(store)
        if data is not None:
            problem = config_problem(repo, store, data)
            if problem is None:
                continue
            if "another repository" in problem:
                raise RepositoryError(
                    f"{reader.name(store)} holds the {problem}; it is not a store of repository "
                    f"{repo.id}, and repair will not overwrite it"
                )
        if not report.dry_run:
            _put(reader, store, CONFIG_KEY, encode_config(repo.config.for_store(store), repo.master_key))
        report.configs_rewritten += 1


#: The outcome of an object that is the residue of an interrupted write (compared by identity).
_INCOMPLETE: Final = "incomplete: left by an interrupted write"


def _repair_objects(
    repo: Repository, reader: StoreReader, report: RepairReport, progress: Progress | None
) -> None:
    key = repo.master_key
    params = CodecParams(repo.k, repo.n)
    work = [(kind, name) for kind in CODEC_KINDS for name in reader.keys_of(kind)]

    def interrupted(kind: str, object_id: bytes, present: dict[int, bytes]) -> bool:
        """Fewer than k shards were ever written, all intact, and (for a pack) no index names it."""
        if (
            reader.errors
            or not repo.interrupted_write(len(present))
            or (kind == "data" and object_id in repo.index.packs)
        ):
            return False
        for store, data in present.items():
            try:
                info = codec.verify_shard(key, data)
            except ShardError:
                return False
            if info.object_id != object_id or info.index != store:
                return False
        return True

    def repair_one(item: tuple[str, str]) -> tuple[str, dict[int, int] | str | None]:
        kind, name = item
        object_id = object_id_of(kind, name)
        if object_id is None:
            return name, None
        shards, _ = reader.read_many(name, reader.holders(name))
        present = {store: data for store, data in shards.items() if data is not None}
        try:
            rebuilt = codec.repair(key, present, params, object_id=object_id)
        except ShardError as exc:
            if interrupted(kind, object_id, present):
                return name, _INCOMPLETE
            return name, str(exc)
        # The codec also rebuilds a good shard shadowed by a misplaced copy of it: nothing to write there.
        changed = sorted(store for store, shard in rebuilt.items() if present.get(store) != shard)
        del shards, present
        if not report.dry_run:
            for store in changed:
                _put(reader, store, name, rebuilt[store])
        return name, {store: len(rebuilt[store]) for store in changed}

    with ThreadPoolExecutor(max_workers=PACKS_IN_FLIGHT, thread_name_prefix="lifeboat-repair") as pool:
        for done, (name, outcome) in enumerate(bounded_map(pool, repair_one, work, PACKS_IN_FLIGHT), 1):
            if outcome is None:
                report.objects_skipped.append(name)
            elif outcome is _INCOMPLETE:
                report.objects_checked += 1
                report.objects_incomplete.append(name)
            elif isinstance(outcome, str):
                report.objects_checked += 1
                report.lost(name, outcome)
            else:
                report.objects_checked += 1
                report.objects_rebuilt += bool(outcome)
                for store, size in outcome.items():
                    report.wrote(store, size)
            _tick(progress, "objects", done, len(work))


# --- replace-store --------------------------------------------------------------------------


def replace_store(
    repo: Repository, old: int, new: Backend, *, progress: Progress | None = None
) -> RepairReport:
    """Rebuild store number ``old`` on the backend ``new`` from the other stores.

    ``old`` may be unreachable or empty: nothing is read from it. ``new`` must be empty, or hold
    what an interrupted replacement of the same store left (its config says: this repository,
    store ``old``); shards already there and valid are kept. The config and key files are written
    first, then every pack, index and manifest's shard ``old``, rebuilt from ``k`` of the other
    stores. Afterwards use ``new`` in place of the old store. Raises :class:`StoreDown` if fewer
    than ``k`` other stores answer, :class:`RepositoryError` if ``new`` holds anything else.
    """
    if isinstance(old, bool) or not isinstance(old, int) or not 0 <= old < repo.n:
        raise InputError(f"store number must be from 0 to {repo.n - 1}, got {old!r}")
    for number, store in enumerate(repo.stores):
        if number != old and store is not None and (store is new or store.name == new.name):
            raise InputError(f"{new.name} is already store {number} of this repository; give an empty store")
    stores: list[Backend | None] = list(repo.stores)
    stores[old] = new
    down = {store: why for store, why in repo.unavailable.items() if store != old}
    down.update({store: "not available" for store in range(repo.n) if stores[store] is None})
    with StoreReader(stores, down) as reader:
        reader.list_stores(range(repo.n))
        _tick(progress, "list", repo.n, repo.n)
        if old in reader.errors:
            raise StoreDown(f"the new store {new.name} cannot be listed: {reader.errors[old]}")
        _check_new_store(repo, reader, old, new)
        sources = sorted(set(reader.listings) - {old})
        if len(sources) < repo.k:
            raise StoreDown(
                f"only {len(sources)} other store(s) answer and {repo.k} are needed to rebuild store {old}: "
                + "; ".join(f"{reader.name(store)}: {why}" for store, why in sorted(reader.errors.items()))
            )
        report = RepairReport(stores_rebuilt={old: new.name})
        config = encode_config(repo.config.for_store(old), repo.master_key)
        shards, _ = reader.read_many(CONFIG_KEY, {old} & reader.holders(CONFIG_KEY))
        if shards.get(old) != config:
            _put(reader, old, CONFIG_KEY, config)
            report.configs_rewritten += 1
        _tick(progress, "config", 1, 1)
        _copy_key_files(repo, reader, sources, [old], report)
        _tick(progress, "keys", 1, 1)
        _rebuild_slot(repo, reader, old, sources, report, progress)
        return report


def _check_new_store(repo: Repository, reader: StoreReader, old: int, new: Backend) -> None:
    listing = reader.listings[old]
    if not listing:
        return
    if CONFIG_KEY not in listing:
        example = sorted(listing)[0]
        raise RepositoryError(
            f"{new.name} is not empty ({len(listing)} objects, e.g. {example!r}); "
            "replace-store needs an empty store"
        )
    data = reader.read(old, CONFIG_KEY)
    if not isinstance(data, bytes):
        raise RepositoryError(f"{new.name}: cannot read its config ({data or 'vanished'})")
    problem = config_problem(repo, old, data)
    if problem is not None:
        raise RepositoryError(
            f"{new.name} is not empty and is not an interrupted replacement of store {old} ({problem}); "
            "replace-store needs an empty store"
        )


def _rebuild_slot(
    repo: Repository,
    reader: StoreReader,
    old: int,
    sources: list[int],
    report: RepairReport,
    progress: Progress | None,
) -> None:
    key = repo.master_key
    params = CodecParams(repo.k, repo.n)
    on_new = reader.listings[old]
    names: set[str] = set()
    for store in sources:
        names.update(name for name in reader.listings[store] if name.split("/")[0] in CODEC_KINDS)
    work = [(name.split("/")[0], name) for name in sorted(names)]

    def rebuild(item: tuple[str, str]) -> tuple[str, int | str | None]:
        kind, name = item
        object_id = object_id_of(kind, name)
        if object_id is None:
            return name, None
        if name in on_new:
            present = reader.read(old, name)
            if (
                isinstance(present, bytes)
                and old in survey_shards(key, {old: present}, object_id, params).good
            ):
                return name, 0
        holders = [store for store in sources if name in reader.listings[store]]
        shards, _ = reader.read_many(name, holders[: repo.k])
        try:
            rebuilt = _repair_from(key, shards, params, object_id)
        except ShardError:
            more, _ = reader.read_many(name, holders[repo.k :])
            shards.update(more)
            try:
                rebuilt = _repair_from(key, shards, params, object_id)
            except ShardError as exc:
                return name, str(exc)
        _put(reader, old, name, rebuilt[old])
        return name, len(rebuilt[old])

    with ThreadPoolExecutor(max_workers=PACKS_IN_FLIGHT, thread_name_prefix="lifeboat-replace") as pool:
        for done, (name, outcome) in enumerate(bounded_map(pool, rebuild, work, PACKS_IN_FLIGHT), 1):
            if outcome is None:
                report.objects_skipped.append(name)
            else:
                report.objects_checked += 1
                if isinstance(outcome, str):
                    report.lost(name, outcome)
                elif outcome:
                    report.objects_rebuilt += 1
                    report.wrote(old, outcome)
            _tick(progress, "objects", done, len(work))


def _repair_from(
    key: bytes, shards: dict[int, bytes | None], params: CodecParams, object_id: bytes
) -> dict[int, bytes]:
    present = {store: data for store, data in shards.items() if data is not None}
    return codec.repair(key, present, params, object_id=object_id)


# --- which number a store had ---------------------------------------------------------------


#: Shards read from a store whose config is gone to tell which store number it held.
_NUMBER_SAMPLE: Final = 16


def number_from_shards(repo: Repository, store: Backend) -> int | None:
    """The store number that the shards a store still holds carry, or None if none verifies.

    Every shard header records its index, under the repository key's checksum, so a store whose
    config is lost or damaged still says which number it was as long as one shard is intact. A
    sample of up to :data:`_NUMBER_SAMPLE` objects is read; the most common index wins.
    """
    try:
        keys = [key for key in store.list("") if key.split("/")[0] in CODEC_KINDS]
    except StorageError:
        return None
    step = max(1, len(keys) // _NUMBER_SAMPLE)
    votes: Counter[int] = Counter()
    for key in keys[::step][:_NUMBER_SAMPLE]:
        object_id = object_id_of(key.split("/")[0], key)
        if object_id is None:
            continue
        try:
            info = codec.verify_shard(repo.master_key, store.get(key))
        except (StorageError, ShardError):
            continue
        if info.object_id == object_id and (info.k, info.n) == (repo.k, repo.n):
            votes[info.index] += 1
    if not votes:
        return None
    return max(votes, key=lambda number: (votes[number], -number))


def assign_numbers(
    repo: Repository, candidates: Sequence[Backend], in_store_order: Mapping[str, int] | None = None
) -> list[tuple[Backend, int, str]]:
    """Give each store of ``candidates`` (empty, or with a damaged config) a store number nobody answers for.

    Returns ``(store, number, why)`` for each (``why`` is a clause for messages). A store whose own shards carry a number
    (:func:`number_from_shards`) gets it back. The others hold nothing usable, so any free
    number is right for them; ``in_store_order`` (store name → its place in the store list,
    given only when that list is in store-number order) keeps each at its place, and otherwise
    they take the free numbers in ascending order, in the order given. Raises
    :class:`RepositoryError` when two stores carry shards of one number.
    """
    free = sorted(repo.unavailable)
    assigned: list[tuple[Backend, int, str]] = []
    rest: list[Backend] = []
    for store in candidates:
        number = number_from_shards(repo, store)
        if number is None:
            rest.append(store)
            continue
        if number not in free:
            raise RepositoryError(
                f"{store.name} holds shards of store {number}, which another store answers for; "
                "give only one of them"
            )
        free.remove(number)
        assigned.append((store, number, "the shards it holds carry that number"))
    later: list[Backend] = []
    for store in rest:
        place = (in_store_order or {}).get(store.name)
        if place is not None and place in free:
            free.remove(place)
            assigned.append((store, place, "its place in the store list, which is in store order"))
        else:
            later.append(store)
    for store in later:
        if free:
            assigned.append((store, free.pop(0), "a number no store answers for"))
    return assigned


# --- rebuild the index from the packs -------------------------------------------------------


#: Packs listed by one index object that ``rebuild_index`` writes.
REBUILT_INDEX_PACKS: Final = 1024


@dataclass
class IndexRebuildReport:
    """What :func:`rebuild_index` did (or, with ``dry_run``, would do)."""

    packs_read: int = 0
    blobs_indexed: int = 0
    #: key -> why, for every pack whose table could not be read (fewer than k good shards...).
    packs_unreadable: dict[str, str] = field(default_factory=dict)
    #: Unreadable packs whose entry a readable old index still gave (kept in the new index).
    packs_kept_from_old_index: int = 0
    indexes_written: int = 0
    #: Old index objects removed (readable or not: the new ones cover everything they named).
    indexes_removed: int = 0
    #: Unreadable old index objects left alone because a store is down (they may read again).
    indexes_kept: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (``lifeboat repair --rebuild-index --json``)."""
        return {
            "dry_run": self.dry_run,
            "packs_read": self.packs_read,
            "blobs_indexed": self.blobs_indexed,
            "packs_unreadable": dict(self.packs_unreadable),
            "packs_kept_from_old_index": self.packs_kept_from_old_index,
            "indexes_written": self.indexes_written,
            "indexes_removed": self.indexes_removed,
            "indexes_kept": list(self.indexes_kept),
        }


def rebuild_index(
    repo: Repository, *, progress: Progress | None = None, dry_run: bool = False
) -> IndexRebuildReport:
    """Write a fresh index from the packs themselves and remove the old index objects.

    Every pack any store lists is decoded from any ``k`` good shards, authenticated, checked
    against its content id, and its table (the trailer of the pack plaintext: type, length and
    id of every blob) gives the index entry; the missing-shard mask comes from the listing. A
    pack that cannot be read keeps the entry a readable old index gives it, if any. The new
    index objects are stored first; only then are the old ones deleted, so a crash in between
    leaves both (the union is consistent). An unreadable old index is deleted only while every
    store answers (with a store down it might read again later, and it is reported instead).
    The caller holds the exclusive lock. ``progress(phase, done, total)`` is called with the
    phases ``list`` and ``packs``.
    """
    report = IndexRebuildReport(dry_run=dry_run)
    listing = repo.list_objects("data")
    old_indexes = repo.list_objects("index")
    _tick(progress, "list", 1, 1)
    packs: list[tuple[str, bytes]] = []
    for key in sorted(listing):
        pack_id = object_id_of("data", key)
        if pack_id is not None:
            packs.append((key, pack_id))

    def read(item: tuple[str, bytes]) -> tuple[str, PackEntry | str]:
        key, pack_id = item
        try:
            entry = repo.pack_entry(pack_id)
        except LifeboatError as exc:
            return key, str(exc)
        mask = sum(1 << store for store in range(repo.n) if store not in listing[key])
        return key, PackEntry(pack_id, mask, entry)

    entries: list[PackEntry] = []
    with ThreadPoolExecutor(max_workers=PACKS_IN_FLIGHT, thread_name_prefix="lifeboat-reindex") as pool:
        for done, (key, outcome) in enumerate(bounded_map(pool, read, packs, PACKS_IN_FLIGHT), 1):
            if isinstance(outcome, str):
                pack_id = object_id_of("data", key)
                old = repo.index.packs.get(pack_id) if pack_id is not None else None
                if old is not None:
                    entries.append(old)
                    report.packs_kept_from_old_index += 1
                report.packs_unreadable[key] = outcome
            else:
                entries.append(outcome)
                report.packs_read += 1
            _tick(progress, "packs", done, len(packs))
    report.blobs_indexed = len({blob.id for entry in entries for blob in entry.blobs})
    # Indexed packs that no store lists any more are gone: nothing to keep for them.
    if dry_run:
        report.indexes_written = -(-len(entries) // REBUILT_INDEX_PACKS)
        report.indexes_removed = len(old_indexes)
        return report
    written: set[str] = set()
    for start in range(0, len(entries), REBUILT_INDEX_PACKS):
        chunk = entries[start : start + REBUILT_INDEX_PACKS]
        index_id = repo.blob_id(encode_index(chunk))
        key = repo.index_key(index_id)
        written.add(key)
        if key in old_indexes and key not in repo.bad_indexes:
            continue  # the very same index is already stored and readable
        repo.write_index(chunk)
        report.indexes_written += 1
    all_answer = not repo.unavailable
    for key in sorted(set(old_indexes) - written):
        if key in repo.bad_indexes and not all_answer:
            report.indexes_kept.append(key)
            continue
        repo.delete_index(repo.id_of_key(key))
        report.indexes_removed += 1
    repo.reload_index()
    return report
