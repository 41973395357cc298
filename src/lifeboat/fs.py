"""Small file-system helpers used by every pillar: atomic writes and bounded reads.

Atomic write: the data goes to a temporary file in the destination directory, is flushed and
fsync'ed, then renamed over the destination, and the directory is fsync'ed. A reader sees the
old file or the new one, never a half-written one. Secret files are created 0600 from the start
(the temporary file is never readable by others).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lifeboat.errors import InputError, LifeboatError, StorageError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


def fsync_directory(directory: Path) -> None:
    """fsync ``directory``, so that names created, renamed or removed in it survive a crash
    (best effort: a directory that cannot be opened or synced is left as it is)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_writable(path: Path, *, overwrite: bool = False) -> Path:
    """Refuse, before any work is done, a ``path`` that :func:`atomic_writer` would refuse.

    Returns the directory the file goes into.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.exists() and not overwrite:
        raise StorageError(f"{path} already exists; choose another path or remove it first")
    if not directory.is_dir():
        raise StorageError(f"directory {directory} does not exist; create it first")
    return directory


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, mode: int = SECRET_MODE, overwrite: bool = False, sync_directory: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary file whose contents replace ``path`` atomically when the block exits.

    If the block raises, the temporary file is removed and ``path`` is untouched. The file is
    always fsync'ed before the rename; ``sync_directory=False`` leaves the fsync of its
    directory (which makes the new name itself durable) to the caller, who may batch it.
    """
    path = Path(path)
    directory = check_writable(path, overwrite=overwrite)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StorageError(f"cannot write in {directory}: {exc.strerror}") from exc
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp, path, overwrite=overwrite)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    if sync_directory:
        fsync_directory(directory)


def publish(tmp: Path, path: Path, *, overwrite: bool = False) -> None:
    """Move a finished temporary file to ``path``.

    With ``overwrite`` this is an atomic rename over any existing file. Without it the file is
    hard-linked into place, which fails if ``path`` appeared meanwhile (no check-then-replace
    race), and the temporary name is then removed.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise StorageError(f"{path} already exists; choose another path or remove it first") from None
    tmp.unlink()


def write_atomic(
    path: Path,
    data: bytes | bytearray | memoryview,
    *,
    mode: int = SECRET_MODE,
    overwrite: bool = False,
    sync_directory: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename), with ``mode``."""
    with atomic_writer(path, mode=mode, overwrite=overwrite, sync_directory=sync_directory) as handle:
        handle.write(data)


def open_for_reading(path: Path, what: str = "file") -> BinaryIO:
    """Open ``path`` for binary reading, turning every failure into a one-line StorageError."""
    path = Path(path)
    try:
        return path.open("rb")
    except FileNotFoundError as exc:
        raise StorageError(f"{what} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise StorageError(f"{what} {path} is a directory, not a file") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def read_bounded(path: Path, limit: int, *, what: str = "file") -> bytes:
    """Read a whole file, refusing one larger than ``limit`` bytes (a hostile size)."""
    with open_for_reading(path, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise StorageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputError(f"{what} {path} is larger than {limit} bytes; this is not a {what}")
    return data


#: The largest passphrase file read.
MAX_PASSPHRASE_BYTES = 4096


def read_passphrase_file(path: Path, *, error: type[LifeboatError] = InputError) -> str:
    """The passphrase kept in ``path``: its UTF-8 text without the trailing line break; text that
    is not UTF-8 raises ``error`` (the caller's kind of mistake)."""
    data = read_bounded(path, MAX_PASSPHRASE_BYTES, what="passphrase file")
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise error(f"passphrase file {path} is not UTF-8 text; re-save it as UTF-8") from None
