"""check, repair and replace-store on five in-memory stores (3-of-5): damage, detection, healing."""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.store import codec
from lifeboat.store.backends import Backend, FaultyBackend, LocalBackend, MemoryBackend, StoreError
from lifeboat.store.check import CheckReport, StoreReader, check_repository, object_id_of, object_key
from lifeboat.store.config import CONFIG_KEY
from lifeboat.store.errors import RepositoryError, StoreDown
from lifeboat.store.index import BlobEntry, PackEntry
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.repair import rebuild_index, repair_repository, replace_store
from lifeboat.store.repository import BLOB_DATA, BLOB_TREE, Repository

MiB = 1 << 20
N, K = 5, 3


@dataclass(repr=False)
class Pristine:
    """A small repository, as it was written: every store's objects, the key, the blobs."""

    objects: list[dict[str, bytes]]
    master_key: bytes
    blobs: dict[bytes, bytes]
    packs: list[str]
    indexes: list[str]
    manifests: list[str]

    def __repr__(self) -> str:
        return f"Pristine({len(self.objects[0])} objects per store)"

    def codec_keys(self) -> list[str]:
        return [*self.packs, *self.indexes, *self.manifests]


def _write_repository(stores: list[MemoryBackend], seed: int = 1) -> tuple[Repository, dict[bytes, bytes]]:
    rng = random.Random(seed)
    repo = Repository.init(stores, "correct horse", k=K, kdf=TEST_KDF, pack_size=1 * MiB)
    blobs: dict[bytes, bytes] = {}
    with repo.writer() as writer:
        for _ in range(9):  # incompressible: two data packs
            data = rng.randbytes(250_000)
            blobs[writer.add_blob(BLOB_DATA, data)[0]] = data
        for number in range(3):  # compressible: one tree pack
            tree = json.dumps(
                {"nodes": [{"name": f"file-{number}-{i}", "size": i} for i in range(200)]}
            ).encode()
            blobs[writer.add_blob(BLOB_TREE, tree)[0]] = tree
    repo.put_manifest({"kind": "files", "tree": next(iter(blobs)).hex(), "paths": ["/x"]})
    return repo, blobs


@pytest.fixture(scope="module")
def pristine() -> Pristine:
    stores = [MemoryBackend(f"mem{i}") for i in range(N)]
    repo, blobs = _write_repository(stores)
    with repo:
        listing = stores[0].list("")
        return Pristine(
            objects=[{key: store.get(key) for key in store.list("")} for store in stores],
            master_key=repo.master_key,
            blobs=blobs,
            packs=[key for key in listing if key.startswith("data/")],
            indexes=[key for key in listing if key.startswith("index/")],
            manifests=[key for key in listing if key.startswith("snapshots/")],
        )


def _restore(pristine: Pristine) -> list[MemoryBackend]:
    stores = [MemoryBackend(f"mem{i}") for i in range(N)]
    for store, objects in zip(stores, pristine.objects, strict=True):
        for key, data in objects.items():
            store.put(key, data)
    return stores


@pytest.fixture
def stores(pristine: Pristine) -> list[MemoryBackend]:
    return _restore(pristine)


@pytest.fixture
def repo(stores: list[MemoryBackend], pristine: Pristine) -> Iterator[Repository]:
    with Repository.open(stores, master_key=pristine.master_key) as opened:
        yield opened


def _open(stores: Sequence[Backend], pristine: Pristine) -> Repository:
    return Repository.open(stores, master_key=pristine.master_key)


def _assert_blobs_exact(stores: Sequence[Backend], pristine: Pristine) -> None:
    """Every blob reads back bit-exact through a fresh open of ``stores``."""
    with _open(stores, pristine) as repo:
        for blob_id, data in pristine.blobs.items():
            assert repo.load_blob(blob_id) == data


def _flip(store: Backend, key: str, offset: int = codec.HEADER_BYTES + 7) -> None:
    data = bytearray(store.get(key))
    data[offset % len(data)] ^= 0x40
    store.put(key, bytes(data))


def _wipe(store: Backend) -> None:
    for key in store.list(""):
        store.delete(key)


def _snapshot(stores: list[MemoryBackend]) -> list[dict[str, bytes]]:
    return [{key: store.get(key) for key in store.list("")} for store in stores]


def _healthy(report: CheckReport) -> None:
    assert report.status == "healthy", (report.errors, [item.to_json() for item in report.objects])
    assert report.errors == []
    assert report.objects == []


class RecordingBackend:
    """Records the keys of every get (to tell what a check reads)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.gets: list[str] = []
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        with self._lock:
            self.gets.append(key)
        return self.inner.get(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def stat(self, key: str) -> int | None:
        return self.inner.stat(key)


# --- healthy --------------------------------------------------------------------------------


def test_a_fresh_repository_is_healthy(repo: Repository, pristine: Pristine) -> None:
    phases: set[str] = set()
    report = check_repository(
        repo, referenced_blobs=list(pristine.blobs), progress=lambda phase, done, total: phases.add(phase)
    )
    _healthy(report)
    assert (report.packs_total, report.packs_healthy) == (3, 3)
    assert (report.indexes, report.manifests, report.blobs) == (1, 1, len(pristine.blobs))
    assert report.objects_checked == 2 + 3 + 1 + 1  # config, key file, packs, index, manifest
    assert report.warnings == []
    assert {"list", "index", "snapshots", "data"} <= phases
    assert [(store.reachable, store.missing, store.corrupt, store.expected) for store in report.stores] == [
        (True, 0, 0, 7)
    ] * N
    full = check_repository(repo, read_data=True, referenced_blobs=pristine.blobs)
    _healthy(full)
    assert full.read_data and full.to_json()["status"] == "healthy"
    assert json.loads(json.dumps(full.to_json()))["packs"] == {
        "total": 3,
        "healthy": 3,
        "degraded": 0,
        "lost": 0,
    }
    assert repair_repository(repo).changed is False


def test_object_keys_round_trip() -> None:
    object_id = bytes(range(32))
    for kind in ("data", "index", "snapshots"):
        assert object_id_of(kind, object_key(kind, object_id)) == object_id
    assert object_id_of("data", "data/00/" + "AB" * 32) is None
    assert object_id_of("index", "index/abc") is None
    assert object_id_of("locks", "locks/" + "ab" * 32) is None


# --- whole stores lost ----------------------------------------------------------------------


@pytest.mark.parametrize("lost", list(itertools.combinations(range(N), N - K)))
def test_two_wiped_stores_are_rebuilt(pristine: Pristine, lost: tuple[int, int]) -> None:
    stores = _restore(pristine)
    with _open(stores, pristine) as repo:
        for number in lost:
            _wipe(stores[number])
        report = check_repository(repo)
        assert report.status == "degraded", report.errors
        assert report.packs_degraded == 3 and report.packs_lost == 0
        for health in report.stores:
            expected = (0, health.expected) if health.store in lost else (health.expected, 0)
            assert (health.objects, health.missing) == expected
            assert health.reachable
        degraded = {item.key for item in report.objects}
        assert degraded == {
            CONFIG_KEY,
            *pristine.codec_keys(),
            *[k for k in pristine.objects[0] if k.startswith("keys/")],
        }
        assert all(item.missing == set(lost) for item in report.objects)

        repaired = repair_repository(repo)
        assert repaired.shards_rewritten == {number: 5 for number in lost}
        assert (repaired.configs_rewritten, repaired.key_files_copied) == (2, 2)
        assert repaired.objects_lost == [] and repaired.objects_checked == 5
        _healthy(check_repository(repo, read_data=True, referenced_blobs=pristine.blobs))
        assert repair_repository(repo).changed is False  # idempotent
    assert _snapshot(stores) == pristine.objects  # byte-identical to what was written
    _assert_blobs_exact(stores, pristine)


def test_repair_dry_run_writes_nothing(stores: list[MemoryBackend], repo: Repository) -> None:
    _wipe(stores[4])
    stores[1].delete(repo.index_key(next(iter(repo.index.index_ids))))
    before = _snapshot(stores)
    report = repair_repository(repo, dry_run=True)
    assert report.dry_run and report.shards_rewritten == {4: 5, 1: 1}
    assert (report.configs_rewritten, report.key_files_copied) == (1, 1)
    assert _snapshot(stores) == before
    assert report.to_json()["shards_rewritten"] == {"1": 1, "4": 5}


def test_repair_refuses_when_a_store_is_down(stores: list[MemoryBackend], pristine: Pristine) -> None:
    with _open([stores[i] for i in (0, 1, 2, 4)], pristine) as repo:
        report = check_repository(repo)
        assert report.status == "degraded"
        down = report.stores[3]
        assert not down.reachable and down.missing == down.expected and down.objects == 0
        with pytest.raises(StoreDown, match="store 3.*replace-store"):
            repair_repository(repo)


def test_a_store_that_fails_writes_during_repair_is_named(
    stores: list[MemoryBackend], pristine: Pristine
) -> None:
    faulty = FaultyBackend(stores[2], fail_puts=1.0)
    all_stores: list[Backend] = [*stores[:2], faulty, *stores[3:]]
    with _open(all_stores, pristine) as repo:
        stores[2].delete(pristine.packs[0])
        with pytest.raises(StoreDown, match=f"store 2 .*{pristine.packs[0]}"):
            repair_repository(repo)


# --- damaged shards -------------------------------------------------------------------------


def test_check_without_read_data_reads_no_pack(pristine: Pristine) -> None:
    recorders = [RecordingBackend(store) for store in _restore(pristine)]
    with _open(recorders, pristine) as repo:
        for recorder in recorders:
            recorder.gets.clear()
        for key in pristine.packs:
            for number in (1, 3):
                _flip(recorders[number].inner, key)
        _healthy(check_repository(repo))  # sizes unchanged: the cheap check cannot see it
        assert not any(key.startswith("data/") for recorder in recorders for key in recorder.gets)
        full = check_repository(repo, read_data=True)
        assert all(pristine.packs[0] in recorder.gets for recorder in recorders)
    assert full.status == "degraded"
    assert (full.packs_degraded, full.packs_lost) == (3, 0)
    assert [(s.corrupt, s.missing) for s in full.stores] == [(0, 0), (3, 0), (0, 0), (3, 0), (0, 0)]
    for item in full.objects:
        assert item.key in pristine.packs and item.status == "degraded"
        assert item.good == {0, 2, 4} and set(item.corrupt) == {1, 3}
        assert all("checksum mismatch" in reason for reason in item.corrupt.values())


def test_two_corrupt_shards_of_every_object_are_healed(
    stores: list[MemoryBackend], pristine: Pristine
) -> None:
    with _open(stores, pristine) as repo:
        for number, key in enumerate(pristine.codec_keys()):
            for store in ((number % N), (number + 2) % N):
                _flip(stores[store], key, codec.HEADER_BYTES + 1000 * number)
        report = check_repository(repo, read_data=True, referenced_blobs=pristine.blobs)
        assert report.status == "degraded" and report.errors == []
        assert len(report.objects) == 5
        repaired = repair_repository(repo)
        assert repaired.shards_total == 10 and not repaired.objects_lost
        _healthy(check_repository(repo, read_data=True))
    assert _snapshot(stores) == pristine.objects
    _assert_blobs_exact(stores, pristine)


def test_three_corrupt_shards_lose_the_pack_and_repair_writes_nothing_for_it(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    victim = pristine.packs[1]
    for number in (0, 2, 4):
        _flip(stores[number], victim)
    _flip(stores[1], pristine.packs[0])  # a healable one beside it
    report = check_repository(repo, read_data=True)
    assert report.status == "error"
    assert (report.packs_lost, report.packs_degraded, report.packs_healthy) == (1, 1, 1)
    assert any(victim in error and "lost" in error for error in report.errors)
    lost = next(item for item in report.objects if item.key == victim)
    assert lost.status == "lost" and lost.good == {1, 3} and set(lost.corrupt) == {0, 2, 4}
    before = [store.get(victim) for store in stores]
    repaired = repair_repository(repo)
    assert repaired.objects_lost == [victim] and "need 3" in repaired.problems[victim]
    assert repaired.shards_rewritten == {1: 1}
    assert [store.get(victim) for store in stores] == before
    assert check_repository(repo, read_data=True).packs_lost == 1


def test_deleting_three_shards_is_seen_without_reading_data(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    victim = pristine.packs[0]
    for number in (1, 2, 3):
        stores[number].delete(victim)
    report = check_repository(repo)
    assert report.status == "error" and report.packs_lost == 1
    assert any(victim in error for error in report.errors)
    assert repair_repository(repo).objects_lost == [victim]


def test_truncated_shards_are_found_by_size_and_by_reading(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    for key in pristine.packs:
        stores[2].put(key, stores[2].get(key)[:-100])
    stores[4].put(pristine.manifests[0], stores[4].get(pristine.manifests[0])[:50])
    cheap = check_repository(repo)
    assert cheap.status == "degraded"
    reasons = {item.key: item.corrupt for item in cheap.objects}
    assert set(reasons) == {*pristine.packs, *pristine.manifests}
    assert all(
        set(corrupt) == {2} and "bytes" in corrupt[2]
        for key, corrupt in reasons.items()
        if key.startswith("data/")
    )
    assert "truncated" in reasons[pristine.manifests[0]][4]
    full = check_repository(repo, read_data=True)
    assert all("truncated" in item.corrupt[2] for item in full.objects if item.key.startswith("data/"))
    assert repair_repository(repo).shards_rewritten == {2: 3, 4: 1}
    _healthy(check_repository(repo, read_data=True))


def test_a_shard_from_another_repository_is_corrupt(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    other_stores = [MemoryBackend(f"other{i}") for i in range(N)]
    other, _ = _write_repository(other_stores, seed=1)  # same data, other key
    with other:
        foreign_pack = sorted(key for key in other_stores[0].list("data/"))[0]
        foreign_index = other_stores[0].list("index/")[0]
        assert foreign_pack not in pristine.packs
        stores[3].put(pristine.packs[0], other_stores[3].get(foreign_pack))
        stores[1].put(pristine.indexes[0], other_stores[1].get(foreign_index))
    report = check_repository(repo, read_data=True)
    assert report.status == "degraded"
    corrupt = {item.key: item.corrupt for item in report.objects}
    assert set(corrupt) == {pristine.packs[0], pristine.indexes[0]}
    assert "checksum mismatch" in corrupt[pristine.packs[0]][3]
    assert "checksum mismatch" in corrupt[pristine.indexes[0]][1]
    assert repair_repository(repo).shards_rewritten == {3: 1, 1: 1}
    _healthy(check_repository(repo, read_data=True))


def test_misplaced_and_mixed_encoding_shards(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    key = pristine.packs[0]
    stores[0].put(key, stores[1].get(key))  # shard 1 in store 0
    stores[2].put(key, stores[2].get(pristine.packs[1]))  # a shard of another object
    report = check_repository(repo, read_data=True)
    item = next(item for item in report.objects if item.key == key)
    assert "belongs in store 1" in item.corrupt[0]
    assert "another object" in item.corrupt[2]
    assert repair_repository(repo).shards_rewritten == {0: 1, 2: 1}
    _healthy(check_repository(repo, read_data=True))


def test_unreadable_shards_count_as_corrupt(stores: list[MemoryBackend], pristine: Pristine) -> None:
    flaky = FaultyBackend(stores[4], fail_gets=range(2, 10_000))  # opens, then every read fails
    with _open([*stores[:4], flaky], pristine) as repo:
        report = check_repository(repo, read_data=True)
    assert report.status == "degraded"
    assert report.stores[4].corrupt == report.stores[4].expected
    assert all("unreadable" in item.corrupt[4] for item in report.objects)


# --- configs, key files, structure ----------------------------------------------------------


def test_damaged_config_and_key_files_are_rewritten(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    key_file = stores[0].list("keys/")[0]
    config = json.loads(stores[1].get(CONFIG_KEY))
    config["pack_size"] = 2 * MiB
    stores[1].put(CONFIG_KEY, json.dumps(config).encode())
    stores[2].delete(CONFIG_KEY)
    stores[3].put(key_file, b"{}")
    stores[4].delete(key_file)
    report = check_repository(repo)
    assert report.status == "degraded" and report.errors == []
    by_key = {item.key: item for item in report.objects}
    assert "MAC" in by_key[CONFIG_KEY].corrupt[1] and by_key[CONFIG_KEY].missing == {2}
    assert by_key[key_file].corrupt == {3: "differs from the other copies"} and by_key[key_file].missing == {
        4
    }
    repaired = repair_repository(repo)
    assert (repaired.configs_rewritten, repaired.key_files_copied, repaired.shards_total) == (2, 2, 0)
    _healthy(check_repository(repo))
    assert _snapshot(stores) == pristine.objects


def test_a_config_of_another_repository_is_an_error(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    other_stores = [MemoryBackend(f"other{i}") for i in range(N)]
    Repository.init(other_stores, "pw", k=K, kdf=TEST_KDF).close()
    stores[2].put(CONFIG_KEY, other_stores[2].get(CONFIG_KEY))
    report = check_repository(repo)
    assert report.status == "error"
    assert any("another repository" in error for error in report.errors)
    with pytest.raises(RepositoryError, match="will not overwrite"):
        repair_repository(repo)


def test_orphan_packs_stale_locks_and_unindexed_blobs(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    with repo.writer() as writer:
        orphan_blob = writer.add_blob(BLOB_DATA, random.Random(5).randbytes(2000))[0]
    new_index = next(i for i in repo.index.index_ids if repo.index_key(i) not in pristine.indexes)
    repo.delete_index(new_index)  # as if the backup died before writing its index
    repo.lock_ttl = -1
    with repo.lock(exclusive=False, operation="backup"):
        report = check_repository(repo, referenced_blobs=[*pristine.blobs, orphan_blob])
    assert report.packs_total == 3
    assert any("in no index" in warning and "prune" in warning for warning in report.warnings)
    # prune leaves orphans too (repacked packs before their index): the backup is not blamed alone
    assert any("interrupted write: a backup or a prune" in warning for warning in report.warnings)
    assert any("stale lock" in warning for warning in report.warnings)
    assert report.errors == [f"1 blob(s) that snapshots refer to are in no index: {orphan_blob.hex()}"]
    assert report.status == "error"
    # Without the dangling reference the orphan is harmless; read_data also decodes it.
    full = check_repository(repo, read_data=True, referenced_blobs=pristine.blobs)
    assert full.status == "healthy" and any("in no index" in warning for warning in full.warnings)


def test_a_lost_index_and_a_bad_manifest_are_errors(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    for number in (0, 1, 2):
        _flip(stores[number], pristine.indexes[0])
    forged = json.dumps(
        {"format": "lifeboat-manifest", "version": 1, "time": "2026-01-01T00:00:00.000000Z"}
    ).encode()
    forged_id = repo.blob_id(forged)
    repo.put_object(repo.manifest_key(forged_id), forged_id, forged)
    report = check_repository(repo, referenced_blobs=pristine.blobs)
    assert report.status == "error"
    assert any(pristine.indexes[0] in error and "do not prune" in error for error in report.errors)
    assert any(repo.manifest_key(forged_id) in error and "signature" in error for error in report.errors)
    assert any("3 pack(s) are in no index" in warning for warning in report.warnings)
    assert report.manifests == 1 and report.indexes == 0


def test_an_index_that_disagrees_with_a_pack(
    stores: list[MemoryBackend], repo: Repository, pristine: Pristine
) -> None:
    pack_id = object_id_of("data", pristine.packs[0])
    assert pack_id is not None
    entry = repo.index.packs[pack_id]
    first = entry.blobs[0]
    wrong = BlobEntry(first.type, bytes(32), first.offset, first.length)
    repo.write_index([PackEntry(pack_id, 0, (wrong, *entry.blobs[1:]))])
    repo.write_index([PackEntry(bytes(range(32)), 0, (wrong,))])  # a pack no store holds
    report = check_repository(repo, read_data=True)
    assert any("described differently" in error for error in report.errors)
    assert any(object_key("data", bytes(range(32))) in error and "lost" in error for error in report.errors)
    assert report.packs_lost == 1


# --- replace-store --------------------------------------------------------------------------


@pytest.mark.parametrize("given_old", [False, True], ids=["old-gone", "old-wiped"])
def test_replace_store_rebuilds_a_lost_store(pristine: Pristine, given_old: bool) -> None:
    stores = _restore(pristine)
    old = 2
    if given_old:
        with _open(stores, pristine) as repo:
            _wipe(stores[old])
            report = replace_store(repo, old, fresh := MemoryBackend("fresh"))
    else:
        with _open([s for i, s in enumerate(stores) if i != old], pristine) as repo:
            assert repo.stores[old] is None
            report = replace_store(repo, old, fresh := MemoryBackend("fresh"))
    assert report.shards_rewritten == {old: 5} and report.objects_checked == 5
    assert (report.configs_rewritten, report.key_files_copied, report.objects_lost) == (1, 1, [])
    assert {key: fresh.get(key) for key in fresh.list("")} == pristine.objects[old]
    replaced: list[Backend] = [*stores[:old], fresh, *stores[old + 1 :]]
    with _open(replaced, pristine) as repo:
        _healthy(check_repository(repo, read_data=True, referenced_blobs=pristine.blobs))
    _assert_blobs_exact(
        [fresh, stores[0], stores[4]], pristine
    )  # the rebuilt shards decode with any two others


def test_replace_store_resumes_after_an_interruption(stores: list[MemoryBackend], pristine: Pristine) -> None:
    with _open(stores[:4], pristine) as repo:
        target = MemoryBackend("fresh")
        with pytest.raises(StoreDown, match="fresh"):
            replace_store(
                repo, 4, FaultyBackend(target, fail_puts=[5])
            )  # config, key file, 2 shards, then dies
        assert CONFIG_KEY in target.list("")
        present = [key for key in pristine.codec_keys() if key in target.list("")]
        assert 2 <= len(present) < 5
        resumed = replace_store(repo, 4, target)
        assert resumed.shards_rewritten == {4: 5 - len(present)} and resumed.configs_rewritten == 0
    assert {key: target.get(key) for key in target.list("")} == pristine.objects[4]


def test_replace_store_refuses_a_store_in_use_or_not_empty(
    stores: list[MemoryBackend], repo: Repository
) -> None:
    with pytest.raises(RepositoryError, match="not empty"):
        replace_store(repo, 1, _with_object("x"))
    with pytest.raises(RepositoryError, match="not an interrupted replacement of store 1"):
        replace_store(repo, 1, _with_object("y", CONFIG_KEY, stores[3].get(CONFIG_KEY)))
    with pytest.raises(Exception, match="already store 3"):
        replace_store(repo, 1, stores[3])
    with pytest.raises(Exception, match="store number"):
        replace_store(repo, 5, MemoryBackend("z"))


def test_replace_store_needs_k_other_stores(stores: list[MemoryBackend], pristine: Pristine) -> None:
    with _open(stores[:3], pristine) as repo:
        for key in stores[1].list("data/") + stores[1].list("index/") + stores[1].list("snapshots/"):
            stores[1].delete(key)
        report = replace_store(repo, 4, MemoryBackend("fresh"))
        assert sorted(report.objects_lost) == sorted(pristine.codec_keys())


def _with_object(name: str, key: str = "junk", data: bytes = b"x") -> MemoryBackend:
    store = MemoryBackend(name)
    store.put(key, data)
    return store


# --- any damage within the parity heals -----------------------------------------------------

DAMAGE = st.sampled_from(["delete", "flip-body", "flip-header", "truncate", "swap", "misplace"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_within_the_parity_heals(pristine: Pristine, data: st.DataObject) -> None:
    stores = _restore(pristine)
    keys = pristine.codec_keys()
    for key in keys:
        damaged = data.draw(st.sets(st.integers(0, N - 1), max_size=N - K), label=key)
        for number in damaged:
            kind = data.draw(DAMAGE)
            shard = stores[number].get(key)
            if kind == "delete":
                stores[number].delete(key)
            elif kind == "flip-body":
                _flip(stores[number], key, data.draw(st.integers(codec.HEADER_BYTES, len(shard) - 1)))
            elif kind == "flip-header":
                _flip(stores[number], key, data.draw(st.integers(0, codec.HEADER_BYTES - 1)))
            elif kind == "truncate":
                stores[number].put(key, shard[: data.draw(st.integers(0, len(shard) - 1))])
            elif kind == "swap":
                other = data.draw(st.sampled_from([k for k in keys if k != key]))
                stores[number].put(key, pristine.objects[number][other])
            else:
                stores[number].put(key, pristine.objects[(number + 1) % N][key])
    with _open(stores, pristine) as repo:
        assert check_repository(repo, read_data=True).status in ("healthy", "degraded")
        report = repair_repository(repo)
        assert report.objects_lost == []
        _healthy(check_repository(repo, read_data=True, referenced_blobs=pristine.blobs))
    assert _snapshot(stores) == pristine.objects


# --- rebuilding the index from the packs ----------------------------------------------------


class RefusesDeletes(RecordingBackend):
    """A store that takes writes but fails every delete (a crash between the two steps)."""

    def delete(self, key: str) -> None:
        raise StoreError(f"{self.name}: cannot delete {key!r}")


def test_rebuild_index_from_the_packs_writes_before_it_deletes(
    stores: list[MemoryBackend], pristine: Pristine
) -> None:
    with _open(stores, pristine) as repo:  # a second, readable index naming one of the packs
        pack_id = object_id_of("data", pristine.packs[0])
        assert pack_id is not None
        repo.write_index([repo.index.packs[pack_id]])
    for number in range(3):  # three shards of the first index: beyond the parity
        _flip(stores[number], pristine.indexes[0])
    with _open(stores, pristine) as repo:
        assert len(repo.index) < len(pristine.blobs) and pristine.indexes[0] in repo.bad_indexes
        missing = next(blob for blob in pristine.blobs if blob not in repo.index)
        with pytest.raises(RepositoryError, match="in no index"):
            repo.load_blob(missing)
    # Stores that refuse deletes: the new index is stored before any old one goes.
    with (
        _open([RefusesDeletes(store) for store in stores], pristine) as repo,
        pytest.raises(StoreDown, match="deleting"),
    ):
        rebuild_index(repo)
    with _open(stores, pristine) as repo:
        assert len(repo.index) == len(pristine.blobs)
        report = rebuild_index(repo)
        assert (report.packs_read, report.blobs_indexed) == (3, len(pristine.blobs))
        assert report.packs_unreadable == {} and report.indexes_written == 0
        assert report.indexes_removed >= 1 and len(stores[0].list("index/")) == 1
        _healthy(check_repository(repo, read_data=True, referenced_blobs=pristine.blobs))
    _assert_blobs_exact(stores, pristine)


def test_rebuild_index_reports_an_unreadable_pack_and_keeps_its_old_entry(
    stores: list[MemoryBackend], pristine: Pristine
) -> None:
    for number in range(3):
        _flip(stores[number], pristine.packs[0])
    with _open(stores, pristine) as repo:
        dry = rebuild_index(repo, dry_run=True)
        assert dry.dry_run and dry.packs_read == 2 and list(dry.packs_unreadable) == [pristine.packs[0]]
        assert _snapshot(stores)[3] == pristine.objects[3]
        report = rebuild_index(repo)
        assert report.packs_kept_from_old_index == 1
        assert len(repo.index) == len(pristine.blobs)


def test_the_store_reader_syncs_what_repair_wrote_when_it_closes(tmp_path: Path) -> None:
    # A local store batches the directory fsyncs of pack shards until its next other write;
    # repair and replace-store write shards through the reader's stores (a new store among
    # them), so closing the reader syncs each of them.
    fresh = LocalBackend(tmp_path / "fresh", create=True)
    with StoreReader([fresh, None], {1: "gone"}) as reader:
        reader.stores[0].put("data/ab/" + "ab" * 32, b"a shard")  # type: ignore[union-attr]
        assert fresh._unsynced
    assert fresh._unsynced == set()
