"""The storage path of the drill: a 3-of-5 repository loses two stores and is made whole again.

Set-up creates the five stores, makes the sandbox repository on them (the state path snapshots
into it too, through :func:`open_repository`) and backs up a small seeded file tree; operation
changes the tree and backs it up again. The catastrophe deletes two whole store directories.
Recovery, which runs after the state path has read its snapshots from the three survivors,
restores both file snapshots from the survivors and compares them with the digests taken at
backup, rebuilds each lost store onto a new directory from the others
(:func:`lifeboat.store.repair.replace_store`, the library behind ``lifeboat repo replace-store``),
compares every object of the new store with the one destroyed, and ends with the equivalent of
``lifeboat check --read-data`` over the five stores, which must be healthy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from lifeboat.drill.sandbox import STORES, THRESHOLD, Outcome, Sandbox
from lifeboat.drill.timeline import PathName, Phase, Step, StepFailed, Timeline
from lifeboat.errors import LifeboatError, StorageError
from lifeboat.reachability import check_with_snapshots
from lifeboat.snapshot.files import backup_paths
from lifeboat.snapshot.restore import restore
from lifeboat.store.backends import Backend, open_backend
from lifeboat.store.errors import StoreDown
from lifeboat.store.repair import replace_store
from lifeboat.store.repository import Repository

__all__ = ["StoragePath", "TreeDigest", "open_repository", "tree_digest"]

#: Where this path keeps its record in ``sandbox.scratch``.
SCRATCH_KEY = "storage"
#: The host name the drill's file snapshots record (so a seeded drill writes the same payloads).
DRILL_HOST = "lifeboat-drill"
#: Store objects that are not data: held only while an operation runs, so never compared.
TRANSIENT_PREFIX = "locks/"


def open_repository(sandbox: Sandbox, *, writable: bool = True) -> Repository:
    """Open the sandbox repository on the stores in ``sandbox.stores``, with its passphrase.

    The contract the state path relies on: the storage path's set-up has run (else
    :class:`~lifeboat.store.errors.StoreDown`, as no store answers). The caller closes the
    repository (it is a context manager). A store whose directory is gone is left out, as the
    CLI leaves out a store it cannot open; the repository opens while at least 3 of the 5 stores
    answer, and raises :class:`~lifeboat.store.errors.StoreDown` naming the missing ones otherwise.
    With ``writable`` (the default) writes go to the stores that answer, every one in normal
    operation and the survivors after the catastrophe (``--degraded-ok``): the storage path's
    recovery, which runs after the state path's, rebuilds the shards those writes could not
    place. No index cache is kept outside the sandbox.
    """
    backends: list[Backend] = []
    unopened: list[str] = []
    for path in sandbox.stores:
        try:
            backends.append(open_backend(str(path)))
        except StorageError as exc:  # a destroyed store: the repository counts what is left
            unopened.append(str(exc))
    if not backends:
        unopened = unopened or ["sandbox.stores is empty: the storage path's set-up has not run"]
        raise StoreDown("no store of the sandbox repository can be opened: " + "; ".join(unopened))
    return Repository.open(
        backends,
        sandbox.repo_passphrase,
        writable=writable,
        degraded_ok=writable,
        cache_dir=None,
        unopened=unopened,
    )


@dataclass(frozen=True)
class TreeDigest:
    """One digest over a file tree: every regular file's relative path, mode and content."""

    digest: str
    files: int
    bytes: int


def tree_digest(root: Path) -> TreeDigest:
    """Hash the regular files under ``root`` in path order (BLAKE3; path, permission bits, size, content)."""
    hasher = blake3.blake3()
    files = total = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        mode = path.stat().st_mode & 0o7777
        hasher.update(len(relative).to_bytes(4, "big") + relative + mode.to_bytes(4, "big"))
        hasher.update(len(data).to_bytes(8, "big") + data)
        files += 1
        total += len(data)
    return TreeDigest(hasher.hexdigest(), files, total)


def _store_contents(root: Path) -> dict[str, tuple[int, str]]:
    """Every object of a local store but its locks: key -> (size, BLAKE3 of the bytes)."""
    contents: dict[str, tuple[int, str]] = {}
    for path in root.rglob("*"):
        key = path.relative_to(root).as_posix()
        if path.is_file() and not key.startswith(TRANSIENT_PREFIX):
            data = path.read_bytes()
            contents[key] = (len(data), blake3.blake3(data).hexdigest())
    return contents


@dataclass
class _Snapshot:
    manifest: str  # the manifest id, hex
    tree: TreeDigest


@dataclass
class _Record:
    """What this path keeps in ``sandbox.scratch`` between its acts."""

    snapshots: list[_Snapshot] = field(default_factory=list)
    #: store number -> what its directory held when it was destroyed.
    destroyed: dict[int, dict[str, tuple[int, str]]] = field(default_factory=dict)


class StoragePath:
    """Two of five stores destroyed; files restored from three, the two rebuilt, the data checked."""

    name = PathName.STORAGE

    def __init__(self, *, destroy: int = STORES - THRESHOLD, files: int = 32, file_bytes: int = 256 * 1024):
        """``destroy`` stores are lost in the catastrophe (more than 2 is beyond recovery: the
        fault-injection setting); the file tree has ``files`` files of up to ``file_bytes`` bytes."""
        if not 1 <= destroy <= STORES:
            raise ValueError(f"destroy must be from 1 to {STORES}, got {destroy}")
        self.destroy = destroy
        self.files = files
        self.file_bytes = file_bytes

    # --- the four acts -----------------------------------------------------------------------

    def setup(self, sandbox: Sandbox, timeline: Timeline) -> None:
        record = _Record()
        sandbox.scratch[SCRATCH_KEY] = record
        with timeline.step(self.name, Phase.SETUP, f"create a {THRESHOLD}-of-{STORES} repository") as step:
            paths = [sandbox.store(number) for number in range(1, STORES + 1)]
            backends = [open_backend(str(path), create=True) for path in paths]
            with Repository.init(backends, sandbox.repo_passphrase, k=THRESHOLD) as repo:
                step.facts.update(repository=repo.id[:8], k=repo.k, n=repo.n)
            sandbox.stores[:] = paths
        with timeline.step(self.name, Phase.SETUP, "write a seeded file tree") as step:
            tree = self._files(sandbox)
            for number in range(self.files):
                size = sandbox.rng.randint(1, self.file_bytes)
                target = tree / f"dir{number % 4}" / f"file{number:03}.bin"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(sandbox.random_bytes(size))
            digest = tree_digest(tree)
            step.facts.update(files=digest.files, bytes=digest.bytes, digest=digest.digest[:16])
        self._backup(sandbox, timeline, Phase.SETUP, record)

    def operate(self, sandbox: Sandbox, timeline: Timeline) -> None:
        record = self._record(sandbox)
        with timeline.step(self.name, Phase.OPERATE, "change the file tree") as step:
            tree = self._files(sandbox)
            existing = sorted(p for p in tree.rglob("*") if p.is_file())
            changed, removed = sandbox.rng.sample(existing, 2)
            data = bytearray(changed.read_bytes())
            offset = sandbox.rng.randrange(len(data))
            data[offset : offset + 64] = sandbox.random_bytes(64)
            changed.write_bytes(bytes(data))
            removed.unlink()
            added = tree / "new" / "added.bin"
            added.parent.mkdir(exist_ok=True)
            added.write_bytes(sandbox.random_bytes(sandbox.rng.randint(1, self.file_bytes)))
            step.facts.update(changed=1, removed=1, added=1)
        self._backup(sandbox, timeline, Phase.OPERATE, record)

    def catastrophe(self, sandbox: Sandbox, timeline: Timeline) -> Outcome:
        record = self._record(sandbox)
        outcome = Outcome()
        numbers = sorted(sandbox.rng.sample(range(STORES), self.destroy))
        with timeline.step(
            self.name, Phase.CATASTROPHE, f"destroy {self.destroy} of {STORES} stores"
        ) as step:
            for number in numbers:
                root = sandbox.stores[number]
                record.destroyed[number] = _store_contents(root)
                shutil.rmtree(root)
                if root.exists():
                    raise StepFailed(f"store directory {root} is still there after it was deleted")
            lost = sum(size for contents in record.destroyed.values() for size, _ in contents.values())
            step.facts.update(
                stores=[sandbox.stores[number].name for number in numbers],
                objects=sum(len(contents) for contents in record.destroyed.values()),
                bytes=lost,
            )
            outcome.lost = {"stores": len(numbers), "bytes": lost}
        return outcome

    def recover(self, sandbox: Sandbox, timeline: Timeline, outcome: Outcome) -> None:
        record = self._record(sandbox)
        lost = sorted(record.destroyed)
        with (
            timeline.step(self.name, Phase.RECOVER, "open the repository from the surviving stores") as step,
            open_repository(sandbox, writable=False) as repo,
        ):
            if sorted(repo.unavailable) != lost:
                raise StepFailed(
                    f"stores {_numbers(repo.unavailable)} are missing but stores {_numbers(lost)} were "
                    "destroyed: something else changed the stores"
                )
            step.facts.update(survivors=repo.n - len(repo.unavailable), k=repo.k, n=repo.n)
        with timeline.step(self.name, Phase.RECOVER, "restore the file snapshots from the survivors") as step:
            self._restore(sandbox, record, step)
        recovered = 0
        for number in lost:
            old = sandbox.stores[number]
            title = f"rebuild store {old.name} onto a new directory"
            with timeline.step(self.name, Phase.RECOVER, title) as step:
                new = old.with_name(f"{old.name}-rebuilt")
                self._rebuild(sandbox, number, new, step)
                recovered += self._compare(record.destroyed[number], new, step)
            outcome.recovered = {"stores": lost.index(number) + 1, "bytes": recovered}
        with timeline.step(self.name, Phase.RECOVER, "check --read-data across all five stores") as step:
            self._check(sandbox, step)

    # --- the steps' work ---------------------------------------------------------------------

    @staticmethod
    def _files(sandbox: Sandbox) -> Path:
        return sandbox.root / "files"

    @staticmethod
    def _record(sandbox: Sandbox) -> _Record:
        record = sandbox.scratch.get(SCRATCH_KEY)
        if not isinstance(record, _Record):
            raise StepFailed("the storage path's set-up has not run in this sandbox")
        return record

    def _backup(self, sandbox: Sandbox, timeline: Timeline, phase: Phase, record: _Record) -> None:
        title = "back up the file tree" if not record.snapshots else "back up the changed file tree"
        with timeline.step(self.name, phase, title) as step:
            tree = self._files(sandbox)
            digest = tree_digest(tree)
            with open_repository(sandbox) as repo:
                result = backup_paths(repo, [tree], hostname=DRILL_HOST)
            problems = [*result.errors, *result.warnings]
            if problems:
                raise StepFailed(f"the backup of {tree} skipped entries: " + "; ".join(problems[:3]))
            if result.degraded_stores:
                raise StepFailed(f"the backup missed stores {_numbers(result.degraded_stores)}")
            record.snapshots.append(_Snapshot(result.manifest.id.hex(), digest))
            summary = result.summary
            step.facts.update(
                snapshot=result.manifest.short_id,
                files=digest.files,
                bytes=digest.bytes,
                bytes_added=summary.get("bytes_added", 0),
                bytes_stored=summary.get("bytes_stored", 0),
            )

    def _restore(self, sandbox: Sandbox, record: _Record, step: Step) -> None:
        if not record.snapshots:
            raise StepFailed("no file snapshot was recorded at set-up; nothing to restore")
        restored_files = restored_bytes = 0
        with open_repository(sandbox, writable=False) as repo:
            for snapshot in record.snapshots:
                try:
                    manifest = repo.load_manifest(bytes.fromhex(snapshot.manifest))
                    target = sandbox.root / "restored" / manifest.short_id
                    result = restore(repo, manifest, target)
                except LifeboatError as exc:
                    raise StepFailed(
                        f"file snapshot {snapshot.manifest[:8]} cannot be read from the "
                        f"{repo.n - len(repo.unavailable)} surviving stores: {exc}"
                    ) from exc
                if result.errors:
                    raise StepFailed(
                        f"restoring snapshot {manifest.short_id} failed for {len(result.errors)} entries: "
                        + "; ".join(result.errors[:3])
                    )
                got = tree_digest(target / _relative_root(self._files(sandbox)))
                if got != snapshot.tree:
                    raise StepFailed(
                        f"snapshot {manifest.short_id} restored to {target} differs from the tree backed up: "
                        f"{got.files} files, {got.bytes} bytes, digest {got.digest[:16]}; expected "
                        f"{snapshot.tree.files} files, {snapshot.tree.bytes} bytes, digest "
                        f"{snapshot.tree.digest[:16]}"
                    )
                restored_files += got.files
                restored_bytes += got.bytes
        step.facts.update(snapshots=len(record.snapshots), files=restored_files, bytes=restored_bytes)

    @staticmethod
    def _rebuild(sandbox: Sandbox, number: int, new: Path, step: Step) -> None:
        if new.exists():
            raise StepFailed(f"{new} already exists; a rebuilt store needs a new, empty directory")
        with (
            open_repository(sandbox) as repo,
            repo.lock(exclusive=True, operation="replace-store"),
        ):
            report = replace_store(repo, number, open_backend(str(new), create=True))
        if report.objects_lost:
            raise StepFailed(
                f"store {number} could not be rebuilt: {len(report.objects_lost)} objects have fewer than "
                f"{THRESHOLD} good shards in the other stores (e.g. {report.objects_lost[0]}: "
                f"{report.problems.get(report.objects_lost[0], 'lost')})"
            )
        sandbox.stores[number] = new
        step.facts.update(
            number=number,
            new=new.name,
            objects=report.objects_checked,
            shards=report.shards_total,
            bytes=report.bytes_total,
        )

    @staticmethod
    def _compare(destroyed: dict[str, tuple[int, str]], new: Path, step: Step) -> int:
        """Every object the destroyed store held is back byte for byte; return their bytes."""
        rebuilt = _store_contents(new)
        missing = sorted(key for key in destroyed if key not in rebuilt)
        different = sorted(key for key in destroyed if key in rebuilt and rebuilt[key] != destroyed[key])
        if missing or different:
            raise StepFailed(
                f"the rebuilt store {new} lacks {len(missing)} and differs in {len(different)} of the "
                f"{len(destroyed)} objects destroyed (e.g. {(missing or different)[0]})"
            )
        step.facts.update(
            objects_back=len(destroyed),
            objects_new=len(rebuilt) - len(destroyed),  # written degraded after the catastrophe
        )
        return sum(size for size, _ in destroyed.values())

    @staticmethod
    def _check(sandbox: Sandbox, step: Step) -> None:
        with open_repository(sandbox, writable=False) as repo:
            if repo.unavailable:
                raise StepFailed(
                    f"stores {_numbers(repo.unavailable)} do not answer after the rebuild: "
                    + "; ".join(repo.store_failures)
                )
            checked = check_with_snapshots(repo, read_data=True)
        report = checked.report
        step.facts.update(
            status=checked.status,
            packs=report.packs_total,
            objects=report.objects_checked,
            blobs=report.blobs,
            manifests=report.manifests,
        )
        if checked.status != "healthy":
            problems = [*checked.snapshot_errors, *report.errors, *(o.describe() for o in report.objects)]
            raise StepFailed(
                f"check --read-data is {checked.status}, not healthy: " + "; ".join(problems[:3])
            )


def _relative_root(tree: Path) -> Path:
    """Where a restore puts ``tree``: snapshots record absolute paths, restored under the target."""
    return Path(*tree.absolute().parts[1:])


def _numbers(numbers: Iterable[int]) -> str:
    return ", ".join(str(n) for n in sorted(numbers)) or "none"
