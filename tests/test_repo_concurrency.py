"""Several backups at once, and prune against a running backup: the locks' job."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lifeboat.reachability import reachable_blobs
from lifeboat.snapshot.files import backup_paths
from lifeboat.snapshot.restore import restore
from lifeboat.store.backends import MemoryBackend
from lifeboat.store.check import check_repository
from lifeboat.store.errors import LockedError
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.prune import prune
from lifeboat.store.repository import Repository
from repo_helpers import assert_same_tree, make_tree, restored_root

MiB = 1 << 20


def test_concurrent_backups_each_land_a_complete_snapshot(tmp_path: Path) -> None:
    stores = [MemoryBackend(f"m{i}") for i in range(5)]
    Repository.init(stores, "pw", k=3, kdf=TEST_KDF, pack_size=MiB).close()
    sources = [make_tree(tmp_path / f"src{i}", seed=i) for i in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(sources))

    def run(source: Path) -> None:
        try:
            with Repository.open(stores, "pw", writable=True) as repo:
                start.wait()
                backup_paths(repo, [source])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Repository.open(stores, "pw") as repo:
        manifests = repo.manifests()
        assert len(manifests) == 3
        reach = reachable_blobs(repo, manifests)
        report = check_repository(repo, read_data=True, referenced_blobs=reach.blobs)
        assert report.status == "healthy", report.to_json()
        for manifest in manifests:
            (path,) = manifest.payload["paths"]
            target = tmp_path / f"out-{manifest.short_id}"
            assert restore(repo, manifest, target).errors == []
            assert_same_tree(Path(path), restored_root(target, Path(path)))


def test_prune_is_refused_while_a_backup_holds_its_lock(tmp_path: Path) -> None:
    stores = [MemoryBackend(f"m{i}") for i in range(5)]
    Repository.init(stores, "pw", k=3, kdf=TEST_KDF).close()
    source = make_tree(tmp_path / "src")
    with Repository.open(stores, "pw", writable=True) as backup_side:
        with (
            backup_side.lock(exclusive=False, operation="backup"),
            Repository.open(stores, "pw", writable=True) as prune_side,
            pytest.raises(LockedError, match="shared lock for backup"),
            prune_side.lock(exclusive=True, operation="prune"),
        ):
            prune(prune_side, set())  # never reached: the lock is refused first
        backup_paths(backup_side, [source])
    with Repository.open(stores, "pw", writable=True) as repo:
        with repo.lock(exclusive=True, operation="prune"):
            reach = reachable_blobs(repo, repo.manifests())
            prune(repo, reach.blobs)
        (manifest,) = repo.manifests()
        assert restore(repo, manifest, tmp_path / "out").errors == []
        assert_same_tree(source, restored_root(tmp_path / "out", source))


def test_a_backup_opened_before_a_prune_does_not_trust_the_old_index(tmp_path: Path) -> None:
    stores = [MemoryBackend(f"m{i}") for i in range(5)]
    Repository.init(stores, "pw", k=3, kdf=TEST_KDF).close()
    source = make_tree(tmp_path / "src")
    with Repository.open(stores, "pw", writable=True) as first:
        backup_paths(first, [source])
    with Repository.open(stores, "pw", writable=True) as late:  # reads the index now
        with (
            Repository.open(stores, "pw", writable=True) as pruner,
            pruner.lock(exclusive=True, operation="prune"),
        ):
            for manifest in pruner.manifests():
                pruner.delete_manifest(manifest.id)
            prune(pruner, set())
        result = backup_paths(late, [source])  # same files: must store them again
    with Repository.open(stores, "pw") as repo:
        reach = reachable_blobs(repo, repo.manifests())
        assert check_repository(repo, referenced_blobs=reach.blobs).status == "healthy"
        assert restore(repo, repo.load_manifest(result.manifest.id), tmp_path / "out").errors == []
        assert_same_tree(source, restored_root(tmp_path / "out", source))


def test_a_refreshed_lock_is_never_missed_by_an_exclusive_locker() -> None:
    stores = [MemoryBackend(f"m{i}") for i in range(4)]  # 3-of-4: a half-rewritten lock would not decode
    Repository.init(stores, "pw", k=3, kdf=TEST_KDF).close()
    with Repository.open(stores, "pw", writable=True) as holder, Repository.open(stores, "pw") as other:
        holder.lock_refresh = 0.001
        granted = 0
        with holder.lock(exclusive=False, operation="backup"):
            for _ in range(40):
                try:
                    with other.lock(exclusive=True, operation="prune"):
                        granted += 1
                except LockedError:
                    pass
        assert granted == 0
        assert holder.locks() == []
