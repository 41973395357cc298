"""The repository layer: opening across stores, objects, blobs, manifests, locks, degraded writes."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from lifeboat.store.backends import FaultyBackend, LocalBackend, MemoryBackend, StoreError
from lifeboat.store.codec import ShardError
from lifeboat.store.config import CONFIG_KEY
from lifeboat.store.errors import FormatError, LockedError, RepositoryError, RepositoryKeyError, StoreDown
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.repository import (
    BLOB_DATA,
    BLOB_TREE,
    Repository,
    default_data_shards,
)

MiB = 1 << 20


def _stores(n: int = 5) -> list[MemoryBackend]:
    return [MemoryBackend(f"mem{i}") for i in range(n)]


def _init(stores: list[MemoryBackend] | list[FaultyBackend], **kw: object) -> Repository:
    kw.setdefault("kdf", TEST_KDF)
    kw.setdefault("k", 3 if len(stores) == 5 else None)
    return Repository.init(stores, "correct horse", pack_size=1 * MiB, **kw)  # type: ignore[arg-type]


def _blobs(count: int, size: int = 200_000, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


def test_default_data_shards_gives_parity_from_three_stores() -> None:
    assert default_data_shards(1) == 1
    assert default_data_shards(2) == 1
    assert default_data_shards(5) == 3
    for n in range(3, 33):
        assert 1 <= default_data_shards(n) < n


def test_blobs_round_trip_through_packs_and_a_reopen_in_any_store_order() -> None:
    stores = _stores()
    blobs = _blobs(30)
    with _init(stores) as repo, repo.writer() as writer:
        ids = [writer.add_blob(BLOB_DATA, blob)[0] for blob in blobs]
        again = writer.add_blob(BLOB_DATA, blobs[0])
    assert again == (ids[0], False)
    assert writer.stats.blobs_new == 30 and writer.stats.packs_written >= 5
    shuffled = list(stores)
    random.Random(3).shuffle(shuffled)
    with Repository.open(shuffled, "correct horse") as repo:
        assert [s.name if s else None for s in repo.stores] == [f"mem{i}" for i in range(5)]
        assert len(repo.index) == 30
        for blob_id, blob in zip(ids, blobs, strict=True):
            assert repo.load_blob(blob_id) == blob


def test_every_store_holds_one_shard_of_each_object_and_no_plaintext() -> None:
    stores = _stores()
    marker = b"very-recognisable-plaintext-" * 1000
    with _init(stores) as repo, repo.writer() as writer:
        writer.add_blob(BLOB_DATA, marker)
    keys = [set(store.list("data/")) for store in stores]
    assert all(k == keys[0] and len(k) == 1 for k in keys)
    for store in stores:
        for key in store.list(""):
            assert b"recognisable" not in store.get(key)


def test_any_k_stores_read_everything() -> None:
    stores = _stores()
    blobs = _blobs(8)
    with _init(stores) as repo, repo.writer() as writer:
        ids = [writer.add_blob(BLOB_DATA, b)[0] for b in blobs]
    for survivors in ([0, 1, 2], [2, 3, 4], [0, 2, 4], [1, 3, 4]):
        with Repository.open([stores[i] for i in survivors], "correct horse") as repo:
            assert sorted(repo.unavailable) == sorted(set(range(5)) - set(survivors))
            assert [repo.load_blob(i) for i in ids] == blobs
    with pytest.raises(StoreDown, match="only 2 of 5 stores answer and 3 are needed"):
        Repository.open([stores[0], stores[4]], "correct horse")


def test_wrong_passphrase_and_master_key_errors() -> None:
    stores = _stores(3)
    _init(stores).close()
    with pytest.raises(RepositoryKeyError, match="wrong passphrase"):
        Repository.open(stores, "not it")
    with pytest.raises(RepositoryKeyError):
        Repository.open(stores, master_key=bytes(32))


def test_a_store_of_another_repository_is_named() -> None:
    ours, theirs = _stores(3), _stores(3)
    for i, store in enumerate(theirs):
        store.name = f"other{i}"
    _init(ours).close()
    _init(theirs).close()
    with pytest.raises(RepositoryError, match="different repositories.*other0"):
        Repository.open([ours[0], ours[1], theirs[0]], "correct horse")


def test_two_stores_claiming_one_number_are_refused() -> None:
    stores = _stores(3)
    _init(stores).close()
    copy = MemoryBackend("copy-of-mem1")
    for key in stores[1].list(""):
        copy.put(key, stores[1].get(key))
    with pytest.raises(RepositoryError, match="both claim to be store 1"):
        Repository.open([*stores, copy], "correct horse")


def test_init_refuses_non_empty_stores_and_bad_k() -> None:
    stores = _stores(3)
    stores[2].put("something", b"x")
    with pytest.raises(RepositoryError, match="not empty"):
        _init(stores)
    with pytest.raises(Exception, match="between 1 and the number of stores"):
        _init(_stores(3), k=4)


def test_a_failed_init_removes_what_it_wrote() -> None:
    inner = _stores(3)
    # the third store takes its key file, then fails on its config
    stores = [FaultyBackend(inner[0]), FaultyBackend(inner[1]), FaultyBackend(inner[2], fail_puts=[2])]
    with pytest.raises(StoreError):
        _init(stores)
    assert [store.list("") for store in inner] == [[], [], []]
    _init(inner).close()  # and the stores can be used for a new repository at once


def test_a_tampered_config_leaves_its_store_out_and_one_key_must_match_some_config() -> None:
    stores = _stores(3)
    _init(stores, k=2).close()
    body = json.loads(stores[1].get(CONFIG_KEY))
    body["pack_size"] = 2 * MiB
    stores[1].put(CONFIG_KEY, json.dumps(body).encode())
    # One altered (or rotted) config must not lock everyone out: its store is left out, by name.
    with Repository.open(stores, "correct horse") as repo:
        assert repo.stores[1] is None and 1 in repo.unavailable
        assert stores[1] in repo.damaged_stores
        assert any("mem1" in failure and "does not match" in failure for failure in repo.store_failures)
    with pytest.raises(StoreDown, match="writing needs every store"):
        Repository.open(stores, "correct horse", writable=True)
    with pytest.raises(RepositoryKeyError, match="no store's config matches"):
        Repository.open(stores, master_key=bytes(32))


def test_newer_config_version_asks_for_an_upgrade() -> None:
    stores = _stores(3)
    _init(stores).close()
    body = json.loads(stores[0].get(CONFIG_KEY))
    body["version"] = 9
    stores[0].put(CONFIG_KEY, json.dumps(body).encode())
    with pytest.raises(FormatError, match="(?i)upgrade"):
        Repository.open(stores, "correct horse")


def test_manifests_are_signed_and_a_forged_one_is_set_aside() -> None:
    stores = _stores()
    with _init(stores) as repo:
        manifest = repo.put_manifest({"kind": "files", "tree": "00" * 32, "paths": ["/x"]})
        assert repo.find_manifest("latest").id == manifest.id
        assert repo.find_manifest(manifest.id.hex()[:6]).id == manifest.id
        with pytest.raises(Exception, match="no snapshot"):
            repo.find_manifest("ffff")
    # Re-encode the manifest with a changed payload under the same key: the codec accepts it,
    # the signature does not.
    with Repository.open(stores, "correct horse") as repo:
        body = dict(manifest.payload)
        body["paths"] = ["/elsewhere"]
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        forged_id = repo.blob_id(data)
        repo.put_object(repo.manifest_key(forged_id), forged_id, data)
        found = repo.manifests()
        assert [m.id for m in found] == [manifest.id]
        assert list(repo.bad_manifests) == [repo.manifest_key(forged_id)]
        assert "signature" in repo.bad_manifests[repo.manifest_key(forged_id)]


def test_shared_locks_coexist_and_exclusive_excludes() -> None:
    stores = _stores(3)
    with _init(stores) as repo:
        with repo.lock(exclusive=False, operation="backup"), repo.lock(exclusive=False, operation="backup"):
            assert len(repo.locks()) == 2
            with (
                pytest.raises(LockedError, match="shared lock for backup"),
                repo.lock(exclusive=True, operation="prune"),
            ):
                pass
        assert repo.locks() == []
        with repo.lock(exclusive=True, operation="prune"):
            with (
                pytest.raises(LockedError, match="exclusive lock for prune"),
                repo.lock(exclusive=False, operation="backup"),
            ):
                pass
            assert len(repo.locks()) == 1


def test_stale_locks_are_ignored_and_removed() -> None:
    stores = _stores(3)
    with _init(stores) as repo:
        repo.lock_ttl = -1  # every lock written from now on is already expired
        with repo.lock(exclusive=True, operation="prune"):
            repo.lock_ttl = 60
            assert [lock.reason for lock in repo.locks()] == ["expired"]
            with repo.lock(exclusive=True, operation="prune"):  # the stale one does not block
                pass
            assert len(repo.remove_locks()) == 1
            assert repo.locks() == []


def test_a_lock_of_a_dead_process_on_this_host_is_stale() -> None:
    stores = _stores(3)
    with _init(stores) as repo:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child exits at once
            os._exit(0)
        os.waitpid(pid, 0)
        real_getpid = os.getpid
        try:
            os.getpid = lambda: pid
            with repo.lock(exclusive=False, operation="backup"):
                os.getpid = real_getpid
                assert [lock.reason for lock in repo.locks()] == ["its process is gone"]
                with repo.lock(exclusive=True, operation="prune"):
                    pass
        finally:
            os.getpid = real_getpid


def test_write_refused_when_a_store_is_down_unless_degraded_ok() -> None:
    stores = _stores()
    _init(stores).close()
    with pytest.raises(StoreDown, match="writing needs every store.*--degraded-ok"):
        Repository.open(stores[:4], "correct horse", writable=True)
    blob = _blobs(1)[0]
    with Repository.open(stores[:4], "correct horse", writable=True, degraded_ok=True) as repo:
        with repo.writer() as writer:
            blob_id = writer.add_blob(BLOB_DATA, blob)[0]
        assert writer.stats.missing_mask == 1 << 4
        (entry,) = repo.index.packs.values()
        assert entry.missing == 1 << 4
    with Repository.open(stores, "correct horse") as repo:
        assert repo.load_blob(blob_id) == blob


def test_a_store_failing_mid_write_names_the_store_and_degraded_ok_carries_on() -> None:
    inner = _stores()
    _init(inner).close()
    faulty = [
        FaultyBackend(s, fail_puts=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10] if i == 2 else ())
        for i, s in enumerate(inner)
    ]
    with (
        Repository.open(faulty, "correct horse", writable=True) as repo,
        pytest.raises(StoreDown, match=r"store 2 \(mem2\).*--degraded-ok"),
        repo.writer() as writer,
    ):
        writer.add_blob(BLOB_DATA, _blobs(1)[0])
    with Repository.open(faulty, "correct horse", writable=True, degraded_ok=True) as repo:
        with repo.writer() as writer:
            blob_id = writer.add_blob(BLOB_DATA, _blobs(1, seed=2)[0])[0]
        assert 2 in repo.unavailable
    with Repository.open(inner, "correct horse") as repo:
        assert repo.load_blob(blob_id) == _blobs(1, seed=2)[0]


def test_too_few_stores_answering_a_degraded_write_fails() -> None:
    inner = _stores()
    _init(inner).close()
    faulty = [FaultyBackend(s, fail_puts=1.0 if i < 3 else 0.0) for i, s in enumerate(inner)]
    with (
        Repository.open(faulty, "correct horse", writable=True, degraded_ok=True) as repo,
        pytest.raises(StoreDown, match="only 2 of 5 stores took their shard"),
        repo.writer() as writer,
    ):
        writer.add_blob(BLOB_DATA, b"x" * 1000)


def test_corrupt_shards_beyond_parity_fail_loudly_never_silently() -> None:
    stores = _stores()
    blob = _blobs(1)[0]
    with _init(stores) as repo, repo.writer() as writer:
        blob_id = writer.add_blob(BLOB_DATA, blob)[0]
    (key,) = stores[0].list("data/")
    for store in stores[:2]:
        data = bytearray(store.get(key))
        data[-5] ^= 0xFF
        store.put(key, bytes(data))
    with Repository.open(stores, "correct horse") as repo:
        assert repo.load_blob(blob_id) == blob
    data = bytearray(stores[2].get(key))
    data[-5] ^= 0xFF
    stores[2].put(key, bytes(data))
    with Repository.open(stores, "correct horse") as repo, pytest.raises(ShardError, match="need 3"):
        repo.load_blob(blob_id)


def test_index_cache_is_used_and_a_tampered_cache_entry_is_ignored(tmp_path: Path) -> None:
    stores = _stores(3)
    blobs = _blobs(3)
    with _init(stores, cache_dir=tmp_path) as repo, repo.writer() as writer:
        ids = [writer.add_blob(BLOB_DATA, b)[0] for b in blobs]
    with Repository.open(stores, "correct horse", cache_dir=tmp_path) as repo:
        cached = list((tmp_path / repo.id / "index").iterdir())
        assert len(cached) == 1
        assert oct(cached[0].stat().st_mode & 0o777) == "0o600"
    cached[0].write_bytes(b"garbage")
    with Repository.open(stores, "correct horse", cache_dir=tmp_path) as repo:
        assert [repo.load_blob(i) for i in ids] == blobs
    assert cached[0].read_bytes() != b"garbage"


def test_tree_and_data_blobs_go_to_separate_packs() -> None:
    stores = _stores(3)
    with _init(stores) as repo:
        with repo.writer() as writer:
            data_id = writer.add_blob(BLOB_DATA, b"d" * 100)[0]
            tree_id = writer.add_blob(BLOB_TREE, b'{"t": 1}')[0]
        data_at, tree_at = repo.index.lookup(data_id), repo.index.lookup(tree_id)
        assert data_at is not None and tree_at is not None
        assert data_at.pack != tree_at.pack
        assert tree_at.type == BLOB_TREE


def test_add_key_opens_with_either_passphrase(tmp_path: Path) -> None:
    stores = [LocalBackend(tmp_path / f"s{i}", create=True) for i in range(3)]
    with Repository.init(stores, "first", kdf=TEST_KDF) as repo:
        repo.add_key("second", kdf=TEST_KDF)
    for passphrase in ("first", "second"):
        Repository.open(stores, passphrase).close()
    assert len(stores[0].list("keys/")) == 2


def test_missing_store_directory_is_reported_as_down(tmp_path: Path) -> None:
    stores = [LocalBackend(tmp_path / f"s{i}", create=True) for i in range(3)]
    Repository.init(stores, "pw", kdf=TEST_KDF).close()
    stores[1].root.rename(tmp_path / "gone")
    with Repository.open(stores, "pw") as repo:
        assert list(repo.unavailable) == [1]
    with pytest.raises(StoreDown, match="store\\(s\\) 1 of 3 not available"):
        Repository.open(stores, "pw", writable=True)


def test_residue_of_an_interrupted_write_is_a_warning_and_prune_removes_it() -> None:
    from lifeboat.store.check import check_repository
    from lifeboat.store.prune import prune

    stores = _stores()
    with _init(stores) as repo:
        with repo.writer() as writer:
            live = writer.add_blob(BLOB_DATA, _blobs(1)[0])[0]
        manifest = repo.put_manifest({"kind": "files", "tree": live.hex()})
        # A crash after two of five shards of an index and of a manifest were written:
        before = set(repo.index.index_ids)
        with repo.writer() as writer:
            writer.add_blob(BLOB_DATA, b"orphaned by the crash" * 100)
        (new_index,) = set(repo.index.index_ids) - before
        half_index = repo.index_key(new_index)
        half_manifest = repo.put_manifest({"kind": "files", "tree": live.hex(), "note": "never finished"})
        for key in (half_index, repo.manifest_key(half_manifest.id)):
            for store in stores[2:]:
                store.delete(key)
    with Repository.open(stores, "correct horse", writable=True) as repo:
        assert set(repo.incomplete_indexes) == {half_index}
        assert [m.id for m in repo.manifests()] == [manifest.id]
        report = check_repository(repo, referenced_blobs={live})
        assert report.status == "healthy", report.errors
        assert sum("incomplete" in w for w in report.warnings) == 2
        with repo.lock(exclusive=True, operation="prune"):
            prune(repo, {live})
        assert all(half_index not in store.list("") for store in stores)
        assert repo.load_blob(live) == _blobs(1)[0]
        assert check_repository(repo, referenced_blobs={live}).warnings == []


def test_a_failed_write_without_degraded_ok_does_not_drop_the_store() -> None:
    inner = _stores()
    _init(inner).close()
    faulty = [FaultyBackend(s, fail_puts=[1] if i == 1 else ()) for i, s in enumerate(inner)]
    with Repository.open(faulty, "correct horse", writable=True) as repo:
        with pytest.raises(StoreDown, match=r"store 1 \(mem1\)"):
            repo.put_object(repo.index_key(bytes(32)), bytes(32), b"first")
        assert repo.unavailable == {}
        assert repo.put_object(repo.index_key(bytes(31) + b"\1"), bytes(31) + b"\1", b"second")[0] == 0


def test_a_passphrase_added_while_a_store_was_down_opens_the_whole_repository() -> None:
    stores = _stores()
    _init(stores).close()
    with Repository.open(stores[1:], "correct horse", writable=True, degraded_ok=True) as repo:
        repo.add_key("added later", kdf=TEST_KDF)
    assert len(stores[0].list("keys/")) == 1
    Repository.open(stores, "added later").close()


def test_a_key_file_of_another_repository_does_not_block_opening() -> None:
    stores, other = _stores(3), _stores(3)
    _init(stores).close()
    _init(other).close()
    (foreign,) = other[0].list("keys/")
    stores[0].put(foreign, other[0].get(foreign))
    Repository.open(stores, "correct horse").close()


def _damage_key_file(store: MemoryBackend, how: str) -> None:
    (key,) = store.list("keys/")
    data = store.get(key)
    if how == "truncate":
        store.put(key, data[: len(data) // 2])
    else:  # a valid base64 character of the wrapped key changed: it parses, and fails to authenticate
        at = data.index(b'"wrapped":"') + len(b'"wrapped":"') + 5
        store.put(key, data[:at] + (b"A" if data[at : at + 1] != b"A" else b"B") + data[at + 1 :])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_key_file_in_one_store_does_not_lock_the_repository_out(how: str) -> None:
    stores = _stores()
    _init(stores).close()
    (key,) = stores[0].list("keys/")
    good = stores[1].get(key)
    _damage_key_file(stores[0], how)
    with Repository.open(stores, "correct horse") as repo:
        assert repo.opened_key_file == (key, good)
        assert [(d.store, d.key) for d in repo.damaged_key_files] == [(0, key)]
        assert "damaged" in repo.damaged_key_files[0].reason
    # Store 0 first or last in the list: the same.
    Repository.open(stores[::-1], "correct horse").close()
    with pytest.raises(RepositoryKeyError, match="wrong passphrase"):
        Repository.open(stores, "not it")


def test_only_when_every_copy_fails_is_it_the_passphrase_or_no_key_file() -> None:
    stores = _stores(3)
    _init(stores).close()
    for store in stores:
        _damage_key_file(store, "flip")
    with pytest.raises(RepositoryKeyError, match="wrong passphrase"):
        Repository.open(stores, "correct horse")
    for store in stores:
        _damage_key_file(store, "truncate")
    with pytest.raises(RepositoryKeyError, match="no well-formed key file") as raised:
        Repository.open(stores, "correct horse")
    assert "wrong passphrase" not in str(raised.value)


@pytest.mark.parametrize(("field", "value"), [("store", 3), ("k", 4), ("n", 6)])
def test_a_rotted_config_claiming_another_number_or_layout_is_left_out(field: str, value: int) -> None:
    stores = _stores()
    _init(stores).close()
    body = json.loads(stores[1].get(CONFIG_KEY))
    body[field] = value  # parses, and says something false (its MAC no longer matches)
    stores[1].put(CONFIG_KEY, json.dumps(body).encode())
    with Repository.open(stores, "correct horse") as repo:
        assert repo.stores[1] is None and 1 in repo.unavailable
        assert repo.stores[3] is stores[3]
        assert stores[1] in repo.damaged_stores
        assert any("mem1" in failure for failure in repo.store_failures)
