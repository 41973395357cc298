"""Tests of prune (lifeboat.store.prune): what it removes, what it keeps, and crash safety."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lifeboat.errors import LifeboatError, UsageError
from lifeboat.store.backends import MemoryBackend
from lifeboat.store.errors import RepositoryError, StoreDown
from lifeboat.store.index import Index
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.prune import PruneReport, plan_prune, prune
from lifeboat.store.repository import BLOB_DATA, BLOB_TREE, Repository

PACK_SIZE = 1024 * 1024  # the smallest pack size a repository accepts
BLOB_SIZE = 220_000  # five blobs fill a pack


class Crash(Exception):
    """An injected crash (stands for the process dying at that point)."""


@pytest.fixture
def stores() -> list[MemoryBackend]:
    return [MemoryBackend(f"mem{i}") for i in range(5)]


@pytest.fixture
def repo(stores: list[MemoryBackend]) -> Iterator[Repository]:
    with Repository.init(stores, "pw", k=3, kdf=TEST_KDF, pack_size=PACK_SIZE) as repository:
        yield repository


def reopen(stores: list[MemoryBackend], repo: Repository) -> Repository:
    return Repository.open(stores, master_key=repo.master_key, writable=True)


def make_blobs(seed: int, count: int, size: int = BLOB_SIZE) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


def store_blobs(repo: Repository, blobs: list[bytes], blob_type: int = BLOB_DATA) -> list[bytes]:
    """Write ``blobs`` in one writer session (one index object); return their ids."""
    with repo.writer() as writer:
        return [writer.add_blob(blob_type, data)[0] for data in blobs]


def snapshot_of(stores: list[MemoryBackend]) -> list[dict[str, bytes]]:
    return [{key: store.get(key) for key in store.list("")} for store in stores]


def stored_size(stores: list[MemoryBackend]) -> int:
    return sum(
        store.stat(key) or 0
        for store in stores
        for key in store.list("")
        if key.startswith(("data/", "index/"))
    )


def assert_consistent(
    stores: list[MemoryBackend], repo: Repository, live: dict[bytes, bytes], dead: set[bytes]
) -> None:
    """A fresh open loads every live blob bit-exact, lists no dead blob, and has no leftovers."""
    with reopen(stores, repo) as fresh:
        for blob_id, data in live.items():
            assert fresh.load_blob(blob_id) == data
        for blob_id in dead:
            assert not fresh.has_blob(blob_id)
        data_keys = set(fresh.list_objects("data"))
        indexed = {Repository.pack_key(p) for p in fresh.index.packs}
        assert data_keys == indexed, "orphan packs, or indexed packs that are gone"
        for key, holders in fresh.list_objects("data").items():
            assert holders == set(range(5)), f"{key} is not in every store"
        plan = plan_prune(fresh, set(live), max_unused=0.0)
        assert plan.changes_nothing()
        assert plan.unused_bytes == 0


def assert_live_loadable(stores: list[MemoryBackend], repo: Repository, live: dict[bytes, bytes]) -> None:
    with reopen(stores, repo) as fresh:
        for blob_id, data in live.items():
            assert fresh.load_blob(blob_id) == data


# --- scenarios ------------------------------------------------------------------------------


def build_mixed(repo: Repository) -> tuple[dict[bytes, bytes], set[bytes]]:
    """Two writer sessions (two index objects): fully live, partly live and fully unused packs.

    Session 1: 10 blobs → packs of 5: the first fully live, the second with 2 of 5 live.
    Session 2: 5 blobs → one pack, all unused. Returns (live id → data, dead ids).
    """
    first = make_blobs(1, 10)
    second = make_blobs(2, 5)
    first_ids = store_blobs(repo, first)
    second_ids = store_blobs(repo, second)
    live = {blob_id: data for blob_id, data in zip(first_ids, first, strict=True)}
    for blob_id in first_ids[5:8]:
        del live[blob_id]
    dead = set(first_ids[5:8]) | set(second_ids)
    return live, dead


def test_prune_removes_unused_and_keeps_live(stores: list[MemoryBackend], repo: Repository) -> None:
    live, dead = build_mixed(repo)
    assert len(repo.index.packs) == 3
    assert len(repo.index.index_ids) == 2
    before = stored_size(stores)

    report = prune(repo, set(live), max_unused=0.0)

    assert report == PruneReport(
        packs_deleted=1,
        packs_repacked=1,
        packs_written=1,
        blobs_repacked=2,
        bytes_freed=report.bytes_freed,
        bytes_written=report.bytes_written,
        indexes_rewritten=2,
        indexes_written=1,
        orphans_removed=0,
        missing_blobs=0,
        live_bytes=7 * BLOB_SIZE,
        unused_bytes=8 * BLOB_SIZE,
        unused_after=0,
        dry_run=False,
    )
    assert report.bytes_freed > report.bytes_written > 0
    assert stored_size(stores) == before - report.bytes_freed + report.bytes_written
    # The in-memory index is current too.
    for blob_id, data in live.items():
        assert repo.load_blob(blob_id) == data
    assert not any(repo.has_blob(blob_id) for blob_id in dead)
    assert len(repo.index.packs) == 2
    assert_consistent(stores, repo, live, dead)


def test_dry_run_changes_nothing_and_predicts_the_run(stores: list[MemoryBackend], repo: Repository) -> None:
    live, _ = build_mixed(repo)
    before = snapshot_of(stores)
    predicted = prune(repo, set(live), max_unused=0.0, dry_run=True)
    assert predicted.dry_run
    assert snapshot_of(stores) == before
    actual = prune(repo, set(live), max_unused=0.0)
    for name in ("packs_deleted", "packs_repacked", "blobs_repacked", "indexes_rewritten", "bytes_freed"):
        assert getattr(predicted, name) == getattr(actual, name), name
    assert predicted.packs_written == 0 and predicted.bytes_written == 0


def test_max_unused_tolerates_a_little_waste(stores: list[MemoryBackend], repo: Repository) -> None:
    blobs = make_blobs(3, 10)
    ids = store_blobs(repo, blobs)
    live = {blob_id: data for blob_id, data in zip(ids, blobs, strict=True) if blob_id != ids[9]}
    # One unused blob in ten: 11% of the live bytes.
    tolerant = plan_prune(repo, set(live), max_unused=0.2)
    assert tolerant.repack_packs == set() and tolerant.unused_after == BLOB_SIZE
    assert tolerant.changes_nothing()
    strict = plan_prune(repo, set(live), max_unused=0.05)
    assert len(strict.repack_packs) == 1 and strict.unused_after == 0
    report = prune(repo, set(live), max_unused=0.2)
    assert report.packs_repacked == 0 and report.bytes_freed == 0
    assert_live_loadable(stores, repo, live)
    with pytest.raises(UsageError):
        plan_prune(repo, set(live), max_unused=-0.1)


def test_repacks_the_most_wasteful_pack_first(repo: Repository) -> None:
    blobs = make_blobs(4, 15)
    ids = store_blobs(repo, blobs)  # packs: ids[0:5], ids[5:10], ids[10:15]
    unused = {ids[0], ids[5], ids[6], ids[7]}  # pack 1: 1/5 unused, pack 2: 3/5 unused
    live = set(ids) - unused
    plan = plan_prune(repo, live, max_unused=0.15)  # allowance: 1.65 blobs' worth
    pack_of = {blob_id: repo.index.lookup(blob_id).pack for blob_id in ids}  # type: ignore[union-attr]
    assert plan.repack_packs == {pack_of[ids[5]]}
    assert plan.keep_packs == {pack_of[ids[0]], pack_of[ids[10]]}
    assert plan.unused_after == BLOB_SIZE


def test_nothing_to_do(stores: list[MemoryBackend], repo: Repository) -> None:
    blobs = make_blobs(5, 7)
    ids = store_blobs(repo, blobs)
    before = snapshot_of(stores)
    report = prune(repo, set(ids))
    assert report == PruneReport(live_bytes=7 * BLOB_SIZE)
    assert snapshot_of(stores) == before


def test_nothing_live_removes_every_pack_and_index(stores: list[MemoryBackend], repo: Repository) -> None:
    live, dead = build_mixed(repo)
    report = prune(repo, set())
    assert report.packs_deleted == 3 and report.packs_written == 0 and report.indexes_written == 0
    for store in stores:
        assert store.list("data/") == [] and store.list("index/") == []
        assert store.list("config") == ["config"]
    assert len(repo.index) == 0
    assert_consistent(stores, repo, {}, dead | set(live))


def test_tree_blobs_keep_their_type(stores: list[MemoryBackend], repo: Repository) -> None:
    trees = make_blobs(6, 5, size=200_000)
    tree_ids = store_blobs(repo, trees, BLOB_TREE)
    data = make_blobs(7, 5)
    data_ids = store_blobs(repo, data)
    live = {tree_ids[0]: trees[0], tree_ids[3]: trees[3], data_ids[1]: data[1]}
    report = prune(repo, set(live), max_unused=0.0)
    assert report.packs_repacked == 2 and report.packs_written == 2
    assert repo.index.lookup(tree_ids[0]).type == BLOB_TREE  # type: ignore[union-attr]
    assert repo.index.lookup(data_ids[1]).type == BLOB_DATA  # type: ignore[union-attr]
    assert_consistent(stores, repo, live, set(tree_ids + data_ids) - set(live))


def test_orphan_packs_of_an_interrupted_backup_are_removed(
    stores: list[MemoryBackend], repo: Repository
) -> None:
    kept = make_blobs(8, 3)
    kept_ids = store_blobs(repo, kept)
    lost = make_blobs(9, 12)
    with pytest.raises(Crash), repo.writer() as writer:
        for data in lost:
            writer.add_blob(BLOB_DATA, data)
        raise Crash  # two packs of five blobs are sealed and stored; their index is never written
    plan = plan_prune(repo, set(kept_ids))
    assert len(plan.orphan_packs) >= 2
    assert not plan.changes_nothing()
    report = prune(repo, set(kept_ids))
    assert report.orphans_removed == len(plan.orphan_packs)
    assert report.bytes_freed > 0
    assert_consistent(stores, repo, dict(zip(kept_ids, kept, strict=True)), set())


def test_orphan_index_whose_packs_are_gone_is_removed(stores: list[MemoryBackend], repo: Repository) -> None:
    kept = make_blobs(10, 4)
    kept_ids = store_blobs(repo, kept)
    gone_ids = store_blobs(repo, make_blobs(11, 4))
    gone_pack = repo.index.lookup(gone_ids[0]).pack  # type: ignore[union-attr]
    gone_index = next(i for i in repo.index.index_ids if gone_pack in repo.index.packs_of_index(i))
    for store in stores:
        store.delete(Repository.pack_key(gone_pack))
    report = prune(repo, set(kept_ids))
    assert report.indexes_rewritten == 1 and report.indexes_written == 0 and report.packs_deleted == 1
    assert all(Repository.index_key(gone_index) not in store.list("index/") for store in stores)
    assert_consistent(stores, repo, dict(zip(kept_ids, kept, strict=True)), set(gone_ids))


def test_duplicate_copies_are_kept_once(stores: list[MemoryBackend], repo: Repository) -> None:
    blobs = make_blobs(12, 5)
    ids = store_blobs(repo, blobs)
    extra = make_blobs(13, 2)
    with repo.writer(dedup=False) as writer:  # a second copy of blob 0 packed with two others
        writer.add_blob(BLOB_DATA, blobs[0])
        for data in extra:
            writer.add_blob(BLOB_DATA, data)
    assert len(repo.index.packs) == 2
    live = dict(zip(ids, blobs, strict=True))
    plan = plan_prune(repo, set(live), max_unused=0.0)
    assert len(plan.keep_packs) == 1 and len(plan.delete_packs) == 1
    assert plan.unused_bytes == 3 * BLOB_SIZE
    prune(repo, set(live), max_unused=0.0)
    assert_consistent(stores, repo, live, set())


def test_missing_live_blob_refuses_without_changes(stores: list[MemoryBackend], repo: Repository) -> None:
    live, _ = build_mixed(repo)
    wanted = set(live) | {bytes(32)}
    before = snapshot_of(stores)
    assert prune(repo, wanted, dry_run=True).missing_blobs == 1
    with pytest.raises(RepositoryError, match="1 blobs the snapshots need are in no index"):
        prune(repo, wanted)
    assert snapshot_of(stores) == before


def test_unreadable_pack_to_repack_refuses_before_deleting(
    stores: list[MemoryBackend], repo: Repository
) -> None:
    live, _ = build_mixed(repo)
    partial = next(p for p, e in repo.index.packs.items() if 0 < sum(b.id in live for b in e.blobs) < 5)
    for store in stores[:3]:
        store.delete(Repository.pack_key(partial))  # 2 shards left, 3 needed
    with pytest.raises(RepositoryError, match="cannot be read"):
        prune(repo, set(live), max_unused=0.0)
    assert all(Repository.pack_key(partial) in store.list("data/") for store in stores[3:])
    assert len(stores[0].list("index/")) == 2


def test_safety_net_stops_before_deleting_when_live_blobs_would_be_unlisted(
    stores: list[MemoryBackend], repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate the bug the module warns about: a repack writer that deduplicates against the
    # old copies, so the live blobs of the repacked pack are never copied.
    live, _ = build_mixed(repo)
    original = Repository.writer
    monkeypatch.setattr(Repository, "writer", lambda self, **_: original(self, dedup=True))
    with pytest.raises(RepositoryError, match="stopped before deleting anything"):
        prune(repo, set(live), max_unused=0.0)
    assert_live_loadable(stores, repo, live)
    assert len(stores[0].list("index/")) == 3  # the two old indexes and the new one
    monkeypatch.undo()
    with reopen(stores, repo) as fresh:
        prune(fresh, set(live), max_unused=0.0)
    assert_consistent(stores, repo, live, set())


def test_unreadable_index_refuses_without_changes(stores: list[MemoryBackend], repo: Repository) -> None:
    live, _ = build_mixed(repo)
    key = Repository.index_key(sorted(repo.index.index_ids)[0])
    for store in stores[:3]:
        store.put(key, b"garbage")  # two good shards left, three needed
    before = snapshot_of(stores)
    with pytest.raises(LifeboatError):
        prune(repo, set(live), max_unused=0.0)
    assert snapshot_of(stores) == before


def test_plan_refuses_an_index_the_reload_skipped(
    stores: list[MemoryBackend], repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, _ = build_mixed(repo)
    skipped = sorted(repo.index.index_ids)[0]
    original = Repository.reload_index

    def lenient_reload(self: Repository) -> None:  # a reload that drops an unreadable index
        original(self)
        kept = Index()
        for index_id in self.index.index_ids - {skipped}:
            kept.add(index_id, [self.index.packs[p] for p in self.index.packs_of_index(index_id)])
        self.index = kept

    monkeypatch.setattr(Repository, "reload_index", lenient_reload)
    with pytest.raises(RepositoryError, match="1 index objects were not read"):
        plan_prune(repo, set(live))


def test_refuses_to_change_a_degraded_repository(stores: list[MemoryBackend], repo: Repository) -> None:
    live, _ = build_mixed(repo)
    with Repository.open(stores[1:], master_key=repo.master_key, writable=True, degraded_ok=True) as degraded:
        assert prune(degraded, set(live), dry_run=True).packs_deleted == 1
        before = snapshot_of(stores)
        with pytest.raises(StoreDown, match="refusing to prune while store 0"):
            prune(degraded, set(live))
        assert snapshot_of(stores) == before


def test_progress_reports_each_phase(repo: Repository) -> None:
    live, _ = build_mixed(repo)
    calls: list[tuple[str, int, int]] = []
    prune(repo, set(live), max_unused=0.0, progress=lambda *call: calls.append(call))
    phases = [phase for phase, _, _ in calls]
    assert phases.index("repack") < phases.index("index") < phases.index("delete")
    assert ("repack", 1, 1) in calls and ("index", 1, 1) in calls
    assert calls[-1] == ("delete", 4, 4)  # two index objects and two packs


@pytest.mark.parametrize("seed", range(8))
def test_random_repositories(stores: list[MemoryBackend], repo: Repository, seed: int) -> None:
    rng = random.Random(seed)
    everything: dict[bytes, bytes] = {}
    for session in range(rng.randint(1, 4)):
        blobs = make_blobs(
            seed * 100 + session, rng.randint(1, 14), size=rng.choice([60_000, 220_000, 500_000])
        )
        everything.update(
            zip(store_blobs(repo, blobs, rng.choice([BLOB_DATA, BLOB_TREE])), blobs, strict=True)
        )
    live = {blob_id: data for blob_id, data in everything.items() if rng.random() < 0.6}
    max_unused = rng.choice([0.0, 0.05, 0.5, float("inf")])
    plan = plan_prune(repo, set(live), max_unused=max_unused)
    assert plan.keep_packs | plan.delete_packs | plan.repack_packs == set(repo.index.packs)
    assert not (plan.keep_packs & plan.delete_packs or plan.keep_packs & plan.repack_packs)
    assert plan.live_bytes == sum(len(data) for data in live.values())
    assert plan.live_bytes + plan.unused_bytes == sum(len(data) for data in everything.values())
    assert plan.unused_after <= max(max_unused * plan.live_bytes, 0) or max_unused == float("inf")
    report = prune(repo, set(live), max_unused=max_unused)
    assert_live_loadable(stores, repo, live)
    with reopen(stores, repo) as fresh:
        assert set(fresh.list_objects("data")) == {Repository.pack_key(p) for p in fresh.index.packs}
        if max_unused == 0.0:
            assert not any(fresh.has_blob(blob_id) for blob_id in set(everything) - set(live))
    again = prune(repo, set(live), max_unused=max_unused)
    assert again.packs_deleted == again.packs_repacked == again.orphans_removed == 0, report


# --- crash safety ---------------------------------------------------------------------------


def crash_on_call(monkeypatch: pytest.MonkeyPatch, name: str, number: int) -> list[int]:
    """Make the ``number``-th call of ``Repository.<name>`` raise :class:`Crash` (before acting)."""
    original: Callable[..., Any] = getattr(Repository, name)
    calls = [0]

    def patched(self: Repository, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == number:
            raise Crash(f"{name} call {number}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Repository, name, patched)
    return calls


CRASH_POINTS = [
    ("load_pack", 1),  # step 1, before anything is written
    ("write_index", 1),  # step 1: new packs stored, the writer's index not yet
    ("write_index", 2),  # between steps 1 and 2
    ("delete_index", 1),  # between steps 2 and 3
    ("delete_index", 2),  # during step 3
    ("delete_pack", 1),  # between steps 3 and 4
    ("delete_pack", 2),  # during step 4
]


@pytest.mark.parametrize(("name", "number"), CRASH_POINTS)
def test_crash_at_any_step_loses_nothing_and_a_rerun_finishes(
    stores: list[MemoryBackend], repo: Repository, monkeypatch: pytest.MonkeyPatch, name: str, number: int
) -> None:
    live, dead = build_mixed(repo)
    with monkeypatch.context() as patch:
        calls = crash_on_call(patch, name, number)
        with pytest.raises(Crash):
            prune(repo, set(live), max_unused=0.0)
        assert calls[0] == number
    assert_live_loadable(stores, repo, live)
    with reopen(stores, repo) as fresh:
        report = prune(fresh, set(live), max_unused=0.0)
        assert not report.dry_run
    assert_consistent(stores, repo, live, dead)


@pytest.mark.parametrize(("name", "number"), CRASH_POINTS)
def test_two_crashes_in_a_row_still_lose_nothing(
    stores: list[MemoryBackend], repo: Repository, monkeypatch: pytest.MonkeyPatch, name: str, number: int
) -> None:
    live, dead = build_mixed(repo)
    for _ in range(2):
        with monkeypatch.context() as patch, reopen(stores, repo) as fresh:
            crash_on_call(patch, name, number)
            with contextlib.suppress(Crash):
                prune(fresh, set(live), max_unused=0.0)
        assert_live_loadable(stores, repo, live)
    with reopen(stores, repo) as fresh:
        prune(fresh, set(live), max_unused=0.0)
    assert_consistent(stores, repo, live, dead)
