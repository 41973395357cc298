"""A repository: ``n`` stores, each holding shard ``i`` of every object, any ``k`` of which suffice.

This is the layer above the codec and the backends, and the only one the snapshot layer talks
to. It owns the repository's key, its objects and their placement:

* every object (pack, index, manifest, lock) is encoded with :func:`lifeboat.store.codec.encode`
  into ``n`` shards, and shard ``i`` is written to store ``i`` under the same key;
* blobs (file chunks, trees) are content-addressed by a keyed BLAKE3 id and gathered into packs
  of about 16 MiB by a :class:`PackWriter`; index objects map blob ids to packs;
* manifests are signed with an Ed25519 key derived from the master key and are written last;
* locks are objects too: shared for backups, exclusive for prune, with an expiry.

Each store also holds a plaintext ``config`` (its store number, ``k``, ``n``, the repository
id; authenticated by a MAC) and the key files (the master key wrapped by a passphrase). The
formats are in ``docs/formats.md``. Stores may be given in any order: each knows its number.

Writes need every store unless the repository was opened with ``degraded_ok``: then a store
that fails is dropped for the rest of the session, as long as ``k`` stores remain, and the
index records which shards each pack is missing so that ``repair`` can rebuild them.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import nacl.exceptions
import nacl.signing
import platformdirs

from lifeboat.documents import canonical_json
from lifeboat.errors import InputError, StorageError
from lifeboat.fs import write_atomic
from lifeboat.store import codec
from lifeboat.store.backends.base import Backend, ObjectNotFound, sync_backend
from lifeboat.store.codec import CodecParams, ShardError
from lifeboat.store.config import (
    CONFIG_KEY,
    MAX_CONFIG_BYTES,
    ChunkerParams,
    RepoConfig,
    chunker_seed,
    encode_config,
    parse_config,
    signing_seed,
    verify_config,
)
from lifeboat.store.errors import (
    FormatError,
    LockedError,
    NewerVersionError,
    RepositoryError,
    RepositoryKeyError,
    StoreDown,
)
from lifeboat.store.index import (
    INDEX_BLOB_BYTES,
    INDEX_HEADER_BYTES,
    INDEX_PACK_BYTES,
    BlobEntry,
    BlobLocation,
    Index,
    PackEntry,
    PackTable,
    decode_index_tables,
    encode_index,
    encode_index_tables,
    index_entry,
)
from lifeboat.store.keyfile import (
    DEFAULT_KDF,
    MAX_KEY_FILE_BYTES,
    KdfParams,
    unwrap_master_key,
    wrap_master_key,
)
from lifeboat.store.packs import BLOB_DATA, BLOB_STATE, BLOB_TREE, BLOB_TYPES, PackBuilder, parse_pack

__all__ = [
    "BLOB_DATA",
    "BLOB_STATE",
    "BLOB_TREE",
    "DEFAULT_PACK_SIZE",
    "BlobLocation",
    "KeyFileDamage",
    "LockInfo",
    "Manifest",
    "PackWriter",
    "Repository",
    "WriterStats",
    "default_cache_dir",
    "default_data_shards",
    "now_rfc3339",
]

DEFAULT_PACK_SIZE: Final = 16 * 1024 * 1024
MANIFEST_FORMAT: Final = "lifeboat-manifest"
MANIFEST_VERSION: Final = 1
LOCK_FORMAT: Final = "lifeboat-lock"
LOCK_VERSION: Final = 1
#: Largest manifest or lock object accepted (they are small JSON documents).
MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024
#: A pack job builds and encodes a pack on one of PACK_WORKERS threads, then hands its shards to
#: the I/O threads and goes on to the next pack instead of waiting for the stores (fsync
#: included). Packs of at most PACKS_IN_FLIGHT full packs' worth of bytes in all (two packs of
#: the config's pack size, each with room for one more largest chunk; or many small packs of
#: state nodes) are sealed and not yet stored (waiting for a worker, being encoded, or being
#: written), so the callers filling the next pack never run further ahead and memory stays
#: within a few packs, while small packs still keep the I/O threads busy. The encoder empties a
#: pack's plaintext as soon as it has compressed it (``consume=True``) and encrypts straight
#: into the data shards.
PACK_WORKERS: Final = 2
PACKS_IN_FLIGHT: Final = 2
#: zstd level for every object: on the benchmark's ledger data level 1 compresses both faster
#: (22 against 48 ms per 16 MiB pack) and smaller (0.29 against 0.33) than level 3.
ZSTD_LEVEL: Final = 1
#: Packs written before the writer stores an index of them (so an interrupted backup's data is reusable).
INDEX_EVERY_PACKS: Final = 64
_KINDS: Final = ("data", "index", "snapshots", "locks")
_BLANK: Final = "is empty: no repository config and no objects (a wiped or new store)"

T = TypeVar("T")


#: Decoded packs kept for :meth:`Repository.load_blob`, up to this many plaintext bytes (four
#: 16 MiB packs; or a few hundred small packs of state nodes): a record snapshot compares the old
#: tree (read in order) while its update reads the same region a little behind, and proofs keep
#: the packs of the upper levels of a tree while their leaves come and go.
PACK_CACHE_BYTES: Final = 64 * 1024 * 1024

#: Packs of record-snapshot nodes (``BLOB_STATE``) are sealed at about this size, whatever the
#: config's ``pack_size`` (which file data keeps): reading one node cold decodes its whole pack,
#: so a proof's cost follows this size, while every pack also costs ``n`` shard objects (each
#: written with an fsync). On the 1M-account benchmark (leaves and internal nodes in packs of
#: their own, a loaded 2-core machine), cold proofs/s: 256 KiB 531-603, 512 KiB 350-495, 1 MiB
#: 216-256, 16 MiB 26-32; the full snapshot took ~2 CPU-s more at 256 KiB than at 512 KiB
#: (2,050 packs), 128 KiB doubled the objects again (docs/formats.md, "Pack").
STATE_PACK_SIZE: Final = 256 * 1024


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds (``2026-11-24T05:00:00.123456Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by :func:`now_rfc3339` (FormatError if it is not one)."""
    try:
        value = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError):
        raise FormatError(f"time {text!r} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS.ffffffZ)") from None
    return value.replace(tzinfo=UTC)


def default_cache_dir() -> Path:
    """Where index caches live unless ``--cache-dir`` says otherwise."""
    return Path(platformdirs.user_cache_dir("lifeboat"))


def default_data_shards(n: int) -> int:
    """The default ``k`` for ``n`` stores: ``ceil(3n/5)``, except that two stores mirror (k=1).

    >>> [default_data_shards(n) for n in range(1, 8)]
    [1, 1, 2, 3, 3, 4, 5]
    """
    if n == 2:
        return 1
    return max(1, math.ceil(3 * n / 5))


def _object_key(kind: str, object_id: bytes) -> str:
    hexid = object_id.hex()
    return f"data/{hexid[:2]}/{hexid}" if kind == "data" else f"{kind}/{hexid}"


def _id_of_key(key: str) -> bytes:
    name = key.rsplit("/", 1)[-1]
    try:
        object_id = bytes.fromhex(name)
    except ValueError:
        raise FormatError(f"object key {key!r} does not end in a hex id") from None
    if len(object_id) != codec.OBJECT_ID_BYTES:
        raise FormatError(f"object key {key!r} does not end in a 64-hex-digit id")
    return object_id


@dataclass(frozen=True)
class Manifest:
    """A signed snapshot manifest: its id and its verified JSON payload."""

    id: bytes
    payload: dict[str, Any]

    @property
    def time(self) -> datetime:
        return parse_time(str(self.payload["time"]))

    @property
    def short_id(self) -> str:
        return self.id.hex()[:8]


@dataclass(frozen=True)
class LockInfo:
    """A lock object as found in the stores."""

    key: str
    exclusive: bool
    operation: str
    hostname: str
    pid: int
    created: str
    expires: str
    stale: bool
    #: Why the lock is stale ("expired", "process gone", "unreadable: ..."), or "".
    reason: str = ""

    def describe(self) -> str:
        if self.operation == "?":
            return f"lock {self.key} ({self.reason})"
        kind = "exclusive" if self.exclusive else "shared"
        return (
            f"{kind} lock for {self.operation} by pid {self.pid} on {self.hostname}, expires {self.expires}"
        )


@dataclass
class WriterStats:
    """What a :class:`PackWriter` wrote."""

    blobs_new: int = 0
    blobs_known: int = 0
    bytes_new_raw: int = 0
    packs_written: int = 0
    indexes_written: int = 0
    #: Shard bytes written to all stores (what the repository grew by).
    bytes_stored: int = 0
    #: OR of every pack's missing-shard mask: bit i = store i missed at least one shard.
    missing_mask: int = 0


class Repository:
    """An open repository. Use :meth:`init` or :meth:`open`; close it (or use ``with``)."""

    #: Seconds a lock stays valid without a refresh, and how often a held lock is refreshed.
    lock_ttl: float = 30 * 60
    lock_refresh: float = 5 * 60

    def __init__(
        self,
        stores: list[Backend | None],
        config: RepoConfig,
        master_key: bytes,
        *,
        unavailable: dict[int, str],
        degraded_ok: bool,
        cache_dir: Path | None,
    ) -> None:
        self.stores = stores
        self.config = config
        self.k = config.k
        self.n = config.n
        self.id = config.repository
        self._key = master_key
        self.params = CodecParams(config.k, config.n)
        #: Store number → why it is not in use (not given, not answering, failed during a write).
        self.unavailable = dict(unavailable)
        self.degraded_ok = degraded_ok
        self.cache_dir = cache_dir / self.id if cache_dir is not None else None
        self.chunker_seed = chunker_seed(master_key)
        self._signer = nacl.signing.SigningKey(signing_seed(master_key))
        if bytes(self._signer.verify_key) != config.signing_key:
            raise RepositoryKeyError("the manifest signing key in the config does not match this master key")
        self.index = Index()
        self.bad_indexes: dict[str, str] = {}
        self.incomplete_indexes: set[str] = set()
        #: Stores given that answer but hold no config and nothing else (wiped or new).
        self.blank_stores: list[Backend] = []
        #: Stores given whose config is damaged (not readable as a config of any version).
        self.damaged_stores: list[Backend] = []
        #: Stores given that could not be used: one sentence each, naming the store.
        self.store_failures: list[str] = []
        #: The key file that opened the repository and the exact copy that authenticated (None
        #: when opened with a master key): ``check`` and ``repair`` hold the other copies to it.
        self.opened_key_file: tuple[str, bytes] | None = None
        #: Copies of that key file that differ from the good one or cannot be read, store by store.
        self.damaged_key_files: list[KeyFileDamage] = []
        #: Manifests that could not be read or verified: key → reason (filled by :meth:`manifests`).
        self.bad_manifests: dict[str, str] = {}
        #: Manifests with fewer than ``k`` shards in stores that all answer: the residue of a
        #: write that was interrupted (never a snapshot; prune removes them). Not damage, so not
        #: in :attr:`bad_manifests`. Key → reason (filled by :meth:`manifests`).
        self.incomplete_manifests: dict[str, str] = {}
        self._state_lock = threading.Lock()
        self._io = ThreadPoolExecutor(max_workers=max(4, 2 * config.n), thread_name_prefix="lifeboat-io")
        self._cpu = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="lifeboat-cpu"
        )
        self._packs = ThreadPoolExecutor(max_workers=PACK_WORKERS, thread_name_prefix="lifeboat-pack")
        self._pack_cache: OrderedDict[bytes, tuple[dict[bytes, bytes], int]] = OrderedDict()
        self._pack_cache_bytes = 0
        self._closed = False

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        stores: Sequence[Backend],
        passphrase: str,
        *,
        k: int | None = None,
        kdf: KdfParams = DEFAULT_KDF,
        pack_size: int = DEFAULT_PACK_SIZE,
        chunker: ChunkerParams | None = None,
        cache_dir: Path | None = None,
    ) -> Repository:
        """Create a repository on ``stores`` (all must be empty) and return it open.

        ``k`` defaults to :func:`default_data_shards`. The master key is random; a key file
        wraps it under ``passphrase`` (argon2id with ``kdf``) in every store. The config is
        written last in each store, so a store without one was never fully initialised.
        """
        n = len(stores)
        if n == 0:
            raise InputError("a repository needs at least one store (--store)")
        if n > codec.MAX_SHARDS:
            raise InputError(f"a repository has at most {codec.MAX_SHARDS} stores, got {n}")
        if k is None:
            k = default_data_shards(n)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise InputError(f"--data-shards must be between 1 and the number of stores ({n}), got {k}")
        if not passphrase:
            raise InputError("the repository passphrase is empty; choose one (it protects every store)")
        names = [store.name for store in stores]
        if len(set(names)) != n:
            raise InputError(
                "the same store is given twice: "
                + ", ".join(sorted({x for x in names if names.count(x) > 1}))
            )
        with ThreadPoolExecutor(max_workers=max(4, n)) as pool:
            listings = list(pool.map(lambda s: s.list(""), stores))
        for store, listing in zip(stores, listings, strict=True):
            if listing:
                raise RepositoryError(
                    f"store {store.name} is not empty ({len(listing)} objects, e.g. {listing[0]!r}); "
                    "a new repository needs empty stores"
                )
        master_key = secrets.token_bytes(codec.KEY_BYTES)
        repository = secrets.token_hex(16)
        created = now_rfc3339()
        signing = bytes(nacl.signing.SigningKey(signing_seed(master_key)).verify_key)
        config = RepoConfig(
            repository=repository,
            k=k,
            n=n,
            store=0,
            created=created,
            chunker=chunker or ChunkerParams(),
            pack_size=pack_size,
            signing_key=signing,
        )
        name, key_file = wrap_master_key(master_key, passphrase, repository, kdf=kdf, created=created)

        def initialise(number: int) -> None:
            store = stores[number]
            store.put(f"keys/{name}", key_file)
            store.put(CONFIG_KEY, encode_config(config.for_store(number), master_key))

        def undo(number: int) -> None:
            # the stores were empty: these two objects are all that init can have written
            for key in (CONFIG_KEY, f"keys/{name}"):
                with suppress(StorageError):
                    stores[number].delete(key)

        with ThreadPoolExecutor(max_workers=max(4, n)) as pool:
            futures = [pool.submit(initialise, number) for number in range(n)]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.exception()  # wait for every write before undoing them
                list(pool.map(undo, range(n)))
                raise
        return cls(list(stores), config, master_key, unavailable={}, degraded_ok=False, cache_dir=cache_dir)

    @classmethod
    def open(
        cls,
        stores: Sequence[Backend],
        passphrase: str | None = None,
        *,
        master_key: bytes | None = None,
        degraded_ok: bool = False,
        writable: bool = False,
        cache_dir: Path | None = None,
        load_index: bool = True,
        unopened: Sequence[str] = (),
    ) -> Repository:
        """Open the repository held by ``stores`` (any order; missing or dead ones allowed).

        ``unopened`` are sentences about stores the caller was given but could not even open
        (a missing directory, a bad URL): they are reported with the stores that do not answer,
        so a store that was given is never described as not given.

        Give either ``passphrase`` (tried against every key file) or ``master_key``. Stores that
        do not answer or hold no config are left out; at least ``k`` must remain. With
        ``writable`` every store must answer unless ``degraded_ok`` is set (then at least
        ``k``). Raises :class:`RepositoryError` when stores belong to different repositories
        or claim the same number, :class:`RepositoryKeyError` when the key does not open,
        :class:`StoreDown` when too few stores answer.
        """
        if not stores:
            raise InputError("no stores given; name them with --store (or $LIFEBOAT_STORES)")
        if (passphrase is None) == (master_key is None):
            raise InputError("open a repository with a passphrase or a master key, not both or neither")
        names = [store.name for store in stores]
        if len(set(names)) != len(names):
            raise InputError(
                "the same store is given twice: "
                + ", ".join(sorted({x for x in names if names.count(x) > 1}))
            )

        def read_config(store: Backend) -> tuple[bytes | None, str, str]:
            """(config bytes, or None and a sentence naming the store saying why; "blank" for a store
            holding nothing, "damaged" for one holding objects but no usable config, else "")"""
            try:
                data = store.get(CONFIG_KEY)
            except ObjectNotFound:
                try:
                    empty = not store.list("")
                except StorageError as exc:
                    return None, str(exc), ""
                if empty:
                    return None, f"store {store.name} {_BLANK}", "blank"
                return (
                    None,
                    f"store {store.name} holds no repository config (not a Lifeboat store, or its config was lost)",
                    "damaged",
                )
            except StorageError as exc:
                return None, str(exc), ""
            if len(data) > MAX_CONFIG_BYTES:
                return (
                    None,
                    f"store {store.name}: config is {len(data)} bytes, over the {MAX_CONFIG_BYTES}-byte limit",
                    "damaged",
                )
            return data, "", ""

        with ThreadPoolExecutor(max_workers=max(4, len(stores))) as pool:
            answers = list(pool.map(read_config, stores))

        parsed: list[tuple[Backend, RepoConfig, bytes]] = []
        failed: list[str] = [f"given but unreachable or missing: {why}" for why in unopened]
        blank: list[Backend] = []
        damaged: list[Backend] = []
        for store, (data, why, state) in zip(stores, answers, strict=True):
            if data is None:
                failed.append(why)
                if state == "blank":
                    blank.append(store)
                elif state == "damaged":  # repair gives it back its config if it holds our key files
                    damaged.append(store)
                continue
            try:
                parsed.append((store, parse_config(data), data))
            except NewerVersionError as exc:
                raise NewerVersionError(f"store {store.name}: {exc}") from None
            except FormatError as exc:  # a damaged config: the store is out of use, like a dead one
                failed.append(f"store {store.name}: {exc}")
                damaged.append(store)
        if not parsed:
            raise StoreDown("no store answers with a repository config: " + "; ".join(failed))
        by_repo: dict[str, list[str]] = {}
        for store, config, _ in parsed:
            by_repo.setdefault(config.repository, []).append(store.name)
        if len(by_repo) > 1:
            groups = "; ".join(
                f"repository {rid[:8]}: {', '.join(ns)}" for rid, ns in sorted(by_repo.items())
            )
            raise RepositoryError(
                f"the stores belong to different repositories ({groups}); give only the stores of one"
            )
        # A rotted config may still parse and claim another layout or another store's number:
        # the majority layout wins, and a number claimed twice goes to the claimant whose MAC
        # verifies once the key is known (two that verify are copies of one store: refused).
        layouts = Counter((config.k, config.n) for _, config, _ in parsed).most_common()
        if len(layouts) > 1 and layouts[0][1] == layouts[1][1]:
            (k1, n1), (k2, n2) = layouts[0][0], layouts[1][0]
            raise RepositoryError(
                f"as many stores say the repository is {k1}-of-{n1} as say {k2}-of-{n2}; "
                "some configs are damaged: give more of its stores"
            )
        layout = layouts[0][0]
        first = next(config for _, config, _ in parsed if (config.k, config.n) == layout)
        slots: list[Backend | None] = [None] * first.n
        claims: dict[int, list[tuple[Backend, bytes]]] = {}
        for store, config, data in parsed:
            if (config.k, config.n) != layout:
                failed.append(
                    f"store {store.name}: its config says the repository is {config.k}-of-{config.n}, "
                    f"the others {first.k}-of-{first.n}: damaged, left out"
                )
                damaged.append(store)
                continue
            claims.setdefault(config.store, []).append((store, data))
            slots[config.store] = slots[config.store] or store
        unavailable = {
            number: "no store given answers as this one" + (" (see the warnings above)" if failed else "")
            for number in range(first.n)
            if slots[number] is None
        }
        present = first.n - len(unavailable)
        if present < first.k:
            raise StoreDown(
                f"only {present} of {first.n} stores answer and {first.k} are needed: "
                + "; ".join(failed or ["give every store with --store"])
            )
        if writable and unavailable and not degraded_ok:
            raise StoreDown(
                f"store(s) {', '.join(map(str, sorted(unavailable)))} of {first.n} not available "
                f"({'; '.join(failed) or 'not given with --store'}); writing needs every store. Rerun with "
                f"--degraded-ok to write to the {present} that answer (at least {first.k}) and "
                "run `lifeboat repair` when the store is back"
            )

        unlocked: _Unlocked | None = None
        if master_key is None:
            assert passphrase is not None
            unlocked = _unlock(slots, first.repository, passphrase)
            master_key = unlocked.master_key
        altered: list[Backend] = []
        for number, claimants in sorted(claims.items()):
            verified: list[Backend] = []
            for store, data in claimants:
                try:
                    verify_config(data, master_key)
                    verified.append(store)
                except RepositoryKeyError:
                    altered.append(store)
            if len(verified) > 1:
                raise RepositoryError(
                    f"stores {verified[0].name} and {verified[1].name} both claim to be store {number}; "
                    "one is a copy of the other; give only one of them"
                )
            slots[number] = verified[0] if verified else None
            if not verified:
                unavailable[number] = "its config does not match the repository key"
        if altered and len(altered) == sum(len(claimants) for claimants in claims.values()):
            given = ", ".join(store.name for store in altered)
            raise RepositoryKeyError(
                f"no store's config matches the repository key ({given}): the key belongs to another "
                "repository, or every config was tampered with"
            )
        # A config that fails its MAC (rotted, or altered) is not trusted: its store is left out
        # like one whose config does not parse, and `repair` gives it its config back.
        for holder in altered:
            failed.append(
                f"store {holder.name}: its config does not match the repository key (altered or "
                "damaged); left out until `lifeboat repair` rewrites it"
            )
            damaged.append(holder)
        lost = sorted(number for number in claims if slots[number] is None)
        if lost:
            present = first.n - len(unavailable)
            if present < first.k:
                raise StoreDown(
                    f"only {present} of {first.n} stores answer with a valid config and {first.k} are "
                    "needed: " + "; ".join(failed)
                )
            if writable and not degraded_ok:
                raise StoreDown(
                    f"store(s) {', '.join(map(str, lost))} of {first.n} have an altered or damaged "
                    f"config ({'; '.join(failed)}); writing needs every store. Rerun with --degraded-ok, "
                    "or run `lifeboat repair`"
                )
        repo = cls(
            slots,
            first.for_store(0),
            master_key,
            unavailable=unavailable,
            degraded_ok=degraded_ok,
            cache_dir=cache_dir,
        )
        repo.blank_stores = blank
        if unlocked is not None:
            repo.opened_key_file = (unlocked.key, unlocked.copy)
            repo.damaged_key_files = list(unlocked.damaged)
        repo.damaged_stores = damaged
        repo.store_failures = failed
        if load_index:
            try:
                repo.reload_index()
            except BaseException:
                repo.close()
                raise
        return repo

    def close(self) -> None:
        """Shut down the thread pools (waiting for running work) and sync the stores."""
        if not self._closed:
            self._closed = True
            self._packs.shutdown(wait=True)
            self._cpu.shutdown(wait=True)
            self._io.shutdown(wait=True)
            self.sync()

    def sync(self) -> None:
        """Make every shard written so far durable (stores that batch directory fsyncs do them now)."""
        for store in self.stores:
            if store is not None:
                with suppress(StorageError):
                    sync_backend(store)

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def master_key(self) -> bytes:
        """The 32-byte master key (secret: never print or log it)."""
        return self._key

    @property
    def signing_seed(self) -> bytes:
        """The seed of the repository's Ed25519 manifest key (derived from the master key).

        Record snapshots use it as their default signer, so a statement verifies against the
        repository's public key (:attr:`signing_key`) without a key of its own.
        """
        return bytes(self._signer)

    @property
    def signing_key(self) -> bytes:
        """The repository's Ed25519 public key (it signs manifests)."""
        return bytes(self._signer.verify_key)

    def store_name(self, number: int) -> str:
        """A store's name for messages (``store 2 (local:/mnt/b)``)."""
        store = self.stores[number]
        return f"store {number} ({store.name})" if store is not None else f"store {number} (unavailable)"

    def interrupted_write(self, shards: int) -> bool:
        """Whether an object held by ``shards`` stores is the residue of an interrupted write.

        Fewer than ``k`` shards while every store answers can only come from a write that
        stopped part-way (a crash): nothing refers to such an object, and prune removes it.
        With a store unavailable, missing shards may simply be out of reach, so never.
        Callers that read the shards also require the ones present to be intact.
        """
        return not self.unavailable and shards < self.k

    def live_stores(self) -> list[int]:
        """Store numbers in use (answering and not dropped after a failure)."""
        return [i for i, store in enumerate(self.stores) if store is not None and i not in self.unavailable]

    # --- generic objects --------------------------------------------------------------------

    def _map(self, function: Callable[[int], T], numbers: Iterable[int]) -> dict[int, Future[T]]:
        return {number: self._io.submit(function, number) for number in numbers}

    def _store(self, number: int) -> Backend:
        store = self.stores[number]
        if store is None:
            raise StoreDown(f"store {number} is not available")
        return store

    def list_objects(self, kind: str) -> dict[str, set[int]]:
        """Every object key of ``kind`` (data, index, snapshots, locks) → the stores that hold a shard."""
        if kind not in _KINDS:
            raise InputError(f"unknown object kind {kind!r}; one of {', '.join(_KINDS)}")
        futures = self._map(lambda i: self._store(i).list(f"{kind}/"), self.live_stores())
        found: dict[str, set[int]] = {}
        for number, future in futures.items():
            for key in future.result():
                found.setdefault(key, set()).add(number)
        return found

    def read_shard(self, number: int, key: str) -> bytes:
        """Shard ``number`` of ``key`` as stored (backend errors propagate)."""
        return self._store(number).get(key)

    def read_shards(self, key: str, stores: Iterable[int] | None = None) -> dict[int, bytes | None]:
        """Read shard ``i`` of ``key`` from each store ``i``; None where it is missing or unreadable."""
        numbers = self.live_stores() if stores is None else list(stores)

        def read(number: int) -> bytes | None:
            try:
                return self._store(number).get(key)
            except StorageError:
                return None

        futures = self._map(read, numbers)
        return {number: future.result() for number, future in futures.items()}

    def write_shard(self, number: int, key: str, data: bytes) -> None:
        """Write one shard to one store (for repair; backend errors propagate)."""
        self._store(number).put(key, data)

    def get_object(self, key: str, *, as_buffer: bool = False) -> bytes:
        """Decode ``key`` from its shards: the data shards first, the others only if needed.

        The shards are dropped as soon as the object is decrypted. ``as_buffer=True`` may
        return a ``bytearray`` (saving a copy of an object stored uncompressed).
        """
        object_id = _id_of_key(key)
        live = self.live_stores()
        if len(live) < self.k:
            raise StoreDown(f"only {len(live)} stores are available and {self.k} are needed to read {key}")
        first, rest = live[: self.k], live[self.k :]
        slots = list_slots(self.read_shards(key, first), self.n)
        try:
            return codec.decode(self._key, slots, object_id=object_id, consume=True, as_buffer=as_buffer)
        except ShardError:
            if not rest:
                raise
        shards: dict[int, bytes | None] = {
            number: shard for number, shard in enumerate(slots) if shard is not None
        }
        del slots
        shards.update(self.read_shards(key, rest))
        try:
            return codec.decode(
                self._key, list_slots(shards, self.n), object_id=object_id, consume=True, as_buffer=as_buffer
            )
        except ShardError as exc:
            raise ShardError(f"{key}: {exc}") from None

    def put_object(self, key: str, object_id: bytes, plaintext: bytes | memoryview) -> tuple[int, int]:
        """Encode and write an object to every live store; return (missing-shard mask, bytes written).

        A store that fails is an error (:class:`StoreDown` naming it) unless the repository
        was opened with ``degraded_ok``: then it is dropped for the rest of the session, and
        the write succeeds while at least ``k`` stores took their shard.
        """
        shards = codec.encode(self._key, object_id, bytes(plaintext), self.params, level=ZSTD_LEVEL)
        return self._put_shards(key, shards)

    def _put_shards(self, key: str, shards: list[bytes]) -> tuple[int, int]:
        return self._shards_written(key, shards, self._start_put_shards(key, shards))

    def _start_put_shards(self, key: str, shards: list[bytes]) -> dict[int, Future[None]]:
        """Hand one shard to each live store's write on the I/O pool; the futures, by store."""
        return self._map(lambda i: self._store(i).put(key, shards[i]), self.live_stores())

    def _shards_written(
        self, key: str, shards: list[bytes], futures: Mapping[int, Future[None]]
    ) -> tuple[int, int]:
        """Wait for the writes of one object's shards; (missing-shard mask, bytes written), or raise."""
        missing = 0
        written = 0
        failures: list[str] = []
        for number in range(self.n):
            future = futures.get(number)
            if future is None:
                missing |= 1 << number
                continue
            try:
                future.result()
                written += len(shards[number])
            except StorageError as exc:
                missing |= 1 << number
                failures.append(f"{self.store_name(number)}: {exc}")
                if self.degraded_ok:  # otherwise the store stays in use and the next write fails too
                    with self._state_lock:
                        self.unavailable[number] = f"failed while writing {key}: {exc}"
        if failures and not self.degraded_ok:
            raise StoreDown(
                f"writing {key} failed on " + "; ".join(failures) + ". Nothing refers to the partial "
                f"data yet. Rerun with --degraded-ok to write to the stores that answer (at least "
                f"{self.k}) and run `lifeboat repair` later"
            )
        good = self.n - bin(missing).count("1")
        if good < self.k:
            raise StoreDown(
                f"writing {key}: only {good} of {self.n} stores took their shard and {self.k} are "
                "needed; " + ("; ".join(failures) or "too many stores unavailable")
            )
        return missing, written

    def delete_object(self, key: str) -> None:
        """Delete every shard of ``key`` from the live stores (missing shards are fine)."""
        futures = self._map(lambda i: self._store(i).delete(key), self.live_stores())
        failures = []
        for number, future in futures.items():
            try:
                future.result()
            except StorageError as exc:
                failures.append(f"{self.store_name(number)}: {exc}")
        if failures:
            raise StoreDown(f"deleting {key} failed on " + "; ".join(failures))

    # --- blobs --------------------------------------------------------------------------------

    def blob_id(self, data: bytes | bytearray | memoryview, *, parallel: bool = True) -> bytes:
        """The keyed content id of a blob (and of any object stored under its content).

        ``parallel=False`` hashes on the calling thread only (the pack writer's threads already
        share the cores); the id is the same.
        """
        return codec.content_id(self._key, data, parallel=parallel)

    def has_blob(self, blob_id: bytes) -> bool:
        return blob_id in self.index

    def load_pack(self, pack_id: bytes) -> dict[bytes, bytes]:
        """Every blob of a pack, each checked against its content id (raises ShardError/RepositoryError)."""
        with self._state_lock:
            cached = self._pack_cache.get(pack_id)
            if cached is not None:
                self._pack_cache.move_to_end(pack_id)
                return cached[0]
        blobs = {blob_id: bytes(data) for blob_id, data in self.read_pack(pack_id).items()}
        size = sum(len(data) for data in blobs.values())
        with self._state_lock:
            if pack_id not in self._pack_cache:
                self._pack_cache[pack_id] = (blobs, size)
                self._pack_cache_bytes += size
            while len(self._pack_cache) > 1 and self._pack_cache_bytes > PACK_CACHE_BYTES:
                self._pack_cache_bytes -= self._pack_cache.popitem(last=False)[1][1]
        return blobs

    def read_pack(self, pack_id: bytes) -> dict[bytes, memoryview]:
        """Every blob of a pack as a view of its decoded plaintext, each checked against its id.

        Nothing is copied or cached (a restore writes each pack's blobs once and drops them);
        the views keep the plaintext alive. Raises ShardError or RepositoryError.
        """
        plaintext = self.get_object(_object_key("data", pack_id), as_buffer=True)
        view = memoryview(plaintext)
        blobs: dict[bytes, memoryview] = {}
        for blob in parse_pack(view):
            data = view[blob.offset : blob.offset + blob.length]
            # A state node's id is its own Merkle id: the snapshot layer checks it when it reads
            # a tree (prolly's reader); `prolly.scan` trusts the authenticated pack instead.
            if blob.type != BLOB_STATE and self.blob_id(data, parallel=False) != blob.id:
                raise RepositoryError(
                    f"pack {pack_id.hex()[:16]}: blob {blob.id.hex()[:16]} does not match its id; "
                    "the pack is damaged (run `lifeboat check --read-data`)"
                )
            blobs[blob.id] = data
        return blobs

    def pack_entry(self, pack_id: bytes) -> tuple[BlobEntry, ...]:
        """The blobs of a pack as its own table lists them (for rebuilding an index).

        The pack is decoded from any ``k`` good shards and authenticated, and must match its
        content id; its table then says the type, offset, length and id of every blob.
        Raises :class:`ShardError` or :class:`RepositoryError` when it cannot be read.
        """
        plaintext = self.get_object(_object_key("data", pack_id))
        if self.blob_id(plaintext) != pack_id:
            raise FormatError(f"pack {pack_id.hex()[:16]} does not match its id")
        return tuple(
            BlobEntry(blob.type, blob.id, blob.offset, blob.length) for blob in parse_pack(plaintext)
        )

    def load_blob(self, blob_id: bytes) -> bytes:
        """One blob, read through its pack (recent packs are kept decoded, :data:`PACK_CACHE_BYTES`)."""
        location = self.index.lookup(blob_id)
        if location is None:
            raise RepositoryError(
                f"blob {blob_id.hex()[:16]} is in no index; the repository is damaged (run `lifeboat check`)"
            )
        blobs = self.load_pack(location.pack)
        data = blobs.get(blob_id)
        if data is None:
            raise RepositoryError(
                f"blob {blob_id.hex()[:16]} is not in pack {location.pack.hex()[:16]} as the index says; "
                "run `lifeboat check --read-data`"
            )
        return data

    def writer(
        self,
        *,
        index_every: int = INDEX_EVERY_PACKS,
        dedup: bool = True,
        state_pack_size: int = STATE_PACK_SIZE,
    ) -> PackWriter:
        """A :class:`PackWriter` for new blobs (use it as a context manager).

        Packs of state nodes are sealed at about ``state_pack_size`` (at most the config's
        ``pack_size``), packs of other blobs at the config's ``pack_size``.
        """
        return PackWriter(self, index_every=index_every, dedup=dedup, state_pack_size=state_pack_size)

    # --- indexes --------------------------------------------------------------------------------

    def reload_index(self) -> None:
        """Read every index object (through the local cache when there is one)."""
        listing = self.list_objects("index")
        keys = sorted(listing)
        index = Index()

        def load(key: str) -> tuple[bytes, list[PackTable]] | str:
            try:
                index_id = _id_of_key(key)
                data = self._cached_index(index_id)
                if data is None:
                    data = self.get_object(key)
                    if self.blob_id(data) != index_id:
                        raise FormatError("it does not match its id")
                    self._cache_index(index_id, data)
                return index_id, decode_index_tables(data)
            except (ShardError, RepositoryError) as exc:
                return str(exc)

        bad: dict[str, str] = {}
        incomplete: set[str] = set()
        for key, result in zip(keys, self._cpu.map(load, keys), strict=True):
            if isinstance(result, str):
                bad[key] = result
                if self.interrupted_write(len(listing[key])):
                    incomplete.add(key)
            else:
                index.add_tables(*result)
        self.index = index
        #: Index objects that could not be read: key → reason. Their packs look unindexed.
        self.bad_indexes = bad
        #: The subset of :attr:`bad_indexes` with fewer than ``k`` shards in stores that all
        #: answer: the residue of a write that was interrupted (no snapshot can depend on them).
        self.incomplete_indexes = incomplete

    def _cached_index(self, index_id: bytes) -> bytes | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / "index" / index_id.hex()
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if self.blob_id(data) != index_id:
            path.unlink(missing_ok=True)
            return None
        return data

    def _cache_index(self, index_id: bytes, data: bytes) -> None:
        if self.cache_dir is None:
            return
        try:
            directory = self.cache_dir / "index"
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(directory / index_id.hex(), data, overwrite=True)
        except OSError:
            pass  # the cache is an optimisation; a read-only or full cache dir must not fail a backup

    def write_index(self, packs: Sequence[PackEntry | PackTable]) -> bytes:
        """Store an index object of ``packs``, add it to the in-memory index, return its id.

        A pack is a :class:`PackEntry`, or (as the pack writer keeps them, compact) a
        :data:`PackTable` with its blob table encoded.
        """
        # A PackEntry's table as encode_index writes it (which checks every field).
        skip = INDEX_HEADER_BYTES + INDEX_PACK_BYTES
        tables = [
            (p.pack, p.missing, encode_index([p])[skip:]) if isinstance(p, PackEntry) else p for p in packs
        ]
        data = encode_index_tables(tables)
        index_id = self.blob_id(data)
        self.put_object(_object_key("index", index_id), index_id, data)
        self._cache_index(index_id, data)
        self.index.add_tables(index_id, tables)
        return index_id

    def delete_index(self, index_id: bytes) -> None:
        """Delete an index object (prune: only after a replacement index is stored)."""
        self.delete_object(_object_key("index", index_id))
        if self.cache_dir is not None:
            (self.cache_dir / "index" / index_id.hex()).unlink(missing_ok=True)

    def delete_pack(self, pack_id: bytes) -> None:
        self.delete_object(_object_key("data", pack_id))

    @staticmethod
    def pack_key(pack_id: bytes) -> str:
        return _object_key("data", pack_id)

    @staticmethod
    def index_key(index_id: bytes) -> str:
        return _object_key("index", index_id)

    @staticmethod
    def manifest_key(manifest_id: bytes) -> str:
        return _object_key("snapshots", manifest_id)

    @staticmethod
    def id_of_key(key: str) -> bytes:
        return _id_of_key(key)

    # --- manifests ------------------------------------------------------------------------------

    def put_manifest(self, payload: Mapping[str, Any]) -> Manifest:
        """Sign and store a manifest (written last: after every blob it names is indexed)."""
        body = dict(payload)
        for reserved in ("format", "version", "signature"):
            body.pop(reserved, None)
        body["format"] = MANIFEST_FORMAT
        body["version"] = MANIFEST_VERSION
        body.setdefault("time", now_rfc3339())
        parse_time(str(body["time"]))
        signature = self._signer.sign(canonical_json(body)).signature
        body["signature"] = {
            "algorithm": "ed25519",
            "key": bytes(self._signer.verify_key).hex(),
            "value": signature.hex(),
        }
        data = canonical_json(body)
        manifest_id = self.blob_id(data)
        self.put_object(_object_key("snapshots", manifest_id), manifest_id, data)
        return Manifest(manifest_id, body)

    def verify_manifest(self, manifest_id: bytes, data: bytes) -> Manifest:
        """The manifest in ``data`` (a decoded ``snapshots/`` object) after every check: id, format, signature."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise FormatError(f"manifest is {len(data)} bytes, over the limit")
        if self.blob_id(data) != manifest_id:
            raise FormatError("manifest does not match its id")
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"manifest is not JSON: {exc}") from None
        if not isinstance(body, dict) or body.get("format") != MANIFEST_FORMAT:
            raise FormatError("not a Lifeboat manifest")
        version = body.get("version")
        if version != MANIFEST_VERSION:
            raise FormatError(
                f"manifest format version {version!r}; this Lifeboat reads version {MANIFEST_VERSION}"
                + (" (upgrade Lifeboat)" if isinstance(version, int) and version > MANIFEST_VERSION else "")
            )
        signature = body.pop("signature", None)
        if not isinstance(signature, dict) or signature.get("algorithm") != "ed25519":
            raise FormatError("manifest has no Ed25519 signature")
        try:
            value = bytes.fromhex(str(signature.get("value")))
            self._signer.verify_key.verify(canonical_json(body), value)
        except (ValueError, nacl.exceptions.BadSignatureError):
            raise FormatError("manifest signature does not verify with this repository's key") from None
        parse_time(str(body.get("time")))
        body["signature"] = signature
        return Manifest(manifest_id, body)

    def load_manifest(self, manifest_id: bytes) -> Manifest:
        key = _object_key("snapshots", manifest_id)
        return self.verify_manifest(manifest_id, self.get_object(key))

    def manifests(self, kind: str | None = None) -> list[Manifest]:
        """Every readable, verified manifest, oldest first; the others go to :attr:`bad_manifests`
        (or :attr:`incomplete_manifests`, for the residue of an interrupted write).

        ``kind`` keeps only the manifests whose payload has that ``kind`` (``"files"`` for file
        snapshots, ``"state"`` and ``"state-journal"`` for record snapshots).
        """
        listing = self.list_objects("snapshots")
        keys = sorted(listing)
        self.bad_manifests = {}
        self.incomplete_manifests = {}

        def load(key: str) -> Manifest | str:
            try:
                return self.verify_manifest(_id_of_key(key), self.get_object(key))
            except (ShardError, RepositoryError) as exc:
                return str(exc)

        found: list[Manifest] = []
        for key, result in zip(keys, self._cpu.map(load, keys), strict=True):
            if isinstance(result, Manifest):
                found.append(result)
            elif self.interrupted_write(len(listing[key])):
                self.incomplete_manifests[key] = result
            else:
                self.bad_manifests[key] = result
        found.sort(key=lambda m: (m.time, m.id))
        if kind is not None:
            found = [m for m in found if m.payload.get("kind") == kind]
        return found

    def find_manifest(self, ref: str, kind: str | None = None) -> Manifest:
        """A manifest (of ``kind``, if given) by id prefix (at least 4 hex digits) or ``latest``."""
        everything = self.manifests(kind)
        if ref == "latest":
            if self.bad_manifests:
                # an unreadable manifest may well be the newest one: never pass an older one off
                # as the latest without the user saying so
                count = len(self.bad_manifests)
                key, why = next(iter(self.bad_manifests.items()))
                damage = f"{count} snapshot manifest(s) cannot be read (e.g. {key}: {why})"
                if not everything:
                    raise RepositoryError(
                        f"no readable snapshot: {damage}; the newest snapshots are unreadable, not "
                        "absent. Run `lifeboat check`; `lifeboat repair` may rebuild them"
                    )
                newest = everything[-1]
                raise RepositoryError(
                    f"cannot tell which snapshot is the latest: {damage}, and it may be newer than "
                    f"the newest readable one, {newest.short_id} of {newest.payload.get('time')}. "
                    f"Give that id to use it anyway, or run `lifeboat check`"
                )
            if not everything:
                raise InputError("the repository has no snapshots yet")
            return everything[-1]
        ref = ref.lower()
        if len(ref) < 4 or any(c not in "0123456789abcdef" for c in ref):
            raise InputError(f"snapshot {ref!r}: give 'latest' or at least 4 hex digits of its id")
        matches = [m for m in everything if m.id.hex().startswith(ref)]
        if not matches:
            raise InputError(f"no snapshot with id {ref!r}; `lifeboat snapshots` lists them")
        if len(matches) > 1:
            raise InputError(f"snapshot id {ref!r} is ambiguous ({len(matches)} match); give more digits")
        return matches[0]

    def delete_manifest(self, manifest_id: bytes) -> None:
        self.delete_object(_object_key("snapshots", manifest_id))

    # --- locks ----------------------------------------------------------------------------------

    def locks(self) -> list[LockInfo]:
        """Every lock object, with whether it is stale.

        Stale: expired; or its process is gone on this host; or fewer than ``k`` of its shards
        exist while every store answers (a write interrupted by a crash: a lock whose write is
        still going on belongs to a locker that reads the others only after writing, so it will
        see ours). A lock that has shards enough but cannot be read is *not* stale: it might be
        live, so it blocks exclusive lockers until ``repo unlock --all``. A lock that vanished
        between listing and reading was replaced by its refresh, so the listing is read again.
        """
        host = socket.gethostname()
        now = datetime.now(UTC)

        def load(key: str, holders: int) -> LockInfo | None:
            try:
                body = json.loads(self.get_object(key))
                if not isinstance(body, dict) or body.get("format") != LOCK_FORMAT:
                    raise FormatError("not a lock object")
                if body.get("version") != LOCK_VERSION:
                    raise FormatError(f"lock version {body.get('version')!r}")
                expires = parse_time(str(body["expires"]))
                info = LockInfo(
                    key=key,
                    exclusive=bool(body["exclusive"]),
                    operation=str(body["operation"]),
                    hostname=str(body["hostname"]),
                    pid=int(body["pid"]),
                    created=str(body["created"]),
                    expires=str(body["expires"]),
                    stale=False,
                )
            except (ShardError, RepositoryError, ValueError, KeyError, TypeError) as exc:
                present = sum(1 for data in self.read_shards(key).values() if data is not None)
                if present == 0:
                    return None  # deleted since it was listed
                partial = self.interrupted_write(max(present, holders))
                reason = "incomplete: left by an interrupted write" if partial else f"unreadable: {exc}"
                return LockInfo(key, True, "?", "?", 0, "?", "?", stale=partial, reason=reason)
            if expires < now:
                return LockInfo(**{**info.__dict__, "stale": True, "reason": "expired"})
            if info.hostname == host and not _pid_alive(info.pid):
                return LockInfo(**{**info.__dict__, "stale": True, "reason": "its process is gone"})
            return info

        found: list[LockInfo | None] = []
        for _ in range(5):
            listing = self.list_objects("locks")
            keys = sorted(listing)
            found = list(self._cpu.map(load, keys, [len(listing[key]) for key in keys]))
            if all(info is not None for info in found):
                break
        return [info for info in found if info is not None]

    def remove_locks(self, *, stale_only: bool = True) -> list[LockInfo]:
        """Delete stale locks (or every lock); return the ones removed."""
        removed = [lock for lock in self.locks() if lock.stale or not stale_only]
        for lock in removed:
            self.delete_object(lock.key)
        return removed

    @contextmanager
    def lock(self, *, exclusive: bool, operation: str) -> Iterator[None]:
        """Hold a shared or exclusive lock for the duration of the ``with`` block.

        The lock is written first, then the other locks are read: if one conflicts (an
        exclusive one, or any live one when this one is exclusive), this lock is removed and
        :class:`LockedError` names the holder. A daemon thread refreshes the lock's expiry.
        """
        created = now_rfc3339()

        def write() -> str:
            lock_id = secrets.token_bytes(32)
            key = _object_key("locks", lock_id)
            expires = (datetime.now(UTC) + timedelta(seconds=self.lock_ttl)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = {
                "format": LOCK_FORMAT,
                "version": LOCK_VERSION,
                "exclusive": exclusive,
                "operation": operation,
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "created": created,
                "expires": expires,
            }
            self.put_object(key, lock_id, canonical_json(body))
            return key

        current = write()
        try:
            for other in self.locks():
                if other.key == current or other.stale:
                    continue
                if exclusive or other.exclusive:
                    raise LockedError(
                        f"the repository is locked: {other.describe()}. Wait for it to finish; if "
                        "that process is gone, `lifeboat repo unlock` removes stale locks "
                        "(`--all` removes every lock)"
                    )
        except BaseException:
            self._quietly_delete(current)
            raise
        stop = threading.Event()

        def refresh() -> None:
            # A lock object is never rewritten in place (a reader could meet a mix of old and
            # new shards): the refreshed lock is a new object, complete before the old one goes.
            nonlocal current
            while not stop.wait(self.lock_refresh):
                try:
                    fresh = write()
                except StorageError:
                    continue
                old, current = current, fresh
                self._quietly_delete(old)

        refresher = threading.Thread(target=refresh, name="lifeboat-lock-refresh", daemon=True)
        refresher.start()
        try:
            yield
        finally:
            stop.set()
            refresher.join()
            self._quietly_delete(current)

    def _quietly_delete(self, key: str) -> None:
        with suppress(StorageError):  # an orphaned lock expires; `repo unlock` removes it
            self.delete_object(key)

    # --- keys -----------------------------------------------------------------------------------

    def add_key(self, passphrase: str, kdf: KdfParams = DEFAULT_KDF) -> str:
        """Wrap the master key under another passphrase, in every live store; return the key name."""
        if not passphrase:
            raise InputError("the new passphrase is empty")
        name, data = wrap_master_key(self._key, passphrase, self.id, kdf=kdf, created=now_rfc3339())
        futures = self._map(lambda i: self._store(i).put(f"keys/{name}", data), self.live_stores())
        for future in futures.values():
            future.result()
        return name


def list_slots(shards: Mapping[int, bytes | None], n: int) -> list[bytes | None]:
    """Shards by store number as the sequence the codec takes (None where missing)."""
    return [shards.get(number) for number in range(n)]


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class KeyFileDamage:
    """A copy of a key file in one store that is not the copy that opened the repository."""

    store: int
    key: str
    reason: str


@dataclass(frozen=True)
class _Unlocked:
    master_key: bytes
    #: The key file that opened, and the exact bytes of the copy that authenticated.
    key: str
    copy: bytes
    damaged: tuple[KeyFileDamage, ...]


def _unlock(stores: Sequence[Backend | None], repository: str, passphrase: str) -> _Unlocked:
    """Try the passphrase against every copy of every key file found in any store.

    Every store holds a copy of every key file, and one damaged copy (flipped bytes, truncated,
    unreadable) must not hide the good ones: each distinct copy is tried, the most common first,
    so the usual case costs one Argon2id run per key file. Only when every well-formed copy
    fails to authenticate is the passphrase wrong. The copies of the key file that opened that
    differ from the one that authenticated, and copies that could not be read, are returned as
    damaged (``check`` reports them and ``repair`` rewrites them from the good copy).
    """
    # key -> copy bytes -> the stores holding that copy
    copies: dict[str, dict[bytes, list[int]]] = {}
    unreadable: list[KeyFileDamage] = []
    for number, store in enumerate(stores):
        if store is None:
            continue
        try:
            names = store.list("keys/")
        except StorageError:
            continue
        for key in names:
            try:
                data = store.get(key)
            except StorageError as exc:
                unreadable.append(KeyFileDamage(number, key, f"unreadable ({exc})"))
                continue
            copies.setdefault(key, {}).setdefault(data, []).append(number)
    if not copies:
        raise RepositoryKeyError(
            f"repository {repository[:8]} has no readable key file in any store; "
            "recover the key with `lifeboat repo key recover`"
        )
    malformed: list[str] = []
    authenticated_any = False
    for key, versions in sorted(copies.items()):
        ordered = sorted(versions, key=lambda data: (-len(versions[data]), min(versions[data])))
        for data in ordered:
            if len(data) > MAX_KEY_FILE_BYTES:
                malformed.append(
                    f"{key} in store(s) {_numbers(versions[data])}: over {MAX_KEY_FILE_BYTES} bytes"
                )
                continue
            try:
                master_key = unwrap_master_key(data, passphrase, repository=repository)
            except RepositoryKeyError:
                authenticated_any = True
                continue
            except RepositoryError as exc:  # FormatError, or a key file of another repository
                malformed.append(f"{key} in store(s) {_numbers(versions[data])}: {exc}")
                continue
            damaged = [item for item in unreadable if item.key == key]
            for other, holders in versions.items():
                if other != data:
                    damaged.extend(
                        KeyFileDamage(store, key, "damaged (it differs from the copy that opens)")
                        for store in holders
                    )
            return _Unlocked(master_key, key, data, tuple(sorted(damaged, key=lambda d: d.store)))
    detail = f" (damaged copies: {'; '.join(malformed)})" if malformed else ""
    if not authenticated_any:
        raise RepositoryKeyError(
            f"repository {repository[:8]} has no well-formed key file in any store{detail}; "
            "recover the key with `lifeboat repo key recover`"
        )
    raise RepositoryKeyError(
        f"wrong passphrase for repository {repository[:8]}: no key file opens with it{detail}"
    )


def _numbers(stores: Iterable[int]) -> str:
    return ", ".join(str(number) for number in sorted(stores))


class PackWriter:
    """Gathers new blobs into packs, encodes and stores them on worker threads, then indexes them.

    ``add_blob`` hashes on the caller's thread and returns at once for a known blob; a new one
    is copied straight into the open pack (:class:`PackBuilder`), so the caller may reuse its
    buffer. A pack is sealed when it reaches its size (the config's ``pack_size``; smaller for
    state nodes, ``state_pack_size``) and handed to a pack
    worker (table, encode) which hands its shards to the I/O pool; at most
    :data:`PACKS_IN_FLIGHT` packs' worth of bytes wait, are being encoded or are being written while the
    callers fill the next, so memory stays within a few packs' worth. Index
    objects are written every ``index_every`` packs and at :meth:`flush`; a blob is only in a
    stored index after its pack's shards are stored, so a crash never indexes missing data.
    """

    def __init__(
        self, repo: Repository, *, index_every: int, dedup: bool, state_pack_size: int = STATE_PACK_SIZE
    ) -> None:
        if state_pack_size < 1:
            raise InputError(f"a pack size must be positive, not {state_pack_size}")
        self.repo = repo
        #: The size at which a pack of each blob type is sealed.
        self.pack_sizes = dict.fromkeys(BLOB_TYPES, repo.config.pack_size)
        self.pack_sizes[BLOB_STATE] = min(state_pack_size, repo.config.pack_size)
        self.stats = WriterStats()
        self._dedup = dedup
        self._index_every = index_every
        # One open pack per blob type: its plaintext so far and the index entries of its blobs.
        # (Each blob's index entry is kept encoded, 41 bytes: a snapshot queues one per node.)
        self._open: dict[int, tuple[PackBuilder, bytearray]] = {
            kind: (PackBuilder(), bytearray()) for kind in sorted(BLOB_TYPES)
        }
        self._queued: set[bytes] = set()
        self._in_flight: list[Future[PackTable]] = []
        #: Bytes of the packs sealed and not yet stored, and the condition that waits on it.
        self._bytes_in_flight = 0
        self._budget = threading.Condition()
        self._budget_bytes = PACKS_IN_FLIGHT * (repo.config.pack_size + repo.config.chunker.max_size)
        self._done: list[PackTable] = []
        self._error: BaseException | None = None
        #: Held while a blob is checked and copied into an open pack, and while packs are sealed.
        self._lock = threading.RLock()

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self._drain(raise_errors=False)

    def known(self, blob_id: bytes) -> bool:
        """True if the blob is already stored, indexed, or queued in this writer."""
        return blob_id in self._queued or (self._dedup and blob_id in self.repo.index)

    def add_blob(
        self, blob_type: int, data: bytes | memoryview, blob_id: bytes | None = None
    ) -> tuple[bytes, bool]:
        """Add a blob; return (its id, True if it will be stored now, False if already known).

        Safe to call from several threads at once (a backup reads several files at a time): the
        id is computed on the caller's thread, then the dedup check and the copy into the open
        pack happen under the writer's lock, so a blob added twice at once is stored once.
        """
        if blob_type not in BLOB_TYPES:
            raise InputError(f"unknown blob type {blob_type}")
        if blob_type == BLOB_STATE and blob_id is None:
            raise InputError("a state node is stored under its own node id; pass it")
        if self._error is not None:
            raise self._error
        if blob_id is None:
            blob_id = self.repo.blob_id(data, parallel=False)
        size = len(memoryview(data).cast("B"))
        with self._lock:
            if self.known(blob_id):
                self.stats.blobs_known += 1
                return blob_id, False
            pack_size = self.pack_sizes[blob_type]
            if size >= pack_size:
                self._seal(blob_type)  # a blob of pack size gets a pack of its own
            builder, entries = self._open[blob_type]
            # The one copy of the blob: straight into the open pack (the caller may reuse ``data``).
            offset = builder.add(blob_type, blob_id, data)
            entries += index_entry(blob_type, blob_id, offset, size)
            self._queued.add(blob_id)
            self.stats.blobs_new += 1
            self.stats.bytes_new_raw += size
            if len(builder) >= pack_size:
                self._seal(blob_type)
        return blob_id, True

    def _seal(self, blob_type: int) -> None:
        builder, entries = self._open[blob_type]
        if not entries:
            return
        self._open[blob_type] = (PackBuilder(), bytearray())
        self._reap()
        if self._error is not None:
            raise self._error
        # The pack's bytes are counted here and given back once it is stored (or has failed):
        # the callers never run more than PACKS_IN_FLIGHT packs' worth ahead of the stores (a
        # pack larger than that goes alone).
        size = len(builder)
        with self._budget:
            while self._bytes_in_flight and self._bytes_in_flight + size > self._budget_bytes:
                self._budget.wait()
            self._bytes_in_flight += size
        stored: Future[PackTable] = Future()
        stored.add_done_callback(lambda _: self._give_back(size))
        try:
            self.repo._packs.submit(self._store_pack, builder, entries, stored)
        except BaseException as exc:
            stored.set_exception(exc)
            raise
        self._in_flight.append(stored)

    def _give_back(self, size: int) -> None:
        with self._budget:
            self._bytes_in_flight -= size
            self._budget.notify_all()

    def _store_pack(self, builder: PackBuilder, entries: bytearray, stored: Future[PackTable]) -> None:
        """Encode a pack (on a pack worker), then hand its shards to the I/O pool and return.

        ``stored`` is resolved once every shard write has ended (or with the error); the worker
        goes back to the next pack instead of waiting for the stores.
        """
        try:
            plaintext = builder.finish()
            pack_id = self.repo.blob_id(plaintext, parallel=False)
            shards = codec.encode(
                self.repo.master_key,
                pack_id,
                plaintext,
                self.repo.params,
                level=ZSTD_LEVEL,
                consume=True,
                parallel=False,
            )
            del plaintext
            key = _object_key("data", pack_id)
            futures = self.repo._start_put_shards(key, shards)
        except BaseException as exc:
            stored.set_exception(exc)
            return
        pending = [len(futures)]
        lock = threading.Lock()

        def written(_: Future[None]) -> None:
            with lock:
                pending[0] -= 1
                if pending[0]:
                    return
            try:
                missing, size = self.repo._shards_written(key, shards, futures)
            except BaseException as exc:
                stored.set_exception(exc)
                return
            finally:
                # The futures refer to this callback, which refers to them: drop the shards now
                # rather than when the cyclic garbage collector gets to them.
                shards.clear()
                futures.clear()
            with self.repo._state_lock:
                self.stats.bytes_stored += size
                self.stats.packs_written += 1
                self.stats.missing_mask |= missing
            stored.set_result((pack_id, missing, bytes(entries)))

        if not futures:
            pending[0] = 1
            written(Future())
            return
        for future in futures.values():
            future.add_done_callback(written)

    def _reap(self) -> None:
        """Collect finished packs; write an index every ``index_every`` packs."""
        still: list[Future[PackTable]] = []
        for future in self._in_flight:
            if future.done():
                self._collect(future)
            else:
                still.append(future)
        self._in_flight = still
        if len(self._done) >= self._index_every:
            self._write_index()

    def _collect(self, future: Future[PackTable]) -> None:
        try:
            self._done.append(future.result())
        except BaseException as exc:
            if self._error is None:
                self._error = exc

    def _drain(self, *, raise_errors: bool) -> None:
        for future in self._in_flight:
            self._collect(future)
        self._in_flight = []
        if raise_errors and self._error is not None:
            raise self._error

    def _write_index(self) -> None:
        if self._done:
            self.repo.write_index(self._done)
            self.stats.indexes_written += 1
            if self._dedup:
                # Indexed now, so known through the repository's index: the writer's own set of
                # ids only holds what is not indexed yet.
                for _, _, table in self._done:
                    for blob_id in _blob_ids(table):
                        self._queued.discard(blob_id)
            self._done = []

    def flush(self) -> None:
        """Seal the open packs, wait for every pack to be stored, and index them."""
        with self._lock:
            if self._error is not None:
                self._drain(raise_errors=False)
                raise self._error
            for blob_type in sorted(BLOB_TYPES):
                self._seal(blob_type)
            self._drain(raise_errors=True)
            self._write_index()


def _blob_ids(table: bytes) -> Iterator[bytes]:
    """The blob ids in an index blob table."""
    for at in range(INDEX_BLOB_BYTES - 32, len(table), INDEX_BLOB_BYTES):
        yield table[at : at + 32]
