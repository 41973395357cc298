"""A backend that keeps each object as a file under a root directory.

``put`` goes through :func:`lifeboat.fs.write_atomic` (temporary file in the same directory,
fsync, rename, directory fsync), so a reader never sees a partial object and a failed write
leaves no temporary file behind. Objects are created 0600 and directories 0700.

Batched directory syncs: pack shards (keys under ``data/``) are content-addressed and nothing
refers to one until an index object is written after it. Their file is fsync'ed before its
rename as usual, but the fsync of the directories the rename (or a new directory) changed is
deferred: every such directory is fsync'ed once by :meth:`LocalBackend.sync`, which runs
before any ``put`` of another key (an index, a manifest, a lock) and when the repository is
closed. So an index or a snapshot is never durable before the packs it names, while a backup
of many packs pays one directory fsync per directory per batch instead of one per shard. A
crash before the sync can lose the newest shard files: no index names them yet, and ``prune``
removes such leftovers like any unreferenced pack.

A key names a file, so one key cannot also be a directory of others: after ``put("a", ...)``
a ``put("a/b", ...)`` fails with :class:`StoreError` (object stores allow both; callers that
need portability use fixed-depth layouts such as ``data/ab/abcdef``). Empty directories left
by ``delete`` are kept; they are not objects and ``list`` ignores them.
"""

from __future__ import annotations

import errno
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lifeboat.errors import StorageError
from lifeboat.fs import SECRET_MODE, fsync_directory, write_atomic
from lifeboat.store.backends.base import (
    BackendUnavailable,
    ObjectNotFound,
    StoreError,
    validate_key,
    validate_prefix,
)

DIR_MODE = 0o700
#: Keys whose directory fsyncs are batched (see the module docstring): pack shards.
DEFERRED_SYNC_PREFIX = "data/"
#: Threads that fsync a batch of directories at once.
SYNC_THREADS = 8


class LocalBackend:
    """Objects as files under ``root``. ``create=True`` creates a missing root (0700)."""

    def __init__(self, root: Path | str, create: bool = False) -> None:
        self.root = Path(root).absolute()
        self.name = f"local:{self.root}"
        if not self.root.is_dir():
            if self.root.exists():
                raise StoreError(f"{self.name}: {self.root} is not a directory")
            if not create:
                raise BackendUnavailable(
                    f"{self.name}: directory {self.root} does not exist "
                    "(is the disk mounted? a new store is created by `lifeboat repo init`)"
                )
            try:
                self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.name}: cannot create {self.root}: {exc.strerror or exc}") from exc
        #: Directories changed by deferred writes and not fsync'ed yet.
        self._unsynced: set[Path] = set()
        self._sync_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _check_root(self, key: str) -> None:
        if not self.root.is_dir():
            raise BackendUnavailable(f"{self.name}: directory {self.root} has gone away (key {key!r})")

    def _changed(self, directory: Path, deferred: bool) -> None:
        """Record (deferred) or fsync (otherwise) a directory whose entries just changed."""
        if deferred:
            with self._sync_lock:
                self._unsynced.add(directory)
        else:
            fsync_directory(directory)

    def sync(self) -> None:
        """fsync every directory changed by a deferred write since the last sync.

        The directories of one depth are fsync'ed at once on a few threads, so the file system
        can commit them together; deeper ones first (a new directory, then the one holding it).
        """
        with self._sync_lock:
            directories, self._unsynced = self._unsynced, set()
        by_depth: dict[int, list[Path]] = {}
        for directory in directories:
            by_depth.setdefault(len(directory.parts), []).append(directory)
        for depth in sorted(by_depth, reverse=True):
            level = by_depth[depth]
            if len(level) == 1:
                fsync_directory(level[0])
                continue
            with ThreadPoolExecutor(max_workers=min(SYNC_THREADS, len(level))) as pool:
                list(pool.map(fsync_directory, level))

    def _mkdirs(self, directory: Path, key: str, deferred: bool) -> None:
        missing: list[Path] = []
        current = directory
        while current != self.root and not current.is_dir():
            missing.append(current)
            current = current.parent
        self._check_root(key)
        for path in reversed(missing):
            try:
                path.mkdir(mode=DIR_MODE)
                self._changed(path.parent, deferred)
            except FileExistsError:
                if not path.is_dir():
                    raise StoreError(
                        f"{self.name}: cannot put {key!r}: {path.relative_to(self.root)} is an object, "
                        "not a directory"
                    ) from None
            except OSError as exc:
                raise StoreError(f"{self.name}: cannot put {key!r}: {exc.strerror or exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` atomically to the file for ``key`` (mode 0600)."""
        path = self._path(key)
        deferred = key.startswith(DEFERRED_SYNC_PREFIX)
        if not deferred:
            self.sync()  # the pack shards written so far are durable before this object
        try:
            self._mkdirs(path.parent, key, deferred)
            if path.is_dir():
                raise StoreError(f"{self.name}: cannot put {key!r}: it is a directory of other objects")
            write_atomic(path, data, mode=SECRET_MODE, overwrite=True, sync_directory=not deferred)
            if deferred:
                self._changed(path.parent, deferred)
        except StoreError:
            raise
        except StorageError as exc:
            raise StoreError(f"{self.name}: cannot put {key!r}: {exc}") from exc
        except OSError as exc:
            raise self._os_error("put", key, exc) from exc

    def get(self, key: str) -> bytes:
        """Read the whole file for ``key``."""
        path = self._path(key)
        try:
            with path.open("rb") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._check_root(key)
            raise ObjectNotFound(f"{self.name}: object {key!r} not found") from None
        except OSError as exc:
            raise self._os_error("get", key, exc) from exc

    def stat(self, key: str) -> int | None:
        """Size of the file for ``key``, or None."""
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            self._check_root(key)
            return None
        except OSError as exc:
            raise self._os_error("stat", key, exc) from exc
        return st.st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        """Remove the file for ``key`` if it exists."""
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            self._check_root(key)
        except IsADirectoryError:
            pass
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.EPERM) and path.is_dir():
                return
            raise self._os_error("delete", key, exc) from exc

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix``; temporary (hidden) files are skipped."""
        validate_prefix(prefix)
        self._check_root(prefix)
        head, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*head.split("/")) if head else self.root
        keys: list[str] = []

        def on_error(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise self._os_error("list", prefix, exc) from exc

        for dirpath, dirnames, filenames in os.walk(start, onerror=on_error):
            base = Path(dirpath).relative_to(self.root).as_posix()
            base = "" if base == "." else base + "/"
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and _may_hold(base + d + "/", prefix)]
            for filename in filenames:
                if filename.startswith("."):
                    continue
                key = base + filename
                if key.startswith(prefix) and Path(dirpath, filename).is_file():
                    keys.append(key)
        keys.sort()
        return keys

    def _os_error(self, what: str, key: str, exc: OSError) -> StoreError:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EIO, errno.ESTALE, errno.ENODEV, errno.ENXIO, errno.ETIMEDOUT):
            return BackendUnavailable(f"{self.name}: cannot {what} {key!r}: {reason}")
        return StoreError(f"{self.name}: cannot {what} {key!r}: {reason}")


def _may_hold(directory: str, prefix: str) -> bool:
    """Can keys under ``directory`` (ending in '/') start with ``prefix``?"""
    return directory.startswith(prefix) or prefix.startswith(directory)
