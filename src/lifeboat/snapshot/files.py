"""Back up files and directories into a repository as one snapshot (:func:`backup_paths`).

The walk
    Each path is made absolute (``os.path.abspath``: ``..`` is resolved textually, symlinks
    are not). The snapshot's root tree nests the paths' parent directories, like restic:
    backing up ``/home/u/docs`` gives a root tree with a directory ``home``, holding ``u``,
    holding ``docs``; those parent directories carry the metadata of the real directories but
    list only the backed-up entries. A path inside another backed-up path is redundant and
    dropped. Directory entries are visited sorted by name. Symlinks are never followed: they
    become symlink nodes (a backed-up path that is a symlink too). FIFOs and character and
    block devices are recorded (type, mode, mtime, and a device's major and minor numbers;
    never a device's contents); sockets, which only a running process can give meaning to,
    are skipped with a warning (as restic does). A file or directory that cannot be read is an error in the
    result (and the manifest summary), and the backup goes on without it; a directory that
    cannot be listed is kept, empty. The walk crosses file-system boundaries.

Exclude rule
    A pattern is an :func:`fnmatch.fnmatchcase` glob (``*``, ``?``, ``[...]``; ``*`` also
    matches ``/``). An entry is excluded, and a directory not descended into, when a pattern
    matches its absolute path, or its name (the last component), or — for a pattern that
    contains ``/`` but does not start with one — the end of its path (``docs/*.tmp`` behaves
    like ``*/docs/*.tmp``). A pattern ending in ``/`` matches directories only. Patterns apply
    to the given paths themselves too. An exclude file holds one pattern per line; blank lines
    and lines starting with ``#`` are ignored, surrounding whitespace is stripped.

Contents
    Files are cut into chunks by FastCDC (2020) with the repository's chunk sizes and its
    secret seed; each chunk is a data blob, each directory a tree blob
    (:mod:`lifeboat.snapshot.tree`), added bottom-up through one :class:`PackWriter`, which
    dedups against the index. Files are opened with ``O_NOFOLLOW`` and read as a stream
    (``readinto``), not memory-mapped: a file truncated while it is read must give a read
    error, not a ``SIGBUS`` that kills the process.

Parent reuse
    With a parent snapshot (by default the newest one of this host with the same set of
    paths), a file whose size, mtime, inode and device equal those of the same path in the
    parent, and whose blobs are all still indexed, keeps the parent's content list without
    being read.

Crash safety
    The manifest is written after the pack writer's final flush (every pack and index
    stored), so a snapshot never names data that is not in the repository. The backup holds a
    shared lock for its duration.
"""

from __future__ import annotations

import contextlib
import fnmatch
import getpass
import os
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from io import FileIO
from pathlib import Path
from typing import Any, Final, Literal

from pyfastcdc import FastCDC

from lifeboat.errors import InputError, LifeboatError
from lifeboat.fs import read_bounded
from lifeboat.snapshot.chunking import StreamChunker
from lifeboat.snapshot.restore import manifest_tree_id
from lifeboat.snapshot.tree import Node, decode_tree, encode_tree
from lifeboat.store.repository import BLOB_DATA, BLOB_TREE, Manifest, PackWriter, Repository, now_rfc3339

__all__ = [
    "MAX_EXCLUDE_FILE_BYTES",
    "MAX_SUMMARY_ERRORS",
    "BackupProgress",
    "BackupResult",
    "Excludes",
    "backup_paths",
    "display_path",
    "find_parent",
    "load_exclude_file",
]

#: The largest exclude file read (one pattern per line).
MAX_EXCLUDE_FILE_BYTES: Final = 1 << 20
#: Errors listed in a manifest's summary (the count is always exact).
MAX_SUMMARY_ERRORS: Final = 1000
#: Seconds between two progress reports (at most about ten a second).
PROGRESS_INTERVAL: Final = 0.1
#: Files read, cut and hashed at the same time, each on its own thread.
FILE_READERS: Final = 2
#: Files handed to the reader threads and not finished yet, at most.
FILES_IN_FLIGHT: Final = 2 * FILE_READERS

# O_NONBLOCK: a file swapped for a FIFO after lstat must not hang the open (fstat then refuses it).
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_NOATIME: Final = getattr(os, "O_NOATIME", 0)


@dataclass(frozen=True)
class BackupProgress:
    """How far a backup is: files and bytes done, the total if known yet, the path being read."""

    files_done: int
    bytes_done: int
    #: Bytes of every regular file to back up; None until the background pre-scan finishes.
    bytes_total: int | None
    current: str


@dataclass
class BackupResult:
    """What :func:`backup_paths` did: the manifest written and what it says."""

    manifest: Manifest
    parent: Manifest | None
    summary: dict[str, Any]
    #: Unreadable files and directories (each ``"<path>: <reason>"``); the backup skipped them.
    errors: list[str] = field(default_factory=list)
    #: Entries skipped on purpose (sockets, FIFOs, devices).
    warnings: list[str] = field(default_factory=list)
    #: Stores that did not receive every shard written (``lifeboat repair`` heals them).
    degraded_stores: list[int] = field(default_factory=list)


def display_path(path: str) -> str:
    """``path`` as printable text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


# --- excludes --------------------------------------------------------------------------------


class Excludes:
    """Exclude patterns and the rule in the module docstring."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._rules: list[tuple[str, bool, bool]] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern:
                continue
            dirs_only = pattern.endswith("/") and pattern != "/"
            pattern = pattern.rstrip("/") or "/"
            self._rules.append((pattern, dirs_only, "/" in pattern and not pattern.startswith("/")))

    def __bool__(self) -> bool:
        return bool(self._rules)

    def excluded(self, path: str, is_dir: bool) -> bool:
        """True if an absolute ``path`` (a directory if ``is_dir``) is excluded."""
        name = path.rsplit("/", 1)[-1]
        for pattern, dirs_only, relative in self._rules:
            if dirs_only and not is_dir:
                continue
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern):
                return True
            if relative and fnmatch.fnmatchcase(path, "*/" + pattern):
                return True
        return False


def load_exclude_file(path: Path) -> list[str]:
    """The patterns of an exclude file: one per line, ``#`` comments and blank lines ignored."""
    data = read_bounded(Path(path), MAX_EXCLUDE_FILE_BYTES, what="exclude file")
    patterns = []
    for line in os.fsdecode(data).splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            patterns.append(text)
    return patterns


# --- parent ------------------------------------------------------------------------------------


def find_parent(repo: Repository, hostname: str, paths: Sequence[str]) -> Manifest | None:
    """The newest file snapshot of ``hostname`` with exactly the set of ``paths``, or None."""
    wanted = sorted(set(paths))
    for manifest in reversed(repo.manifests()):
        payload = manifest.payload
        if payload.get("kind") != "files" or payload.get("hostname") != hostname:
            continue
        if isinstance(payload.get("paths"), list) and sorted(set(payload["paths"])) == wanted:
            return manifest
    return None


# --- backup ----------------------------------------------------------------------------------


def backup_paths(
    repo: Repository,
    paths: Sequence[str | os.PathLike[str]],
    *,
    excludes: Sequence[str] = (),
    exclude_files: Sequence[Path] = (),
    tags: Sequence[str] = (),
    parent: Manifest | Literal["auto"] | None = "auto",
    hostname: str | None = None,
    progress: Callable[[BackupProgress], None] | None = None,
) -> BackupResult:
    """Back up ``paths`` into ``repo`` as one file snapshot and return what was written.

    ``parent`` is a manifest to reuse unchanged files from, None for none, or ``"auto"``
    (:func:`find_parent`). ``progress`` is called at most about ten times a second, and once
    at the end. A path that does not exist raises :class:`InputError` before anything is
    written; unreadable entries below it are errors in the result (see the module docstring).
    """
    if not paths:
        raise InputError("nothing to back up; give at least one path")
    patterns = list(excludes)
    for exclude_file in exclude_files:
        patterns.extend(load_exclude_file(exclude_file))
    rules = Excludes(patterns)
    absolute = sorted({os.path.abspath(os.fsdecode(os.fspath(path))) for path in paths})
    for path in absolute:
        try:
            os.lstat(path)
        except OSError as exc:
            raise InputError(f"cannot back up {display_path(path)}: {exc.strerror or exc}") from None
    roots = _drop_nested(absolute)
    shown = [display_path(path) for path in roots]
    host = hostname if hostname is not None else socket.gethostname()
    started = time.monotonic()
    start_time = now_rfc3339()

    with repo.lock(exclusive=False, operation="backup"):
        # Deduplicate only against indexes read under the lock: a prune that finished before it
        # was taken may have deleted packs that an index read earlier still lists.
        repo.reload_index()
        parent_manifest = find_parent(repo, host, shown) if parent == "auto" else parent
        parent_root = manifest_tree_id(parent_manifest) if parent_manifest is not None else None
        scan = _PreScan(roots, rules)
        scan.start()
        try:
            with repo.writer() as writer:
                walker = _Walker(repo, writer, rules, scan, progress)
                root_tree = walker.run(roots, parent_root)
        finally:
            scan.stop()
        if scan.total is None:  # the walk beat the pre-scan: the total is now known exactly
            scan.total = walker.bytes_done
        walker.report(force=True)
        stats = writer.stats
        degraded = sorted({i for i in range(repo.n) if stats.missing_mask >> i & 1} | set(repo.unavailable))
        errors = walker.errors
        summary: dict[str, Any] = {
            "files_new": walker.files_new,
            "files_changed": walker.files_changed,
            "files_unmodified": walker.files_unmodified,
            "dirs": walker.dirs,
            "bytes_total": walker.bytes_done,
            "bytes_read": walker.bytes_read,
            "bytes_added": stats.bytes_new_raw,
            "bytes_stored": stats.bytes_stored,
            "blobs_new": stats.blobs_new,
            "duration_s": round(time.monotonic() - started, 3),
            "error_count": len(errors),
            "errors": errors[:MAX_SUMMARY_ERRORS],
            "skipped": len(walker.warnings),
        }
        payload: dict[str, Any] = {
            "kind": "files",
            "time": start_time,
            "hostname": host,
            "username": _username(),
            "paths": shown,
            "tags": list(tags),
            "parent": parent_manifest.id.hex() if parent_manifest is not None else None,
            "tree": root_tree.hex(),
            "summary": summary,
            "degraded_stores": degraded,
        }
        manifest = repo.put_manifest(payload)
    return BackupResult(
        manifest=manifest,
        parent=parent_manifest,
        summary=summary,
        errors=errors,
        warnings=walker.warnings,
        degraded_stores=degraded,
    )


def _drop_nested(paths: Sequence[str]) -> list[str]:
    """Sorted absolute paths without those inside another one of them."""
    kept: list[str] = []
    for path in sorted(paths):
        if not any(path == top or path.startswith(top.rstrip("/") + "/") for top in kept):
            kept.append(path)
    return kept


def _username() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


class _PreScan(threading.Thread):
    """Sums the sizes of the regular files to back up, in the background (for progress)."""

    def __init__(self, roots: Sequence[str], rules: Excludes) -> None:
        super().__init__(name="lifeboat-backup-prescan", daemon=True)
        self._roots = list(roots)
        self._rules = rules
        self._halt = threading.Event()
        self.total: int | None = None

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        total = 0
        pending = list(reversed(self._roots))
        while pending:
            if self._halt.is_set():
                return
            path = pending.pop()
            try:
                info = os.lstat(path)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            if self._rules and self._rules.excluded(path, is_dir):
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
            elif is_dir:
                try:
                    names = os.listdir(path)
                except OSError:
                    continue
                base = path.rstrip("/")
                pending.extend(f"{base}/{name}" for name in names)
        self.total = total


@dataclass(frozen=True)
class _FileRead:
    """What a reader thread made of one file: its node (None on an error) and the error."""

    node: Node | None
    error: str | None
    #: Bytes read from the file (its size as read).
    size: int


@dataclass
class _DirTree:
    """A directory whose entries are all visited: its tree blob is made once its files are read."""

    frame: _Frame
    #: Set once the tree blob is added; a parent's tree takes it from here.
    tree_id: bytes | None = None
    #: Entries before this one are known to be finished (each is looked at once while waiting).
    checked: int = 0


#: An entry of a directory being backed up: a finished node, a file a reader thread is cutting,
#: or a subdirectory whose tree waits for its own files.
_Entry = Node | Future[_FileRead] | _DirTree


@dataclass
class _Frame:
    """A directory being backed up: the entries left to visit and the nodes made so far."""

    path: str
    name: str
    info: os.stat_result | None
    #: Entries left, reversed (pop() gives the next in name order): (name, subtree of the trie or None).
    pending: list[tuple[str, dict[str, Any] | None]]
    #: Real directory (all entries) or a parent of a backed-up path (only the listed ones).
    parent_nodes: dict[str, Node]
    nodes: list[_Entry] = field(default_factory=list)


class _Walker:
    """One backup walk: visits the tree depth first with an explicit stack (no recursion limit).

    The walk itself (listing, ``lstat``, excludes, parent reuse) runs on the caller's thread;
    each file to read goes to one of :data:`FILE_READERS` reader threads, which read, cut
    (FastCDC) and hash (BLAKE3) it and add its chunks to the pack writer. Both libraries and
    ``read`` release the GIL, so several files are cut at once while the pack workers encode.
    At most :data:`FILES_IN_FLIGHT` files are handed out at a time. A directory's tree blob is
    made once every file in it is read: finished directories wait in walk order (children
    before their parent) and are encoded as soon as the oldest one's files are all read, so
    the snapshot is the same as a one-thread walk would make.
    """

    def __init__(
        self,
        repo: Repository,
        writer: PackWriter,
        rules: Excludes,
        scan: _PreScan,
        progress: Callable[[BackupProgress], None] | None,
    ) -> None:
        self.repo = repo
        self.writer = writer
        self.rules = rules
        self.scan = scan
        self.progress = progress
        chunker = repo.config.chunker
        self.chunker = FastCDC(
            avg_size=chunker.avg_size,
            min_size=chunker.min_size,
            max_size=chunker.max_size,
            seed=repo.chunker_seed,
        )
        self._cutters = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=FILE_READERS, thread_name_prefix="lifeboat-read")
        self._slots = threading.BoundedSemaphore(FILES_IN_FLIGHT)
        self._trees: deque[_DirTree] = deque()
        self._errors: list[tuple[int, str]] = []
        self._visit_number = 0
        self.warnings: list[str] = []
        self.files_new = 0
        self.files_changed = 0
        self.files_unmodified = 0
        self.dirs = 0
        self.bytes_read = 0
        self.files_done = 0
        self.bytes_done = 0
        self.current = ""
        self._counts = threading.Lock()
        self._reporting = threading.Lock()
        self._last_report = 0.0

    @property
    def errors(self) -> list[str]:
        """Unreadable entries, ``"<path>: <reason>"``, in walk order."""
        return [message for _, message in sorted(self._errors, key=lambda error: error[0])]

    # progress

    def report(self, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_INTERVAL:
            return
        if not self._reporting.acquire(blocking=force):
            return  # another thread is reporting right now
        try:
            self._last_report = now
            self.progress(
                BackupProgress(self.files_done, self.bytes_done, self.scan.total, display_path(self.current))
            )
        finally:
            self._reporting.release()

    def error(self, path: str, exc: BaseException | str, visit: int | None = None) -> None:
        reason = exc if isinstance(exc, str) else (getattr(exc, "strerror", None) or str(exc))
        self._errors.append(
            (self._visit_number if visit is None else visit, f"{display_path(path)}: {reason}")
        )

    # the walk

    def run(self, roots: Sequence[str], parent_root: bytes | None) -> bytes:
        """Back up ``roots``; return the root tree id."""
        try:
            return self._walk(roots, parent_root)
        finally:
            # On an error, files not started yet are dropped and the running ones finish
            # before the pack writer is closed.
            self._readers.shutdown(wait=True, cancel_futures=True)

    def _walk(self, roots: Sequence[str], parent_root: bytes | None) -> bytes:
        trie: dict[str, Any] = {}
        whole_root = False
        for root in roots:
            parts = [part for part in root.split("/") if part]
            if not parts:
                whole_root = True
                continue
            level = trie
            for part in parts[:-1]:  # no ancestor is itself backed up (see _drop_nested)
                level = level.setdefault(part, {})
            level[parts[-1]] = None
        parent_nodes = self._parent_nodes(parent_root)
        if whole_root:
            pending: list[tuple[str, dict[str, Any] | None]] = self._listing("/")
        else:
            pending = [(name, trie[name]) for name in sorted(trie, reverse=True)]
        stack = [_Frame("/", "", None, pending, parent_nodes)]
        top = _DirTree(stack[0])
        while stack:
            frame = stack[-1]
            if frame.pending:
                name, subtrie = frame.pending.pop()
                self._visit_number += 1
                child = self._visit(frame, name, subtrie)
                if child is not None:
                    stack.append(child)
                self._encode_ready(wait=False)
                continue
            stack.pop()
            tree = _DirTree(frame) if stack else top
            self._trees.append(tree)
            if stack:
                stack[-1].nodes.append(tree)
        self._encode_ready(wait=True)
        assert top.tree_id is not None
        return top.tree_id

    def _encode_ready(self, *, wait: bool) -> None:
        """Add the tree blobs of the finished directories whose files are all read, oldest first."""
        while self._trees:
            tree = self._trees[0]
            if not wait:
                entries = tree.frame.nodes
                while tree.checked < len(entries):
                    entry = entries[tree.checked]
                    if isinstance(entry, Future) and not entry.done():
                        return
                    tree.checked += 1
            self._trees.popleft()
            nodes = [node for node in map(self._settle, tree.frame.nodes) if node is not None]
            tree.tree_id, _ = self.writer.add_blob(BLOB_TREE, encode_tree(nodes))

    def _settle(self, entry: _Entry) -> Node | None:
        """The node an entry ends as (None for a file that could not be read)."""
        if isinstance(entry, Node):
            return entry
        if isinstance(entry, _DirTree):
            info = entry.frame.info
            assert info is not None and entry.tree_id is not None
            return Node(
                entry.frame.name, "dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns, subtree=entry.tree_id
            )
        return entry.result().node  # a reader's error other than an OSError ends the backup here

    def _listing(self, path: str) -> list[tuple[str, dict[str, Any] | None]]:
        """The entries of a real directory, reversed name order; an unreadable one is an error."""
        try:
            names = os.listdir(path)
        except OSError as exc:
            self.error(path, exc)
            return []
        return [(name, None) for name in sorted(names, reverse=True)]

    def _parent_nodes(self, tree_id: bytes | None) -> dict[str, Node]:
        if tree_id is None:
            return {}
        try:
            return {node.name: node for node in decode_tree(self.repo.load_blob(tree_id))}
        except LifeboatError:
            return {}  # a damaged parent only costs re-reading

    def _visit(self, frame: _Frame, name: str, subtrie: dict[str, Any] | None) -> _Frame | None:
        path = f"{frame.path.rstrip('/')}/{name}"
        self.current = path
        try:
            info = os.lstat(path)
        except OSError as exc:
            self.error(path, exc)
            return None
        mode = info.st_mode
        is_dir = stat.S_ISDIR(mode)
        virtual = subtrie is not None
        if not virtual and self.rules and self.rules.excluded(path, is_dir):
            return None
        old = frame.parent_nodes.get(name)
        if virtual and not is_dir:
            self.error(path, "is no longer a directory")
            return None
        if is_dir:
            self.dirs += 0 if virtual else 1
            parent_nodes = self._parent_nodes(old.subtree if old is not None and old.type == "dir" else None)
            if virtual:
                assert subtrie is not None
                pending = [(child, subtrie[child]) for child in sorted(subtrie, reverse=True)]
            else:
                pending = self._listing(path)
            return _Frame(path, name, info, pending, parent_nodes)
        if stat.S_ISLNK(mode):
            try:
                target = os.readlink(path)
            except OSError as exc:
                self.error(path, exc)
                return None
            frame.nodes.append(Node(name, "symlink", stat.S_IMODE(mode), info.st_mtime_ns, target=target))
            return None
        if stat.S_ISREG(mode):
            entry = self._file(path, name, info, old)
            if entry is not None:
                frame.nodes.append(entry)
            return None
        if stat.S_ISFIFO(mode):
            frame.nodes.append(Node(name, "fifo", stat.S_IMODE(mode), info.st_mtime_ns))
            return None
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            frame.nodes.append(
                Node(
                    name,
                    "chardev" if stat.S_ISCHR(mode) else "blockdev",
                    stat.S_IMODE(mode),
                    info.st_mtime_ns,
                    major=os.major(info.st_rdev),
                    minor=os.minor(info.st_rdev),
                )
            )
            return None
        kind = "socket" if stat.S_ISSOCK(mode) else "special file of an unknown type"
        self.warnings.append(f"{display_path(path)}: skipped ({kind}; not backed up)")
        return None

    def _file(
        self, path: str, name: str, info: os.stat_result, old: Node | None
    ) -> Node | Future[_FileRead] | None:
        """An unchanged file's node from the parent, or a new or changed one read.

        A file of at most the smallest chunk size (one blob, no cutting) is read here, on the
        walk's thread: handing it to a reader would cost more than reading it. A larger one goes to a
        reader thread, and its entry is the reader's job. None for a file that could not be read.
        """
        if (
            old is not None
            and old.type == "file"
            and old.size == info.st_size
            and old.mtime_ns == info.st_mtime_ns
            and old.inode == info.st_ino
            and old.device == info.st_dev
            and all(blob_id in self.repo.index for blob_id in old.content)
        ):
            self.files_unmodified += 1
            with self._counts:
                self.bytes_done += old.size
                self.files_done += 1
            self.report()
            return Node(
                name,
                "file",
                stat.S_IMODE(info.st_mode),
                info.st_mtime_ns,
                old.size,
                info.st_ino,
                info.st_dev,
                old.content,
            )
        changed = old is not None and old.type == "file"
        if info.st_size <= self.chunker.min_size:
            return self._read_file(path, name, self._visit_number, changed, slot=False).node
        self._slots.acquire()
        try:
            return self._readers.submit(self._read_file, path, name, self._visit_number, changed, slot=True)
        except BaseException:
            self._slots.release()
            raise

    def _read_file(self, path: str, name: str, visit: int, changed: bool, *, slot: bool) -> _FileRead:
        """Read, cut and store one file; an OSError makes it an error entry. ``slot``: give back a reader slot."""
        try:
            read = self._cut_file(path, name)
        finally:
            if slot:
                self._slots.release()
        if read.error is not None:
            self.error(path, read.error, visit)
        with self._counts:
            self.bytes_read += read.size
            self.files_done += 1
            if read.node is not None and changed:
                self.files_changed += 1
            elif read.node is not None:
                self.files_new += 1
        self.report()
        return read

    def _cutter(self) -> StreamChunker:
        """This thread's chunker and its buffer (one per thread that has cut a large file)."""
        cutter: StreamChunker | None = getattr(self._cutters, "cutter", None)
        if cutter is None:
            cutter = self._cutters.cutter = StreamChunker(self.chunker)
        return cutter

    def _chunks(self, handle: FileIO) -> Iterator[bytes | memoryview]:
        """The chunks of an open file: one read for a file of at most the smallest chunk size
        (FastCDC never cuts one), else FastCDC through this thread's chunker."""
        smallest = self.chunker.min_size
        head = handle.read(smallest + 1)
        if len(head) <= smallest:
            if head:
                yield head
            return
        rest = handle.readinto

        def readinto(buffer: memoryview) -> int | None:
            nonlocal head
            if head:
                count = min(len(head), len(buffer))
                buffer[:count] = head[:count]
                head = head[count:]
                return count
            return rest(buffer)

        yield from self._cutter().chunks(readinto)

    def _cut_file(self, path: str, name: str) -> _FileRead:
        try:
            fd = _open_file(path)
        except OSError as exc:
            return _FileRead(None, exc.strerror or str(exc), 0)
        content: list[bytes] = []
        size = 0
        try:
            with open(fd, "rb", buffering=0, closefd=True) as handle:
                opened = os.fstat(fd)
                if not stat.S_ISREG(opened.st_mode):
                    return _FileRead(None, "changed into something else than a file while being backed up", 0)
                for data in self._chunks(handle):
                    blob_id, _ = self.writer.add_blob(BLOB_DATA, data)
                    content.append(blob_id)
                    size += len(data)
                    with self._counts:
                        self.bytes_done += len(data)
                    self.current = path
                    self.report()
        except OSError as exc:
            return _FileRead(None, exc.strerror or str(exc), size)
        return _FileRead(
            Node(
                name,
                "file",
                stat.S_IMODE(opened.st_mode),
                opened.st_mtime_ns,
                size,
                opened.st_ino,
                opened.st_dev,
                tuple(content),
            ),
            None,
            size,
        )


def _open_file(path: str) -> int:
    """Open a regular file for reading without following a symlink (and without touching atime if allowed)."""
    if _NOATIME:
        with contextlib.suppress(PermissionError):
            return os.open(path, _OPEN_FLAGS | _NOATIME)
    return os.open(path, _OPEN_FLAGS)
