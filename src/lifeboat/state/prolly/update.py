"""Updating a prolly tree in place of rebuilding it: apply edits, rewrite only the changed paths.

The result is the tree :func:`~lifeboat.state.prolly.build.build` would make from the edited
record set (same root); untouched subtrees are reused without being read past their parents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from lifeboat.errors import InputError
from lifeboat.state.prolly.build import Build, Builder
from lifeboat.state.prolly.node import (
    SUM_LIMIT,
    Child,
    Delete,
    Node,
    NodeReader,
    NodeSource,
    ParsedNode,
    Record,
    hash_key,
    show_key,
)

# --- incremental update ------------------------------------------------------------------------


def update(source: NodeSource, root: bytes, edits: Iterable[Record | Delete]) -> Build:
    """The nodes of the tree that results from applying ``edits`` (sorted by key) to ``root``.

    A :class:`Record` inserts or replaces; a :class:`Delete` removes (nothing if absent).
    Untouched subtrees are reused by id and not yielded; only the paths that change are
    rewritten, and the root is the one a full :func:`build` of the new record set gives.
    """
    reader = NodeReader(source, root)
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
                f"edit {position}: key {show_key(key)} {what} {show_key(previous)}; edits must be sorted"
            )
        if isinstance(edit, Record):
            sums = edit.sums
            if (
                type(edit.value) is not bytes
                or type(sums) is not tuple
                or len(sums) != sum_fields
                or not all(type(item) is int and 0 <= item < SUM_LIMIT for item in sums)
            ):
                raise InputError(
                    f"edit {position} ({show_key(key)}): the value must be bytes and the sums "
                    f"{sum_fields} integers from 0 to 2**128 - 1"
                )
        previous = key
        yield edit


def _update(reader: NodeReader, builder: Builder, edits_iter: Iterator[Record | Delete]) -> Iterator[Node]:
    edits = _Edits(edits_iter)
    root = reader.root.node
    if edits.head is None:
        # Nothing to do: the old root, added whole, is the new one.
        child = Child(root.node_id, root.first_key, root.count, root.sums)
        if root.count:
            builder._add_node(root.level, child, hash_key(root.first_key))
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
    reader: NodeReader, builder: Builder, edits: _Edits, parsed: ParsedNode, next_start: bytes | None
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
            first_hash = hash_key(child.first_key)
            if builder._can_take(node.level - 1, first_hash):
                entry = (parsed.blobs[index], parsed.hashes[index], parsed.packs[index])
                builder._add_node(node.level - 1, child, first_hash, entry)
                if builder._out:
                    yield from builder.take()
                continue
        yield from _visit(reader, builder, edits, reader.child(node, child), after)
