"""Indexes: which pack holds each blob, and where in it.

This module is pure: no files, no network, no threads. An index object's plaintext lists packs
and their blobs::

    b"LBINDEX" | version (u8 = 1) | pack count (u32)
    per pack:  pack id (32) | missing-shard mask (u32) | blob count (u32)
               per blob: type (u8) | offset (u32) | length (u32) | blob id (32)

All integers are big-endian. Bit ``i`` of the missing-shard mask is set when store ``i`` did not
receive its shard of the pack when it was written (a degraded write, which ``repair`` heals). An
index object never changes once written; pruning writes new ones and deletes the old.

:class:`Index` is the union, in memory, of every index object of a repository.

>>> blob = BlobEntry(type=0, id=bytes(32), offset=0, length=5)
>>> data = encode_index([PackEntry(pack=bytes([7]) * 32, missing=0b100, blobs=(blob,))])
>>> decode_index(data) == [PackEntry(pack=bytes([7]) * 32, missing=4, blobs=(blob,))]
True
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from lifeboat.errors import InputError
from lifeboat.store.errors import FormatError
from lifeboat.store.packs import BLOB_TYPES

__all__ = [
    "INDEX_BLOB_BYTES",
    "INDEX_HEADER_BYTES",
    "INDEX_MAGIC",
    "INDEX_PACK_BYTES",
    "INDEX_VERSION",
    "BlobEntry",
    "BlobLocation",
    "Index",
    "PackEntry",
    "PackTable",
    "decode_index",
    "decode_index_tables",
    "encode_index",
    "encode_index_tables",
    "index_entry",
]

INDEX_MAGIC: Final = b"LBINDEX"
INDEX_VERSION: Final = 1
#: magic (7) + version (1) + pack count (4)
INDEX_HEADER_BYTES: Final = 12
#: pack id (32) + missing-shard mask (4) + blob count (4)
INDEX_PACK_BYTES: Final = 40
#: type (1) + offset (4) + length (4) + blob id (32)
INDEX_BLOB_BYTES: Final = 41

_ID_BYTES: Final = 32
_U32_MAX: Final = (1 << 32) - 1
_HEADER: Final = struct.Struct(">7sBI")
_PACK: Final = struct.Struct(">32sII")
_BLOB: Final = struct.Struct(">BII32s")
assert (_HEADER.size, _PACK.size, _BLOB.size) == (INDEX_HEADER_BYTES, INDEX_PACK_BYTES, INDEX_BLOB_BYTES)


@dataclass(frozen=True)
class BlobEntry:
    """One blob as an index lists it: type, id, and its place in the pack plaintext."""

    type: int
    id: bytes
    offset: int
    length: int


@dataclass(frozen=True)
class PackEntry:
    """One pack as an index lists it: id, which stores lack their shard (bit mask), and its blobs."""

    pack: bytes
    missing: int
    blobs: tuple[BlobEntry, ...]

    @property
    def size(self) -> int:
        """The sum of the pack's blob lengths (its blob area, without table and trailer)."""
        return sum(blob.length for blob in self.blobs)


@dataclass(frozen=True)
class BlobLocation:
    """Where a blob is: its pack, its type, and its place in the pack plaintext."""

    pack: bytes
    type: int
    offset: int
    length: int


def encode_index(packs: Iterable[PackEntry]) -> bytes:
    """The index plaintext listing ``packs`` in the order given.

    Raises :class:`InputError` for a pack or blob id that is not 32 bytes, a pack listed twice,
    an unknown blob type, or a mask, offset, length or count that does not fit in a u32.
    """
    parts: list[bytes] = []
    seen: set[bytes] = set()
    for entry in packs:
        if not isinstance(entry.pack, bytes) or len(entry.pack) != _ID_BYTES:
            raise InputError(f"a pack id must be {_ID_BYTES} bytes")
        if entry.pack in seen:
            raise InputError(f"pack {entry.pack.hex()} is listed twice in one index")
        seen.add(entry.pack)
        _check_u32(entry.missing, "missing-shard mask")
        _check_u32(len(entry.blobs), "blob count")
        parts.append(_PACK.pack(entry.pack, entry.missing, len(entry.blobs)))
        for blob in entry.blobs:
            if type(blob.type) is not int or blob.type not in BLOB_TYPES:
                raise InputError(f"unknown blob type {blob.type!r}")
            if not isinstance(blob.id, bytes) or len(blob.id) != _ID_BYTES:
                raise InputError(f"a blob id must be {_ID_BYTES} bytes")
            _check_u32(blob.offset, "blob offset")
            _check_u32(blob.length, "blob length")
            parts.append(_BLOB.pack(blob.type, blob.offset, blob.length, blob.id))
    _check_u32(len(seen), "pack count")
    return b"".join((_HEADER.pack(INDEX_MAGIC, INDEX_VERSION, len(seen)), *parts))


#: One pack as an index object lists it, undecoded: its id, missing-shard mask, and blob table
#: (the ``type | offset | length | blob id`` entries, 41 bytes each, as stored).
PackTable = tuple[bytes, int, bytes]


def encode_index_tables(packs: Iterable[PackTable]) -> bytes:
    """:func:`encode_index` of packs whose blob tables are already encoded (41 bytes a blob).

    The same checks as :func:`encode_index`, the same bytes for the same packs.
    """
    parts: list[bytes] = []
    seen: set[bytes] = set()
    for pack_id, missing, table in packs:
        if not isinstance(pack_id, bytes) or len(pack_id) != _ID_BYTES:
            raise InputError(f"a pack id must be {_ID_BYTES} bytes")
        if pack_id in seen:
            raise InputError(f"pack {pack_id.hex()} is listed twice in one index")
        seen.add(pack_id)
        if len(table) % INDEX_BLOB_BYTES or set(table[::INDEX_BLOB_BYTES]) - BLOB_TYPES:
            raise InputError(f"the blob table of pack {pack_id.hex()} is not a list of index entries")
        _check_u32(missing, "missing-shard mask")
        _check_u32(len(table) // INDEX_BLOB_BYTES, "blob count")
        parts.append(_PACK.pack(pack_id, missing, len(table) // INDEX_BLOB_BYTES))
        parts.append(bytes(table))
    _check_u32(len(seen), "pack count")
    return b"".join((_HEADER.pack(INDEX_MAGIC, INDEX_VERSION, len(seen)), *parts))


def index_entry(blob_type: int, blob_id: bytes, offset: int, length: int) -> bytes:
    """One blob's entry in an index object's blob table."""
    return _BLOB.pack(blob_type, offset, length, blob_id)


def decode_index(data: bytes | bytearray | memoryview) -> list[PackEntry]:
    """The packs listed in index plaintext ``data``, in order.

    Every count is checked against the bytes that remain before anything is allocated for it.
    Raises :class:`FormatError` for a wrong magic, a newer or unknown version, a truncated
    index, trailing bytes, an unknown blob type or a pack listed twice.
    """
    return [
        PackEntry(pack_id, missing, _blob_entries(table))
        for pack_id, missing, table in decode_index_tables(data)
    ]


def _blob_entries(table: bytes) -> tuple[BlobEntry, ...]:
    return tuple(
        BlobEntry(blob_type, blob_id, offset, length)
        for blob_type, offset, length, blob_id in _BLOB.iter_unpack(table)
    )


def decode_index_tables(data: bytes | bytearray | memoryview) -> list[PackTable]:
    """:func:`decode_index` without making an object per blob: each pack's blob table as stored.

    The same checks, the same errors.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    head = bytes(view[: len(INDEX_MAGIC)])
    if head != INDEX_MAGIC[: len(head)] or not head:
        raise FormatError("not a Lifeboat index: its first bytes are not LBINDEX")
    if size > len(INDEX_MAGIC):
        version = view[len(INDEX_MAGIC)]
        if version > INDEX_VERSION:
            raise FormatError(
                f"index written by a newer Lifeboat (index version {version}, this Lifeboat reads version "
                f"{INDEX_VERSION}); upgrade Lifeboat to read it"
            )
        if version != INDEX_VERSION:
            raise FormatError(f"index header is damaged: index version {version} was never used")
    if size < INDEX_HEADER_BYTES:
        raise FormatError(f"truncated index: {size} bytes, shorter than its {INDEX_HEADER_BYTES}-byte header")
    _, _, pack_count = _HEADER.unpack_from(view, 0)
    position = INDEX_HEADER_BYTES
    if pack_count * INDEX_PACK_BYTES > size - position:
        raise FormatError(f"index claims {pack_count} packs, too many for its {size} bytes")
    packs: list[PackTable] = []
    seen: set[bytes] = set()
    for number in range(pack_count):
        if size - position < INDEX_PACK_BYTES:
            raise FormatError(f"truncated index: pack {number} of {pack_count} is cut short")
        pack_id, missing, blob_count = _PACK.unpack_from(view, position)
        position += INDEX_PACK_BYTES
        if pack_id in seen:
            raise FormatError(f"index lists pack {pack_id.hex()} twice")
        seen.add(pack_id)
        end = position + blob_count * INDEX_BLOB_BYTES
        if end > size:
            raise FormatError(
                f"truncated index: pack {number} claims {blob_count} blobs, more than the remaining bytes hold"
            )
        table = bytes(view[position:end])
        unknown = set(table[::INDEX_BLOB_BYTES]) - BLOB_TYPES
        if unknown:
            raise FormatError(f"index entry for pack {pack_id.hex()} has unknown blob type {min(unknown)}")
        position = end
        packs.append((pack_id, missing, table))
    if position != size:
        raise FormatError(f"index has {size - position} trailing bytes after its last pack")
    return packs


# A blob's location in the in-memory index, one int: pack number | type | offset | length.
_TYPE_SHIFT: Final = 64
_OFFSET_SHIFT: Final = 32
_PACK_SHIFT: Final = 72


class Index:
    """Union of index objects: blob id -> location, pack id -> PackEntry, which index objects hold each pack.

    A blob (or pack) listed more than once keeps the location (or entry) added first, so lookups
    are deterministic for a given order of :meth:`add` calls. Adding an index id a second time
    does nothing: index objects never change.

    Compact, since a repository's index stays in memory while it is used (one entry per prolly
    node, per file chunk): a blob costs its id and one int in a dict, and each pack keeps its
    blob table as the index object stores it (41 bytes a blob); :class:`PackEntry` and
    :class:`BlobLocation` objects are made when asked for.

    >>> index = Index()
    >>> index.add(b"i" * 32, [PackEntry(b"p" * 32, 0, (BlobEntry(1, b"b" * 32, 0, 9),))])
    >>> index.lookup(b"b" * 32)
    BlobLocation(pack=b'pppppppppppppppppppppppppppppppp', type=1, offset=0, length=9)
    >>> b"b" * 32 in index, len(index)
    (True, 1)
    """

    def __init__(self) -> None:
        self._locations: dict[bytes, int] = {}
        self._pack_ids: list[bytes] = []
        self._pack_numbers: dict[bytes, int] = {}
        self._missing: list[int] = []
        self._tables: list[bytes] = []
        self._index_packs: dict[bytes, list[bytes]] = {}
        self._view = _Packs(self)

    def add(self, index_id: bytes, packs: Iterable[PackEntry]) -> None:
        """Add the packs listed by index object ``index_id``."""
        self.add_tables(
            index_id,
            (
                (
                    entry.pack,
                    entry.missing,
                    b"".join(
                        _BLOB.pack(blob.type, blob.offset, blob.length, blob.id) for blob in entry.blobs
                    ),
                )
                for entry in packs
            ),
        )

    def add_tables(self, index_id: bytes, packs: Iterable[PackTable]) -> None:
        """Add the packs listed by index object ``index_id``, as :func:`decode_index_tables` gives them."""
        if index_id in self._index_packs:
            return
        listed: list[bytes] = []
        locations = self._locations
        for pack_id, missing, table in packs:
            listed.append(pack_id)
            if pack_id in self._pack_numbers:
                continue
            number = len(self._pack_ids)
            self._pack_ids.append(pack_id)
            self._pack_numbers[pack_id] = number
            self._missing.append(missing)
            self._tables.append(table)
            base = number << _PACK_SHIFT
            for blob_type, offset, length, blob_id in _BLOB.iter_unpack(table):
                if blob_id not in locations:
                    locations[blob_id] = base | blob_type << _TYPE_SHIFT | offset << _OFFSET_SHIFT | length
        self._index_packs[index_id] = listed

    def _location(self, packed: int) -> BlobLocation:
        return BlobLocation(
            self._pack_ids[packed >> _PACK_SHIFT],
            (packed >> _TYPE_SHIFT) & 0xFF,
            (packed >> _OFFSET_SHIFT) & _U32_MAX,
            packed & _U32_MAX,
        )

    def _entry(self, number: int) -> PackEntry:
        return PackEntry(self._pack_ids[number], self._missing[number], _blob_entries(self._tables[number]))

    def lookup(self, blob_id: bytes) -> BlobLocation | None:
        """Where blob ``blob_id`` is, or None if no index lists it."""
        packed = self._locations.get(blob_id)
        return None if packed is None else self._location(packed)

    def __contains__(self, blob_id: object) -> bool:
        return isinstance(blob_id, bytes) and blob_id in self._locations

    def __len__(self) -> int:
        """The number of distinct blobs."""
        return len(self._locations)

    @property
    def packs(self) -> Mapping[bytes, PackEntry]:
        """Every pack listed by any index (read-only view)."""
        return self._view

    @property
    def index_ids(self) -> set[bytes]:
        """The ids of the index objects added (a copy)."""
        return set(self._index_packs)

    def packs_of_index(self, index_id: bytes) -> list[bytes]:
        """The pack ids that index object ``index_id`` lists, in its order (empty for an unknown index)."""
        return list(self._index_packs.get(index_id, ()))

    def blobs(self) -> Iterator[tuple[bytes, BlobLocation]]:
        """Every ``(blob id, location)``, in the order they were added."""
        return iter([(blob_id, self._location(packed)) for blob_id, packed in self._locations.items()])


class _Packs(Mapping[bytes, PackEntry]):
    """The packs of an :class:`Index` as a read-only mapping (each entry made when asked for)."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def __getitem__(self, pack_id: bytes) -> PackEntry:
        return self._index._entry(self._index._pack_numbers[pack_id])

    def __contains__(self, pack_id: object) -> bool:
        return pack_id in self._index._pack_numbers

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._index._pack_ids))

    def __len__(self) -> int:
        return len(self._index._pack_ids)


def _check_u32(value: int, what: str) -> None:
    if type(value) is not int or not 0 <= value <= _U32_MAX:
        raise InputError(f"{what} {value!r} does not fit in an unsigned 32-bit integer")
