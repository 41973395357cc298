"""``prune``: remove the data that no snapshot needs any more, without ever losing data that one does.

The caller says which blobs are live (the snapshot layer walks the trees of the kept snapshots)
and **must hold the repository's exclusive lock** (``repo.lock(exclusive=True, ...)``) for the
whole call: prune does not take it itself, so that ``forget --prune`` can forget and prune under
one lock. The lock is what makes "in no index" mean "garbage": no backup can be between writing
its packs and writing their index while prune runs.

:func:`plan_prune` decides, from the index and the stores' listings, what happens to every pack:

* **keep** — every blob in it is live (and this is the copy of each that prune keeps);
* **delete** — none of its blobs is live (or only as a duplicate kept elsewhere);
* **repack** — some are live and some are not: its live blobs are copied into new packs and the
  pack is then deleted. Not every such pack is repacked: unused bytes are tolerated up to
  ``max_unused`` × the live bytes (restic's ``--max-unused``), and the most wasteful packs are
  repacked first;
* **orphan** — a pack object that no index lists (left by an interrupted backup, or by an
  interrupted prune before it wrote the index of its repacked packs): deleted.

A blob stored in several packs (two backups raced, or an earlier prune was interrupted) is kept
once: in a pack that enough stores hold, preferring the pack whose blobs are most live.

:func:`prune` then runs the plan in an order that keeps every live blob reachable at every step,
so that a crash at any point leaves extra data and never missing data:

1. copy the live blobs of the repacked packs into new packs (``repo.writer(dedup=False)``: the
   writer would otherwise skip them, since the index already lists their old copies). The writer
   stores an index object of the new packs when it is done;
2. store one new index object listing every kept pack whose old index object is being replaced.
   Index objects whose packs are all kept (and listed in no other index) are left alone; every
   other index object is replaced, including orphan indexes whose packs are all gone;
3. delete the replaced index objects;
4. delete the deleted, repacked and orphan packs.

Before step 3 prune checks that the index objects that survive list every live blob in a pack
that survives, and refuses (:class:`RepositoryError`, nothing deleted) if not. A rerun after a
crash finds the leftovers of the interrupted run (new packs whose live blobs are now duplicates,
unindexed packs, an extra index) and finishes the job.

Prune refuses to run when an index object cannot be read (the packs it lists would look like
orphans), when a live blob is in no index, or when a pack it must repack cannot be read: run
``check`` and ``repair`` first. It also refuses to change anything while a store is unavailable:
a store that misses the deletion of an index object would bring it back later, pointing at packs
that are gone. ``dry_run`` only plans, and works on a degraded repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from lifeboat.errors import StorageError, UsageError
from lifeboat.store.codec import ShardError
from lifeboat.store.errors import FormatError, RepositoryError, StoreDown
from lifeboat.store.repository import Repository

__all__ = ["Progress", "PrunePlan", "PruneReport", "plan_prune", "prune"]

#: ``progress(phase, done, total)``; phases are ``"repack"``, ``"index"`` and ``"delete"``.
Progress = Callable[[str, int, int], None]

#: How many ids an error message lists before it says "and N more".
_SHOWN: Final = 3


@dataclass
class PrunePlan:
    """What :func:`prune` will do. Pack and index ids are raw 32-byte ids.

    Byte counts named ``*_bytes`` without "stored" are blob (plaintext) bytes as the index
    records them; ``stored_bytes`` are shard bytes summed over every store (object sizes).
    """

    #: Packs that stay as they are.
    keep_packs: set[bytes]
    #: Indexed packs with no live blob in them: deleted.
    delete_packs: set[bytes]
    #: Packs with live and unused blobs whose live blobs are copied to new packs: then deleted.
    repack_packs: set[bytes]
    #: Bytes of the kept copy of every live blob found in the index.
    live_bytes: int
    #: Bytes of every other blob the index lists (not live, or a duplicate copy).
    unused_bytes: int
    #: Pack objects in the stores that no index lists: deleted.
    orphan_packs: set[bytes] = field(default_factory=set)
    #: Index objects that are replaced by the new index (then deleted).
    rewrite_indexes: set[bytes] = field(default_factory=set)
    #: Index objects left as they are.
    keep_indexes: set[bytes] = field(default_factory=set)
    #: Kept packs listed by a kept index object (the new index lists the other kept packs).
    covered_packs: set[bytes] = field(default_factory=set)
    #: Live blob id -> the pack holding the copy that is kept (for repacked packs: the old pack).
    chosen: dict[bytes, bytes] = field(default_factory=dict)
    #: Live blobs no index lists: prune refuses to run while there are any.
    missing_blobs: set[bytes] = field(default_factory=set)
    #: Live bytes that repacking copies.
    repack_bytes: int = 0
    #: Index and snapshot objects with fewer than k shards, all stores answering: the residue
    #: of an interrupted write, which nothing can depend on. Deleted with the orphans.
    incomplete_objects: set[str] = field(default_factory=set)
    #: Number of live blobs that repacking copies.
    repack_blobs: int = 0
    #: Unused bytes that stay behind in kept packs (within the ``max_unused`` allowance).
    unused_after: int = 0
    #: Stored size (all stores) of every object the plan deletes: key -> bytes.
    stored_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def reclaimable_bytes(self) -> int:
        """Stored bytes of every object the plan deletes (what a run frees before new packs)."""
        return sum(self.stored_bytes.values())

    @property
    def new_index_packs(self) -> set[bytes]:
        """Kept packs that the new index must list (their index objects are being replaced)."""
        return self.keep_packs - self.covered_packs

    def changes_nothing(self) -> bool:
        """True when prune would neither write nor delete anything."""
        return not (
            self.delete_packs
            or self.repack_packs
            or self.orphan_packs
            or self.rewrite_indexes
            or self.incomplete_objects
        )


@dataclass
class PruneReport:
    """What :func:`prune` did (or, with ``dry_run``, would do; then nothing is written).

    ``packs_deleted`` counts indexed packs deleted because none of their blobs was live,
    ``packs_repacked`` those deleted after their live blobs were copied, ``orphans_removed``
    unindexed pack objects deleted, ``indexes_rewritten`` index objects replaced and deleted.
    ``bytes_freed`` sums the stored sizes (all stores) of every deleted object; ``bytes_written``
    the shard bytes of the new packs and index objects. A dry run reports the counts and
    ``bytes_freed`` that a run would have; ``packs_written``, ``indexes_written`` and
    ``bytes_written`` stay 0 (they depend on how the writer packs the copied blobs).
    """

    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    blobs_repacked: int = 0
    bytes_freed: int = 0
    bytes_written: int = 0
    indexes_rewritten: int = 0
    indexes_written: int = 0
    orphans_removed: int = 0
    #: Live blobs in no index (a real run refuses while there are any).
    missing_blobs: int = 0
    live_bytes: int = 0
    unused_bytes: int = 0
    unused_after: int = 0
    dry_run: bool = False


def plan_prune(repo: Repository, live_blobs: set[bytes], *, max_unused: float = 0.05) -> PrunePlan:
    """Reload the index and decide what :func:`prune` would do with every pack and index object.

    ``max_unused`` is the unused space tolerated in kept packs, as a fraction of the live bytes
    (0 repacks every partly used pack; ``float("inf")`` repacks none). Reads only the index and
    the stores' listings and object sizes; changes nothing.
    """
    if not max_unused >= 0:
        raise UsageError(f"max_unused must be a fraction >= 0, not {max_unused!r}")
    repo.reload_index()
    index = repo.index
    index_stores = repo.list_objects("index")
    unread = {
        key
        for key in index_stores
        if key not in repo.incomplete_indexes
        and (not _is_id_key(key) or Repository.id_of_key(key) not in index.index_ids)
    }
    if unread:
        # Its packs would look like orphans: never prune past an index that cannot be read.
        raise RepositoryError(
            f"refusing to prune: {len(unread)} index objects were not read ({', '.join(sorted(unread)[:_SHOWN])}); "
            "run `lifeboat check` and `lifeboat repair` first"
        )
    stored = repo.list_objects("data")
    present = {Repository.id_of_key(key): len(stores) for key, stores in stored.items() if _is_id_key(key)}

    copies: dict[bytes, list[bytes]] = {}
    live_count: dict[bytes, int] = {}
    for pack_id, entry in index.packs.items():
        live = 0
        for blob in entry.blobs:
            if blob.id in live_blobs:
                copies.setdefault(blob.id, []).append(pack_id)
                live += blob.length
        live_count[pack_id] = live

    def preference(pack_id: bytes) -> tuple[bool, float, bytes]:
        size = index.packs[pack_id].size
        return (present.get(pack_id, 0) >= repo.k, live_count[pack_id] / size if size else 1.0, pack_id)

    chosen = {blob_id: max(packs, key=preference) for blob_id, packs in copies.items()}
    plan = PrunePlan(
        keep_packs=set(),
        delete_packs=set(),
        repack_packs=set(),
        live_bytes=0,
        unused_bytes=0,
        chosen=chosen,
        missing_blobs={blob_id for blob_id in live_blobs if blob_id not in chosen},
    )
    partial: list[tuple[float, int, bytes, int]] = []
    for pack_id, entry in index.packs.items():
        used = sum(blob.length for blob in entry.blobs if chosen.get(blob.id) == pack_id)
        used_blobs = sum(1 for blob in entry.blobs if chosen.get(blob.id) == pack_id)
        unused = entry.size - used
        plan.live_bytes += used
        plan.unused_bytes += unused
        if used_blobs == 0:
            plan.delete_packs.add(pack_id)
        elif used_blobs == len(entry.blobs):
            plan.keep_packs.add(pack_id)
        else:
            partial.append((unused / entry.size if entry.size else 1.0, unused, pack_id, used))

    # Repack the most wasteful packs first until what is left fits the allowance.
    allowance = max_unused * plan.live_bytes
    plan.unused_after = sum(unused for _, unused, _, _ in partial)
    for _, unused, pack_id, used in sorted(partial, reverse=True):
        if plan.unused_after <= allowance:
            plan.keep_packs.add(pack_id)
            continue
        plan.repack_packs.add(pack_id)
        plan.unused_after -= unused
        plan.repack_bytes += used
        plan.repack_blobs += sum(1 for blob in index.packs[pack_id].blobs if chosen.get(blob.id) == pack_id)

    plan.orphan_packs = set(present) - set(index.packs)
    plan.incomplete_objects = set(repo.incomplete_indexes) | _incomplete_manifests(repo)

    # Index objects: keep those that list only kept packs that no earlier kept index lists.
    for index_id in sorted(index.index_ids):
        packs = index.packs_of_index(index_id)
        if packs and all(p in plan.keep_packs and p not in plan.covered_packs for p in packs):
            plan.keep_indexes.add(index_id)
            plan.covered_packs.update(packs)
        else:
            plan.rewrite_indexes.add(index_id)

    keys = [Repository.pack_key(p) for p in plan.delete_packs | plan.repack_packs | plan.orphan_packs]
    keys += [Repository.index_key(i) for i in plan.rewrite_indexes]
    plan.stored_bytes = _stored_sizes(
        repo, {key: stored.get(key) or index_stores.get(key, set()) for key in keys}
    )
    return plan


def prune(
    repo: Repository,
    live_blobs: set[bytes],
    *,
    max_unused: float = 0.05,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PruneReport:
    """Remove every pack, index and orphan that ``live_blobs`` do not need (see the module docstring).

    The caller must hold the exclusive repository lock. Raises :class:`RepositoryError`
    (before changing anything) when a live blob is in no index or a pack to repack cannot be
    read, and :class:`StoreDown` when a store is unavailable (unless ``dry_run``).
    """
    plan = plan_prune(repo, live_blobs, max_unused=max_unused)
    report = PruneReport(
        packs_deleted=len(plan.delete_packs),
        packs_repacked=len(plan.repack_packs),
        blobs_repacked=plan.repack_blobs,
        indexes_rewritten=len(plan.rewrite_indexes),
        orphans_removed=len(plan.orphan_packs),
        live_bytes=plan.live_bytes,
        unused_bytes=plan.unused_bytes,
        unused_after=plan.unused_after,
        bytes_freed=plan.reclaimable_bytes,
        missing_blobs=len(plan.missing_blobs),
        dry_run=dry_run,
    )
    if dry_run:
        return report
    if plan.missing_blobs:
        raise RepositoryError(
            f"refusing to prune: {len(plan.missing_blobs)} blobs the snapshots need are in no index "
            f"({_ids(plan.missing_blobs)}); run `lifeboat check` and `lifeboat repair` first"
        )
    if plan.changes_nothing():
        return report
    if len(repo.live_stores()) != repo.n:
        down = ", ".join(repo.store_name(i) for i in range(repo.n) if i not in repo.live_stores())
        raise StoreDown(
            f"refusing to prune while {down} is unavailable: a store that misses a deletion would "
            "bring back index objects that point at deleted packs; prune when every store answers"
        )

    # 1. Copy the live blobs of the repacked packs into new packs (indexed by the writer).
    before = repo.index.index_ids
    written = _repack(repo, plan, report, progress)
    writer_indexes = repo.index.index_ids - before

    # 2. One new index for the kept packs whose index objects are replaced.
    new_index: bytes | None = None
    entries = [repo.index.packs[p] for p in sorted(plan.new_index_packs)]
    if entries:
        if progress is not None:
            progress("index", 0, 1)
        new_index = repo.write_index(entries)
        report.indexes_written = 1
        if progress is not None:
            progress("index", 1, 1)
    new_keys = [Repository.pack_key(p) for p in written]
    new_keys += [Repository.index_key(i) for i in writer_indexes | ({new_index} if new_index else set())]
    live = set(repo.live_stores())
    report.bytes_written = sum(_stored_sizes(repo, dict.fromkeys(new_keys, live)).values())

    # Safety net: the surviving indexes must list every live blob in a surviving pack.
    doomed_indexes = plan.rewrite_indexes - {new_index} - writer_indexes
    surviving = (plan.keep_indexes | writer_indexes | ({new_index} if new_index else set())) - doomed_indexes
    listed: set[bytes] = set()
    for index_id in surviving:
        listed.update(repo.index.packs_of_index(index_id))
    doomed_packs = (plan.delete_packs | plan.repack_packs | plan.orphan_packs) - listed - written
    reachable: set[bytes] = set()
    for pack_id in listed:
        entry = repo.index.packs.get(pack_id)
        if entry is not None:
            reachable.update(blob.id for blob in entry.blobs)
    unreachable = set(plan.chosen) - reachable
    if unreachable:
        raise RepositoryError(
            f"prune stopped before deleting anything: {len(unreachable)} live blobs would not be listed "
            f"by the remaining indexes ({_ids(unreachable)}); the new packs and index stay (extra data); "
            "rerun prune"
        )

    # 3. Delete the replaced index objects; 4. delete the packs no surviving index lists, and
    # the residue of interrupted writes.
    targets = [Repository.index_key(i) for i in sorted(doomed_indexes)]
    targets += [Repository.pack_key(p) for p in sorted(doomed_packs)]
    targets += sorted(plan.incomplete_objects)
    for done, key in enumerate(targets):
        if progress is not None:
            progress("delete", done, len(targets))
        if key.startswith("index/"):
            repo.delete_index(Repository.id_of_key(key))
        elif key.startswith("data/"):
            repo.delete_pack(Repository.id_of_key(key))
        else:
            repo.delete_object(key)
    if progress is not None:
        progress("delete", len(targets), len(targets))
    report.bytes_freed = sum(plan.stored_bytes.get(key, 0) for key in targets)
    report.indexes_rewritten = len(doomed_indexes)
    report.packs_deleted = len(doomed_packs & plan.delete_packs)
    report.packs_repacked = len(doomed_packs & plan.repack_packs)
    report.orphans_removed = len(doomed_packs & plan.orphan_packs)
    repo.reload_index()
    return report


def _incomplete_manifests(repo: Repository) -> set[str]:
    """Snapshot objects with fewer than k shards while every store answers, that do not decode."""
    found = set()
    for key, stores in repo.list_objects("snapshots").items():
        if repo.interrupted_write(len(stores)):
            try:
                repo.get_object(key)
            except (ShardError, RepositoryError):
                found.add(key)
    return found


def _repack(repo: Repository, plan: PrunePlan, report: PruneReport, progress: Progress | None) -> set[bytes]:
    """Copy the chosen live blobs of ``plan.repack_packs`` into new packs; return the new pack ids."""
    if not plan.repack_packs:
        return set()
    before = repo.index.index_ids
    total = len(plan.repack_packs)
    with repo.writer(dedup=False) as writer:
        for done, pack_id in enumerate(sorted(plan.repack_packs)):
            if progress is not None:
                progress("repack", done, total)
            try:
                blobs = repo.load_pack(pack_id)
            except (ShardError, StorageError) as exc:
                raise RepositoryError(
                    f"refusing to prune: pack {pack_id.hex()[:16]} holds live blobs and cannot be read "
                    f"({exc}); run `lifeboat check --read-data` and `lifeboat repair` first"
                ) from None
            for blob in sorted(repo.index.packs[pack_id].blobs, key=lambda b: b.offset):
                if plan.chosen.get(blob.id) != pack_id:
                    continue
                data = blobs.get(blob.id)
                if data is None:
                    raise RepositoryError(
                        f"refusing to prune: pack {pack_id.hex()[:16]} does not hold blob "
                        f"{blob.id.hex()[:16]} as the index says; run `lifeboat check --read-data`"
                    )
                writer.add_blob(blob.type, data, blob.id)
        if progress is not None:
            progress("repack", total, total)
    report.packs_written = writer.stats.packs_written
    written: set[bytes] = set()
    for index_id in repo.index.index_ids - before:
        written.update(repo.index.packs_of_index(index_id))
    return written


def _is_id_key(key: str) -> bool:
    try:
        Repository.id_of_key(key)
    except FormatError:
        return False
    return True


def _stored_sizes(repo: Repository, holders: dict[str, set[int]]) -> dict[str, int]:
    """Sum of ``stat`` sizes over the stores holding each key (a store that does not answer counts 0)."""
    jobs = [(key, number) for key, numbers in holders.items() for number in sorted(numbers)]

    def size(job: tuple[str, int]) -> int:
        store = repo.stores[job[1]]
        if store is None:
            return 0
        try:
            return store.stat(job[0]) or 0
        except StorageError:
            return 0

    sizes = dict.fromkeys(holders, 0)
    if not jobs:
        return sizes
    with ThreadPoolExecutor(max_workers=max(4, 2 * repo.n)) as pool:
        for (key, _), value in zip(jobs, pool.map(size, jobs), strict=True):
            sizes[key] += value
    return sizes


def _ids(ids: Iterable[bytes]) -> str:
    shown = sorted(ids)
    text = ", ".join(i.hex()[:16] for i in shown[:_SHOWN])
    return text + (f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else "")
