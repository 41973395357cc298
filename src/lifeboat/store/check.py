"""``check``: how healthy a repository is, store by store and object by object.

A check has two depths. The structural check (always) reads what is small and looks at what is
large only through the stores' listings and object sizes:

* the ``config`` of every store (this repository, the same ``k``, ``n`` and settings, its own
  store number, a MAC that verifies under the repository key) and the key files (present and
  identical in every store);
* every index and manifest object, shard by shard (they are small): each shard is verified, the
  object decoded, its content id checked and its plaintext parsed; a manifest's signature is
  verified;
* every pack the index names: which stores list a shard of it, and whether the shard sizes agree
  with one another and with the pack's length as the index describes it (``stat``, no reads);
  a pack with fewer than ``k`` plausible shards is *lost*;
* packs that no index names (an interrupted backup or prune leaves them; ``prune`` removes them), stale
  locks, and the blobs the snapshot layer says it needs (``referenced_blobs``).

``read_data=True`` also reads every shard of every pack from every store, verifies each one,
decodes the pack, parses it, compares it with the index and checks the content id of every blob
in it. Packs go through a small thread pool, two at a time, so memory stays bounded while the
codec's GIL-free work (BLAKE3, zfec, AES-GCM, zstd) overlaps with the reads.

The verdict (:attr:`CheckReport.status`) is ``healthy``; ``degraded`` when every object is still
decodable but shards are missing or damaged, or a store is unreachable (``repair`` heals what it
can reach, ``repo replace-store`` a store that is gone); or ``error`` when something is lost,
malformed or inconsistent.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar

from lifeboat.errors import LifeboatError, StorageError
from lifeboat.store import codec
from lifeboat.store.backends.base import Backend, ObjectNotFound, sync_backend
from lifeboat.store.codec import CodecParams, ShardError, ShardInfo
from lifeboat.store.config import CONFIG_KEY, parse_config, verify_config
from lifeboat.store.index import decode_index
from lifeboat.store.keyfile import MAX_KEY_FILE_BYTES, parse_key_file
from lifeboat.store.packs import BLOB_STATE, PACK_ENTRY_BYTES, PACK_TRAILER_BYTES, parse_pack

if TYPE_CHECKING:
    from lifeboat.store.repository import Repository

__all__ = [
    "CODEC_KINDS",
    "CheckReport",
    "ObjectHealth",
    "Progress",
    "ShardSurvey",
    "StoreHealth",
    "StoreReader",
    "best_key_file",
    "bounded_map",
    "check_repository",
    "config_problem",
    "good_key_file",
    "object_id_of",
    "object_key",
    "survey_shards",
]

#: ``progress(phase, done, total)``: called as a check or a repair goes along.
Progress = Callable[[str, int, int], None]

ObjectKind = Literal["data", "index", "snapshots", "config", "keys"]
HealthStatus = Literal["healthy", "degraded", "lost"]

#: The kinds of erasure-coded objects that check and repair look after (locks are transient).
CODEC_KINDS: Final = ("data", "index", "snapshots")
_TOP_LEVEL: Final = frozenset({CONFIG_KEY, "keys", "data", "index", "snapshots", "locks"})
#: How many ids a message lists before it says "and N more".
_SHOWN: Final = 5
_TAG_BYTES: Final = 16
#: Packs decoded at once by ``check --read-data`` and ``repair`` (each costs about 3 packs of memory).
PACKS_IN_FLIGHT: Final = 2
#: Shards whose size is asked for at once by the structural check.
_STATS_IN_FLIGHT: Final = 32

T = TypeVar("T")
R = TypeVar("R")
#: A blob as a pack's table or an index entry describes it: (type, offset, length, id).
_Blob: TypeAlias = tuple[int, int, int, bytes]


# --- reports --------------------------------------------------------------------------------


@dataclass
class ObjectHealth:
    """The shards of one object (or the copies of a config or key file), store by store.

    ``good`` are the stores holding a usable shard; ``missing`` those holding none, or that are
    unreachable; ``corrupt`` those holding a damaged or misplaced one, with the reason. Without
    ``read_data`` a pack's shard counts as good when it is listed and its size is plausible.
    """

    key: str
    kind: ObjectKind
    good: set[int] = field(default_factory=set)
    missing: set[int] = field(default_factory=set)
    corrupt: dict[int, str] = field(default_factory=dict)
    status: HealthStatus = "healthy"
    #: A pack that no index names (left by an interrupted backup or prune; ``prune`` removes it).
    orphan: bool = False
    #: Why the object as a whole is unusable although enough shards verify (fails authentication...).
    problem: str | None = None

    @property
    def lost_shards(self) -> int:
        """Shards that are missing or damaged."""
        return len(self.missing) + len(self.corrupt)

    def settle(self, need: int) -> HealthStatus:
        """Set :attr:`status` from the shard sets (lost below ``need`` good ones) and return it."""
        if self.problem is not None or len(self.good) < need:
            self.status = "lost"
        elif self.missing or self.corrupt:
            self.status = "degraded"
        else:
            self.status = "healthy"
        return self.status

    def describe(self) -> str:
        """One line: what is wrong with it."""
        if self.problem is not None:
            return self.problem
        parts = [f"{len(self.good)} good shard(s)"]
        if self.missing:
            parts.append("missing from store(s) " + ", ".join(map(str, sorted(self.missing))))
        parts.extend(f"store {store}: {reason}" for store, reason in sorted(self.corrupt.items()))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        result: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "status": self.status,
            "lost_shards": self.lost_shards,
            "good": sorted(self.good),
            "missing": sorted(self.missing),
            "corrupt": {str(store): reason for store, reason in sorted(self.corrupt.items())},
        }
        if self.orphan:
            result["orphan"] = True
        if self.problem is not None:
            result["problem"] = self.problem
        return result


@dataclass
class StoreHealth:
    """One store: could it be listed, and how many of the objects it should hold are there and sound."""

    store: int
    name: str
    reachable: bool
    error: str | None
    #: Objects (shards, config, key files) this store holds.
    objects: int = 0
    #: Objects this store should hold but does not (all of them when it is unreachable).
    missing: int = 0
    #: Objects it holds that are damaged or misplaced.
    corrupt: int = 0
    #: Objects this store should hold (orphan packs are not counted).
    expected: int = 0

    @property
    def healthy(self) -> bool:
        """Reachable, nothing missing, nothing damaged."""
        return self.reachable and not self.missing and not self.corrupt

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "store": self.store,
            "name": self.name,
            "reachable": self.reachable,
            "error": self.error,
            "expected": self.expected,
            "objects": self.objects,
            "missing": self.missing,
            "corrupt": self.corrupt,
        }


@dataclass
class CheckReport:
    """What :func:`check_repository` found."""

    stores: list[StoreHealth] = field(default_factory=list)
    #: The objects that are not healthy (all of them are counted in :attr:`objects_checked`).
    objects: list[ObjectHealth] = field(default_factory=list)
    objects_checked: int = 0
    packs_total: int = 0
    packs_healthy: int = 0
    packs_degraded: int = 0
    packs_lost: int = 0
    #: Index objects and manifests that decode (and, for manifests, verify).
    indexes: int = 0
    manifests: int = 0
    #: Distinct blobs in the index.
    blobs: int = 0
    #: Lost objects and structural problems: any of these makes the status "error".
    errors: list[str] = field(default_factory=list)
    #: Worth knowing, harmless to the data: orphan packs, stale locks, stray objects.
    warnings: list[str] = field(default_factory=list)
    read_data: bool = False

    @property
    def status(self) -> Literal["healthy", "degraded", "error"]:
        """``error`` if anything is lost or wrong, ``degraded`` if repair has work to do, else ``healthy``."""
        if self.errors or any(item.status == "lost" and not item.orphan for item in self.objects):
            return "error"
        if any(not store.reachable for store in self.stores) or any(not item.orphan for item in self.objects):
            return "degraded"
        return "healthy"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (``lifeboat check --json``)."""
        return {
            "status": self.status,
            "read_data": self.read_data,
            "stores": [store.to_json() for store in self.stores],
            "objects_checked": self.objects_checked,
            "packs": {
                "total": self.packs_total,
                "healthy": self.packs_healthy,
                "degraded": self.packs_degraded,
                "lost": self.packs_lost,
            },
            "indexes": self.indexes,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "objects": [item.to_json() for item in self.objects],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


# --- helpers shared with repair -------------------------------------------------------------


def object_id_of(kind: str, key: str) -> bytes | None:
    """The object id that a codec object's key names (``data/ab/<64 hex>``, ``index/<64 hex>``...).

    None if the key is not of that form: a stray object that check reports and repair leaves alone.

    >>> object_id_of("index", "index/" + "ab" * 32) == bytes.fromhex("ab" * 32)
    True
    >>> object_id_of("data", "data/cd/" + "ab" * 32) is None
    True
    """
    parts = key.split("/")
    if kind not in CODEC_KINDS or parts[0] != kind:
        return None
    if kind == "data":
        if len(parts) != 3 or len(parts[1]) != 2 or not parts[2].startswith(parts[1]):
            return None
    elif len(parts) != 2:
        return None
    name = parts[-1]
    if len(name) != 2 * codec.OBJECT_ID_BYTES or any(c not in "0123456789abcdef" for c in name):
        return None
    return bytes.fromhex(name)


def object_key(kind: str, object_id: bytes) -> str:
    """The key of codec object ``object_id`` of ``kind`` (the inverse of :func:`object_id_of`)."""
    name = object_id.hex()
    return f"data/{name[:2]}/{name}" if kind == "data" else f"{kind}/{name}"


@dataclass
class ShardSurvey:
    """The verdict on the shards of one object as read from the stores (see :func:`survey_shards`)."""

    good: dict[int, ShardInfo]
    missing: set[int]
    corrupt: dict[int, str]


def survey_shards(
    key: bytes, shards: Mapping[int, bytes | None], object_id: bytes, params: CodecParams
) -> ShardSurvey:
    """Sort the shards read from the stores (``store -> bytes``, None if absent) into good, missing, corrupt.

    A good shard verifies under the key, belongs to ``object_id`` encoded ``params``, carries the
    index of the store it was read from, and belongs to the encoding that most stores agree on.
    That is the codec's own rule (:func:`codec.repair` rebuilds exactly the other slots), with
    a reason for every shard left out.
    """
    missing: set[int] = set()
    corrupt: dict[int, str] = {}
    verified: dict[int, ShardInfo] = {}
    for store, data in shards.items():
        if data is None:
            missing.add(store)
            continue
        try:
            info = codec.verify_shard(key, data)
        except ShardError as exc:
            corrupt[store] = str(exc)
            continue
        if info.object_id != object_id:
            corrupt[store] = f"shard of another object ({info.object_id[:4].hex()}...)"
        elif (info.k, info.n) != (params.k, params.n):
            corrupt[store] = f"encoded {info.k}-of-{info.n}, the repository is {params}"
        elif info.index != store:
            corrupt[store] = f"holds shard {info.index}, which belongs in store {info.index}"
        else:
            verified[store] = info
    encodings = Counter(info.object_header for info in verified.values())
    good: dict[int, ShardInfo] = {}
    if encodings:
        best = max(encodings, key=lambda header: (encodings[header], header))
        for store, info in verified.items():
            if info.object_header == best:
                good[store] = info
            else:
                corrupt[store] = "from another encoding of the same object (different salt)"
    return ShardSurvey(good, missing, corrupt)


def bounded_map(
    pool: ThreadPoolExecutor, function: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """``pool.map`` with at most ``window`` calls submitted at once; results in the order of ``items``.

    Unlike :meth:`ThreadPoolExecutor.map`, items are consumed lazily, so memory stays bounded.
    """
    pending: list[Future[R]] = []
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= window:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    finally:
        for future in pending:
            future.cancel()


def best_key_file(repository: str, copies: Iterable[bytes]) -> bytes | None:
    """The copy of a key file the stores should hold: the most common well-formed one of ``repository``."""
    counts: Counter[bytes] = Counter()
    for data in copies:
        if len(data) > MAX_KEY_FILE_BYTES:
            continue
        try:
            info = parse_key_file(data)
        except LifeboatError:
            continue
        if info.repository == repository:
            counts[data] += 1
    if not counts:
        return None
    return max(counts, key=lambda data: (counts[data], data))


def good_key_file(repo: Repository, key: str, copies: Iterable[bytes]) -> tuple[bytes | None, str]:
    """The copy of key file ``key`` every store should hold, and what to call a copy that differs.

    The copy that authenticated when the repository was opened with a passphrase is the good one
    whatever the other stores hold (a damaged copy may even be in the majority); for the other
    key files, the most common well-formed copy (:func:`best_key_file`).
    """
    opened = repo.opened_key_file
    if opened is not None and opened[0] == key:
        return opened[1], "damaged: differs from the copy that opens with the passphrase"
    return best_key_file(repo.id, copies), "differs from the other copies"


def config_problem(repo: Repository, store: int, data: bytes) -> str | None:
    """What is wrong with the config read from ``store``, or None if it is this repository's, for it."""
    try:
        config = parse_config(data)
    except LifeboatError as exc:
        return f"malformed config: {exc}"
    if config.repository != repo.id:
        return f"config of another repository ({config.repository})"
    try:
        verify_config(data, repo.master_key)
    except LifeboatError:
        return "config MAC does not verify under the repository key (altered)"
    if config.store != store:
        return f"config says it is store {config.store}"
    if config != repo.config.for_store(store):
        return "config disagrees with the repository's settings (k, n, chunker, pack size or key)"
    return None


class StoreReader:
    """Lists and reads the repository's stores on a thread pool (shared by check and repair).

    Unreadable stores are the ones the repository could not open (``repo.stores[i]`` is None or
    ``i`` is in ``repo.unavailable``) and those whose listing fails here.
    """

    def __init__(self, stores: Sequence[Backend | None], unavailable: Mapping[int, str]) -> None:
        self.stores = list(stores)
        self.unavailable = dict(unavailable)
        self.pool = ThreadPoolExecutor(
            max_workers=max(4, 2 * len(stores)), thread_name_prefix="lifeboat-check"
        )
        #: store -> every key it lists (reachable stores only, after :meth:`list_stores`).
        self.listings: dict[int, set[str]] = {}
        #: store -> why it cannot be listed.
        self.errors: dict[int, str] = {}

    def close(self) -> None:
        """Shut the thread pool down, then make what repair wrote durable (a new store included)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        for store in self.stores:
            if store is not None:
                with contextlib.suppress(StorageError):
                    sync_backend(store)

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def name(self, store: int) -> str:
        """The store's name for messages."""
        backend = self.stores[store] if store < len(self.stores) else None
        return f"store {store} ({backend.name})" if backend is not None else f"store {store}"

    def list_stores(self, numbers: Iterable[int]) -> None:
        """List every store in ``numbers`` once (filling :attr:`listings` and :attr:`errors`)."""

        def list_one(store: int) -> set[str] | str:
            if store in self.unavailable:
                return self.unavailable[store]
            backend = self.stores[store] if store < len(self.stores) else None
            if backend is None:
                return "not given or not answering"
            try:
                return set(backend.list(""))
            except StorageError as exc:
                return str(exc)

        numbers = list(numbers)
        for store, listed in zip(numbers, self.pool.map(list_one, numbers), strict=True):
            if isinstance(listed, str):
                self.errors[store] = listed
            else:
                self.listings[store] = listed

    def holders(self, key: str) -> set[int]:
        """The reachable stores that list ``key``."""
        return {store for store, keys in self.listings.items() if key in keys}

    def keys_of(self, kind: str) -> list[str]:
        """Every key under ``kind/`` that any reachable store lists, sorted."""
        prefix = kind + "/"
        found: set[str] = set()
        for keys in self.listings.values():
            found.update(key for key in keys if key.startswith(prefix))
        return sorted(found)

    def read(self, store: int, key: str) -> bytes | str | None:
        """The object, None if it is not there, or why it cannot be read."""
        backend = self.stores[store]
        if backend is None:
            return "store not available"
        try:
            return backend.get(key)
        except ObjectNotFound:
            return None
        except StorageError as exc:
            return str(exc)

    def read_many(self, key: str, stores: Iterable[int]) -> tuple[dict[int, bytes | None], dict[int, str]]:
        """Read ``key`` from each of ``stores`` at once: (store -> bytes or None, store -> read error)."""
        numbers = sorted(stores)
        shards: dict[int, bytes | None] = {}
        unreadable: dict[int, str] = {}
        for store, data in zip(numbers, self.pool.map(lambda s: self.read(s, key), numbers), strict=True):
            if isinstance(data, str):
                unreadable[store] = f"unreadable: {data}"
            else:
                shards[store] = data
        return shards, unreadable


def _shown(ids: Sequence[str]) -> str:
    text = ", ".join(ids[:_SHOWN])
    if len(ids) > _SHOWN:
        text += f" and {len(ids) - _SHOWN} more"
    return text


# --- the check ------------------------------------------------------------------------------


def check_repository(
    repo: Repository,
    *,
    read_data: bool = False,
    referenced_blobs: Iterable[bytes] | None = None,
    progress: Progress | None = None,
    node_id: Callable[[bytes], bytes] | None = None,
) -> CheckReport:
    """Check ``repo`` (see the module docstring) and return what was found; it never changes anything.

    ``referenced_blobs`` are the ids of every blob the snapshots reach (the snapshot layer walks
    the trees); each must be in the index. ``progress(phase, done, total)`` is called with the
    phases ``list``, ``index``, ``snapshots`` and ``data``. ``node_id`` gives the id of a state
    node (a blob of type ``BLOB_STATE``, whose id is its own Merkle id, not a keyed content id)
    for ``read_data`` to compare; the snapshot layer supplies it, and without it state nodes are
    checked only by their pack's authentication tag.
    """
    with StoreReader(repo.stores, repo.unavailable) as reader:
        return _Check(repo, reader, read_data, progress, node_id).run(referenced_blobs)


@dataclass
class _PackExpectation:
    """A pack as the index describes it."""

    blobs: list[_Blob]
    #: The index objects that name it.
    indexes: list[str]
    #: The repository's k (to tell the size of a shard).
    k: int

    @property
    def max_shard_size(self) -> int:
        """The size of one shard if the pack was stored uncompressed (compressed, it is smaller)."""
        end = max((offset + length for _, offset, length, _ in self.blobs), default=0)
        plaintext = end + PACK_ENTRY_BYTES * len(self.blobs) + PACK_TRAILER_BYTES
        return codec.HEADER_BYTES + -(-(plaintext + _TAG_BYTES) // self.k)


class _Check:
    """The state of one check."""

    def __init__(
        self,
        repo: Repository,
        reader: StoreReader,
        read_data: bool,
        progress: Progress | None,
        node_id: Callable[[bytes], bytes] | None,
    ) -> None:
        self.repo = repo
        self.node_id = node_id
        self.reader = reader
        self.key = repo.master_key
        self.k = repo.k
        self.n = repo.n
        self.params = CodecParams(repo.k, repo.n)
        self.progress = progress
        self.report = CheckReport(read_data=read_data)
        self.health: list[ObjectHealth] = []

    def _id_matches(self, blob_type: int, data: memoryview, blob_id: bytes) -> bool:
        if blob_type != BLOB_STATE:
            return self.repo.blob_id(data) == blob_id
        if self.node_id is None:
            return True
        try:
            return self.node_id(bytes(data)) == blob_id
        except LifeboatError:
            return False

    def _tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    def run(self, referenced_blobs: Iterable[bytes] | None) -> CheckReport:
        self._list_stores()
        self._check_configs()
        self._check_key_files()
        packs = self._check_indexes()
        self._check_manifests()
        self._check_packs(packs)
        if referenced_blobs is not None:
            self._check_referenced(referenced_blobs, packs)
        self._check_locks()
        self._tally_stores()
        self.report.objects = [item for item in self.health if item.status != "healthy"]
        self.report.objects_checked = len(self.health)
        return self.report

    # -- listing ---------------------------------------------------------------------------

    def _list_stores(self) -> None:
        reader = self.reader
        reader.list_stores(range(self.n))
        for store in range(self.n):
            backend = reader.stores[store] if store < len(reader.stores) else None
            name = backend.name if backend is not None else "unavailable"
            error = reader.errors.get(store)
            self.report.stores.append(StoreHealth(store, name, error is None, error))
            stray = sorted(
                key for key in reader.listings.get(store, ()) if key.split("/")[0] not in _TOP_LEVEL
            )
            if stray:
                self.report.warnings.append(
                    f"{reader.name(store)} holds {len(stray)} object(s) that are not part of a "
                    f"Lifeboat repository: {_shown(stray)}"
                )
        self._tick("list", self.n, self.n)

    def _new_health(self, key: str, kind: ObjectKind, *, orphan: bool = False) -> ObjectHealth:
        """A record for ``key`` that starts with every store that does not list it as missing."""
        health = ObjectHealth(key, kind, orphan=orphan)
        holders = self.reader.holders(key)
        health.missing = {store for store in range(self.n) if store not in holders}
        return health

    # -- config and key files --------------------------------------------------------------

    def _check_configs(self) -> None:
        health = self._new_health(CONFIG_KEY, "config")
        shards, unreadable = self.reader.read_many(CONFIG_KEY, self.reader.holders(CONFIG_KEY))
        health.corrupt.update(unreadable)
        for store, data in shards.items():
            reason = "vanished while listed" if data is None else config_problem(self.repo, store, data)
            if reason is None:
                health.good.add(store)
            elif data is None:
                health.missing.add(store)
            else:
                health.corrupt[store] = reason
                if "another repository" in reason:
                    self.report.errors.append(f"{self.reader.name(store)}: {reason}")
        health.settle(1)
        self.health.append(health)

    def _check_key_files(self) -> None:
        keys = self.reader.keys_of("keys")
        if not keys and self.reader.listings:
            self.report.errors.append("no store holds a key file: nobody can open this repository")
        for key in keys:
            health = self._new_health(key, "keys")
            shards, unreadable = self.reader.read_many(key, self.reader.holders(key))
            health.corrupt.update(unreadable)
            copies = {store: data for store, data in shards.items() if data is not None}
            health.missing.update(store for store, data in shards.items() if data is None)
            best, differs = good_key_file(self.repo, key, copies.values())
            for store, data in copies.items():
                if data == best:
                    health.good.add(store)
                else:
                    health.corrupt[store] = differs if best else "malformed key file"
            if health.settle(1) == "lost":
                self.report.errors.append(f"key file {key} is malformed or unreadable in every store")
            self.health.append(health)

    # -- indexes and manifests -------------------------------------------------------------

    def _read_codec_object(
        self, kind: ObjectKind, key: str, *, orphan: bool = False
    ) -> tuple[ObjectHealth, bytes | bytearray | None]:
        """Read every shard of an object, survey them, decode it and check its content id."""
        health = self._new_health(key, kind, orphan=orphan)
        object_id = object_id_of(kind, key)
        if object_id is None:
            health.good = self.reader.holders(key)
            health.problem = "its name is not a 64-digit lowercase hex id"
            health.settle(self.k)
            return health, None
        shards, unreadable = self.reader.read_many(key, self.reader.holders(key))
        survey = survey_shards(self.key, shards, object_id, self.params)
        health.good = set(survey.good)
        health.missing |= survey.missing
        health.corrupt.update(survey.corrupt)
        health.corrupt.update(unreadable)
        plaintext: bytes | bytearray | None = None
        if len(survey.good) >= self.k:
            # Every shard was verified above; decoding needs k of them (the data shards first,
            # which need no erasure decoding), and the AEAD authenticates the result.
            chosen = {
                store: (survey.good[store], data)
                for store in sorted(survey.good)[: self.k]
                if (data := shards[store]) is not None
            }
            shards.clear()
            try:
                # Their checksums were verified by the survey: decode them without doing it again.
                plaintext = codec.decode_verified(self.key, chosen)
            except ShardError as exc:
                health.problem = str(exc)
            else:
                if codec.content_id(self.key, plaintext) != object_id:
                    health.problem = "its content does not match its id"
                    plaintext = None
            del chosen
        health.settle(self.k)
        return health, plaintext

    def _unreadable(self, what: str, key: str, health: ObjectHealth, consequence: str) -> None:
        """Report an index or snapshot object that does not decode.

        With every store answering and no shard corrupt, fewer than k shards means the write
        was interrupted (a crash): nothing depends on the object, and it is a warning. Anything
        else is damage, and an error.
        """
        if not health.corrupt and self.repo.interrupted_write(len(health.good)):
            health.orphan = True
            self.report.warnings.append(
                f"{what} {key} is incomplete ({health.describe()}): left by an interrupted write, "
                "nothing depends on it; prune removes it"
            )
        else:
            self.report.errors.append(f"{what} {key} cannot be read ({health.describe()}); {consequence}")

    def _check_indexes(self) -> dict[bytes, _PackExpectation]:
        """Decode every index object; return what each pack should hold, by pack id."""
        packs: dict[bytes, _PackExpectation] = {}
        keys = self.reader.keys_of("index")
        for done, key in enumerate(keys, 1):
            health, plaintext = self._read_codec_object("index", key)
            self.health.append(health)
            self._tick("index", done, len(keys))
            if plaintext is None:
                self._unreadable(
                    "index",
                    key,
                    health,
                    "the packs it lists look like orphans until it is repaired: do not prune",
                )
                continue
            try:
                entries = _parse_index(plaintext)
            except LifeboatError as exc:
                self.report.errors.append(f"index {key} is malformed: {exc}")
                continue
            self.report.indexes += 1
            for pack_id, blobs in entries.items():
                known = packs.get(pack_id)
                if known is None:
                    packs[pack_id] = _PackExpectation(blobs, [key], self.k)
                elif sorted(known.blobs) != sorted(blobs):
                    self.report.errors.append(
                        f"pack {object_key('data', pack_id)} is described differently by {known.indexes[0]} "
                        f"and {key}"
                    )
                else:
                    known.indexes.append(key)
        self.report.blobs = len({blob[3] for expected in packs.values() for blob in expected.blobs})
        return packs

    def _check_manifests(self) -> None:
        keys = self.reader.keys_of("snapshots")
        for done, key in enumerate(keys, 1):
            health, plaintext = self._read_codec_object("snapshots", key)
            self.health.append(health)
            self._tick("snapshots", done, len(keys))
            if plaintext is None:
                self._unreadable("snapshot", key, health, "its files cannot be restored")
                continue
            manifest_id = object_id_of("snapshots", key)
            assert manifest_id is not None
            try:
                self.repo.verify_manifest(manifest_id, bytes(plaintext))
            except LifeboatError as exc:
                self.report.errors.append(f"snapshot {key}: {exc}")
                continue
            self.report.manifests += 1

    # -- packs -----------------------------------------------------------------------------

    def _check_packs(self, packs: dict[bytes, _PackExpectation]) -> None:
        report = self.report
        listed: set[bytes] = set()
        for key in self.reader.keys_of("data"):
            pack_id = object_id_of("data", key)
            if pack_id is None:
                report.warnings.append(f"object {key} is not a pack: its name is not a pack id")
            else:
                listed.add(pack_id)
        orphans = sorted(listed - set(packs))
        if orphans:
            report.warnings.append(
                f"{len(orphans)} pack(s) are in no index (left by an interrupted write: a backup or a prune; prune removes "
                f"them): {_shown([object_key('data', pack) for pack in orphans])}"
            )
        work: list[tuple[bytes, _PackExpectation | None]] = [(pack, packs[pack]) for pack in sorted(packs)]
        work += [(pack, None) for pack in orphans]
        if report.read_data:
            worker, window = self._read_pack, PACKS_IN_FLIGHT
        else:
            worker, window = self._stat_pack, _STATS_IN_FLIGHT
        with ThreadPoolExecutor(max_workers=window, thread_name_prefix="lifeboat-check-packs") as pool:
            for done, (health, errors) in enumerate(bounded_map(pool, worker, work, window), 1):
                self.health.append(health)
                if health.orphan:
                    report.warnings.extend(errors)  # garbage anyway: prune removes it
                    if health.status == "lost":
                        report.warnings.append(
                            f"orphan pack {health.key} cannot be read ({health.describe()})"
                        )
                else:
                    report.errors.extend(errors)
                    report.packs_total += 1
                    if health.status == "healthy":
                        report.packs_healthy += 1
                    elif health.status == "degraded":
                        report.packs_degraded += 1
                    else:
                        report.packs_lost += 1
                        report.errors.append(f"pack {health.key} is lost ({health.describe()})")
                self._tick("data", done, len(work))

    def _stat_pack(self, item: tuple[bytes, _PackExpectation | None]) -> tuple[ObjectHealth, list[str]]:
        """The cheap verdict on a pack: which stores list it, and whether the shard sizes are plausible."""
        pack_id, expected = item
        key = object_key("data", pack_id)
        health = self._new_health(key, "data", orphan=expected is None)
        sizes: dict[int, int] = {}
        for store in sorted(self.reader.holders(key)):
            backend = self.reader.stores[store]
            assert backend is not None
            try:
                size = backend.stat(key)
            except StorageError as exc:
                health.corrupt[store] = f"cannot stat: {exc}"
                continue
            if size is None:
                health.missing.add(store)
            else:
                sizes[store] = size
        limit = expected.max_shard_size if expected is not None else None
        plausible = Counter(
            size for size in sizes.values() if size > codec.HEADER_BYTES and (limit is None or size <= limit)
        )
        common = max(plausible, key=lambda size: (plausible[size], size)) if plausible else None
        for store, size in sizes.items():
            if size == common:
                health.good.add(store)
            elif size in plausible:
                health.corrupt[store] = f"{size} bytes, the other shards are {common}"
            else:
                health.corrupt[store] = f"{size} bytes: not a possible size for this pack's shards"
        health.settle(self.k)
        return health, []

    def _read_pack(self, item: tuple[bytes, _PackExpectation | None]) -> tuple[ObjectHealth, list[str]]:
        """The full verdict on a pack: read and verify every shard, decode, parse, compare, hash."""
        pack_id, expected = item
        health, plaintext = self._read_codec_object(
            "data", object_key("data", pack_id), orphan=expected is None
        )
        if plaintext is None:
            return health, []
        try:
            blobs = _parse_pack_table(plaintext)
        except LifeboatError as exc:
            health.problem = f"malformed pack: {exc}"
            health.settle(self.k)
            return health, [f"pack {health.key} is malformed: {exc}"]
        errors: list[str] = []
        view = memoryview(plaintext)
        bad = [
            blob_id.hex()
            for blob_type, offset, length, blob_id in blobs
            if not self._id_matches(blob_type, view[offset : offset + length], blob_id)
        ]
        if bad:
            errors.append(f"pack {health.key}: {len(bad)} blob(s) do not match their ids: {_shown(bad)}")
        if expected is not None and sorted(blobs) != sorted(expected.blobs):
            errors.append(
                f"pack {health.key} holds {len(blobs)} blob(s) that disagree with its entry in "
                f"{expected.indexes[0]} ({len(expected.blobs)} blob(s))"
            )
        return health, errors

    # -- references, locks, stores ---------------------------------------------------------

    def _check_referenced(self, referenced: Iterable[bytes], packs: Mapping[bytes, _PackExpectation]) -> None:
        indexed = {blob[3] for expected in packs.values() for blob in expected.blobs}
        absent = sorted({bytes(blob) for blob in referenced} - indexed)
        if absent:
            self.report.errors.append(
                f"{len(absent)} blob(s) that snapshots refer to are in no index: "
                f"{_shown([blob.hex() for blob in absent])}"
            )

    def _check_locks(self) -> None:
        try:
            stale = [f"{lock.key} ({lock.reason})" for lock in self.repo.locks() if lock.stale]
        except LifeboatError as exc:
            self.report.warnings.append(f"cannot read the locks: {exc}")
            return
        if stale:
            self.report.warnings.append(
                f"{len(stale)} stale lock(s): {_shown(stale)}; `lifeboat repo unlock` removes them"
            )

    def _tally_stores(self) -> None:
        for store_health in self.report.stores:
            store = store_health.store
            for item in self.health:
                if item.orphan:
                    continue
                store_health.expected += 1
                if store in item.good:
                    store_health.objects += 1
                elif store in item.corrupt:
                    store_health.objects += 1
                    store_health.corrupt += 1
                else:
                    store_health.missing += 1


# --- adapters to the repository formats -----------------------------------------------------


def _parse_index(plaintext: bytes | bytearray) -> dict[bytes, list[_Blob]]:
    """pack id -> [(type, offset, length, blob id)] of an index object's plaintext."""
    return {
        entry.pack: [(blob.type, blob.offset, blob.length, blob.id) for blob in entry.blobs]
        for entry in decode_index(plaintext)
    }


def _parse_pack_table(plaintext: bytes | bytearray) -> list[_Blob]:
    """[(type, offset, length, blob id)] of a pack's plaintext."""
    return [(blob.type, blob.offset, blob.length, blob.id) for blob in parse_pack(plaintext)]
