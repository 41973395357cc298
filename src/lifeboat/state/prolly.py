"""Record snapshots as a prolly tree: a Merkle search tree with content-defined nodes (pure).

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

Node bytes (version 1; integers big-endian)
-------------------------------------------
::

    header          u8 version = 1 | u8 level | u16 fanout | u16 leaf_fanout | u8 k | u16 n
                                                                               (9 bytes)
    leaf entry      0x01 | u16 len | key | u32 len | value | k × u128 sum
    internal entry  0x02 | u16 len | first key | child id (32) | S(child)

    S(x)            u64 count | k × u192 sum        (the records below x and their sums)

A node is its header followed by its ``n`` entries (all leaf entries when ``level == 0``,
all internal entries otherwise), keys strictly increasing, nothing after. ``n`` is at most
``4 * leaf_fanout`` in a leaf and ``4 * fanout`` above, and at least 1 except in the empty
tree's root. Keys are at most :data:`MAX_KEY_BYTES`, values at most :data:`MAX_VALUE_BYTES`,
a record's sums below ``2**128``.

Hashes (BLAKE3, 32 bytes, the first byte of the input is the domain)::

    entry hash   BLAKE3(entry bytes)                         (they start with 0x01 or 0x02)
    inner hash   BLAKE3(0x03 || left || S(left) || right || S(right))
    node id      BLAKE3(0x04 || header || S(node) || merkle root)

A leaf entry's ``S`` is ``(1, its sums)``; an internal entry's is its child's. The Merkle
root of a node's entry hashes pairs neighbours layer by layer, the odd last one moving up
unpaired: one entry is its own root, none gives 32 zero bytes. ``S`` of an inner node is the
element-wise sum of its two children's, so ``S`` of the root holds the record count and totals.

Proofs (JSON, version 1)
------------------------
::

    {"format": "lifeboat-prolly-proof", "version": 1, "kind": "inclusion" | "absence",
     "key": B, "fanout": int, "leaf_fanout": int, "sum_fields": k,
     "records": [{"key": B, "value": B, "sums": ["<decimal>", ...],
                  "path": [{"entries": n, "index": i, "siblings": [[hash, "<count>",
                            "<sum>", ...], ...]},                         leaf first, root last;
                           {"entries": n, "index": i, "first_key": B, "siblings": [...]}]}]}

A byte string ``B`` (a key or a value) is a JSON string when it is UTF-8 (the usual case: text
keys and JSON records stay readable and short), else ``{"hex": "<lowercase hex>"}``. A sibling
``hash`` is 43 characters of unpadded base64url. Counts and sums are decimal strings.

An inclusion proof holds the record; an absence proof holds its neighbours below and above
(one at an end of the tree, none for the empty tree). The verifier (:func:`verify`) needs only
the proof and the root: it rebuilds the leaf entry, walks the siblings (left or right follows
from ``index`` and ``entries``), computes every ``S`` itself, and compares the final node id with
the root. The sum of the counts of the left siblings is the record's position, which is how an
absence proof shows that its two records are adjacent. A root vouches for the tree its builder
made: like any Merkle search tree, absence is proven relative to a correctly sorted tree.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, NamedTuple, NoReturn, Protocol

from blake3 import blake3

from lifeboat.documents import canonical_json, check_fields, strict_json
from lifeboat.errors import InputError, LifeboatError, UsageError, exact_bytes
from lifeboat.store.errors import FormatError

__all__ = [
    "DEFAULT_FANOUT",
    "ID_BYTES",
    "MAX_FANOUT",
    "MAX_KEY_BYTES",
    "MAX_LEVEL",
    "MAX_PROOF_BYTES",
    "MAX_SUM_FIELDS",
    "MAX_VALUE_BYTES",
    "MIN_FANOUT",
    "NODE_LIMIT_FACTOR",
    "NODE_VERSION",
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "Build",
    "Builder",
    "Change",
    "Child",
    "DecodedNode",
    "Delete",
    "MemorySource",
    "Node",
    "NodeSource",
    "Proof",
    "ProofError",
    "ProofStep",
    "Prover",
    "Record",
    "RecordPath",
    "Sibling",
    "Tree",
    "VerifiedProof",
    "build",
    "decode_node",
    "diff",
    "empty_root",
    "iterate",
    "lookup",
    "prove",
    "read_tree",
    "scan",
    "update",
    "verify",
]

NODE_VERSION: Final = 1
PROOF_FORMAT: Final = "lifeboat-prolly-proof"
PROOF_VERSION: Final = 1
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
#: The largest proof JSON :meth:`Proof.from_json` reads (two records of the largest value, in hex).
MAX_PROOF_BYTES: Final = 4 * MAX_VALUE_BYTES + (1 << 20)

_SUM_LIMIT: Final = 1 << 128
_LANE_BITS: Final = 192
_LANE_MASK: Final = (1 << _LANE_BITS) - 1
_COUNT_LIMIT: Final = 1 << 64

_TAG_KEY: Final = b"\x00"
_TAG_LEAF: Final = 1
_TAG_INTERNAL: Final = 2
_TAG_INNER: Final = b"\x03"
_TAG_NODE: Final = b"\x04"
_EMPTY_MERKLE: Final = bytes(ID_BYTES)

_HEADER: Final = struct.Struct(">BBHHBH")
_TAG_LEN: Final = struct.Struct(">BH")
_U32: Final = struct.Struct(">I")
_HEADER_BYTES: Final = _HEADER.size
#: Comma-separated decimals without leading zeros (a proof's counts and sums), each below 10**80.
_NUMBERS: Final = re.compile(r"(?:0|[1-9][0-9]{0,79})(?:,(?:0|[1-9][0-9]{0,79}))*")


class ProofError(LifeboatError):
    """A proof that does not verify against the given root, or that is malformed."""


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
# read from a node or a proof are added with ``_add_checked``, which refuses a carry.


def _width(sum_fields: int) -> int:
    return 8 + 24 * sum_fields


def _high_bits(sum_fields: int) -> int:
    """The top bit of every lane: when neither operand has one set, no lane can carry."""
    return _HIGH_BITS[sum_fields]


def _make_high_bits(sum_fields: int) -> int:
    mask = 1 << 63
    for _ in range(sum_fields):
        mask = (mask << _LANE_BITS) | (1 << (_LANE_BITS - 1))
    return mask


_HIGH_BITS: Final = [_make_high_bits(sum_fields) for sum_fields in range(MAX_SUM_FIELDS + 1)]


def _pack(count: int, sums: Iterable[int]) -> int:
    packed = count
    for value in sums:
        packed = (packed << _LANE_BITS) | value
    return packed


def _unpack(packed: int, sum_fields: int) -> tuple[int, tuple[int, ...]]:
    sums = [0] * sum_fields
    for index in range(sum_fields - 1, -1, -1):
        sums[index] = packed & _LANE_MASK
        packed >>= _LANE_BITS
    return packed, tuple(sums)


def _add_checked(a: int, b: int, high: int, sum_fields: int) -> int | None:
    """``a + b`` lane by lane, or None if a lane would overflow."""
    if not (a | b) & high:
        return a + b
    count_a, sums_a = _unpack(a, sum_fields)
    count_b, sums_b = _unpack(b, sum_fields)
    count = count_a + count_b
    sums = [x + y for x, y in zip(sums_a, sums_b, strict=True)]
    if count >= _COUNT_LIMIT or any(value > _LANE_MASK for value in sums):
        return None
    return _pack(count, sums)


# --- hashing ----------------------------------------------------------------------------------


def _key_hash(key: bytes) -> bytes:
    digest: bytes = blake3(_TAG_KEY + key).digest()
    return digest


def _thresholds(fanout: int, leaf_fanout: int) -> list[bytes]:
    """Per level, the key hash (as 32 big-endian bytes) below which an entry starts a node."""
    return [
        ((1 << 256) // (leaf_fanout * fanout**level)).to_bytes(32, "big") for level in range(MAX_LEVEL + 1)
    ]


def _merkle_root(
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
        upper = [
            blake3(b"".join((_TAG_INNER, left, sl, right, sr))).digest() for left, sl, right, sr in pairs
        ]
        sums = [a + b for a, b in zip(packs[0::2], packs[1::2], strict=False)]
        if len(hashes) & 1:
            upper.append(hashes[-1])
            sums.append(packs[-1])
        hashes, packs = upper, sums
    return hashes[0] if hashes else _EMPTY_MERKLE


def _node_id(header: bytes, total: bytes, merkle: bytes) -> bytes:
    digest: bytes = blake3(b"".join((_TAG_NODE, header, total, merkle))).digest()
    return digest


def empty_root(*, fanout: int = DEFAULT_FANOUT, leaf_fanout: int | None = None, sum_fields: int = 0) -> bytes:
    """The root of a tree without records."""
    leaf_fanout = _check_shape(fanout, leaf_fanout, sum_fields)
    header = _HEADER.pack(NODE_VERSION, 0, fanout, leaf_fanout, sum_fields, 0)
    return _node_id(header, bytes(_width(sum_fields)), _EMPTY_MERKLE)


def _show(key: bytes) -> str:
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_shape(fanout: int, leaf_fanout: int | None, sum_fields: int) -> int:
    """Check the shape parameters; the leaf fanout (``fanout`` when None)."""
    leaf_fanout = fanout if leaf_fanout is None else leaf_fanout
    for name, value in (("fanout", fanout), ("leaf_fanout", leaf_fanout)):
        if type(value) is not int or not MIN_FANOUT <= value <= MAX_FANOUT:
            raise UsageError(f"{name} must be an integer from {MIN_FANOUT} to {MAX_FANOUT}, not {value!r}")
    if type(sum_fields) is not int or not 0 <= sum_fields <= MAX_SUM_FIELDS:
        raise UsageError(f"sum_fields must be an integer from 0 to {MAX_SUM_FIELDS}, not {sum_fields!r}")
    return leaf_fanout


# --- building ---------------------------------------------------------------------------------


class Builder:
    """Streams sorted records into a tree, holding at most one open node per level.

    :meth:`add` each record in key order, then :meth:`finish`; :meth:`take` returns the nodes
    completed since the last call (children before parents; the root is the last node). Most
    callers want :func:`build`, which does exactly this.
    """

    def __init__(
        self, *, fanout: int = DEFAULT_FANOUT, leaf_fanout: int | None = None, sum_fields: int = 0
    ) -> None:
        self.leaf_fanout = _check_shape(fanout, leaf_fanout, sum_fields)
        self.fanout = fanout
        self.sum_fields = sum_fields
        self.result: Tree | None = None
        self._limit = NODE_LIMIT_FACTOR * fanout
        self._leaf_limit = NODE_LIMIT_FACTOR * self.leaf_fanout
        self._width = _width(sum_fields)
        self._thresholds = _thresholds(fanout, self.leaf_fanout)
        self._out: list[Node] = []
        # One open node per level: entry hashes, S of each entry, entry bytes, and its first key.
        self._hashes: list[list[bytes]] = [[]]
        self._packs: list[list[int]] = [[]]
        self._blobs: list[list[bytes]] = [[]]
        self._first: list[tuple[bytes, bytes]] = [(b"", b"")]
        self._received: list[int] = [0]
        # Per level, its first entry (node id, first key, S, whether that node was reused whole):
        # when it stays the only one, that node is the root.
        self._only: list[tuple[bytes, bytes, int, bool]] = [(b"", b"", 0, False)]
        self._last_key: bytes | None = None
        #: Whether the root :meth:`finish` found is an old node added whole (:func:`update`).
        self.root_reused = False

    def take(self) -> list[Node]:
        """The nodes completed since the last call."""
        out, self._out = self._out, []
        return out

    def add(self, record: Record | tuple[bytes, bytes, tuple[int, ...]]) -> None:
        """Add the next record; its key must sort after the previous one."""
        self._feed(iter((record,)))

    def _feed(self, records: Iterator[Record | tuple[bytes, bytes, tuple[int, ...]]]) -> bool:
        """Add records until a node is completed (False) or ``records`` runs out (True).

        The hot loop of :func:`build`: everything it touches is a local.
        """
        if self.result is not None:
            raise UsageError("this tree is finished; start a new Builder")
        sum_fields = self.sum_fields
        sum_bytes = 16 * sum_fields
        threshold = self._thresholds[0]
        limit = self._leaf_limit
        hashes, packs, blobs = self._hashes[0], self._packs[0], self._blobs[0]
        last = self._last_key
        position = self._received[0]
        leaf_header = _TAG_LEN.pack
        value_header = _U32.pack
        join = b"".join
        hash_of = blake3
        try:
            for record in records:
                try:
                    key, value, sums = record
                except (TypeError, ValueError):
                    raise InputError(
                        f"record {position}: expected (key, value, sums), not {type(record).__name__}"
                    ) from None
                if type(key) is not bytes or type(value) is not bytes:
                    raise InputError(f"record {position}: key and value must be bytes")
                if last is not None and key <= last:
                    what = "repeats the key" if key == last else "is out of order after"
                    raise InputError(
                        f"record {position}: key {_show(key)} {what} {_show(last)}; records must be sorted"
                    )
                if len(key) > MAX_KEY_BYTES or len(value) > MAX_VALUE_BYTES:
                    raise InputError(
                        f"record {position} ({_show(key)}): keys are at most {MAX_KEY_BYTES} bytes, "
                        f"values at most {MAX_VALUE_BYTES}"
                    )
                if sum_fields:
                    if type(sums) is not tuple or len(sums) != sum_fields:
                        self._refuse_sums(sums, position, key)
                    combined = 0
                    packed = 1
                    for item in sums:
                        if type(item) is not int or not 0 <= item < _SUM_LIMIT:
                            self._refuse_sums(sums, position, key)
                        combined = (combined << 128) | item
                        packed = (packed << _LANE_BITS) | item
                    encoded = combined.to_bytes(sum_bytes, "big")
                elif sums:
                    raise InputError(
                        f"record {position} ({_show(key)}) has {len(sums)} sums; this tree declares none"
                    )
                else:
                    encoded = b""
                    packed = 1
                key_hash = hash_of(_TAG_KEY + key).digest()
                position += 1
                last = key
                if hashes and key_hash < threshold:
                    self._close(0)
                    hashes, packs, blobs = self._hashes[0], self._packs[0], self._blobs[0]
                if not hashes:
                    self._first[0] = (key, key_hash)
                blob = join((leaf_header(_TAG_LEAF, len(key)), key, value_header(len(value)), value, encoded))
                hashes.append(hash_of(blob).digest())
                packs.append(packed)
                blobs.append(blob)
                if len(hashes) == limit:
                    self._close(0)
                    hashes, packs, blobs = self._hashes[0], self._packs[0], self._blobs[0]
                if self._out:
                    return False
            return True
        finally:
            self._last_key = last
            self._received[0] = position

    def _add_entry(self, key: bytes, blob: bytes, digest: bytes, packed: int) -> None:
        """Add a record already encoded and hashed (an unchanged record during :func:`update`)."""
        key_hash = _key_hash(key)
        hashes = self._hashes[0]
        self._received[0] += 1
        self._last_key = key
        if hashes and key_hash < self._thresholds[0]:
            self._close(0)
            hashes = self._hashes[0]
        if not hashes:
            self._first[0] = (key, key_hash)
        hashes.append(digest)
        self._packs[0].append(packed)
        self._blobs[0].append(blob)
        if len(hashes) == self._leaf_limit:
            self._close(0)

    def _refuse_sums(self, sums: object, position: int, key: bytes) -> NoReturn:
        """Raise :class:`InputError` naming what is wrong with a record's sums."""
        where = f"record {position} ({_show(key)})"
        if type(sums) is not tuple or len(sums) != self.sum_fields:
            raise InputError(f"{where}: sums must be a tuple of {self.sum_fields} integers")
        for field, item in enumerate(sums):
            if type(item) is not int:
                raise InputError(f"{where}: sum {field} is not an integer")
            if not 0 <= item < _SUM_LIMIT:
                problem = "negative" if item < 0 else "2**128 or more"
                raise InputError(f"{where}: sum {field} is {problem} ({item})")
        raise AssertionError("unreachable: the sums are valid")

    def _close(self, level: int) -> None:
        """Turn the open node of ``level`` into a :class:`Node` and add it to the level above."""
        hashes, packs, blobs = self._hashes[level], self._packs[level], self._blobs[level]
        first_key, first_hash = self._first[level]
        header = _HEADER.pack(
            NODE_VERSION, level, self.fanout, self.leaf_fanout, self.sum_fields, len(hashes)
        )
        total = sum(packs)
        total_bytes = total.to_bytes(self._width, "big")
        node_id = _node_id(header, total_bytes, _merkle_root(hashes, packs, self._width))
        count, sums = _unpack(total, self.sum_fields)
        self._out.append(Node(node_id, header + b"".join(blobs), level, count, sums, first_key))
        self._hashes[level], self._packs[level], self._blobs[level] = [], [], []
        self._push(level + 1, node_id, first_key, first_hash, total, total_bytes)

    def _push(
        self,
        level: int,
        node_id: bytes,
        first_key: bytes,
        first_hash: bytes,
        total: int,
        total_bytes: bytes,
        entry: tuple[bytes, bytes] | None = None,
        reused: bool = False,
    ) -> None:
        """Add a finished node of ``level - 1`` as the next entry of ``level``.

        ``entry`` is the entry's bytes and hash when already known (a reused node's, from its parent).
        """
        if level > MAX_LEVEL:
            raise InputError(f"the tree would be more than {MAX_LEVEL + 1} levels deep (hostile keys?)")
        if level == len(self._hashes):
            self._push_level()
        self._received[level] += 1
        if self._received[level] == 1:
            self._only[level] = (node_id, first_key, total, reused)
        if self._hashes[level] and first_hash < self._thresholds[level]:
            self._close(level)
        hashes = self._hashes[level]
        if not hashes:
            self._first[level] = (first_key, first_hash)
        if entry is None:
            blob = b"".join((_TAG_LEN.pack(_TAG_INTERNAL, len(first_key)), first_key, node_id, total_bytes))
            digest = blake3(blob).digest()
        else:
            blob, digest = entry
        hashes.append(digest)
        self._packs[level].append(total)
        self._blobs[level].append(blob)
        if len(hashes) == self._limit:
            self._close(level)

    def _can_take(self, level: int, first_hash: bytes) -> bool:
        """Whether a node of ``level`` starting with this key hash may be added whole.

        Adding it must leave the tree as adding its records one by one would. With every level
        up to ``level`` empty, it starts a node at each. Otherwise its first record would close
        the open nodes, which fills the levels above them up to ``level``; it then starts a
        node at all of them only if its key hash passes the strictest threshold, ``level``'s.
        """
        if any(self._hashes[below] for below in range(min(level + 1, len(self._hashes)))):
            return first_hash < self._thresholds[level]
        return True

    def _add_node(
        self, level: int, child: Child, first_hash: bytes, entry: tuple[bytes, bytes, int] | None = None
    ) -> None:
        """Add an existing node of ``level`` whole (:func:`update`); the caller checked :meth:`_can_take`.

        ``entry`` is the node's entry bytes, hash and S in its old parent, when there is one.
        """
        for below in range(level + 1):
            if below < len(self._hashes) and self._hashes[below]:
                self._close(below)
        while len(self._hashes) <= level:
            self._push_level()
        if entry is None:
            total = _pack(child.record_count, child.sums)
            self._push(
                level + 1,
                child.node_id,
                child.first_key,
                first_hash,
                total,
                total.to_bytes(self._width, "big"),
                reused=True,
            )
        else:
            blob, digest, total = entry
            self._push(
                level + 1, child.node_id, child.first_key, first_hash, total, b"", (blob, digest), reused=True
            )
        self._last_key = child.first_key

    def _push_level(self) -> None:
        self._hashes.append([])
        self._packs.append([])
        self._blobs.append([])
        self._first.append((b"", b""))
        self._received.append(0)
        self._only.append((b"", b"", 0, False))

    def finish(self) -> Tree:
        """Close every open node; the last node :meth:`take` returns afterwards is the root (unless reused)."""
        if self.result is not None:
            return self.result
        received = self._received
        level = 0
        while level < len(self._hashes):  # closing a node may add a level
            # One entry at this level and nothing above it (update adds reused subtrees high up):
            # the node that entry points at is the root.
            if level > 0 and received[level] == 1 and not any(received[level + 1 :]):
                node_id, _first_key, total, self.root_reused = self._only[level]
                count, totals = _unpack(total, self.sum_fields)
                self.result = Tree(
                    node_id, count, totals, level, self.fanout, self.leaf_fanout, self.sum_fields
                )
                return self.result
            if self._hashes[level]:
                self._close(level)
            level += 1
        # Nothing was added: the empty tree is one empty leaf.
        header = _HEADER.pack(NODE_VERSION, 0, self.fanout, self.leaf_fanout, self.sum_fields, 0)
        node_id = _node_id(header, bytes(self._width), _EMPTY_MERKLE)
        zeros = (0,) * self.sum_fields
        self._out.append(Node(node_id, header, 0, 0, zeros, b""))
        self.result = Tree(node_id, 0, zeros, 1, self.fanout, self.leaf_fanout, self.sum_fields)
        return self.result


class Build(Iterator[Node]):
    """The nodes of a build or update, as they are completed; then :attr:`tree` says what was made."""

    def __init__(self, nodes: Iterator[Node], builder: Builder) -> None:
        self._nodes = nodes
        self._builder = builder

    def __iter__(self) -> Build:
        return self

    def __next__(self) -> Node:
        return next(self._nodes)

    @property
    def tree(self) -> Tree:
        """The root and its summary; available once every node has been taken."""
        if self._builder.result is None:
            raise UsageError("the build is not finished: take every node first")
        return self._builder.result


def build(
    records: Iterable[Record | tuple[bytes, bytes, tuple[int, ...]]],
    *,
    fanout: int = DEFAULT_FANOUT,
    leaf_fanout: int | None = None,
    sum_fields: int = 0,
) -> Build:
    """The nodes of the tree over ``records`` (sorted by key, keys unique), leaves first.

    Leaves aim at ``leaf_fanout`` records (default: ``fanout``), internal nodes at ``fanout``
    entries. Memory stays at one open node per level, whatever the number of records.

    >>> nodes = build([Record(b"a", b"1", (5,)), Record(b"b", b"2", (7,))], sum_fields=1)
    >>> [node.level for node in nodes], nodes.tree.count, nodes.tree.totals
    ([0], 2, (12,))
    """
    builder = Builder(fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
    return Build(_build(records, builder), builder)


def _build(
    records: Iterable[Record | tuple[bytes, bytes, tuple[int, ...]]], builder: Builder
) -> Iterator[Node]:
    iterator = iter(records)
    while not builder._feed(iterator):
        yield from builder.take()
    builder.finish()
    yield from builder.take()


# --- decoding ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parsed:
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


def _parse(data: bytes, *, layers: bool = False) -> _Parsed:
    """Parse and hash a node; with ``layers``, keep every layer of its Merkle tree (for proofs)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"a prolly node must be bytes, not {type(data).__name__}")
    data = bytes(data)
    end = len(data)
    if end < _HEADER_BYTES:
        raise FormatError(f"prolly node is {end} bytes, shorter than its {_HEADER_BYTES}-byte header")
    version, level, fanout, leaf_fanout, sum_fields, count = _HEADER.unpack_from(data, 0)
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
    width = _width(sum_fields)
    hashes: list[bytes] = []
    packs: list[int] = []
    blobs: list[bytes] = []
    records: list[Record] = []
    children: list[Child] = []
    position = _HEADER_BYTES
    previous: bytes | None = None
    for index in range(count):
        if end - position < 3:
            raise FormatError(f"prolly node is truncated in entry {index}")
        tag, key_length = _TAG_LEN.unpack_from(data, position)
        if tag != (_TAG_LEAF if level == 0 else _TAG_INTERNAL):
            raise FormatError(f"prolly node at level {level}: entry {index} has tag {tag}")
        if key_length > MAX_KEY_BYTES:
            raise FormatError(
                f"prolly node: entry {index} has a {key_length}-byte key (at most {MAX_KEY_BYTES})"
            )
        key_end = position + 3 + key_length
        key = data[position + 3 : key_end]
        if previous is not None and key <= previous:
            raise FormatError(
                f"prolly node: entry {index} key {_show(key)} does not sort after {_show(previous)}"
            )
        previous = key
        if level == 0:
            if end - key_end < 4:
                raise FormatError(f"prolly node is truncated in entry {index}")
            (value_length,) = _U32.unpack_from(data, key_end)
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
                packs.append(_pack(1, sums))
            else:
                sums = ()
                packs.append(1)
            records.append(Record(key, data[key_end + 4 : value_end], sums))
        else:
            entry_end = key_end + ID_BYTES + width
            if entry_end > end:
                raise FormatError(f"prolly node is truncated in entry {index}")
            packed = int.from_bytes(data[key_end + ID_BYTES : entry_end], "big")
            child_count, sums = _unpack(packed, sum_fields)
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
        high = _high_bits(sum_fields)
        total = 0
        for packed in packs:
            added = _add_checked(total, packed, high, sum_fields)
            if added is None:
                raise FormatError("prolly node sums overflow")
            total = added
    merkle_layers: list[tuple[list[bytes], list[int]]] | None = [] if layers else None
    merkle = _merkle_root(hashes, packs, width, merkle_layers)
    node_id = _node_id(data[:_HEADER_BYTES], total.to_bytes(width, "big"), merkle)
    records_count, totals = _unpack(total, sum_fields)
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
    return _Parsed(node, hashes, packs, blobs, merkle_layers)


class _Reader:
    """Fetches nodes, checks each against its id and against the entry that points at it."""

    def __init__(self, source: NodeSource, root: bytes) -> None:
        self.source = source
        self.root_id = exact_bytes(root, ID_BYTES, "a prolly root")
        self.root = self._fetch(self.root_id)
        node = self.root.node
        if node.level > 0 and len(node.children) < 2:
            raise FormatError(f"prolly root {self.root_id.hex()} has one child; it is not a canonical root")
        self.fanout = node.fanout
        self.leaf_fanout = node.leaf_fanout
        self.sum_fields = node.sum_fields
        self.cache: dict[bytes, _Parsed] = {}

    def _fetch(self, node_id: bytes, *, layers: bool = False) -> _Parsed:
        parsed = _parse(self.source.get(node_id), layers=layers)
        if parsed.node.node_id != node_id:
            raise FormatError(
                f"prolly node {node_id.hex()} does not match its id (it hashes to "
                f"{parsed.node.node_id.hex()}): the node is damaged or was tampered with"
            )
        return parsed

    def child(self, parent: DecodedNode, child: Child, *, keep: bool = False) -> _Parsed:
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


# --- reading ----------------------------------------------------------------------------------


def read_tree(source: NodeSource, root: bytes) -> Tree:
    """What the root commits to: record count, totals, height, fanouts and sum fields."""
    node = _Reader(source, root).root.node
    return Tree(
        node.node_id, node.count, node.sums, node.level + 1, node.fanout, node.leaf_fanout, node.sum_fields
    )


def lookup(source: NodeSource, root: bytes, key: bytes) -> bytes | None:
    """The value stored under ``key``, or None."""
    record = _find(_Reader(source, root), key)
    return None if record is None else record.value


def _find(reader: _Reader, key: bytes) -> Record | None:
    if type(key) is not bytes:
        raise InputError(f"a key must be bytes, not {type(key).__name__}")
    node = reader.root.node
    while node.level > 0:
        index = bisect.bisect_right([child.first_key for child in node.children], key) - 1
        if index < 0:
            return None
        node = reader.child(node, node.children[index]).node
    index = bisect.bisect_left([record.key for record in node.records], key)
    if index < len(node.records) and node.records[index].key == key:
        return node.records[index]
    return None


def scan(source: NodeSource, root: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every ``(key, value)`` in key order, read without hashing: node ids are not checked.

    For comparing a stored tree with new records before :func:`update`, which checks every node
    it reads and rewrites; an unchanged subtree is kept by id either way. Use :func:`iterate`
    when the records themselves are the result. Malformed bytes raise :class:`FormatError`.
    """
    pending = [root]
    while pending:
        node_id = pending.pop()
        data = source.get(node_id)
        try:
            version, level, _fanout, _leaf_fanout, sum_fields, count = _HEADER.unpack_from(data, 0)
            if version != NODE_VERSION:
                raise FormatError(f"node {node_id.hex()[:16]} has version {version}")
            position = _HEADER_BYTES
            if level == 0:
                skip = 16 * sum_fields
                for _ in range(count):
                    length = _TAG_LEN.unpack_from(data, position)[1]
                    position += 3
                    key = data[position : position + length]
                    position += length
                    size = _U32.unpack_from(data, position)[0]
                    position += 4
                    yield key, data[position : position + size]
                    position += size + skip
            else:
                skip = ID_BYTES + _width(sum_fields)
                children = []
                for _ in range(count):
                    position += 3 + _TAG_LEN.unpack_from(data, position)[1]
                    children.append(data[position : position + ID_BYTES])
                    position += skip
                pending.extend(reversed(children))
        except struct.error:
            raise FormatError(f"node {node_id.hex()[:16]} is truncated") from None


def iterate(source: NodeSource, root: bytes, start: bytes | None = None) -> Iterator[Record]:
    """Every record in key order, from the first key at or after ``start``."""
    reader = _Reader(source, root)
    return _iterate(reader, reader.root.node, start)


def _iterate(reader: _Reader, node: DecodedNode, start: bytes | None) -> Iterator[Record]:
    if node.level == 0:
        first = 0 if start is None else bisect.bisect_left([record.key for record in node.records], start)
        yield from node.records[first:]
        return
    first = 0
    if start is not None:
        first = max(bisect.bisect_right([child.first_key for child in node.children], start) - 1, 0)
    for offset, child in enumerate(node.children[first:]):
        yield from _iterate(reader, reader.child(node, child).node, start if offset == 0 else None)


class _Ref(NamedTuple):
    """A subtree not yet opened during :func:`diff`."""

    parent: DecodedNode
    child: Child


class _Cursor:
    """Walks a tree in key order, yielding subtrees whole until asked to open them."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.frames: list[list[Record | _Ref]] = [self._items(reader.root.node)]
        self.positions = [0]

    @staticmethod
    def _items(node: DecodedNode) -> list[Record | _Ref]:
        if node.level == 0:
            return list(node.records)
        return [_Ref(node, child) for child in node.children]

    def peek(self) -> Record | _Ref | None:
        while self.frames:
            items, position = self.frames[-1], self.positions[-1]
            if position < len(items):
                return items[position]
            self.frames.pop()
            self.positions.pop()
        return None

    def skip(self) -> None:
        self.positions[-1] += 1

    def open(self, ref: _Ref) -> None:
        self.positions[-1] += 1
        node = self.reader.child(ref.parent, ref.child).node
        self.frames.append(self._items(node))
        self.positions.append(0)


def diff(source_a: NodeSource, root_a: bytes, source_b: NodeSource, root_b: bytes) -> Iterator[Change]:
    """What changed from tree ``a`` to tree ``b``, in key order.

    Subtrees with the same id in both are skipped unread, so the cost follows the difference.
    """
    if root_a == root_b:
        return
    a, b = _Cursor(_Reader(source_a, root_a)), _Cursor(_Reader(source_b, root_b))
    while True:
        item_a, item_b = a.peek(), b.peek()
        if item_a is None and item_b is None:
            return
        if item_b is None or (item_a is not None and _first(item_a) < _first(item_b)):
            if isinstance(item_a, _Ref):
                a.open(item_a)
            else:
                assert item_a is not None
                yield Change(item_a.key, item_a, None)
                a.skip()
        elif item_a is None or _first(item_b) < _first(item_a):
            if isinstance(item_b, _Ref):
                b.open(item_b)
            else:
                yield Change(item_b.key, None, item_b)
                b.skip()
        elif isinstance(item_a, _Ref) and isinstance(item_b, _Ref):
            if item_a.child.node_id == item_b.child.node_id:
                a.skip()
                b.skip()
            else:
                level_a, level_b = item_a.parent.level, item_b.parent.level
                if level_a >= level_b:
                    a.open(item_a)
                if level_b >= level_a:
                    b.open(item_b)
        elif isinstance(item_a, _Ref):
            a.open(item_a)
        elif isinstance(item_b, _Ref):
            b.open(item_b)
        else:
            if item_a != item_b:
                yield Change(item_a.key, item_a, item_b)
            a.skip()
            b.skip()


def _first(item: Record | _Ref) -> bytes:
    return item.child.first_key if isinstance(item, _Ref) else item.key


# --- incremental update ------------------------------------------------------------------------


def update(source: NodeSource, root: bytes, edits: Iterable[Record | Delete]) -> Build:
    """The nodes of the tree that results from applying ``edits`` (sorted by key) to ``root``.

    A :class:`Record` inserts or replaces; a :class:`Delete` removes (nothing if absent).
    Untouched subtrees are reused by id and not yielded; only the paths that change are
    rewritten, and the root is the one a full :func:`build` of the new record set gives.
    """
    reader = _Reader(source, root)
    builder = Builder(fanout=reader.fanout, leaf_fanout=reader.leaf_fanout, sum_fields=reader.sum_fields)
    return Build(_update(reader, builder, _checked_edits(edits, reader.sum_fields)), builder)


class _Edits:
    def __init__(self, edits: Iterator[Record | Delete]) -> None:
        self._edits = edits
        self.head: Record | Delete | None = next(edits, None)

    def advance(self) -> Record | Delete:
        current = self.head
        assert current is not None
        self.head = next(self._edits, None)
        return current


def _checked_edits(edits: Iterable[Record | Delete], sum_fields: int) -> Iterator[Record | Delete]:
    previous: bytes | None = None
    for position, edit in enumerate(edits):
        if not isinstance(edit, Record | Delete):
            raise InputError(f"edit {position}: expected a Record or a Delete, not {type(edit).__name__}")
        key = edit.key
        if type(key) is not bytes:
            raise InputError(f"edit {position}: the key must be bytes")
        if previous is not None and key <= previous:
            what = "repeats the key" if key == previous else "is out of order after"
            raise InputError(
                f"edit {position}: key {_show(key)} {what} {_show(previous)}; edits must be sorted"
            )
        if isinstance(edit, Record):
            sums = edit.sums
            if (
                type(edit.value) is not bytes
                or type(sums) is not tuple
                or len(sums) != sum_fields
                or not all(type(item) is int and 0 <= item < _SUM_LIMIT for item in sums)
            ):
                raise InputError(
                    f"edit {position} ({_show(key)}): the value must be bytes and the sums "
                    f"{sum_fields} integers from 0 to 2**128 - 1"
                )
        previous = key
        yield edit


def _update(reader: _Reader, builder: Builder, edits_iter: Iterator[Record | Delete]) -> Iterator[Node]:
    edits = _Edits(edits_iter)
    root = reader.root.node
    if edits.head is None:
        # Nothing to do: the old root, added whole, is the new one.
        child = Child(root.node_id, root.first_key, root.count, root.sums)
        if root.count:
            builder._add_node(root.level, child, _key_hash(root.first_key))
    else:
        yield from _visit(reader, builder, edits, reader.root, None)
    tree = builder.finish()
    yield from builder.take()
    if builder.root_reused:
        # An old node is the only one at its level; if it has one child, so has every level
        # below down to the first node with two entries or a leaf: that one is the root.
        node = reader.cache.get(tree.root) or reader._fetch(tree.root)
        while node.node.level > 0 and len(node.node.children) == 1:
            node = reader.child(node.node, node.node.children[0])
        builder.result = replace(tree, root=node.node.node_id, height=node.node.level + 1)


def _visit(
    reader: _Reader, builder: Builder, edits: _Edits, parsed: _Parsed, next_start: bytes | None
) -> Iterator[Node]:
    """Feed a node's records, merged with the edits before ``next_start``, into ``builder``."""
    node = parsed.node
    if node.level == 0:
        for index, record in enumerate(node.records):
            while edits.head is not None and edits.head.key < record.key:
                edit = edits.advance()
                if isinstance(edit, Record):
                    builder.add(edit)
            if edits.head is not None and edits.head.key == record.key:
                edit = edits.advance()
                if isinstance(edit, Record):
                    builder.add(edit)
            else:
                builder._add_entry(record.key, parsed.blobs[index], parsed.hashes[index], parsed.packs[index])
            if builder._out:
                yield from builder.take()
        while edits.head is not None and (next_start is None or edits.head.key < next_start):
            edit = edits.advance()
            if isinstance(edit, Record):
                builder.add(edit)
            if builder._out:
                yield from builder.take()
        return
    children = node.children
    for index, child in enumerate(children):
        after = children[index + 1].first_key if index + 1 < len(children) else next_start
        head = edits.head
        untouched = head is None or (
            after is not None and (head.key > after or (head.key == after and isinstance(head, Record)))
        )
        if untouched:
            first_hash = _key_hash(child.first_key)
            if builder._can_take(node.level - 1, first_hash):
                entry = (parsed.blobs[index], parsed.hashes[index], parsed.packs[index])
                builder._add_node(node.level - 1, child, first_hash, entry)
                if builder._out:
                    yield from builder.take()
                continue
        yield from _visit(reader, builder, edits, reader.child(node, child), after)


# --- proofs -----------------------------------------------------------------------------------


class Sibling(NamedTuple):
    """A sibling on a proof path: its hash, and the number of records and their sums below it."""

    hash: bytes
    record_count: int
    sums: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ProofStep:
    """One node on a proof path: its entry count, the entry's index, and the siblings in it.

    ``first_key`` is the first key of the child the path came from (internal nodes only).
    """

    entries: int
    index: int
    siblings: tuple[Sibling, ...]
    first_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class RecordPath:
    """A record and its path from its leaf (first step) to the root (last step)."""

    record: Record
    steps: tuple[ProofStep, ...]


@dataclass(frozen=True, slots=True)
class Proof:
    """That ``key`` is in the tree (one path) or not (the paths of its neighbours)."""

    key: bytes
    present: bool
    fanout: int
    leaf_fanout: int
    sum_fields: int
    paths: tuple[RecordPath, ...]

    def to_json(self) -> bytes:
        """The proof as canonical JSON (text or hex bytes, base64url hashes, decimal counts and sums)."""
        document = {
            "format": PROOF_FORMAT,
            "version": PROOF_VERSION,
            "kind": "inclusion" if self.present else "absence",
            "key": _bytes_to_json(self.key),
            "fanout": self.fanout,
            "leaf_fanout": self.leaf_fanout,
            "sum_fields": self.sum_fields,
            "records": [_path_to_json(path) for path in self.paths],
        }
        return canonical_json(document)

    @classmethod
    def from_json(cls, data: bytes | str) -> Proof:
        """Parse :meth:`to_json` output; :class:`ProofError` for anything else."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        if len(data) > MAX_PROOF_BYTES:
            raise ProofError(f"the proof is {len(data)} bytes; at most {MAX_PROOF_BYTES} allowed")
        body = strict_json(data, "the proof", ProofError)
        if not isinstance(body, dict):
            raise ProofError("the proof is not a JSON object")
        if body.get("format") != PROOF_FORMAT:
            raise ProofError(f"not a Lifeboat record proof (format {body.get('format')!r})")
        version = body.get("version")
        if type(version) is not int or version != PROOF_VERSION:
            raise ProofError(
                f"proof version {version!r} is not supported (this Lifeboat reads version {PROOF_VERSION})"
            )
        check_fields(body, _PROOF_FIELDS, "the proof", ProofError)
        kind = body["kind"]
        if kind not in ("inclusion", "absence"):
            raise ProofError(f"the proof has unknown kind {kind!r}")
        fanout = _json_int(body["fanout"], "fanout", MAX_FANOUT)
        leaf_fanout = _json_int(body["leaf_fanout"], "leaf_fanout", MAX_FANOUT)
        sum_fields = _json_int(body["sum_fields"], "sum_fields", MAX_SUM_FIELDS)
        records = body["records"]
        if not isinstance(records, list) or len(records) > 2:
            raise ProofError("the proof's records must be a list of at most two")
        paths = tuple(_path_from_json(item, sum_fields, number) for number, item in enumerate(records))
        return cls(
            _json_bytes(body["key"], "key"), kind == "inclusion", fanout, leaf_fanout, sum_fields, paths
        )


_PROOF_FIELDS: Final = frozenset(
    {"format", "version", "kind", "key", "fanout", "leaf_fanout", "sum_fields", "records"}
)
_RECORD_FIELDS: Final = frozenset({"key", "value", "sums", "path"})
_STEP_FIELDS: Final = frozenset({"entries", "index", "siblings"})
_INNER_STEP_FIELDS: Final = _STEP_FIELDS | {"first_key"}


def _path_to_json(path: RecordPath) -> dict[str, Any]:
    steps = []
    for step in path.steps:
        item: dict[str, Any] = {
            "entries": step.entries,
            "index": step.index,
            "siblings": [[_b64(s.hash), str(s.record_count), *map(str, s.sums)] for s in step.siblings],
        }
        if step.first_key is not None:
            item["first_key"] = _bytes_to_json(step.first_key)
        steps.append(item)
    record = path.record
    return {
        "key": _bytes_to_json(record.key),
        "value": _bytes_to_json(record.value),
        "sums": list(map(str, record.sums)),
        "path": steps,
    }


def _path_from_json(item: object, sum_fields: int, number: int) -> RecordPath:
    what = f"proof record {number}"
    if not isinstance(item, dict):
        raise ProofError(f"{what} is not a JSON object")
    if item.keys() != _RECORD_FIELDS:
        check_fields(item, _RECORD_FIELDS, what, ProofError)
    sums = item["sums"]
    if not isinstance(sums, list) or len(sums) != sum_fields:
        raise ProofError(f"{what} must have {sum_fields} sums")
    record = Record(
        _json_bytes(item["key"], f"{what} key"),
        _json_bytes(item["value"], f"{what} value"),
        tuple(_json_decimal(value, f"{what} sum") for value in sums),
    )
    raw_steps = item["path"]
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_LEVEL + 1:
        raise ProofError(f"{what} path must be a non-empty list")
    steps = []
    for level, raw in enumerate(raw_steps):
        where = f"{what} level {level}"
        if not isinstance(raw, dict):
            raise ProofError(f"{where} is not a JSON object")
        expected = _INNER_STEP_FIELDS if level else _STEP_FIELDS
        if raw.keys() != expected:
            check_fields(raw, expected, where, ProofError)
        raw_siblings = raw["siblings"]
        if not isinstance(raw_siblings, list) or len(raw_siblings) > 32:
            raise ProofError(f"{where} siblings must be a list")
        siblings = []
        for sibling in raw_siblings:
            # One check per sibling, not per value: this is the hot part of reading a proof.
            try:
                encoded, numbers = sibling[0], sibling[1:]
                digest = base64.urlsafe_b64decode(encoded + "=")
                text = ",".join(numbers)
                canonical = (
                    _NUMBERS.fullmatch(text) is not None
                    and text.count(",") == len(numbers) - 1
                    and _b64(digest) == encoded
                )
            except (TypeError, ValueError, KeyError, IndexError):
                canonical = False
            if type(sibling) is not list or len(sibling) != sum_fields + 2 or not canonical:
                raise ProofError(
                    f"{where}: a sibling must be [hash as {_B64_ID_CHARS} characters of base64url, count, "
                    f"{sum_fields} sums as decimal strings without leading zeros]"
                )
            if len(digest) != ID_BYTES:
                raise ProofError(f"{where}: a sibling hash must be {ID_BYTES} bytes")
            values = tuple(map(int, numbers))
            siblings.append(Sibling(digest, values[0], values[1:]))
        first_key = _json_bytes(raw["first_key"], f"{where} first_key") if level else None
        steps.append(
            ProofStep(
                _json_int(raw["entries"], f"{where} entries", NODE_LIMIT_FACTOR * MAX_FANOUT),
                _json_int(raw["index"], f"{where} index", NODE_LIMIT_FACTOR * MAX_FANOUT),
                tuple(siblings),
                first_key,
            )
        )
    return RecordPath(record, tuple(steps))


def _json_int(value: object, what: str, limit: int) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise ProofError(f"the proof's {what} must be an integer from 0 to {limit}")
    return value


def _json_decimal(value: object, what: str) -> int:
    if (
        type(value) is not str
        or not 0 < len(value) <= 80
        or not value.isascii()
        or not value.isdigit()
        or (value[0] == "0" and value != "0")
    ):
        raise ProofError(f"the proof's {what} must be a decimal string without leading zeros")
    return int(value)


_B64_ID_CHARS: Final = 43


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _bytes_to_json(data: bytes) -> str | dict[str, str]:
    """A key or value: its text when it is UTF-8, else ``{"hex": ...}``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": data.hex()}


def _json_bytes(value: object, what: str) -> bytes:
    """The inverse of :func:`_bytes_to_json`, accepting only the one form it writes."""
    if type(value) is str:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape
            raise ProofError(f"the proof's {what} is not valid text") from None
    if type(value) is dict and value.keys() == {"hex"} and type(value["hex"]) is str:
        try:
            raw = bytes.fromhex(value["hex"])
        except ValueError:
            pass
        else:
            if raw.hex() == value["hex"]:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return raw
                raise ProofError(f"the proof's {what} is UTF-8, so it must be given as text, not hex")
    raise ProofError(f'the proof\'s {what} must be text, or {{"hex": lowercase hex}} when it is not UTF-8')


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a proof showed about the tree under ``root``.

    ``record`` when ``present``; otherwise ``before`` and ``after`` are the neighbours of the
    missing key (None at an end of the tree). ``position`` is the record's index in key order
    (or where the key would go); ``count`` and ``totals`` are the root's.
    """

    root: bytes
    key: bytes
    present: bool
    record: Record | None
    before: Record | None
    after: Record | None
    position: int
    count: int
    totals: tuple[int, ...]


class Prover:
    """Makes proofs against one root, keeping the nodes it has read (many proofs share them)."""

    def __init__(self, source: NodeSource, root: bytes) -> None:
        self._reader = _Reader(source, root)

    def prove(self, key: bytes) -> Proof:
        """A proof that ``key`` is in the tree (its record) or not (its neighbours)."""
        if type(key) is not bytes:
            raise InputError(f"a key must be bytes, not {type(key).__name__}")
        reader = self._reader
        root = reader.root.node
        node = root
        offset = 0
        while node.level > 0:
            index = max(bisect.bisect_right([child.first_key for child in node.children], key) - 1, 0)
            offset += sum(child.record_count for child in node.children[:index])
            node = reader.child(node, node.children[index], keep=True).node
        index = bisect.bisect_left([record.key for record in node.records], key)
        position = offset + index
        present = index < len(node.records) and node.records[index].key == key
        neighbours = [at for at in (position - 1, position) if 0 <= at < root.count]
        positions = [position] if present else neighbours
        paths = tuple(self._path(at) for at in positions)
        return Proof(key, present, reader.fanout, reader.leaf_fanout, reader.sum_fields, paths)

    def _path(self, position: int) -> RecordPath:
        reader = self._reader
        parsed = reader.root
        chosen: list[tuple[_Parsed, int, bytes | None]] = []
        while parsed.node.level > 0:
            node = parsed.node
            starts = list(itertools.accumulate(child.record_count for child in node.children))
            index = bisect.bisect_right(starts, position)
            if index:
                position -= starts[index - 1]
            chosen.append((parsed, index, node.children[index].first_key))
            parsed = reader.child(node, node.children[index], keep=True)
        chosen.append((parsed, position, None))
        record = parsed.node.records[position]
        steps = [
            ProofStep(len(parsed.hashes), index, self._siblings(parsed, index), first_key)
            for parsed, index, first_key in reversed(chosen)
        ]
        return RecordPath(record, tuple(steps))

    def _siblings(self, parsed: _Parsed, index: int) -> tuple[Sibling, ...]:
        if parsed.layers is None:
            parsed.layers = []
            _merkle_root(parsed.hashes, parsed.packs, _width(self._reader.sum_fields), parsed.layers)
        siblings = []
        for hashes, packs in parsed.layers:
            other = index ^ 1
            if other < len(hashes):
                count, sums = _unpack(packs[other], self._reader.sum_fields)
                siblings.append(Sibling(hashes[other], count, sums))
            index >>= 1
        return tuple(siblings)


def prove(source: NodeSource, root: bytes, key: bytes) -> Proof:
    """A proof that ``key`` is in the tree under ``root``, or that it is not."""
    return Prover(source, root).prove(key)


def verify(proof: Proof, root: bytes, *, totals: tuple[int, ...] | None = None) -> VerifiedProof:
    """Check ``proof`` against ``root`` alone; :class:`ProofError` unless it holds.

    Every path must lead to ``root``; sums are recomputed at every step; the root's totals
    are returned, and must equal ``totals`` when given. An absence proof must show the
    records just before and after the key (adjacent positions), or the one end record, or
    the empty tree.
    """
    root = exact_bytes(root, ID_BYTES, "a prolly root")
    if not isinstance(proof, Proof):
        raise ProofError(f"expected a Proof, not {type(proof).__name__}")
    fanout, leaf_fanout, sum_fields, key = proof.fanout, proof.leaf_fanout, proof.sum_fields, proof.key
    for name, value in (("fanout", fanout), ("leaf fanout", leaf_fanout)):
        if type(value) is not int or not MIN_FANOUT <= value <= MAX_FANOUT:
            raise ProofError(f"the proof has {name} {value!r}, outside {MIN_FANOUT}..{MAX_FANOUT}")
    if type(sum_fields) is not int or not 0 <= sum_fields <= MAX_SUM_FIELDS:
        raise ProofError(f"the proof has {sum_fields!r} sum fields, outside 0..{MAX_SUM_FIELDS}")
    if type(key) is not bytes:
        raise ProofError("the proof's key must be bytes")
    if not isinstance(proof.paths, tuple) or len(proof.paths) > 2:
        raise ProofError("a proof holds at most two record paths")
    results = [_verify_path(path, fanout, leaf_fanout, sum_fields) for path in proof.paths]
    for node_id, _position, _total in results:
        if node_id != root:
            raise ProofError(
                f"the proof leads to root {node_id.hex()}, not {root.hex()}: it belongs to another "
                "snapshot, or a record, sum, sibling or position in it was altered"
            )
    if results:
        total = results[0][2]
        if any(result[2] != total for result in results):
            raise ProofError("the proof's paths disagree about the root's totals")
        count, root_totals = _unpack(total, sum_fields)
    else:
        if root != empty_root(fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields):
            raise ProofError(f"the proof shows an empty tree, but {root.hex()} is not the empty root")
        count, root_totals = 0, (0,) * sum_fields
    if totals is not None and tuple(totals) != root_totals:
        raise ProofError(f"the root's totals are {list(root_totals)}, not the expected {list(totals)}")
    records = [path.record for path in proof.paths]
    positions = [result[1] for result in results]
    before: Record | None = None
    after: Record | None = None
    if proof.present:
        if len(records) != 1 or records[0].key != key:
            raise ProofError(f"an inclusion proof must hold exactly the record for {_show(key)}")
        return VerifiedProof(root, key, True, records[0], None, None, positions[0], count, root_totals)
    if len(records) == 2:
        before, after = records
        if not before.key < key < after.key:
            raise ProofError(f"the absence proof's records do not surround {_show(key)}")
        if positions[1] != positions[0] + 1:
            raise ProofError(
                f"the absence proof's records are at positions {positions[0]} and {positions[1]}, not adjacent"
            )
        position = positions[1]
    elif len(records) == 1:
        (record,) = records
        if key < record.key:
            after, position = record, 0
            if positions[0] != 0:
                raise ProofError(f"the absence proof's record is at position {positions[0]}, not the first")
        elif record.key < key:
            before, position = record, count
            if positions[0] != count - 1:
                raise ProofError(f"the absence proof's record is at position {positions[0]}, not the last")
        else:
            raise ProofError("an absence proof holds the record it says is absent")
    else:
        position = 0
    return VerifiedProof(root, key, False, None, before, after, position, count, root_totals)


def _verify_path(path: RecordPath, fanout: int, leaf_fanout: int, sum_fields: int) -> tuple[bytes, int, int]:
    """The root a path leads to, the record's position, and S of the root."""
    if type(path) is not RecordPath or type(path.record) is not Record:
        raise ProofError("a proof path must be a RecordPath holding a Record")
    key, value, sums = path.record
    if type(key) is not bytes or type(value) is not bytes:
        raise ProofError("the proof's record key and value must be bytes")
    if len(key) > MAX_KEY_BYTES or len(value) > MAX_VALUE_BYTES:
        raise ProofError(f"the proof's record key or value is too long ({_show(key)})")
    if type(sums) is not tuple or len(sums) != sum_fields:
        raise ProofError(f"the proof's record must have {sum_fields} sums")
    combined = 0
    packed = 1
    for item in sums:
        if type(item) is not int or not 0 <= item < _SUM_LIMIT:
            raise ProofError(f"the proof's record sum {item!r} is not an integer from 0 to 2**128 - 1")
        combined = (combined << 128) | item
        packed = (packed << _LANE_BITS) | item
    hash_of = blake3
    join = b"".join
    digest: bytes = hash_of(
        join(
            (
                _TAG_LEN.pack(_TAG_LEAF, len(key)),
                key,
                _U32.pack(len(value)),
                value,
                combined.to_bytes(16 * sum_fields),
            )
        )
    ).digest()
    width = _width(sum_fields)
    shift = _LANE_BITS * sum_fields
    high = _high_bits(sum_fields)
    limits = (NODE_LIMIT_FACTOR * leaf_fanout, NODE_LIMIT_FACTOR * fanout)
    encoded = packed.to_bytes(width, "big")
    steps = path.steps
    if type(steps) is not tuple or not 1 <= len(steps) <= MAX_LEVEL + 1:
        raise ProofError(f"a proof path must have from 1 to {MAX_LEVEL + 1} steps")
    top = len(steps) - 1
    position = 0
    for level, step in enumerate(steps):
        if type(step) is not ProofStep:
            raise ProofError("a proof path step must be a ProofStep")
        if level:
            first_key = step.first_key
            if type(first_key) is not bytes or len(first_key) > MAX_KEY_BYTES:
                raise ProofError(f"proof level {level} lacks the first key of the node below")
            if not (first_key == key if position == 0 else first_key < key):
                raise ProofError(
                    f"proof level {level}: the first key below does not fit the record's position"
                )
            digest = hash_of(
                join((_TAG_LEN.pack(_TAG_INTERNAL, len(first_key)), first_key, digest, encoded))
            ).digest()
        elif step.first_key is not None:
            raise ProofError("the leaf level of a proof has no first key")
        entries, index, siblings = step.entries, step.index, step.siblings
        if (
            type(entries) is not int
            or type(index) is not int
            or not 0 <= index < entries <= limits[level > 0]
        ):
            raise ProofError(f"proof level {level}: index {index!r} of {entries!r} entries is out of range")
        if level == top and level and entries < 2:
            raise ProofError("the proof's root has one entry; it is not a canonical root")
        if type(siblings) is not tuple:
            raise ProofError(f"proof level {level}: siblings must be a tuple")
        used = 0
        size = entries
        try:
            # The record's position adds up the counts of the left siblings, read from the very
            # bytes that are hashed, so no other reading of a sibling's numbers can pass.
            while size > 1:
                if index & 1 or index + 1 < size:
                    other_hash, count, other_sums = siblings[used]
                    used += 1
                    if len(other_hash) != ID_BYTES or len(other_sums) != sum_fields:
                        raise ProofError(f"proof level {level}: a sibling needs a hash and {sum_fields} sums")
                    other = count
                    for item in other_sums:
                        other = (other << _LANE_BITS) | item
                    other_encoded = other.to_bytes(width, "big")
                    if index & 1:
                        position += other >> shift
                        digest = hash_of(
                            join((_TAG_INNER, other_hash, other_encoded, digest, encoded))
                        ).digest()
                    else:
                        digest = hash_of(
                            join((_TAG_INNER, digest, encoded, other_hash, other_encoded))
                        ).digest()
                    if (packed | other) & high:
                        added = _add_checked(packed, other, high, sum_fields)
                        if added is None:
                            raise ProofError(f"proof level {level}: the sums overflow")
                        packed = added
                    else:
                        packed += other
                    encoded = packed.to_bytes(width, "big")
                index >>= 1
                size = (size + 1) >> 1
        except (TypeError, ValueError, OverflowError, IndexError):
            raise ProofError(
                f"proof level {level}: a sibling is missing or malformed (a hash, a count and {sum_fields} sums)"
            ) from None
        if used != len(siblings):
            raise ProofError(f"proof level {level} has {len(siblings) - used} siblings too many")
        digest = hash_of(
            join(
                (
                    _TAG_NODE,
                    _HEADER.pack(NODE_VERSION, level, fanout, leaf_fanout, sum_fields, entries),
                    encoded,
                    digest,
                )
            )
        ).digest()
    return digest, position, packed
