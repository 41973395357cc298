"""Packs: many blobs in one stored object, with a table that says where each one is.

This module is pure: no files, no network, no threads. A pack's plaintext (what the codec encodes
as one object) is the blobs back to back, then a table, then a fixed trailer::

    blob_0 || ... || blob_{m-1}
    table      m entries of 37 bytes: type (u8: 0 data, 1 tree, 2 state node) | length (u32) | blob id (32)
    trailer    m (u32) | b"LBPACK" | version (u8 = 1)

All integers are big-endian. Offsets are not stored: blob ``i`` starts where blob ``i - 1``
ends, and the lengths add up exactly to the size of the blob area. The trailer sits at the end so
a writer can stream blobs before it knows how many there are (:class:`PackBuilder` does). A pack
holds blobs of one type.
Blobs are not compressed one by one: the codec compresses the whole pack.

>>> pack = build_pack([(BLOB_DATA, bytes(32), b"hello"), (BLOB_DATA, bytes([1]) * 32, b"world")])
>>> [(blob.offset, blob.length) for blob in parse_pack(pack)]
[(0, 5), (5, 5)]
>>> bytes(blob_view(pack, parse_pack(pack)[1]))
b'world'
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from lifeboat.errors import InputError
from lifeboat.store.errors import FormatError

__all__ = [
    "BLOB_DATA",
    "BLOB_ID_BYTES",
    "BLOB_STATE",
    "BLOB_TREE",
    "BLOB_TYPES",
    "MAX_BLOB_BYTES",
    "PACK_ENTRY_BYTES",
    "PACK_MAGIC",
    "PACK_TRAILER_BYTES",
    "PACK_VERSION",
    "BlobSpan",
    "PackBlob",
    "PackBuilder",
    "blob_view",
    "build_pack",
    "parse_pack",
]

#: A chunk of file content.
BLOB_DATA: Final = 0
#: A directory listing of the snapshot layer.
BLOB_TREE: Final = 1
#: A node of a record snapshot's prolly tree. Its id is the node's own id (a Merkle commitment
#: that proofs verify without the repository key), not the keyed content id of the other types;
#: the snapshot layer checks it when it reads the node.
BLOB_STATE: Final = 2
BLOB_TYPES: Final = frozenset({BLOB_DATA, BLOB_TREE, BLOB_STATE})
BLOB_ID_BYTES: Final = 32
#: Blob lengths are stored as u32.
MAX_BLOB_BYTES: Final = (1 << 32) - 1

PACK_MAGIC: Final = b"LBPACK"
PACK_VERSION: Final = 1
#: type (1) + length (4) + id (32)
PACK_ENTRY_BYTES: Final = 37
#: blob count (4) + magic (6) + version (1)
PACK_TRAILER_BYTES: Final = 4 + 7

_ENTRY: Final = struct.Struct(">BI32s")
_COUNT: Final = struct.Struct(">I")
assert _ENTRY.size == PACK_ENTRY_BYTES


@dataclass(frozen=True)
class PackBlob:
    """One blob of a parsed pack: its type, id, and where its bytes are in the pack plaintext."""

    type: int
    id: bytes
    offset: int
    length: int


class BlobSpan(Protocol):
    """Anything that says where a blob is in a pack (:class:`PackBlob`, an index's location)."""

    @property
    def offset(self) -> int: ...

    @property
    def length(self) -> int: ...


class PackBuilder:
    """A pack's plaintext, written as blobs are added (one copy of each blob, no join at the end).

    :meth:`add` appends a blob's bytes at once, so the caller's buffer (a chunker's, say) may be
    reused as soon as it returns; :meth:`finish` appends the table and the trailer. Raises
    :class:`InputError` as :func:`build_pack` does.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._table: list[bytes] = []
        self._seen: set[bytes] = set()
        self._type: int | None = None

    def __len__(self) -> int:
        """Bytes of blob data added so far."""
        return len(self._data)

    @property
    def count(self) -> int:
        """Blobs added so far."""
        return len(self._table)

    def add(self, blob_type: int, blob_id: bytes, data: bytes | bytearray | memoryview) -> int:
        """Append a blob; return its offset in the pack."""
        if type(blob_type) is not int or blob_type not in BLOB_TYPES:
            raise InputError(f"unknown blob type {blob_type!r}")
        if not isinstance(blob_id, bytes) or len(blob_id) != BLOB_ID_BYTES:
            raise InputError(f"a blob id must be {BLOB_ID_BYTES} bytes")
        if blob_id in self._seen:
            raise InputError(f"blob {blob_id.hex()} appears twice in one pack")
        if self._type is not None and blob_type != self._type:
            raise InputError("a pack holds blobs of one type only")
        view = memoryview(data).cast("B")
        if len(view) > MAX_BLOB_BYTES:
            raise InputError(
                f"blob {blob_id.hex()} is {len(view)} bytes; a pack entry holds at most {MAX_BLOB_BYTES}"
            )
        offset = len(self._data)
        self._data += view
        self._seen.add(blob_id)
        self._type = blob_type
        self._table.append(_ENTRY.pack(blob_type, len(view), blob_id))
        return offset

    def finish(self) -> bytearray:
        """The pack plaintext (a ``bytearray``, for ``codec.encode(..., consume=True)``); the builder is spent."""
        data, self._data = self._data, bytearray()
        data += b"".join(self._table)
        data += _COUNT.pack(len(self._table)) + PACK_MAGIC + bytes((PACK_VERSION,))
        self._table = []
        self._seen = set()
        return data


def build_pack(blobs: Sequence[tuple[int, bytes, bytes | memoryview]]) -> bytearray:
    """The pack plaintext holding ``blobs``, each ``(type, 32-byte id, data)``, in that order.

    It is a ``bytearray`` so that the encoder can empty it as soon as it has compressed it
    (``codec.encode(..., consume=True)``).

    Raises :class:`InputError` for an unknown type, an id that is not 32 bytes, a repeated id,
    blobs of more than one type, or a blob over :data:`MAX_BLOB_BYTES`.
    """
    builder = PackBuilder()
    for blob_type, blob_id, data in blobs:
        builder.add(blob_type, blob_id, data)
    return builder.finish()


def parse_pack(data: bytes | bytearray | memoryview) -> list[PackBlob]:
    """The blobs of pack plaintext ``data``, in order, after checking that the table fits exactly.

    Raises :class:`FormatError` for a pack too short for its trailer, a wrong magic, a newer or
    unknown version, a count too large for the pack, an unknown blob type, or lengths that do not
    add up exactly to the blob area.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    if size < PACK_TRAILER_BYTES:
        raise FormatError(f"truncated pack: {size} bytes, shorter than its {PACK_TRAILER_BYTES}-byte trailer")
    if bytes(view[size - 7 : size - 1]) != PACK_MAGIC:
        raise FormatError("not a Lifeboat pack: it does not end with the LBPACK trailer")
    version = view[size - 1]
    if version > PACK_VERSION:
        raise FormatError(
            f"pack written by a newer Lifeboat (pack version {version}, this Lifeboat reads version "
            f"{PACK_VERSION}); upgrade Lifeboat to read it"
        )
    if version != PACK_VERSION:
        raise FormatError(f"pack trailer is damaged: pack version {version} was never used")
    (count,) = _COUNT.unpack_from(view, size - PACK_TRAILER_BYTES)
    room = size - PACK_TRAILER_BYTES
    if count * PACK_ENTRY_BYTES > room:
        raise FormatError(f"pack claims {count} blobs, too many for its {size} bytes")
    area = room - count * PACK_ENTRY_BYTES
    blobs: list[PackBlob] = []
    offset = 0
    for number, (blob_type, length, blob_id) in enumerate(_ENTRY.iter_unpack(view[area:room])):
        if blob_type not in BLOB_TYPES:
            raise FormatError(f"pack entry {number} has unknown blob type {blob_type}")
        blobs.append(PackBlob(blob_type, blob_id, offset, length))
        offset += length
    if offset != area:
        raise FormatError(f"pack blob lengths add up to {offset} bytes, but its blob area is {area} bytes")
    return blobs


def blob_view(data: bytes | bytearray | memoryview, blob: BlobSpan) -> memoryview:
    """The bytes of ``blob`` in pack plaintext ``data``, without copying.

    Raises :class:`FormatError` if the blob does not lie within the pack's blob area (as the
    pack's trailer gives it; the rest of the pack is not checked: that is :func:`parse_pack`'s job).
    """
    view = memoryview(data).cast("B")
    size = len(view)
    area = 0
    if size >= PACK_TRAILER_BYTES:
        (count,) = _COUNT.unpack_from(view, size - PACK_TRAILER_BYTES)
        area = max(size - PACK_TRAILER_BYTES - count * PACK_ENTRY_BYTES, 0)
    end = blob.offset + blob.length
    if blob.offset < 0 or blob.length < 0 or end > area:
        raise FormatError(
            f"blob at offset {blob.offset}, length {blob.length} lies outside the {area}-byte blob area of its pack"
        )
    return view[blob.offset : end]
