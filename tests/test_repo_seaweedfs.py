"""Repositories on S3 stores (SeaweedFS), and one store whose server dies in the middle of a backup.

Four stores are prefixes in the buckets of the session's SeaweedFS (``conftest_seaweedfs``); the
fifth, the *spare*, lives on a second SeaweedFS that the test starts for itself and kills
(``SIGKILL``) from the backup's progress callback once about a third of the bytes are read, so
the store vanishes while packs are being written to it. Every store URL asks for short timeouts
and no retries inside obstore, so a dead server fails fast; the backends are wrapped in a short
:class:`RetryingBackend` as the CLI wraps them.

* Without ``degraded_ok`` the backup stops with :class:`StoreDown` naming the spare and
  suggesting ``--degraded-ok``, and no snapshot appears.
* With ``degraded_ok`` it completes on the four stores that answer, the manifest names the
  spare's store number in ``degraded_stores``, and the four restore it bit-exact. Then ``lifeboat
  repo replace-store`` rebuilds the spare onto a local directory, and ``check --read-data`` over
  the four S3 stores and the new one is clean.

The plain case, five S3 stores through the CLI end to end, comes first.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest

from conftest import CliRunner
from conftest_seaweedfs import SeaweedS3, run_seaweedfs, seaweedfs
from lifeboat.reachability import reachable_blobs
from lifeboat.snapshot.files import BackupProgress, backup_paths
from lifeboat.snapshot.restore import restore
from lifeboat.store.backends import Backend, RetryingBackend, open_backend
from lifeboat.store.check import check_repository
from lifeboat.store.errors import StoreDown
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.repository import Repository
from repo_helpers import assert_same_tree, make_tree, restored_root

__all__ = ["seaweedfs"]  # the imported fixture is used by name

PASSPHRASE = "five buckets, any three"
MiB = 1 << 20
#: Fail fast on a dead server: short timeouts, no retries inside obstore.
FAST = "&timeout=5&connect_timeout=1&max_retries=0"
#: The spare's store number (not the last one: numbers come from the configs, not the order).
SPARE = 2
BULK_FILES = 9
BULK_FILE_BYTES = 4 * MiB


def _store_args(urls: list[str]) -> list[str]:
    return list(itertools.chain.from_iterable(("--store", url) for url in urls))


def _s3_urls(s3: SeaweedS3, count: int) -> list[str]:
    """``count`` fresh stores: distinct prefixes, alternating between the session's buckets."""
    tag = uuid.uuid4().hex
    return [s3.url(s3.buckets[i % len(s3.buckets)], f"{tag}/s{i}") + FAST for i in range(count)]


def _backend(url: str) -> Backend:
    return RetryingBackend(open_backend(url), attempts=3, base_delay=0.05, max_delay=0.2)


@pytest.fixture
def repo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's environment: passphrase, cache, no $LIFEBOAT_STORES (every command names its stores)."""
    monkeypatch.delenv("LIFEBOAT_STORES", raising=False)
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_five_s3_stores_round_trip_through_the_cli(
    cli: CliRunner, seaweedfs: SeaweedS3, repo_env: Path
) -> None:
    urls = _s3_urls(seaweedfs, 5)
    stores = _store_args(urls)
    src = make_tree(repo_env / "src")
    created = cli("--json", "repo", "init", *stores, "--data-shards", "3")
    assert created.code == 0, created.err
    assert (created.json()["k"], created.json()["n"]) == (3, 5)

    first = cli("--json", "backup", src, "--no-progress", *stores)
    assert first.code == 0, first.err
    (src / "docs" / "note-2.txt").write_bytes(random.Random(2).randbytes(70_000))
    (src / "added.bin").write_bytes(random.Random(3).randbytes(1_500_000))
    second = cli("--json", "backup", src, "--no-progress", *stores)
    assert second.code == 0, second.err
    summary = second.json()["summary"]
    assert (summary["files_new"], summary["files_changed"]) == (1, 1)
    assert summary["files_unmodified"] >= 10
    assert len(cli("--json", "snapshots", *stores).json()["snapshots"]) == 2

    target = repo_env / "out"
    restored = cli("--json", "restore", "latest", "--target", target, "--no-progress", *stores)
    assert restored.code == 0, restored.err
    assert_same_tree(src, restored_root(target, src))

    check = cli("--json", "check", "--read-data", "--no-progress", *stores)
    assert check.code == 0, check.out + check.err
    report = check.json()
    assert report["status"] == "healthy" and report["errors"] == []
    assert report["packs"]["total"] == report["packs"]["healthy"] > 0


@dataclass
class SpareRepo:
    """A fresh 3-of-5 repository: four S3 stores on the session server, store SPARE on its own server."""

    urls: list[str]
    spare: Popen[bytes]
    src: Path
    total: int
    #: Bytes the backup had read when the spare's server was killed (empty: not killed yet).
    killed_at: list[int] = field(default_factory=list)

    @property
    def backends(self) -> list[Backend]:
        """Fresh backends for all five stores, in store-number order."""
        return [_backend(url) for url in self.urls]

    @property
    def survivors(self) -> list[str]:
        return [url for number, url in enumerate(self.urls) if number != SPARE]

    def kill_spare_at_a_third(self, progress: BackupProgress) -> None:
        """Progress callback: kill the spare's server once a third of the bytes are read."""
        if not self.killed_at and progress.bytes_done >= self.total // 3:
            self.spare.kill()
            self.spare.wait()
            self.killed_at.append(progress.bytes_done)


@pytest.fixture
def spare_repo(seaweedfs: SeaweedS3, tmp_path: Path) -> Iterator[SpareRepo]:
    src = make_tree(tmp_path / "src")
    rng = random.Random(40)
    (src / "bulk").mkdir()
    for number in range(BULK_FILES):
        (src / "bulk" / f"part-{number}.bin").write_bytes(rng.randbytes(BULK_FILE_BYTES))
    total = sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    with run_seaweedfs(tmp_path / "weed2", ("lifeboat-spare",)) as (spare, process):
        urls = _s3_urls(seaweedfs, 4)
        urls.insert(SPARE, spare.url("lifeboat-spare", f"{uuid.uuid4().hex}/spare") + FAST)
        Repository.init([_backend(url) for url in urls], PASSPHRASE, k=3, kdf=TEST_KDF, pack_size=MiB).close()
        yield SpareRepo(urls, process, src, total)


def test_a_store_dying_mid_backup_stops_it_by_name_and_leaves_no_snapshot(spare_repo: SpareRepo) -> None:
    backends = spare_repo.backends
    spare_name = backends[SPARE].name
    with (
        Repository.open(backends, PASSPHRASE, writable=True) as repo,
        pytest.raises(StoreDown) as refused,
    ):
        backup_paths(repo, [spare_repo.src], progress=spare_repo.kill_spare_at_a_third)
    assert spare_repo.killed_at, "the backup finished before the spare's server was killed"
    message = str(refused.value)
    assert f"store {SPARE} ({spare_name})" in message, message
    assert "--degraded-ok" in message, message

    with Repository.open(spare_repo.backends, PASSPHRASE) as repo:
        assert sorted(repo.unavailable) == [SPARE]
        assert repo.manifests() == []
        assert repo.bad_manifests == {}
        report = check_repository(repo, referenced_blobs=reachable_blobs(repo, []).blobs)
    assert report.errors == [], report.errors
    assert report.status == "degraded"  # the spare is unreachable; what the backup left is orphans


def test_degraded_ok_backup_survives_a_store_dying_and_replace_store_rebuilds_it(
    cli: CliRunner, spare_repo: SpareRepo, repo_env: Path
) -> None:
    src = spare_repo.src
    with Repository.open(spare_repo.backends, PASSPHRASE, writable=True, degraded_ok=True) as repo:
        result = backup_paths(repo, [src], progress=spare_repo.kill_spare_at_a_third)
    assert spare_repo.killed_at, "the backup finished before the spare's server was killed"
    assert spare_repo.killed_at[0] < spare_repo.total
    assert result.degraded_stores == [SPARE]
    assert result.manifest.payload["degraded_stores"] == [SPARE]
    assert result.errors == []

    with Repository.open([_backend(url) for url in spare_repo.survivors], PASSPHRASE) as repo:
        manifest = repo.find_manifest("latest")
        assert manifest.id == result.manifest.id
        assert manifest.payload["degraded_stores"] == [SPARE]
        target = repo_env / "from-four"
        restored = restore(repo, manifest, target)
    assert restored.errors == []
    assert_same_tree(src, restored_root(target, src))

    fresh = repo_env / "new-store"
    stores = _store_args(spare_repo.urls)
    replaced = cli("--json", "repo", "replace-store", spare_repo.urls[SPARE], fresh, "--no-progress", *stores)
    assert replaced.code == 0, replaced.out + replaced.err
    assert replaced.json()["store"] == SPARE

    healed = [*spare_repo.survivors, str(fresh)]
    check = cli("--json", "check", "--read-data", "--no-progress", *_store_args(healed))
    assert check.code == 0, check.out + check.err
    report = check.json()
    assert report["status"] == "healthy" and report["errors"] == []
    assert [store["name"] for store in report["stores"]][SPARE] == f"local:{fresh}"

    # The rebuilt store is a real one: with any two others it restores everything.
    target = repo_env / "from-rebuilt"
    three = [str(fresh), spare_repo.survivors[0], spare_repo.survivors[3]]
    restored_cli = cli(
        "--json", "restore", "latest", "--target", target, "--no-progress", *_store_args(three)
    )
    assert restored_cli.code == 0, restored_cli.err
    assert_same_tree(src, restored_root(target, src))
