"""Storage backends: one narrow interface, several places to keep objects, and wrappers.

:func:`open_backend` turns a location string into a backend:

* ``/path/to/dir``, ``./dir`` or ``file:///path/to/dir`` → :class:`LocalBackend`;
* ``s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`` →
  :class:`ObjectStoreBackend` over obstore's S3 store (tested against SeaweedFS). Credentials
  come from the standard ``AWS_*`` environment variables or the ``access_key_id`` /
  ``secret_access_key`` / ``session_token`` query options;
* ``gs://bucket/prefix`` and ``az://container/prefix`` → obstore's GCS and Azure stores,
  with query options passed through as their configuration. These two are **untested**.

Retries, concurrency limits and fault injection are wrappers (:mod:`.wrappers`) around any
backend; :func:`open_backend` returns the bare backend and the caller wraps it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from lifeboat.errors import StorageError, UsageError
from lifeboat.store.backends.base import (
    MAX_KEY_LENGTH,
    MAX_SEGMENT_LENGTH,
    Backend,
    BackendUnavailable,
    InvalidKey,
    ObjectNotFound,
    StoreError,
    StoreTimeout,
    validate_key,
    validate_prefix,
)
from lifeboat.store.backends.local import LocalBackend
from lifeboat.store.backends.objectstore import ObjectStoreBackend
from lifeboat.store.backends.wrappers import FaultyBackend, LimitedBackend, MemoryBackend, RetryingBackend

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_SEGMENT_LENGTH",
    "SUPPORTED_SCHEMES",
    "Backend",
    "BackendUnavailable",
    "FaultyBackend",
    "InvalidKey",
    "LimitedBackend",
    "LocalBackend",
    "MemoryBackend",
    "ObjectNotFound",
    "ObjectStoreBackend",
    "RetryingBackend",
    "StoreError",
    "StoreTimeout",
    "open_backend",
    "open_stores",
    "open_stores_leniently",
    "validate_key",
    "validate_prefix",
]

#: URL schemes :func:`open_backend` understands (a plain path means ``file``).
SUPPORTED_SCHEMES = ("file", "s3", "gs", "az")

_OBJECT_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss")


def open_backend(url: str, *, create: bool = False, timeout: float = 30.0) -> Backend:
    """Open the backend that ``url`` names (see the module docstring for the forms).

    ``create`` applies to local directories only: create a missing root instead of raising
    :class:`BackendUnavailable`. ``timeout`` is how many seconds an ``s3://`` store may take to
    answer one request, unless the URL's ``timeout=`` option says otherwise. An unknown scheme
    raises :class:`UsageError` naming the supported ones.
    """
    if not url:
        raise UsageError("storage location is empty; give a directory or an s3:// URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"file:// URL {url!r} names a host; use file:///absolute/path")
        if parts.query or parts.fragment:
            raise UsageError(f"file:// URL {url!r} must not have a query or fragment")
        return LocalBackend(Path(unquote(parts.path)), create=create)
    if scheme == "" or "://" not in url:
        return LocalBackend(Path(url), create=create)
    if scheme in _OBJECT_SCHEMES:
        return ObjectStoreBackend.from_url(url, timeout=timeout)
    raise UsageError(
        f"unsupported storage URL scheme {parts.scheme!r}; supported: "
        "a directory path or file:///path, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix"
    )


def open_stores(urls: list[str], *, create: bool = False, timeout: float = 30.0) -> list[Backend]:
    """Open every store in ``urls`` as the commands use them: retried (4 attempts) and limited
    to 8 requests at a time. A store that cannot be opened raises."""
    return [
        RetryingBackend(
            LimitedBackend(open_backend(url, create=create, timeout=timeout), 8),
            attempts=4,
            max_delay=1.0,
        )
        for url in urls
    ]


def open_stores_leniently(urls: list[str], *, timeout: float = 30.0) -> tuple[list[Backend], list[str]]:
    """Open what can be opened of ``urls`` (as :func:`open_stores`) and say why the others could not.

    The repository decides whether enough stores remain (pass the reasons as its ``unopened``).
    """
    found: list[Backend] = []
    failures: list[str] = []
    for url in urls:
        try:
            found.extend(open_stores([url], timeout=timeout))
        except StorageError as exc:
            failures.append(str(exc))
    return found, failures
