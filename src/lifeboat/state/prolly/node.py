"""The prolly tree's node format: what the tree guarantees, its bytes, ids, hashing, sums and decoding (pure).

A record set is a sorted map ``key -> value`` where every record also carries ``k`` summed
fields (``sums``, e.g. balances per asset; ``k`` may be 0). The tree over it has these
properties, each pinned down by a test:

* the same record set gives the same root however it was built (one pass, or :func:`update`
  of an older tree with any sequence of edits);
* node boundaries depend on keys only, so changing a value rewrites just the nodes on its path,
  and inserting or deleting a key rewrites O(depth) nodes in expectation;
* every node also commits to the record count and the element-wise sums below it (a Merkle sum
  tree), so a proof of one record also proves the totals at the root (solvency);
* inside a node the entries are committed as a binary Merkle tree, so a proof carries
  ``log2(entries)`` sibling hashes per level, not whole nodes: about ``log2(records)`` in all.

This module does no I/O. :func:`build` and :func:`update` yield :class:`Node` objects (an id
and its bytes) for the caller to store; readers fetch bytes by id through a :class:`NodeSource`
and check every node they read against its id (:class:`FormatError` when it does not match).

Boundaries
----------
``key_hash(key) = BLAKE3(0x00 || key)``, read as a 256-bit big-endian integer. Level 0 holds
the records; level ``L + 1`` holds one entry per node of level ``L``, in key order. Leaves aim at
``leaf_fanout`` records, internal nodes at ``fanout`` entries. Walking the entries of level ``L``,
a new node starts at the first entry, at an entry whose key (a record's, or the first key below
a child) has ``key_hash < 2**256 // (leaf_fanout * fanout**L)``, and after a node that has
reached four times its target (the cut that stops hostile keys from making a giant node). The
thresholds nest, so every boundary of level ``L + 1`` is one of level ``L``, and every boundary
depends on keys alone, never on values. The root is the single node of the lowest level that
has only one node; no records give one empty leaf.

Small leaves keep the bytes rewritten by scattered changes low (a leaf of ``m`` records is
rewritten when any of them changes); wide internal nodes keep the tree, and so proofs, short.

Keys can be chosen to move boundaries (a boundary takes about as many tries as the target size),
so hostile keys can make nodes small or cut at the limit; they cannot make a node larger than
the limit, and they cannot change what a root commits to.

Node bytes, hashes and proofs
-----------------------------
The contract is docs/formats.md, "Record snapshots, version 1": the node header and entries
(integers big-endian), the entry, inner and node hashes (BLAKE3 with a domain byte), the
packed ``S = (count, sums)`` of every subtree, the proof JSON (version 2) and the verification
algorithm step by step, with worked examples in hex that tests/test_formats_doc.py checks
against this code. In short::

    header          u8 version = 1 | u8 level | u16 fanout | u16 leaf_fanout | u8 k | u16 n
    leaf entry      0x01 | u16 len | key | u32 len | value | k × u128 sum
    internal entry  0x02 | u16 len | first key | child id (32) | S(child)
    S(x)            u64 count | k × u192 sum
    entry hash      BLAKE3(entry bytes)
    inner hash      BLAKE3(0x03 || left || S(left) || right || S(right))
    node id         BLAKE3(0x04 || header || S(node) || merkle root)

A node is its header followed by its ``n`` entries, keys strictly increasing, nothing after.
``n`` is at most ``4 * leaf_fanout`` in a leaf and ``4 * fanout`` above, and at least 1 except
in the empty tree's root. The Merkle root of a node's entry hashes pairs neighbours layer by
layer, the odd last one moving up unpaired; one entry is its own root, none gives 32 zero bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, Protocol

from blake3 import blake3

from lifeboat.errors import UsageError, exact_bytes
from lifeboat.store.errors import FormatError

NODE_VERSION: Final = 1
DEFAULT_FANOUT: Final = 64
MIN_FANOUT: Final = 2
MAX_FANOUT: Final = 4096
#: A node holds at most this many times ``fanout`` entries.
NODE_LIMIT_FACTOR: Final = 4
MAX_SUM_FIELDS: Final = 64
MAX_KEY_BYTES: Final = 4096
MAX_VALUE_BYTES: Final = 16 << 20
#: The deepest level a tree may have (the level byte); unreachable without grinding key hashes.
MAX_LEVEL: Final = 255
ID_BYTES: Final = 32

SUM_LIMIT: Final = 1 << 128
LANE_BITS: Final = 192
_LANE_MASK: Final = (1 << LANE_BITS) - 1
_COUNT_LIMIT: Final = 1 << 64

TAG_KEY: Final = b"\x00"
TAG_LEAF: Final = 1
TAG_INTERNAL: Final = 2
TAG_INNER: Final = b"\x03"
TAG_NODE: Final = b"\x04"
EMPTY_MERKLE: Final = bytes(ID_BYTES)

HEADER: Final = struct.Struct(">BBHHBH")
TAG_LEN: Final = struct.Struct(">BH")
U32: Final = struct.Struct(">I")
HEADER_BYTES: Final = HEADER.size
# --- data -------------------------------------------------------------------------------------


class Record(NamedTuple):
    """One record: a key, its value, and its ``sum_fields`` non-negative sums (below ``2**128``)."""

    key: bytes
    value: bytes
    sums: tuple[int, ...] = ()


class Delete(NamedTuple):
    """An edit for :func:`update` that removes ``key`` (a no-op when the key is absent)."""

    key: bytes


class Child(NamedTuple):
    """One entry of an internal node: a child node, its first key, its number of records and sums."""

    node_id: bytes
    first_key: bytes
    record_count: int
    sums: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Node:
    """A node as built: its id and canonical bytes (what to store), and a summary of it."""

    node_id: bytes
    data: bytes
    level: int
    count: int
    sums: tuple[int, ...]
    first_key: bytes


@dataclass(frozen=True, slots=True)
class DecodedNode:
    """A node read back by :func:`decode_node`: ``records`` on a leaf, ``children`` above."""

    node_id: bytes
    level: int
    fanout: int
    leaf_fanout: int
    sum_fields: int
    count: int
    sums: tuple[int, ...]
    first_key: bytes
    records: tuple[Record, ...]
    children: tuple[Child, ...]


@dataclass(frozen=True, slots=True)
class Tree:
    """What a build or update made: the root id and what the root commits to."""

    root: bytes
    count: int
    totals: tuple[int, ...]
    height: int
    fanout: int
    leaf_fanout: int
    sum_fields: int


@dataclass(frozen=True, slots=True)
class Change:
    """One difference found by :func:`diff`: a record only in the first tree, only in the second, or in both."""

    key: bytes
    before: Record | None
    after: Record | None

    @property
    def kind(self) -> Literal["added", "removed", "changed"]:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed"


class NodeSource(Protocol):
    """Where readers fetch node bytes by id (a repository, a dict, a directory)."""

    def get(self, node_id: bytes, /) -> bytes: ...


class MemorySource:
    """A :class:`NodeSource` in a dict, for tests and small trees: ``put`` what a build yields."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def put(self, node: Node) -> None:
        self.nodes[node.node_id] = node.data

    def get(self, node_id: bytes, /) -> bytes:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise FormatError(f"prolly node {node_id.hex()} is missing") from None


# --- sums -------------------------------------------------------------------------------------
#
# S(x) travels as one integer: the count in the top lane, then one 192-bit lane per sum field,
# so that ``to_bytes(8 + 24k)`` is exactly its encoding and adding two of them adds the lanes.
# The builder's lanes cannot carry (record sums are below 2**128 and counts below 2**64); values
# read from a node or a proof are added with ``add_sums_checked``, which refuses a carry.


def sum_width(sum_fields: int) -> int:
    return 8 + 24 * sum_fields


def high_bits(sum_fields: int) -> int:
    """The top bit of every lane: when neither operand has one set, no lane can carry."""
    return _HIGH_BITS[sum_fields]


def _make_high_bits(sum_fields: int) -> int:
    mask = 1 << 63
    for _ in range(sum_fields):
        mask = (mask << LANE_BITS) | (1 << (LANE_BITS - 1))
    return mask


_HIGH_BITS: Final = [_make_high_bits(sum_fields) for sum_fields in range(MAX_SUM_FIELDS + 1)]


def pack_sums(count: int, sums: Iterable[int]) -> int:
    packed = count
    for value in sums:
        packed = (packed << LANE_BITS) | value
    return packed


def unpack_sums(packed: int, sum_fields: int) -> tuple[int, tuple[int, ...]]:
    sums = [0] * sum_fields
    for index in range(sum_fields - 1, -1, -1):
        sums[index] = packed & _LANE_MASK
        packed >>= LANE_BITS
    return packed, tuple(sums)


def add_sums_checked(a: int, b: int, high: int, sum_fields: int) -> int | None:
    """``a + b`` lane by lane, or None if a lane would overflow."""
    if not (a | b) & high:
        return a + b
    count_a, sums_a = unpack_sums(a, sum_fields)
    count_b, sums_b = unpack_sums(b, sum_fields)
    count = count_a + count_b
    sums = [x + y for x, y in zip(sums_a, sums_b, strict=True)]
    if count >= _COUNT_LIMIT or any(value > _LANE_MASK for value in sums):
        return None
    return pack_sums(count, sums)


# --- hashing ----------------------------------------------------------------------------------


def hash_key(key: bytes) -> bytes:
    digest: bytes = blake3(TAG_KEY + key).digest()
    return digest


def boundary_thresholds(fanout: int, leaf_fanout: int) -> list[bytes]:
    """Per level, the key hash (as 32 big-endian bytes) below which an entry starts a node."""
    return [
        ((1 << 256) // (leaf_fanout * fanout**level)).to_bytes(32, "big") for level in range(MAX_LEVEL + 1)
    ]


def merkle_root(
    hashes: list[bytes],
    packs: list[int],
    width: int,
    layers: list[tuple[list[bytes], list[int]]] | None = None,
) -> bytes:
    """The Merkle root of a node's entries; ``layers`` collects every layer below the root."""
    while len(hashes) > 1:
        if layers is not None:
            layers.append((hashes, packs))
        encoded = [packed.to_bytes(width, "big") for packed in packs]
        pairs = zip(hashes[0::2], encoded[0::2], hashes[1::2], encoded[1::2], strict=False)
        upper = [blake3(b"".join((TAG_INNER, left, sl, right, sr))).digest() for left, sl, right, sr in pairs]
        sums = [a + b for a, b in zip(packs[0::2], packs[1::2], strict=False)]
        if len(hashes) & 1:
            upper.append(hashes[-1])
            sums.append(packs[-1])
        hashes, packs = upper, sums
    return hashes[0] if hashes else EMPTY_MERKLE


def node_id_of(header: bytes, total: bytes, merkle: bytes) -> bytes:
    digest: bytes = blake3(b"".join((TAG_NODE, header, total, merkle))).digest()
    return digest


def empty_root(*, fanout: int = DEFAULT_FANOUT, leaf_fanout: int | None = None, sum_fields: int = 0) -> bytes:
    """The root of a tree without records."""
    leaf_fanout = check_shape(fanout, leaf_fanout, sum_fields)
    header = HEADER.pack(NODE_VERSION, 0, fanout, leaf_fanout, sum_fields, 0)
    return node_id_of(header, bytes(sum_width(sum_fields)), EMPTY_MERKLE)


def show_key(key: bytes) -> str:
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


def check_shape(fanout: int, leaf_fanout: int | None, sum_fields: int) -> int:
    """Check the shape parameters; the leaf fanout (``fanout`` when None)."""
    leaf_fanout = fanout if leaf_fanout is None else leaf_fanout
    for name, value in (("fanout", fanout), ("leaf_fanout", leaf_fanout)):
        if type(value) is not int or not MIN_FANOUT <= value <= MAX_FANOUT:
            raise UsageError(f"{name} must be an integer from {MIN_FANOUT} to {MAX_FANOUT}, not {value!r}")
    if type(sum_fields) is not int or not 0 <= sum_fields <= MAX_SUM_FIELDS:
        raise UsageError(f"sum_fields must be an integer from 0 to {MAX_SUM_FIELDS}, not {sum_fields!r}")
    return leaf_fanout


# --- decoding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedNode:
    """A decoded node with what proofs and updates reuse: entry hashes, S and bytes, Merkle layers."""

    node: DecodedNode
    hashes: list[bytes]
    packs: list[int]
    blobs: list[bytes]
    layers: list[tuple[list[bytes], list[int]]] | None = None


def decode_node(data: bytes) -> DecodedNode:
    """Parse and hash node bytes; :class:`FormatError` for anything malformed, on any input.

    The returned ``node_id`` is computed from the bytes: compare it with the id the bytes were
    fetched under to detect a tampered or damaged node (the readers here do). Each node has one
    encoding, so equal ids mean equal bytes. Whether the boundaries follow the rule is a property
    of the tree, not checked per node.
    """
    return _parse(data).node


def _parse(data: bytes, *, layers: bool = False, trusted_id: bytes | None = None) -> ParsedNode:
    """Parse and hash a node; with ``layers``, keep every layer of its Merkle tree (for proofs).

    ``trusted_id``: the id the bytes are known to have (they come from storage that
    authenticates them, see :class:`NodeReader`); the node's Merkle root and id are then not
    recomputed, and the result carries that id. The entries are still parsed, checked and hashed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"a prolly node must be bytes, not {type(data).__name__}")
    data = bytes(data)
    end = len(data)
    if end < HEADER_BYTES:
        raise FormatError(f"prolly node is {end} bytes, shorter than its {HEADER_BYTES}-byte header")
    version, level, fanout, leaf_fanout, sum_fields, count = HEADER.unpack_from(data, 0)
    if version != NODE_VERSION:
        raise FormatError(
            f"prolly node version {version} is not supported (this Lifeboat reads version {NODE_VERSION})"
        )
    if not (MIN_FANOUT <= fanout <= MAX_FANOUT and MIN_FANOUT <= leaf_fanout <= MAX_FANOUT):
        raise FormatError(
            f"prolly node has fanout {fanout} and leaf fanout {leaf_fanout}; each must be in "
            f"{MIN_FANOUT}..{MAX_FANOUT}"
        )
    if sum_fields > MAX_SUM_FIELDS:
        raise FormatError(f"prolly node declares {sum_fields} sum fields; at most {MAX_SUM_FIELDS} allowed")
    limit = NODE_LIMIT_FACTOR * (fanout if level else leaf_fanout)
    if count > limit:
        raise FormatError(f"prolly node at level {level} has {count} entries; its fanout allows {limit}")
    if count == 0 and level != 0:
        raise FormatError(f"prolly node at level {level} has no entries")
    width = sum_width(sum_fields)
    hashes: list[bytes] = []
    packs: list[int] = []
    blobs: list[bytes] = []
    records: list[Record] = []
    children: list[Child] = []
    position = HEADER_BYTES
    previous: bytes | None = None
    for index in range(count):
        if end - position < 3:
            raise FormatError(f"prolly node is truncated in entry {index}")
        tag, key_length = TAG_LEN.unpack_from(data, position)
        if tag != (TAG_LEAF if level == 0 else TAG_INTERNAL):
            raise FormatError(f"prolly node at level {level}: entry {index} has tag {tag}")
        if key_length > MAX_KEY_BYTES:
            raise FormatError(
                f"prolly node: entry {index} has a {key_length}-byte key (at most {MAX_KEY_BYTES})"
            )
        key_end = position + 3 + key_length
        key = data[position + 3 : key_end]
        if previous is not None and key <= previous:
            raise FormatError(
                f"prolly node: entry {index} key {show_key(key)} does not sort after {show_key(previous)}"
            )
        previous = key
        if level == 0:
            if end - key_end < 4:
                raise FormatError(f"prolly node is truncated in entry {index}")
            (value_length,) = U32.unpack_from(data, key_end)
            if value_length > MAX_VALUE_BYTES:
                raise FormatError(f"prolly node: entry {index} has a {value_length}-byte value")
            value_end = key_end + 4 + value_length
            entry_end = value_end + 16 * sum_fields
            if entry_end > end:
                raise FormatError(f"prolly node is truncated in entry {index}")
            if sum_fields:
                sums = tuple(
                    [int.from_bytes(data[at : at + 16], "big") for at in range(value_end, entry_end, 16)]
                )
                packs.append(pack_sums(1, sums))
            else:
                sums = ()
                packs.append(1)
            records.append(Record(key, data[key_end + 4 : value_end], sums))
        else:
            entry_end = key_end + ID_BYTES + width
            if entry_end > end:
                raise FormatError(f"prolly node is truncated in entry {index}")
            packed = int.from_bytes(data[key_end + ID_BYTES : entry_end], "big")
            child_count, sums = unpack_sums(packed, sum_fields)
            if child_count == 0:
                raise FormatError(f"prolly node: child {index} claims no records")
            children.append(Child(data[key_end : key_end + ID_BYTES], key, child_count, sums))
            packs.append(packed)
        blob = data[position:entry_end]
        blobs.append(blob)
        hashes.append(blake3(blob).digest())
        position = entry_end
    if position != end:
        raise FormatError(f"prolly node has {end - position} bytes after its {count} entries")
    if level == 0:
        total = sum(packs)
    else:
        high = high_bits(sum_fields)
        total = 0
        for packed in packs:
            added = add_sums_checked(total, packed, high, sum_fields)
            if added is None:
                raise FormatError("prolly node sums overflow")
            total = added
    merkle_layers: list[tuple[list[bytes], list[int]]] | None = [] if layers else None
    if trusted_id is None or layers:
        merkle = merkle_root(hashes, packs, width, merkle_layers)
        node_id = node_id_of(data[:HEADER_BYTES], total.to_bytes(width, "big"), merkle)
    else:
        node_id = trusted_id
    records_count, totals = unpack_sums(total, sum_fields)
    first = records[0].key if records else children[0].first_key if children else b""
    node = DecodedNode(
        node_id,
        level,
        fanout,
        leaf_fanout,
        sum_fields,
        records_count,
        totals,
        first,
        tuple(records),
        tuple(children),
    )
    return ParsedNode(node, hashes, packs, blobs, merkle_layers)


class NodeReader:
    """Fetches nodes, checks each against its id and against the entry that points at it.

    ``verify=False`` skips recomputing each node's id (its Merkle root) from its bytes, for a
    ``source`` that already authenticates what it returns under an id (a repository: nodes come
    out of packs sealed with an AEAD under the repository key). Every node is still parsed
    strictly and checked against the entry that points at it (level, shape, first key, count,
    sums); ``lifeboat state verify --read-data`` is what recomputes every id.
    """

    def __init__(self, source: NodeSource, root: bytes, *, verify: bool = True) -> None:
        self.source = source
        self.verify = verify
        self.root_id = exact_bytes(root, ID_BYTES, "a prolly root")
        self.root = self._fetch(self.root_id)
        node = self.root.node
        if node.level > 0 and len(node.children) < 2:
            raise FormatError(f"prolly root {self.root_id.hex()} has one child; it is not a canonical root")
        self.fanout = node.fanout
        self.leaf_fanout = node.leaf_fanout
        self.sum_fields = node.sum_fields
        self.cache: dict[bytes, ParsedNode] = {}

    def _fetch(self, node_id: bytes, *, layers: bool = False) -> ParsedNode:
        parsed = _parse(self.source.get(node_id), layers=layers, trusted_id=None if self.verify else node_id)
        if parsed.node.node_id != node_id:
            raise FormatError(
                f"prolly node {node_id.hex()} does not match its id (it hashes to "
                f"{parsed.node.node_id.hex()}): the node is damaged or was tampered with"
            )
        return parsed

    def child(self, parent: DecodedNode, child: Child, *, keep: bool = False) -> ParsedNode:
        parsed = self.cache.get(child.node_id) if keep else None
        if parsed is None:
            parsed = self._fetch(child.node_id, layers=keep)
            if keep:
                if len(self.cache) > 4096:
                    self.cache.clear()
                self.cache[child.node_id] = parsed
        node = parsed.node
        if (
            node.level != parent.level - 1
            or node.fanout != self.fanout
            or node.leaf_fanout != self.leaf_fanout
            or node.sum_fields != self.sum_fields
            or node.first_key != child.first_key
            or node.count != child.record_count
            or node.sums != child.sums
        ):
            raise FormatError(
                f"prolly node {child.node_id.hex()} disagrees with its entry in {parent.node_id.hex()} "
                "(level, shape, first key or sums): the tree is damaged"
            )
        return parsed
