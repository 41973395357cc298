"""Errors of the repository layer (all are :class:`lifeboat.errors.StorageError`).

The backend errors (:mod:`lifeboat.store.backends.base`) say what one store did; these say what
it means for the repository: the key does not open, an object is malformed, someone holds a
lock, a store is down and the write cannot go ahead.
"""

from __future__ import annotations

from lifeboat.errors import StorageError


class RepositoryError(StorageError):
    """A repository-level problem: stores that disagree, missing objects, a failed integrity check."""


class RepositoryKeyError(RepositoryError):
    """No key file opens with this passphrase, or a master key does not belong to the repository."""


class FormatError(RepositoryError):
    """A config, key file, pack, index, manifest, lock or tree that is malformed or of an unknown version."""


class NewerVersionError(FormatError):
    """A document written by a newer Lifeboat (its format version is above the one this reads)."""


class LockedError(RepositoryError):
    """Another process holds a lock that conflicts with this operation."""


class StoreDown(RepositoryError):
    """A store did not answer and the operation may not go ahead without it."""


__all__ = [
    "FormatError",
    "LockedError",
    "NewerVersionError",
    "RepositoryError",
    "RepositoryKeyError",
    "StoreDown",
]
