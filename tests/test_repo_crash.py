"""``kill -9`` of a backup at random points never costs a snapshot, and the repository recovers.

Five local stores, k = 3, packs of 1 MiB (a backup of a few MiB writes several packs, each as
five shards written in parallel, then an index, then the manifest, then removes its lock). A
first complete backup gives snapshot A. Then, again and again, the source tree changes (a fresh
2 MiB file of random bytes, one existing file rewritten) and ``lifeboat backup`` runs as a
subprocess that gets ``SIGKILL`` after a random delay.

What a kill may leave, and what ``check`` must then say:

* packs that no index names (orphans; prune removes them), index or manifest objects with fewer
  than k shards (incomplete: nothing depends on them; never listed), and a lock whose process is
  gone (stale): all *warnings*;
* an object whose shards were being written when the kill came may hold only some of them: with
  k or more it is complete but *degraded* (``check`` exits 3, ``repair`` rebuilds the rest);
* never an *error*: no listed snapshot may name data that is not there, so ``check`` exits 0 or
  3 and its ``errors`` are empty, and snapshot A restores bit-exact every few rounds.

Where the kill lands: most of a backup subprocess's life is Python starting up and importing
(about 0.4 s here), its writes take a few tens of milliseconds. A delay drawn from
``[0, 1.2 × duration]`` after the start would almost always kill it before it touches the
stores, so most rounds anchor the delay on the moment the backup's lock object appears (its
first write) and draw it from ``[0, 1.2 × (lock → exit)]``, both measured once on a complete
backup of the same size; every fourth round draws from ``[0, 1.2 × duration]`` after the start
(kills before or during the lock write). Every kill is logged with its delay and what it left in
the stores (new objects of each kind and how many stores hold each), and the log is part of
every assertion message.

At the end a normal backup completes, ``repair`` rebuilds what the kills left degraded,
``check --read-data`` is clean, ``latest`` restores bit-exact, and ``forget --keep-last 1
--prune`` runs: the locks of the killed processes are recognised as stale (this host, pid gone)
and the prune removes the leftovers, after which ``check --read-data`` is clean again.

Two more tests: the same crash at *every* write boundary of one backup, replayed on memory
stores (deterministic, so the shard-by-shard index and manifest states are certainly reached);
and ``repair`` on the leftover of an interrupted write (fewer than k shards, all intact): like
``check``, it reports it as incomplete, for prune to remove, not as lost.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, CliRunner
from lifeboat.reachability import reachable_blobs
from lifeboat.snapshot.files import backup_paths
from lifeboat.snapshot.restore import restore
from lifeboat.store import codec
from lifeboat.store.backends import Backend, LocalBackend, MemoryBackend
from lifeboat.store.check import check_repository
from lifeboat.store.keyfile import TEST_KDF
from lifeboat.store.prune import prune
from lifeboat.store.repair import repair_repository
from lifeboat.store.repository import Repository
from repo_helpers import assert_same_tree, make_tree, restored_root

PASSPHRASE = "kill -9 is not a backup strategy"
MiB = 1 << 20
SEED = 20261124
ROUNDS = 24
#: Every ROUNDS_UNANCHORED-th round draws its delay from the start of the process.
ROUNDS_UNANCHORED = 4
RESTORE_EVERY = 4
READ_DATA_EVERY = 6
NEW_FILE_BYTES = 2 * MiB
KINDS = ("locks", "data", "index", "snapshots")


@dataclass
class Timing:
    """A complete backup of one round's size: seconds from start to exit, and from its lock to exit."""

    total: float
    after_lock: float


class Round:
    """One backup subprocess, optionally killed; remembers when its first lock object appeared."""

    def __init__(self, src: Path, env: dict[str, str], lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self.locks_before = _names(lock_dir)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lifeboat", "backup", str(src), "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lock_seen: float | None = None

    def wait_for_lock(self, timeout: float = 30.0) -> float | None:
        """Seconds from the start until a new lock object is listed in the store (None if it exits first)."""
        deadline = self.started + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if _names(self.lock_dir) - self.locks_before:
                self.lock_seen = time.monotonic() - self.started
                return self.lock_seen
            time.sleep(0.0005)
        return None

    def finish(self, *, kill: bool) -> tuple[int, float, str]:
        """SIGKILL (if asked and still running), reap; return (exit status, seconds since start, stderr)."""
        if kill and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, time.monotonic() - self.started, err.decode(errors="replace")


def _names(directory: Path) -> set[str]:
    try:
        return {name for name in os.listdir(directory) if not name.startswith(".")}
    except FileNotFoundError:
        return set()


def _inventory(stores: list[Path]) -> dict[str, Counter[str]]:
    """kind → key → how many stores hold a shard of it (hidden temporary files are not objects)."""
    found: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for store in stores:
        for kind in KINDS:
            for path in (store / kind).rglob("*"):
                if path.is_file() and not path.name.startswith("."):
                    found[kind][path.name] += 1
    return found


def _what_changed(before: dict[str, Counter[str]], after: dict[str, Counter[str]]) -> str:
    """``data+2[5,3] index+0 snapshots+0 locks+1[5]``: new objects per kind, with their shard counts."""
    parts = []
    for kind in KINDS:
        new = sorted((count for key, count in after[kind].items() if key not in before[kind]), reverse=True)
        parts.append(f"{kind}+{len(new)}" + (f"[{','.join(map(str, new))}]" if new else ""))
    return " ".join(parts)


def _change_source(src: Path, rng: random.Random, number: int) -> str:
    """Add a fresh random file and rewrite part of an existing one; return what was done."""
    fresh = src / "rounds" / f"round-{number:02d}.bin"
    fresh.parent.mkdir(exist_ok=True)
    fresh.write_bytes(rng.randbytes(NEW_FILE_BYTES))
    candidates = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_size > 0 and p != fresh
    )
    victim = rng.choice(candidates)
    data = bytearray(victim.read_bytes())
    start = rng.randrange(len(data))
    patch = rng.randbytes(min(len(data) - start, rng.randint(1, 64 * 1024)))
    data[start : start + len(patch)] = patch
    victim.write_bytes(bytes(data) + rng.randbytes(rng.randint(1, 100)))
    when = 1_700_000_000_000_000_000 + number * 1_000_000_007  # a new mtime whatever the clock's grain
    os.utime(victim, ns=(when, when))
    return f"+{fresh.relative_to(src)}, ~{victim.relative_to(src)}"


def _check(cli: CliRunner, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    result = cli("--json", "check", "--no-progress", *extra)
    report = result.json()
    assert isinstance(report, dict)
    return result, report


def _restore(cli: CliRunner, snapshot: str, target: Path) -> CliResult:
    return cli("--json", "restore", snapshot, "--target", target, "--no-progress")


def _measure(src: Path, env: dict[str, str], lock_dir: Path, rng: random.Random) -> Timing:
    """Time one complete backup of a round's size (it becomes a snapshot like any other)."""
    _change_source(src, rng, 0)
    run = Round(src, env, lock_dir)
    lock_at = run.wait_for_lock()
    code, total, err = run.finish(kill=False)
    assert code == 0, err
    assert lock_at is not None, "the backup exited before its lock object was seen"
    return Timing(total=total, after_lock=max(total - lock_at, 0.01))


@pytest.mark.slow
def test_kill_9_during_backup_never_costs_a_snapshot_and_repair_prune_recover(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 kills; after each, check exits 0 or 3 (never 1) with no errors. See the module docstring.

    Exit 3 (degraded) is allowed because a kill between the shard writes of one index or
    manifest can leave it with k to n-1 shards: complete, listed, and missing shards for repair.
    """
    stores = [tmp_path / f"store{i}" for i in range(5)]
    src = make_tree(tmp_path / "src")
    pristine = make_tree(tmp_path / "pristine")  # the same seed: SRC as snapshot A saw it
    assert_same_tree(src, pristine)
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, stores)))
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = dict(os.environ)
    Repository.init(
        [LocalBackend(store, create=True) for store in stores], PASSPHRASE, k=3, kdf=TEST_KDF, pack_size=MiB
    ).close()

    first = Round(src, env, stores[0] / "locks")
    code, _, err = first.finish(kill=False)
    assert code == 0, err
    snapshots = cli("--json", "snapshots").json()["snapshots"]
    assert len(snapshots) == 1
    snapshot_a = snapshots[0]["id"]

    rng = random.Random(SEED)
    timing = _measure(src, env, stores[0] / "locks", rng)
    log = [
        f"seed {SEED}; a complete backup takes {timing.total:.3f} s, {timing.after_lock:.3f} s of it "
        "after its lock appears"
    ]

    def trail() -> str:
        return "\n".join(log)

    interrupted_after_writing = 0
    completed = 0
    for number in range(1, ROUNDS + 1):
        change = _change_source(src, rng, number)
        before = _inventory(stores)
        run = Round(src, env, stores[0] / "locks")
        if number % ROUNDS_UNANCHORED == 0:
            delay = rng.uniform(0, 1.2 * timing.total)
            time.sleep(delay)
            when = f"{delay:.3f} s after start"
        else:
            lock_at = run.wait_for_lock()
            delay = rng.uniform(0, 1.2 * timing.after_lock)
            time.sleep(delay)
            seen = "never" if lock_at is None else f"{lock_at:.3f} s"
            when = f"{delay:.3f} s after its lock (seen at {seen})"
        code, lived, err = run.finish(kill=True)
        after = _inventory(stores)
        changed = _what_changed(before, after)
        outcome = "completed" if code == 0 else "killed" if code == -signal.SIGKILL else f"exit {code}"
        entry = f"round {number:2d} ({change}): {outcome} {when}, lived {lived:.3f} s; left {changed}"
        log.append(entry)
        assert code in (0, -signal.SIGKILL), f"backup failed on its own:\n{err}\n{trail()}"
        completed += code == 0
        new_snapshot = any(key not in before["snapshots"] for key in after["snapshots"])
        new_data = any(key not in before["data"] for key in after["data"])
        if code != 0 and new_data and not new_snapshot:
            interrupted_after_writing += 1

        extra = ("--read-data",) if number % READ_DATA_EVERY == 0 else ()
        result, report = _check(cli, *extra)
        log[-1] += (
            f"; check{' --read-data' if extra else ''}: exit {result.code}, {report.get('status')}, "
            f"{len(report.get('warnings', []))} warning(s)"
        )
        assert result.code in (0, 3), f"{result.out}\n{result.err}\n{trail()}"
        assert report["status"] != "error", trail()
        assert report["errors"] == [] and report["snapshot_errors"] == [], f"{report}\n{trail()}"

        if number % RESTORE_EVERY == 0:
            target = tmp_path / f"restore-a-{number}"
            restored = _restore(cli, snapshot_a[:12], target)
            assert restored.code == 0, f"{restored.err}\n{trail()}"
            assert_same_tree(pristine, restored_root(target, src))

    assert interrupted_after_writing >= 1, (
        f"no kill landed between the first pack and the manifest:\n{trail()}"
    )

    final = Round(src, env, stores[0] / "locks")
    code, _, err = final.finish(kill=False)
    assert code == 0, f"{err}\n{trail()}"

    _, report = _check(cli)
    leftovers = {obj["key"] for obj in report["objects"] if obj.get("orphan")}
    repaired = cli("--json", "repair", "--no-progress")
    incomplete = set(repaired.json()["objects_incomplete"])
    assert repaired.json()["objects_lost"] == [], f"{repaired.out}\n{trail()}"
    assert incomplete <= leftovers, f"{repaired.out}\n{trail()}"
    assert repaired.code == 0, f"{repaired.out}\n{repaired.err}\n{trail()}"
    log.append(f"repair: exit {repaired.code}, {len(incomplete)} incomplete leftover(s) left to prune")
    result, report = _check(cli, "--read-data")
    assert result.code == 0, f"{result.out}\n{trail()}"
    assert report["status"] == "healthy"

    target = tmp_path / "restore-latest"
    restored = _restore(cli, "latest", target)
    assert restored.code == 0, f"{restored.err}\n{trail()}"
    assert_same_tree(src, restored_root(target, src))

    listed = cli("--json", "snapshots").json()["snapshots"]
    assert len(listed) >= 3 + completed, trail()  # A, the measured one, the rounds that finished, the last
    forgotten = cli("--json", "forget", "--keep-last", "1", "--prune")
    assert forgotten.code == 0, f"{forgotten.out}\n{forgotten.err}\n{trail()}"
    assert len(forgotten.json()["forget"]) == len(listed) - 1, trail()
    result, report = _check(cli, "--read-data")
    assert result.code == 0, f"{result.out}\n{trail()}"
    assert report["status"] == "healthy" and report["objects"] == [], f"{report}\n{trail()}"
    # A lock object a kill left with fewer than k shards is stale and says "interrupted"; locks are
    # `repo unlock`'s to remove (below), not prune's, so only other warnings count as leftovers here.
    leftover_warnings = [w for w in report["warnings"] if "interrupted" in w and "stale lock" not in w]
    assert not leftover_warnings, f"prune left leftovers: {report}"
    unlocked = cli("--json", "repo", "unlock")
    assert unlocked.code == 0, unlocked.err
    reasons = Counter(lock["reason"].split(":")[0] for lock in unlocked.json()["removed"])
    assert reasons["its process is gone"] >= 1, f"{unlocked.out}\n{trail()}"
    assert set(reasons) <= {"its process is gone", "unreadable"}, unlocked.out
    target = tmp_path / "restore-after-prune"
    restored = _restore(cli, "latest", target)
    assert restored.code == 0, f"{restored.err}\n{trail()}"
    assert_same_tree(src, restored_root(target, src))
    print(trail())  # shown by pytest -rP: where the kills landed


class _Journal:
    """Every put and delete that reaches the stores, in the order they completed."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, str, bytes | None]] = []
        self._lock = threading.Lock()

    def record(self, store: int, key: str, data: bytes | None) -> None:
        with self._lock:
            self.entries.append((store, key, data))


class _RecordingBackend:
    """A memory store that writes every change it completes into a shared journal."""

    def __init__(self, inner: MemoryBackend, number: int, journal: _Journal) -> None:
        self.inner = inner
        self.name = inner.name
        self.number = number
        self.journal = journal

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)
        self.journal.record(self.number, key, bytes(data))

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        self.journal.record(self.number, key, None)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def stat(self, key: str) -> int | None:
        return self.inner.stat(key)


def _replay(base: list[dict[str, bytes]], changes: list[tuple[int, str, bytes | None]]) -> list[Backend]:
    stores = [MemoryBackend(f"mem{number}") for number in range(len(base))]
    for store, objects in zip(stores, base, strict=True):
        for key, data in objects.items():
            store.put(key, data)
    for number, key, change in changes:
        if change is None:
            stores[number].delete(key)
        else:
            stores[number].put(key, change)
    return list(stores)


@pytest.mark.slow
def test_a_crash_after_any_single_write_of_a_backup_checks_clean_and_repairs(tmp_path: Path) -> None:
    """The exhaustive complement of the random kills: every prefix of a backup's writes.

    A backup runs in-process on memory stores and records each put and delete as it completes;
    the state of the stores after a crash that lets exactly the first N writes land is the
    state before the backup plus the first N entries of that journal. For every N: the
    snapshots listed are A, or A and the new one; check (reading every shard) finds no error;
    a new snapshot, once listed, restores bit-exact; repair rebuilds what is degraded (nothing
    but interrupted-write leftovers is lost) and check is healthy afterwards. Unlike a kill,
    this reaches the index and manifest writes shard by shard, so the "degraded but complete"
    states (3 or 4 of 5 shards) are certainly visited. Last, prune sweeps the leftovers away.
    """
    memory = [MemoryBackend(f"mem{number}") for number in range(5)]
    src = make_tree(tmp_path / "src")
    with Repository.init(memory, PASSPHRASE, k=3, kdf=TEST_KDF, pack_size=MiB) as repo:
        snapshot_a = backup_paths(repo, [src]).manifest.id
    base = [{key: store.get(key) for key in store.list("")} for store in memory]
    _change_source(src, random.Random(SEED), 1)
    journal = _Journal()
    recording = [_RecordingBackend(store, number, journal) for number, store in enumerate(memory)]
    with Repository.open(recording, PASSPHRASE, writable=True) as repo:
        snapshot_b = backup_paths(repo, [src]).manifest.id
    kinds = Counter(key.split("/")[0] for _, key, _ in journal.entries)
    assert kinds["data"] >= 10 and kinds["index"] == 5 and kinds["snapshots"] == 5, kinds

    seen: list[str] = []
    restored_b = False
    for crash_after in range(len(journal.entries) + 1):
        where = f"crash after write {crash_after} of {len(journal.entries)}"
        with Repository.open(_replay(base, journal.entries[:crash_after]), PASSPHRASE, writable=True) as repo:
            listed = {manifest.id for manifest in repo.manifests()}
            assert snapshot_a in listed and listed <= {snapshot_a, snapshot_b}, where
            reach = reachable_blobs(repo, repo.manifests())
            report = check_repository(repo, read_data=True, referenced_blobs=reach.blobs)
            assert reach.errors == [] and report.errors == [], f"{where}: {reach.errors} {report.errors}"
            seen.append(report.status)
            if snapshot_b in listed and not restored_b:
                target = tmp_path / f"restore-{crash_after}"
                assert restore(repo, repo.load_manifest(snapshot_b), target).errors == [], where
                assert_same_tree(src, restored_root(target, src))
                restored_b = True
            leftovers = {item.key for item in report.objects if item.orphan}
            repaired = repair_repository(repo)
            assert repaired.objects_lost == [], f"{where}: {repaired.problems}"
            assert set(repaired.objects_incomplete) <= leftovers, where
            again = check_repository(repo, read_data=True, referenced_blobs=reach.blobs)
            assert again.status == "healthy" and again.errors == [], f"{where}: {again.to_json()}"
            # The crashed backup's lock names this (live) process: remove it as `repo unlock --all`.
            repo.remove_locks(stale_only=False)
            with repo.lock(exclusive=True, operation="prune"):
                prune(repo, reach.blobs)
            repo.reload_index()
            swept = check_repository(repo, read_data=True, referenced_blobs=reach.blobs)
            assert swept.status == "healthy" and swept.objects == [], f"{where}: {swept.to_json()}"
            assert swept.warnings == [], f"{where}: {swept.warnings}"
    assert restored_b
    assert set(seen) == {"healthy", "degraded"}, seen


@pytest.mark.parametrize("kind", ["data", "index", "snapshots"])
def test_repair_leaves_the_leftovers_of_an_interrupted_write_to_prune(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    stores = [tmp_path / f"store{i}" for i in range(5)]
    monkeypatch.setenv("LIFEBOAT_STORES", " ".join(map(str, stores)))
    monkeypatch.setenv("LIFEBOAT_REPO_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a small file\n")
    with Repository.init(
        [LocalBackend(store, create=True) for store in stores], PASSPHRASE, k=3, kdf=TEST_KDF, pack_size=MiB
    ) as repo:
        backup_paths(repo, [src])
        # What kill -9 leaves when it lands after the first of an object's five parallel shard writes.
        plaintext = random.Random(1).randbytes(10_000)
        object_id = repo.blob_id(plaintext)
        key = {"data": repo.pack_key, "index": repo.index_key, "snapshots": repo.manifest_key}[kind](
            object_id
        )
        shards = codec.encode(repo.master_key, object_id, plaintext, repo.params)
        repo.write_shard(2, key, shards[2])

    result, report = _check(cli, "--read-data")
    assert result.code == 0, result.out  # a warning: left by an interrupted write, prune removes it
    assert report["errors"] == [] and any(key in warning for warning in report["warnings"])

    repaired = cli("--json", "repair", "--no-progress")
    assert repaired.json()["objects_lost"] == [], repaired.out
    assert repaired.json()["objects_incomplete"] == [key], repaired.out
    assert repaired.code == 0, repaired.out
