"""Read file snapshots back: find one, list it, compare two, restore one to a directory.

Paths in a snapshot are absolute (``/home/u/docs/a.txt``): the root tree nests the parents of
the backed-up paths (see :mod:`lifeboat.snapshot.files`). :func:`restore` recreates that
layout under the target directory (``TARGET/home/u/docs/a.txt``), like restic.

Restore, in three steps:

1. **Plan.** Walk the snapshot's trees and select the entries to restore. With ``includes``,
   an entry is selected when its path equals a pattern, lies under one, or matches one with
   :func:`fnmatch.fnmatchcase` (``*`` also matches ``/``); everything below a selected
   directory is selected, and the directories on the way to a selected entry are created (with
   their metadata). Every file's data blobs are looked up in the index and each blob's
   destinations (file, offset) are grouped by pack.
2. **Write.** Directories are created (``mkdirat``) and opened one component at a time with
   ``O_NOFOLLOW | O_DIRECTORY`` relative to their parent's descriptor, so neither a symlink in
   the restored tree nor one already in the target is ever followed, and every name has passed
   :func:`~lifeboat.snapshot.tree.check_name`. Packs are then loaded in the order the files
   first need them, :data:`PREFETCH_PACKS` ahead on their own thread (read, decoded and every
   blob hashed there) while the caller writes the blobs of the pack before them, straight from
   the decoded pack (a file's blobs that follow each other in one ``pwritev``) into files
   created ``O_EXCL | O_NOFOLLOW`` under a temporary name in their directory. A file whose
   last blob is written gets its mode and mtime and is renamed to its real name. Memory stays
   near two decoded packs whatever the snapshot's size.
3. **Finish.** Symlinks are created (as links, under a temporary name, then renamed), then
   FIFOs (``mkfifo``) and devices (``mknod`` with the recorded major and minor numbers, only
   when running as root: otherwise each is named in :attr:`RestoreResult.warnings` and not
   created), then directories get their mode and mtime, deepest first (after everything inside
   them).

The repository checks every blob against its content id when it loads a pack, so nothing
unauthenticated is written. A file whose blob cannot be loaded (its pack lost or damaged, no
index entry) is not written at all — its temporary file is removed, nothing is left under its
real name — and :attr:`RestoreResult.errors` names it; the restore goes on with the others.
Owners are not restored (Lifeboat runs unprivileged); existing files of the same name are
replaced.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import secrets
import stat
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Final, Literal

from lifeboat.errors import InputError, LifeboatError, StorageError
from lifeboat.snapshot.tree import Node, NodeType, check_name, decode_tree
from lifeboat.store.repository import Manifest, Repository

__all__ = [
    "Change",
    "RestoreProgress",
    "RestoreResult",
    "diff",
    "load_tree",
    "ls",
    "manifest_tree_id",
    "resolve_snapshot",
    "restore",
    "walk",
]

ChangeKind = Literal["+", "-", "M", "T", "U"]

#: Seconds between two progress reports.
PROGRESS_INTERVAL: Final = 0.1
#: Buffers given to one ``pwritev`` at most (Linux's IOV_MAX is 1024).
_IOV_MAX: Final = 512
#: Packs loaded (read, decoded, every blob hashed) ahead of the one being written, on their own
#: threads. Two ahead measured no faster than one on the 1 GiB benchmark (2 cores: the loader
#: and the writer already keep them busy) and took 10-15 MiB more.
PREFETCH_PACKS: Final = 1
_OPEN_DIRS: Final = 64
_OPEN_FILES: Final = 64
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS: Final = os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Change:
    """One difference between two snapshots.

    ``kind``: ``+`` added, ``-`` removed, ``M`` contents changed (a file's data, a symlink's
    target), ``T`` type changed (file became directory...), ``U`` metadata only (mode, mtime).
    ``type`` is the entry's type in the newer snapshot (the older one for ``-``).
    """

    path: str
    kind: ChangeKind
    type: NodeType


@dataclass(frozen=True)
class RestoreProgress:
    """How far a restore is."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str


@dataclass
class RestoreResult:
    """What :func:`restore` did; a non-empty ``errors`` means some entries were not restored."""

    files: int = 0
    #: Files the snapshot (or the ``includes``) selected.
    files_total: int = 0
    dirs: int = 0
    symlinks: int = 0
    #: FIFOs and device nodes created.
    specials: int = 0
    bytes_written: int = 0
    errors: list[str] = field(default_factory=list)
    #: Entries left out on purpose (a device node without root); everything else was restored.
    warnings: list[str] = field(default_factory=list)


def _show(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


# --- finding and reading snapshots -------------------------------------------------------------


def resolve_snapshot(repo: Repository, ref: str) -> Manifest:
    """The file snapshot ``ref`` names (an id prefix of at least 4 hex digits, or ``latest``)."""
    # "latest" is the newest file snapshot; an id may name a record snapshot, refused by name
    manifest = repo.find_manifest(ref, "files" if ref == "latest" else None)
    kind = manifest.payload.get("kind")
    if kind != "files":
        raise InputError(f"snapshot {manifest.short_id} is a {kind!r} snapshot, not a file snapshot")
    return manifest


def manifest_tree_id(manifest: Manifest) -> bytes:
    """The root tree id a file snapshot names (:class:`InputError` if it names none)."""
    value = manifest.payload.get("tree")
    try:
        tree_id = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        tree_id = b""
    if len(tree_id) != 32:
        raise InputError(f"snapshot {manifest.short_id} names no valid tree; it is not a file snapshot")
    return tree_id


def load_tree(repo: Repository, tree_id: bytes) -> list[Node]:
    """The nodes of one tree blob (authenticated by the repository, parsed strictly)."""
    return decode_tree(repo.load_blob(tree_id))


def walk(repo: Repository, tree_id: bytes, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Every entry below tree ``tree_id``, depth first in name order, as ``(path, node)``.

    Paths are ``prefix + "/" + names``: with the default prefix a snapshot's root tree gives
    absolute paths. A directory comes before its contents.
    """
    stack: list[tuple[str, Iterator[Node]]] = [(prefix, iter(load_tree(repo, tree_id)))]
    while stack:
        base, nodes = stack[-1]
        node = next(nodes, None)
        if node is None:
            stack.pop()
            continue
        path = f"{base}/{node.name}"
        yield path, node
        if node.type == "dir" and node.subtree is not None:
            stack.append((path, iter(load_tree(repo, node.subtree))))


def ls(repo: Repository, manifest: Manifest, path: str | None = None) -> Iterator[tuple[str, Node]]:
    """The entries of a snapshot, or of ``path`` in it (that entry first, then what is below it).

    An unknown ``path`` raises :class:`InputError` at once (not when iterating).
    """
    root = manifest_tree_id(manifest)
    parts = [part for part in (path or "").split("/") if part not in ("", ".")]
    if not parts:
        return walk(repo, root)
    tree_id = root
    node: Node | None = None
    for depth, part in enumerate(parts):
        found = {entry.name: entry for entry in load_tree(repo, tree_id)}.get(part)
        if found is None or (depth < len(parts) - 1 and found.type != "dir"):
            raise InputError(f"{path} is not in snapshot {manifest.short_id}")
        node = found
        if found.type == "dir" and found.subtree is not None:
            tree_id = found.subtree
    assert node is not None
    full = "/" + "/".join(parts)
    head = iter([(full, node)])
    if node.type == "dir" and node.subtree is not None:
        return chain(head, walk(repo, node.subtree, full))
    return head


def diff(repo: Repository, a: Manifest, b: Manifest) -> list[Change]:
    """What changed from snapshot ``a`` to ``b``, in path order.

    Subtrees with the same id are identical and skipped without being read. An added or removed
    directory is listed with everything below it.
    """
    changes: list[Change] = []
    pending: list[tuple[str, bytes, bytes]] = [("", manifest_tree_id(a), manifest_tree_id(b))]
    while pending:
        prefix, tree_a, tree_b = pending.pop()
        if tree_a == tree_b:
            continue
        old = {node.name: node for node in load_tree(repo, tree_a)}
        new = {node.name: node for node in load_tree(repo, tree_b)}
        for name in sorted(old.keys() | new.keys()):
            path = f"{prefix}/{name}"
            before, after = old.get(name), new.get(name)
            if after is None:
                assert before is not None
                _all_below(repo, path, before, "-", changes)
            elif before is None:
                _all_below(repo, path, after, "+", changes)
            elif before.type != after.type:
                changes.append(Change(path, "T", after.type))
                if before.type == "dir" and before.subtree is not None:
                    changes.extend(Change(p, "-", n.type) for p, n in walk(repo, before.subtree, path))
                if after.type == "dir" and after.subtree is not None:
                    changes.extend(Change(p, "+", n.type) for p, n in walk(repo, after.subtree, path))
            else:
                if (
                    before.content != after.content
                    or before.target != after.target
                    or (before.major, before.minor) != (after.major, after.minor)
                ):
                    changes.append(Change(path, "M", after.type))
                elif before.mode != after.mode or before.mtime_ns != after.mtime_ns:
                    changes.append(Change(path, "U", after.type))
                if after.type == "dir" and before.subtree is not None and after.subtree is not None:
                    pending.append((path, before.subtree, after.subtree))
    changes.sort(key=lambda change: change.path.split("/"))
    return changes


def _all_below(repo: Repository, path: str, node: Node, kind: ChangeKind, changes: list[Change]) -> None:
    changes.append(Change(path, kind, node.type))
    if node.type == "dir" and node.subtree is not None:
        changes.extend(Change(p, kind, n.type) for p, n in walk(repo, node.subtree, path))


# --- restore ---------------------------------------------------------------------------------


def restore(
    repo: Repository,
    manifest: Manifest,
    target: Path,
    *,
    includes: Sequence[str] = (),
    progress: Callable[[RestoreProgress], None] | None = None,
) -> RestoreResult:
    """Restore snapshot ``manifest`` (or the ``includes`` of it) under ``target`` (created if missing).

    Entries that cannot be restored are listed in the result's ``errors``; the others are
    restored regardless. A root tree that cannot be read, or ``includes`` that match nothing,
    raise before anything is written.
    """
    return _Restore(repo, manifest, Path(target), list(includes), progress).run()


@dataclass
class _File:
    parts: tuple[str, ...]
    node: Node
    #: Blob writes still to do.
    remaining: int = 0
    tmp: str | None = None
    failed: bool = False

    @property
    def path(self) -> str:
        return "/" + "/".join(self.parts)


class _DirHandles:
    """Descriptors of directories under the target, opened one component at a time with O_NOFOLLOW."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._open: OrderedDict[tuple[str, ...], int] = OrderedDict()

    def get(self, parts: tuple[str, ...]) -> int:
        """The descriptor of directory ``parts`` (opened from its nearest open ancestor, no recursion)."""
        depth = len(parts)
        while depth and parts[:depth] not in self._open:
            depth -= 1
        fd = self._open[parts[:depth]] if depth else self.root
        if depth:
            self._open.move_to_end(parts[:depth])
        for end in range(depth + 1, len(parts) + 1):
            fd = os.open(parts[end - 1], _DIR_FLAGS, dir_fd=fd)
            self._open[parts[:end]] = fd
            # never close the descriptor the next step opens from (it was just added, so it is last)
            while len(self._open) > _OPEN_DIRS:
                _, old = self._open.popitem(last=False)
                os.close(old)
        return fd

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
        os.close(self.root)


class _Restore:
    def __init__(
        self,
        repo: Repository,
        manifest: Manifest,
        target: Path,
        includes: list[str],
        progress: Callable[[RestoreProgress], None] | None,
    ) -> None:
        self.repo = repo
        self.manifest = manifest
        self.target = target
        self.includes = [pattern.rstrip("/") or "/" for pattern in includes if pattern]
        self.progress = progress
        self.result = RestoreResult()
        self.dir_nodes: dict[tuple[str, ...], Node] = {}
        self.dirs: set[tuple[str, ...]] = set()
        self.failed_dirs: set[tuple[str, ...]] = set()
        self.files: list[_File] = []
        self.links: list[tuple[tuple[str, ...], Node]] = []
        self.specials: list[tuple[tuple[str, ...], Node]] = []
        self.token = secrets.token_hex(4)
        self.files_done = 0
        self.bytes_total = 0
        self.current = ""
        self._last_report = 0.0
        self._file_fds: OrderedDict[int, int] = OrderedDict()

    def error(self, path: str, reason: object) -> None:
        if isinstance(reason, OSError):
            reason = reason.strerror or reason
        self.result.errors.append(f"{_show(path)}: {reason}")

    def report(self, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_INTERVAL:
            self._last_report = now
            self.progress(
                RestoreProgress(
                    self.files_done,
                    len(self.files),
                    self.result.bytes_written,
                    self.bytes_total,
                    _show(self.current),
                )
            )

    # selection

    def _selected(self, path: str) -> bool:
        if not self.includes:
            return True
        return any(
            path == pattern
            or path.startswith(pattern.rstrip("/") + "/")
            or fnmatch.fnmatchcase(path, pattern)
            for pattern in self.includes
        )

    def _may_contain(self, path: str) -> bool:
        return any(
            any(c in pattern for c in "*?[") or pattern.startswith(path + "/") for pattern in self.includes
        )

    # step 1: plan

    def plan(self) -> None:
        root = load_tree(self.repo, manifest_tree_id(self.manifest))
        stack: list[tuple[tuple[str, ...], list[Node], bool]] = [((), root, not self.includes)]
        while stack:
            parts, nodes, everything = stack.pop()
            for node in nodes:
                here = (*parts, node.name)
                path = "/" + "/".join(here)
                try:
                    check_name(node.name)
                except LifeboatError as exc:
                    self.error(path, f"not restored: {exc}")
                    continue
                selected = everything or self._selected(path)
                if node.type == "dir":
                    self.dir_nodes[here] = node
                    if selected:
                        self._want(here)
                    if (selected or self._may_contain(path)) and node.subtree is not None:
                        try:
                            children = load_tree(self.repo, node.subtree)
                        except LifeboatError as exc:
                            self.error(path, f"directory contents not restored: {exc}")
                            continue
                        stack.append((here, children, selected))
                elif selected:
                    self._want(here[:-1])
                    if node.type == "file":
                        self.files.append(_File(here, node))
                        self.bytes_total += node.size
                    elif node.type == "symlink":
                        self.links.append((here, node))
                    else:
                        self.specials.append((here, node))
        if self.includes and not self.dirs and not self.files and not self.links and not self.specials:
            raise InputError(
                f"no entry of snapshot {self.manifest.short_id} matches --include "
                + " ".join(self.includes)
                + " (patterns match absolute paths such as /home/user/file)"
            )

    def _want(self, parts: tuple[str, ...]) -> None:
        while parts and parts not in self.dirs:
            self.dirs.add(parts)
            parts = parts[:-1]

    def _under_failed(self, parent: tuple[str, ...]) -> bool:
        """True if directory ``parent`` (a planned one, or the target) could not be made.

        A directory below a failed one is marked failed too (:meth:`_make_dirs` goes parents first).
        """
        return parent in self.failed_dirs

    # step 2: write

    def run(self) -> RestoreResult:
        self.plan()
        self.result.files_total = len(self.files)
        try:
            self.target.mkdir(parents=True, exist_ok=True)
            root_fd = os.open(self.target, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise StorageError(
                f"cannot create or open restore target {self.target}: {exc.strerror or exc}"
            ) from None
        self.handles = _DirHandles(root_fd)
        try:
            self._make_dirs()
            packs = self._plan_packs()
            self._write_packs(packs)
            self._make_links()
            self._make_specials()
            self._finish_dirs()
        finally:
            for fd in self._file_fds.values():
                os.close(fd)
            self._file_fds.clear()
            for entry in self.files:  # interrupted: leave no temporary files behind
                if entry.tmp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.tmp, dir_fd=self.handles.get(entry.parts[:-1]))
            self.handles.close()
        self.report(force=True)
        return self.result

    def _make_dirs(self) -> None:
        for parts in sorted(self.dirs):
            if self._under_failed(parts[:-1]):
                self.failed_dirs.add(parts)
                continue
            path = "/" + "/".join(parts)
            try:
                parent = self.handles.get(parts[:-1])
                with contextlib.suppress(FileExistsError):
                    os.mkdir(parts[-1], 0o700, dir_fd=parent)
                self.handles.get(parts)
            except OSError as exc:
                self.error(path, f"not restored, nor anything below it: {self._why_not_dir(parts, exc)}")
                self.failed_dirs.add(parts)
                continue
            self.result.dirs += 1

    def _why_not_dir(self, parts: tuple[str, ...], exc: OSError) -> object:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            return exc.strerror or exc
        try:
            info = os.stat(parts[-1], dir_fd=self.handles.get(parts[:-1]), follow_symlinks=False)
        except OSError:
            return exc.strerror or exc
        if stat.S_ISLNK(info.st_mode):
            return "the target holds a symlink there (not followed)"
        return "the target holds something else than a directory there"

    def _plan_packs(self) -> dict[bytes, list[tuple[bytes, int, int]]]:
        """pack id → (blob id, file number, offset) for every blob write, packs in order of first need."""
        packs: dict[bytes, list[tuple[bytes, int, int]]] = {}
        for number, entry in enumerate(self.files):
            if self._under_failed(entry.parts[:-1]):
                entry.failed = True
                continue
            writes: list[tuple[bytes, bytes, int]] = []
            offset = 0
            problem = ""
            for blob_id in entry.node.content:
                location = self.repo.index.lookup(blob_id)
                if location is None:
                    problem = f"data blob {blob_id.hex()[:16]} is in no index (run `lifeboat check`)"
                    break
                writes.append((location.pack, blob_id, offset))
                offset += location.length
            if not problem and offset != entry.node.size:
                problem = f"its blobs hold {offset} bytes but the snapshot says {entry.node.size}; the snapshot is damaged"
            if problem:
                self._fail(number, problem)
                continue
            entry.remaining = len(writes)
            if not writes:
                self._finish_file(number)
                continue
            for pack, blob_id, at in writes:
                packs.setdefault(pack, []).append((blob_id, number, at))
        return packs

    def _write_packs(self, packs: dict[bytes, list[tuple[bytes, int, int]]]) -> None:
        order = list(packs)
        with ThreadPoolExecutor(max_workers=PREFETCH_PACKS, thread_name_prefix="lifeboat-restore") as pool:
            loading: OrderedDict[bytes, Future[dict[bytes, memoryview]]] = OrderedDict()
            ahead = iter(order)
            for pack in order:
                while len(loading) <= PREFETCH_PACKS:
                    upcoming = next(ahead, None)
                    if upcoming is None:
                        break
                    loading[upcoming] = pool.submit(self.repo.read_pack, upcoming)
                future = loading.pop(pack)
                try:
                    blobs = future.result()
                except LifeboatError as exc:
                    for _, number, _ in packs[pack]:
                        if not self.files[number].failed:
                            self._fail(number, f"pack {pack.hex()[:16]} cannot be read: {exc}")
                    continue
                for number, offset, views in self._runs(pack, packs[pack], blobs):
                    entry = self.files[number]
                    if entry.failed:
                        continue
                    self.current = entry.path
                    try:
                        written = self._pwritev(self._file_fd(number), views, offset)
                    except OSError as exc:
                        self._fail(number, exc)
                        continue
                    self.result.bytes_written += written
                    entry.remaining -= len(views)
                    if entry.remaining == 0:
                        self._finish_file(number)
                    self.report()
                del blobs

    def _runs(
        self, pack: bytes, writes: list[tuple[bytes, int, int]], blobs: dict[bytes, memoryview]
    ) -> list[tuple[int, int, list[memoryview]]]:
        """A pack's blob writes grouped into runs: blobs that follow each other in one file.

        Each run is ``(file number, offset, views)`` and is written with one ``pwritev``; a
        file with a blob missing from the pack fails here, before any of its runs is written.
        """
        runs: list[tuple[int, int, list[memoryview]]] = []
        end = -1
        for blob_id, number, offset in writes:
            if self.files[number].failed:
                continue
            data = blobs.get(blob_id)
            if data is None:
                self._fail(number, f"blob {blob_id.hex()[:16]} is not in pack {pack.hex()[:16]}")
                continue
            if runs and runs[-1][0] == number and offset == end and len(runs[-1][2]) < _IOV_MAX:
                runs[-1][2].append(data)
            else:
                runs.append((number, offset, [data]))
            end = offset + len(data)
        return runs

    @staticmethod
    def _pwritev(fd: int, views: list[memoryview], offset: int) -> int:
        """Write ``views`` one after the other at ``offset``, in as few system calls as it takes."""
        total = sum(len(view) for view in views)
        while views:
            written = os.pwritev(fd, views, offset)
            offset += written
            while views and written >= len(views[0]):
                written -= len(views[0])
                views = views[1:]
            if views and written:
                views = [views[0][written:], *views[1:]]
        return total

    def _file_fd(self, number: int) -> int:
        """The open temporary file of file ``number`` (created on first use)."""
        fd = self._file_fds.get(number)
        if fd is not None:
            self._file_fds.move_to_end(number)
            return fd
        entry = self.files[number]
        parent = self.handles.get(entry.parts[:-1])
        if entry.tmp is None:
            entry.tmp = f".lifeboat-restore-{self.token}-{number}"
            fd = os.open(entry.tmp, _FILE_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=parent)
        else:
            fd = os.open(entry.tmp, _FILE_FLAGS, dir_fd=parent)
        self._file_fds[number] = fd
        while len(self._file_fds) > _OPEN_FILES:
            _, old = self._file_fds.popitem(last=False)
            os.close(old)
        return fd

    def _close_file(self, number: int) -> None:
        fd = self._file_fds.pop(number, None)
        if fd is not None:
            os.close(fd)

    def _finish_file(self, number: int) -> None:
        entry = self.files[number]
        try:
            fd = self._file_fd(number)
            os.fchmod(fd, entry.node.mode)
            os.utime(fd, ns=(entry.node.mtime_ns, entry.node.mtime_ns))
            self._close_file(number)
            parent = self.handles.get(entry.parts[:-1])
            assert entry.tmp is not None
            os.rename(entry.tmp, entry.parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as exc:
            self._fail(number, exc)
            return
        entry.tmp = None
        self.files_done += 1
        self.result.files += 1

    def _fail(self, number: int, reason: object) -> None:
        entry = self.files[number]
        entry.failed = True
        self._close_file(number)
        if entry.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(entry.tmp, dir_fd=self.handles.get(entry.parts[:-1]))
            entry.tmp = None
        if isinstance(reason, OSError):
            reason = reason.strerror or reason
        self.error(entry.path, f"not restored: {reason}")

    # step 3: finish

    def _make_links(self) -> None:
        for parts, node in self.links:
            if self._under_failed(parts[:-1]):
                continue
            path = "/" + "/".join(parts)
            tmp = f".lifeboat-restore-{self.token}-link"
            parent = -1
            try:
                parent = self.handles.get(parts[:-1])
                assert node.target is not None
                os.symlink(node.target, tmp, dir_fd=parent)
                with contextlib.suppress(NotImplementedError):
                    os.utime(tmp, ns=(node.mtime_ns, node.mtime_ns), dir_fd=parent, follow_symlinks=False)
                os.rename(tmp, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                if parent >= 0:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=parent)
                self.error(path, f"not restored: {exc.strerror or exc}")
                continue
            self.result.symlinks += 1

    def _make_specials(self) -> None:
        """FIFOs and device nodes: made under a temporary name, given mode and mtime, renamed."""
        root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
        for parts, node in self.specials:
            if self._under_failed(parts[:-1]):
                continue
            path = "/" + "/".join(parts)
            if node.type != "fifo" and not root:
                kind = "character" if node.type == "chardev" else "block"
                self.result.warnings.append(
                    f"{_show(path)}: {kind} device {node.major}:{node.minor} not created "
                    "(creating device nodes needs root)"
                )
                continue
            tmp = f".lifeboat-restore-{self.token}-special"
            parent = -1
            try:
                parent = self.handles.get(parts[:-1])
                if node.type == "fifo":
                    os.mkfifo(tmp, 0o600, dir_fd=parent)
                else:
                    kind_bits = stat.S_IFCHR if node.type == "chardev" else stat.S_IFBLK
                    os.mknod(tmp, kind_bits | 0o600, os.makedev(node.major, node.minor), dir_fd=parent)
                _chmod_special(tmp, node.mode, parent)
                os.utime(tmp, ns=(node.mtime_ns, node.mtime_ns), dir_fd=parent, follow_symlinks=False)
                os.rename(tmp, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                if parent >= 0:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=parent)
                self.error(path, f"not restored: {exc.strerror or exc}")
                continue
            self.result.specials += 1

    def _finish_dirs(self) -> None:
        for parts in sorted(self.dirs - self.failed_dirs, key=len, reverse=True):
            node = self.dir_nodes[parts]
            try:
                fd = self.handles.get(parts)
                os.fchmod(fd, node.mode)
                os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))
            except OSError as exc:
                self.error("/" + "/".join(parts), f"mode or mtime not restored: {exc.strerror or exc}")


def _chmod_special(name: str, mode: int, parent: int) -> None:
    """Set the mode of the FIFO or device node ``name`` just made in ``parent``, never through a symlink.

    A FIFO or device cannot be opened to ``fchmod`` it without side effects, so this is
    ``fchmodat(AT_SYMLINK_NOFOLLOW)``, which refuses a symlink. A C library too old for that
    flag gets a check that the name is still not a symlink, then a plain ``chmod``.
    """
    try:
        os.chmod(name, mode, dir_fd=parent, follow_symlinks=False)
        return
    except (NotImplementedError, ValueError):  # no AT_SYMLINK_NOFOLLOW, or ``name`` became a symlink
        pass
    if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
        raise OSError(errno.ELOOP, "replaced by a symlink while being restored")
    os.chmod(name, mode, dir_fd=parent)
