"""Reading a prolly tree: its shape, one key, every record in order, and the differences of two trees.

Every node read is checked against its id (through :class:`~lifeboat.state.prolly.node.NodeReader`).
"""

from __future__ import annotations

import bisect
import struct
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple

from lifeboat.errors import InputError
from lifeboat.state.prolly.node import (
    HEADER,
    HEADER_BYTES,
    ID_BYTES,
    NODE_VERSION,
    TAG_LEN,
    U32,
    Change,
    Child,
    DecodedNode,
    NodeReader,
    NodeSource,
    Record,
    Tree,
    sum_width,
)
from lifeboat.store.errors import FormatError

# --- reading ----------------------------------------------------------------------------------


def read_tree(source: NodeSource, root: bytes) -> Tree:
    """What the root commits to: record count, totals, height, fanouts and sum fields."""
    node = NodeReader(source, root).root.node
    return Tree(
        node.node_id, node.count, node.sums, node.level + 1, node.fanout, node.leaf_fanout, node.sum_fields
    )


def lookup(source: NodeSource, root: bytes, key: bytes) -> bytes | None:
    """The value stored under ``key``, or None."""
    record = _find(NodeReader(source, root), key)
    return None if record is None else record.value


def _find(reader: NodeReader, key: bytes) -> Record | None:
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

    A source with a ``prefetch(node_id)`` method is told the next :data:`SCAN_AHEAD` leaves
    before they are read (a repository decodes their packs meanwhile).
    """
    prefetch: Callable[[bytes], object] | None = getattr(source, "prefetch", None)
    window: deque[tuple[bytes, bytes | None]] = deque()
    for leaf in _leaves(source, root):
        if prefetch is not None and leaf[1] is None:
            prefetch(leaf[0])
        window.append(leaf)
        if len(window) > SCAN_AHEAD:
            yield from _scan(source, *window.popleft())
    while window:
        yield from _scan(source, *window.popleft())


#: Leaves :func:`scan` announces ahead of reading them.
SCAN_AHEAD: Final = 256


def _leaves(source: NodeSource, root: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    """The ids of the leaves below ``root`` in key order, reading only the nodes above them
    (with a node's bytes when it was read on the way: the root, or an odd tree's leaf)."""
    pending: list[tuple[bytes, bool]] = [(root, False)]
    while pending:
        node_id, leaf = pending.pop()
        if leaf:
            yield node_id, None
            continue
        data = source.get(node_id)
        children = _children(node_id, data)
        if children is None:
            yield node_id, data
        else:
            level = data[1]
            pending.extend((child, level == 1) for child in reversed(children))


def _children(node_id: bytes, data: bytes) -> list[bytes] | None:
    """An internal node's child ids (None for a leaf), read without hashing."""
    try:
        version, level, _fanout, _leaf_fanout, sum_fields, count = HEADER.unpack_from(data, 0)
        if version != NODE_VERSION:
            raise FormatError(f"node {node_id.hex()[:16]} has version {version}")
        if level == 0:
            return None
        position = HEADER_BYTES
        skip = ID_BYTES + sum_width(sum_fields)
        children = []
        for _ in range(count):
            position += 3 + TAG_LEN.unpack_from(data, position)[1]
            children.append(data[position : position + ID_BYTES])
            position += skip
        return children
    except struct.error:
        raise FormatError(f"node {node_id.hex()[:16]} is truncated") from None


def _scan(source: NodeSource, node_id: bytes, data: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    """The records of one node (a leaf, as expected; an internal node is read through)."""
    if data is None:
        data = source.get(node_id)
    children = _children(node_id, data)
    if children is not None:
        for child in children:
            yield from _scan(source, child, None)
        return
    try:
        sum_fields, count = HEADER.unpack_from(data, 0)[4:]
        skip = 16 * sum_fields
        position = HEADER_BYTES
        for _ in range(count):
            length = TAG_LEN.unpack_from(data, position)[1]
            position += 3
            key = data[position : position + length]
            position += length
            size = U32.unpack_from(data, position)[0]
            position += 4
            yield key, data[position : position + size]
            position += size + skip
    except struct.error:
        raise FormatError(f"node {node_id.hex()[:16]} is truncated") from None


def iterate(source: NodeSource, root: bytes, start: bytes | None = None) -> Iterator[Record]:
    """Every record in key order, from the first key at or after ``start``."""
    reader = NodeReader(source, root)
    return _iterate(reader, reader.root.node, start)


def _iterate(reader: NodeReader, node: DecodedNode, start: bytes | None) -> Iterator[Record]:
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

    def __init__(self, reader: NodeReader) -> None:
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
    a, b = _Cursor(NodeReader(source_a, root_a)), _Cursor(NodeReader(source_b, root_b))
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
