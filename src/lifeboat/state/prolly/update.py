"""Updating a prolly tree in place of rebuilding it: apply edits, rewrite only the changed paths.

The result is the tree :func:`~lifeboat.state.prolly.build.build` would make from the edited
record set (same root); untouched subtrees are reused without being read past their parents.

Two ways down a touched subtree:

* **in place**, when every edit below it replaces the value of a key it already holds: node
  boundaries depend on keys alone (and on entry counts, for the size cap), so the subtree keeps
  its shape and each touched node is re-encoded with its changed entries swapped in, without
  the builder (no key hashing, no boundary checks);
* **through the builder**, otherwise (an insert or a delete moves boundaries): the subtree's
  untouched records and children are fed to a :class:`Builder` with the edited records.

An in-place attempt that meets an insert or a delete gives back the edits it consumed; the
subtrees it finished before are kept (by old node id) and used when the builder walks there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from blake3 import blake3

from lifeboat.errors import InputError
from lifeboat.state.prolly.build import Build, Builder
from lifeboat.state.prolly.node import (
    HEADER,
    MAX_VALUE_BYTES,
    NODE_VERSION,
    SUM_LIMIT,
    TAG_INTERNAL,
    TAG_LEAF,
    TAG_LEN,
    U32,
    Child,
    Delete,
    Node,
    NodeReader,
    NodeSource,
    ParsedNode,
    Record,
    Tree,
    _parse,
    add_sums_checked,
    hash_key,
    high_bits,
    merkle_root,
    node_id_of,
    pack_sums,
    show_key,
    sum_width,
    unpack_sums,
)

#: The highest level at which an in-place rewrite starts: a leaf's parent. What an attempt holds
#: until it succeeds (its new nodes) is then one small subtree; the few nodes above go through
#: the builder.
IN_PLACE_LEVEL = 1

# --- incremental update ------------------------------------------------------------------------


def update(
    source: NodeSource, root: bytes, edits: Iterable[Record | Delete], *, verify: bool = True
) -> Build:
    """The nodes of the tree that results from applying ``edits`` (sorted by key) to ``root``.

    A :class:`Record` inserts or replaces; a :class:`Delete` removes (nothing if absent).
    Untouched subtrees are reused by id and not yielded; only the paths that change are
    rewritten, and the root is the one a full :func:`build` of the new record set gives.
    ``verify=False``: the nodes read are not re-hashed against their ids (see
    :class:`NodeReader`; for a source that authenticates them).
    """
    reader = NodeReader(source, root, verify=verify)
    builder = Builder(fanout=reader.fanout, leaf_fanout=reader.leaf_fanout, sum_fields=reader.sum_fields)
    return Build(_update(reader, builder, _checked_edits(edits, reader.sum_fields)), builder)


class _Edits:
    """The sorted edits, consumed one at a time; an in-place attempt can give back what it took."""

    def __init__(self, edits: Iterator[Record | Delete]) -> None:
        self._edits = edits
        self._returned: deque[Record | Delete] = deque()
        self._log: list[Record | Delete] | None = None
        self.head: Record | Delete | None = next(edits, None)

    def advance(self) -> Record | Delete:
        current = self.head
        assert current is not None
        self.head = self._returned.popleft() if self._returned else next(self._edits, None)
        if self._log is not None:
            self._log.append(current)
        return current

    def start_log(self) -> bool:
        """Remember the edits consumed from now on; False if an outer attempt already does."""
        if self._log is not None:
            return False
        self._log = []
        return True

    def stop_log(self, *, give_back: bool) -> None:
        """Stop remembering; with ``give_back``, the remembered edits come again, in order."""
        taken, self._log = self._log, None
        if give_back and taken:
            if self.head is not None:
                self._returned.appendleft(self.head)
            self._returned.extendleft(reversed(taken[1:]))
            self.head = taken[0]


def _leaf_sums(sums: tuple[int, ...], size: int) -> bytes:
    """A leaf entry's sums: each a u128, big-endian."""
    combined = 0
    for item in sums:
        combined = (combined << 128) | item
    return combined.to_bytes(size, "big")


@dataclass(frozen=True, slots=True)
class _Rewritten:
    """A subtree rewritten in place: its new nodes (root last), the new root's entry, edits used."""

    nodes: list[Node]
    child: Child
    blob: bytes
    digest: bytes
    packed: int
    edits: int


class _InPlace:
    """In-place rewrites of touched subtrees (see the module docstring), with what failed attempts left.

    ``done`` keeps subtrees finished inside an attempt that failed higher up (by old node id),
    ``failed`` the ids that cannot be rewritten in place, ``parsed`` their nodes already read.
    """

    def __init__(self, reader: NodeReader, edits: _Edits) -> None:
        self.reader = reader
        self.edits = edits
        self.width = sum_width(reader.sum_fields)
        self.sum_bytes = 16 * reader.sum_fields
        self.high = high_bits(reader.sum_fields)
        self.done: dict[bytes, _Rewritten] = {}
        self.failed: set[bytes] = set()
        self.parsed: dict[bytes, ParsedNode] = {}
        # Per level, the first rewritten subtree the builder took whole: only the first entry
        # of a level can turn out to be the root (Builder.root_reused), and it is not stored yet.
        self._first_added: dict[int, dict[bytes, Node]] = {}

    def added(self, level: int, done: _Rewritten) -> None:
        """Note a rewritten subtree the builder took whole at ``level``."""
        if level not in self._first_added:
            self._first_added[level] = {node.node_id: node for node in done.nodes}

    def fetch(self, node_id: bytes) -> ParsedNode:
        """A node by id: one rewritten here (not stored yet), or one read from the source."""
        for made in self._first_added.values():
            node = made.get(node_id)
            if node is not None:
                return _parse(node.data)
        return self.reader._fetch(node_id)

    def node(self, parent: ParsedNode, child: Child) -> ParsedNode:
        """``child`` of ``parent``, read (or kept from a failed attempt)."""
        kept = self.parsed.pop(child.node_id, None)
        return kept if kept is not None else self.reader.child(parent.node, child)

    def attempt(self, parent: ParsedNode | None, child: Child, after: bytes | None) -> _Rewritten | None:
        """The subtree under ``child`` with the edits before ``after`` applied in place, or None
        (and no edit consumed) when one of them inserts or deletes."""
        if child.node_id in self.failed:
            return None
        done = self.done.pop(child.node_id, None)
        if done is not None:
            for _ in range(done.edits):
                self.edits.advance()
            return done
        outermost = self.edits.start_log()
        result = None
        try:
            result = self._rewrite(parent, child, after)
        finally:
            if outermost:
                self.edits.stop_log(give_back=result is None)
        return result

    def _rewrite(self, parent: ParsedNode | None, child: Child, after: bytes | None) -> _Rewritten | None:
        parsed = self.reader.root if parent is None else self.node(parent, child)
        node = parsed.node
        edits = self.edits
        blobs, hashes, packs = list(parsed.blobs), list(parsed.hashes), list(parsed.packs)
        nodes: list[Node] = []
        finished: list[tuple[bytes, _Rewritten]] = []
        used = 0
        if node.level == 0:
            records = node.records
            index = 0
            while edits.head is not None and (after is None or edits.head.key < after):
                edit = edits.head
                while index < len(records) and records[index].key < edit.key:
                    index += 1
                if (
                    not isinstance(edit, Record)
                    or index == len(records)
                    or records[index].key != edit.key
                    or len(edit.value) > MAX_VALUE_BYTES
                ):
                    return self._fail(child.node_id, parsed, parent)
                edits.advance()
                used += 1
                key, value, sums = edit
                blob = b"".join(
                    (
                        TAG_LEN.pack(TAG_LEAF, len(key)),
                        key,
                        U32.pack(len(value)),
                        value,
                        _leaf_sums(sums, self.sum_bytes),
                    )
                )
                blobs[index], hashes[index], packs[index] = blob, blake3(blob).digest(), pack_sums(1, sums)
            total = sum(packs)
        else:
            children = node.children
            for index, below in enumerate(children):
                below_after = children[index + 1].first_key if index + 1 < len(children) else after
                head = edits.head
                if head is None or (
                    below_after is not None
                    and (head.key > below_after or (head.key == below_after and isinstance(head, Record)))
                ):
                    continue
                done = self.attempt(parsed, below, below_after)
                if done is None:
                    # The subtrees rewritten so far stay usable when the builder walks here.
                    self.done.update(finished)
                    return self._fail(child.node_id, parsed, parent)
                finished.append((below.node_id, done))
                nodes.extend(done.nodes)
                used += done.edits
                blobs[index], hashes[index], packs[index] = done.blob, done.digest, done.packed
            total = 0
            for packed in packs:
                added = add_sums_checked(total, packed, self.high, self.reader.sum_fields)
                if added is None:
                    self.done.update(finished)
                    return self._fail(child.node_id, parsed, parent)
                total = added
        if isinstance(edits.head, Delete) and edits.head.key == after:
            # Deleting the next node's first key moves this node's end: not in place.
            self.done.update(finished)
            return self._fail(child.node_id, parsed, parent)
        header = HEADER.pack(
            NODE_VERSION, node.level, node.fanout, node.leaf_fanout, node.sum_fields, len(blobs)
        )
        total_bytes = total.to_bytes(self.width, "big")
        node_id = node_id_of(header, total_bytes, merkle_root(hashes, packs, self.width))
        count, sums = unpack_sums(total, self.reader.sum_fields)
        nodes.append(Node(node_id, header + b"".join(blobs), node.level, count, sums, node.first_key))
        entry = b"".join(
            (TAG_LEN.pack(TAG_INTERNAL, len(node.first_key)), node.first_key, node_id, total_bytes)
        )
        return _Rewritten(
            nodes, Child(node_id, node.first_key, count, sums), entry, blake3(entry).digest(), total, used
        )

    def _fail(self, node_id: bytes, parsed: ParsedNode, parent: ParsedNode | None) -> _Rewritten | None:
        self.failed.add(node_id)
        if parent is not None:
            self.parsed[node_id] = parsed
        return None


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
    in_place = _InPlace(reader, edits)
    if edits.head is None:
        # Nothing to do: the old root, added whole, is the new one.
        child = Child(root.node_id, root.first_key, root.count, root.sums)
        if root.count:
            builder._add_node(root.level, child, hash_key(root.first_key))
    else:
        whole = None
        if root.level <= IN_PLACE_LEVEL:
            whole = in_place.attempt(None, Child(root.node_id, root.first_key, root.count, root.sums), None)
        if whole is not None:
            yield from whole.nodes
            builder.result = Tree(
                whole.child.node_id,
                whole.child.record_count,
                whole.child.sums,
                root.level + 1,
                reader.fanout,
                reader.leaf_fanout,
                reader.sum_fields,
            )
            return
        yield from _visit(reader, builder, edits, reader.root, None, in_place)
    tree = builder.finish()
    yield from builder.take()
    if builder.root_reused:
        # An old node is the only one at its level; if it has one child, so has every level
        # below down to the first node with two entries or a leaf: that one is the root.
        node = in_place.fetch(tree.root)
        while node.node.level > 0 and len(node.node.children) == 1:
            node = in_place.fetch(node.node.children[0].node_id)
        builder.result = replace(tree, root=node.node.node_id, height=node.node.level + 1)


def _visit(
    reader: NodeReader,
    builder: Builder,
    edits: _Edits,
    parsed: ParsedNode,
    next_start: bytes | None,
    in_place: _InPlace,
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
        elif node.level - 1 <= IN_PLACE_LEVEL and head is not None and (after is None or head.key < after):
            # Not a delete of the next child's first key (that moves this child's end).
            first_hash = hash_key(child.first_key)
            if builder._can_take(node.level - 1, first_hash):
                done = in_place.attempt(parsed, child, after)
                if done is not None:
                    yield from done.nodes
                    in_place.added(node.level - 1, done)
                    builder._add_node(
                        node.level - 1, done.child, first_hash, (done.blob, done.digest, done.packed)
                    )
                    if builder._out:
                        yield from builder.take()
                    continue
        yield from _visit(reader, builder, edits, in_place.node(parsed, child), after, in_place)
