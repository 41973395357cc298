"""The backend interface, its key rules and its errors.

A backend stores opaque objects under keys. Keys are relative, slash-separated names such as
``data/3f/3fa9c1``: each segment is one or more of ``A-Z a-z 0-9 . _ -``, does not start with
``.`` (that also rules out ``.`` and ``..``; hidden names are reserved for temporary files), is
at most :data:`MAX_SEGMENT_LENGTH` characters, and the whole key is at most
:data:`MAX_KEY_LENGTH` characters. Every backend checks keys with
:func:`validate_key` before it touches storage, so a key that works on one backend works on all.

Errors (all derive from :class:`lifeboat.errors.StorageError`):

* :class:`ObjectNotFound` — ``get`` of a key that does not exist;
* :class:`BackendUnavailable` — the backend could not be reached or answered with a transient
  failure (connection refused, timeout, HTTP 5xx or 429); retrying may help;
* :class:`StoreTimeout` — a :class:`BackendUnavailable` for a request that got no answer
  within the store's timeout (a hung or very slow server): not retried, since each attempt
  would wait the whole timeout again while the other stores could be used;
* :class:`InvalidKey` — the key breaks the rules above;
* :class:`StoreError` — anything else (permissions, a missing bucket, a full disk).

Messages name the backend (its ``name``) and the key, never credentials.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from lifeboat.errors import StorageError

#: The longest key a backend accepts (S3 allows 1024 bytes; leave room for a prefix).
MAX_KEY_LENGTH = 512
#: The longest segment (file systems allow 255 bytes per name; leave room for a temp suffix).
MAX_SEGMENT_LENGTH = 200

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class StoreError(StorageError):
    """An object-store operation failed (the message names the backend and the key)."""


class ObjectNotFound(StoreError):
    """The requested object does not exist in the backend."""


class BackendUnavailable(StoreError):
    """The backend could not be reached or failed transiently; the call may be retried."""


class StoreTimeout(BackendUnavailable):
    """The backend accepted the request but did not answer within its timeout (not retried)."""


class InvalidKey(StoreError):
    """A key that breaks the key rules (charset, segments, length)."""


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a valid object key, else raise :class:`InvalidKey`.

    >>> validate_key("data/ab/abcdef.0")
    'data/ab/abcdef.0'
    """
    if not isinstance(key, str):
        raise InvalidKey(f"object key must be a string, not {type(key).__name__}")
    shown = key[:80] + ("..." if len(key) > 80 else "")
    if not key:
        raise InvalidKey("object key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"object key {shown!r} is longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise InvalidKey(f"object key {shown!r} starts with '/'; keys are relative")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(f"object key {shown!r} has an empty segment ('//' or a trailing '/')")
        if segment.startswith("."):
            raise InvalidKey(f"object key {shown!r} has a segment starting with '.' (reserved)")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidKey(
                f"object key {shown!r} has a segment longer than {MAX_SEGMENT_LENGTH} characters"
            )
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(f"object key {shown!r} has characters outside A-Z a-z 0-9 . _ - /")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a ``list`` prefix: empty, or a key, or a key followed by ``/``.

    A prefix matches keys by plain string comparison, so ``"data/a"`` matches ``data/a``,
    ``data/ab/x`` and ``data/a/x``.
    """
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


@runtime_checkable
class Backend(Protocol):
    """One place that stores objects: a directory, a bucket, a dict in memory.

    Every method is safe to call from several threads at once. ``put`` is atomic: a reader
    sees the old object or the new one, never part of one. All methods are idempotent, so a
    wrapper may retry any of them after :class:`BackendUnavailable`.
    """

    #: Human-readable description for messages and logs (never contains credentials).
    name: str

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any existing object atomically."""
        ...

    def get(self, key: str) -> bytes:
        """Return the object under ``key``; :class:`ObjectNotFound` if there is none."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Return the sorted keys that start with ``prefix`` (a plain string prefix)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; a missing object is not an error."""
        ...

    def stat(self, key: str) -> int | None:
        """Return the size in bytes of the object under ``key``, or None if it does not exist."""
        ...


def sync_backend(store: Backend) -> None:
    """Make every write ``store`` has acknowledged durable, for backends that batch that work.

    A local directory defers the fsync of the directories its pack shards were renamed into
    (:meth:`lifeboat.store.backends.local.LocalBackend.sync`); wrappers pass the call on; any
    other backend is durable once ``put`` returns, and this does nothing.
    """
    sync = getattr(store, "sync", None)
    if callable(sync):
        sync()
