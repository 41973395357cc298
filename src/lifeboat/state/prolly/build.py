"""Building a prolly tree: :class:`Builder` cuts records into nodes at key-hash boundaries, level by level.

:func:`build` makes a tree from records in key order; :func:`lifeboat.state.prolly.update.update`
feeds the same builder with an old tree's untouched subtrees and the edited records. Both yield
:class:`~lifeboat.state.prolly.node.Node` objects (an id and its bytes) for the caller to store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple, NoReturn

from blake3 import blake3

from lifeboat.errors import InputError, UsageError
from lifeboat.state.prolly.node import (
    DEFAULT_FANOUT,
    EMPTY_MERKLE,
    HEADER,
    LANE_BITS,
    MAX_KEY_BYTES,
    MAX_LEVEL,
    MAX_VALUE_BYTES,
    NODE_LIMIT_FACTOR,
    NODE_VERSION,
    SUM_LIMIT,
    TAG_INTERNAL,
    TAG_KEY,
    TAG_LEAF,
    TAG_LEN,
    U32,
    Child,
    Node,
    Record,
    Tree,
    boundary_thresholds,
    check_shape,
    hash_key,
    merkle_root,
    node_id_of,
    pack_sums,
    show_key,
    sum_width,
    unpack_sums,
)

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
        self.leaf_fanout = check_shape(fanout, leaf_fanout, sum_fields)
        self.fanout = fanout
        self.sum_fields = sum_fields
        self.result: Tree | None = None
        self._limit = NODE_LIMIT_FACTOR * fanout
        self._leaf_limit = NODE_LIMIT_FACTOR * self.leaf_fanout
        self._width = sum_width(sum_fields)
        self._thresholds = boundary_thresholds(fanout, self.leaf_fanout)
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
        leaf_header = TAG_LEN.pack
        value_header = U32.pack
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
                        f"record {position}: key {show_key(key)} {what} {show_key(last)}; records must be sorted"
                    )
                if len(key) > MAX_KEY_BYTES or len(value) > MAX_VALUE_BYTES:
                    raise InputError(
                        f"record {position} ({show_key(key)}): keys are at most {MAX_KEY_BYTES} bytes, "
                        f"values at most {MAX_VALUE_BYTES}"
                    )
                if sum_fields:
                    if type(sums) is not tuple or len(sums) != sum_fields:
                        self._refuse_sums(sums, position, key)
                    combined = 0
                    packed = 1
                    for item in sums:
                        if type(item) is not int or not 0 <= item < SUM_LIMIT:
                            self._refuse_sums(sums, position, key)
                        combined = (combined << 128) | item
                        packed = (packed << LANE_BITS) | item
                    encoded = combined.to_bytes(sum_bytes, "big")
                elif sums:
                    raise InputError(
                        f"record {position} ({show_key(key)}) has {len(sums)} sums; this tree declares none"
                    )
                else:
                    encoded = b""
                    packed = 1
                key_hash = hash_of(TAG_KEY + key).digest()
                position += 1
                last = key
                if hashes and key_hash < threshold:
                    self._close(0)
                    hashes, packs, blobs = self._hashes[0], self._packs[0], self._blobs[0]
                if not hashes:
                    self._first[0] = (key, key_hash)
                blob = join((leaf_header(TAG_LEAF, len(key)), key, value_header(len(value)), value, encoded))
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
        key_hash = hash_key(key)
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
        where = f"record {position} ({show_key(key)})"
        if type(sums) is not tuple or len(sums) != self.sum_fields:
            raise InputError(f"{where}: sums must be a tuple of {self.sum_fields} integers")
        for field, item in enumerate(sums):
            if type(item) is not int:
                raise InputError(f"{where}: sum {field} is not an integer")
            if not 0 <= item < SUM_LIMIT:
                problem = "negative" if item < 0 else "2**128 or more"
                raise InputError(f"{where}: sum {field} is {problem} ({item})")
        raise AssertionError("unreachable: the sums are valid")

    def _close(self, level: int) -> None:
        """Turn the open node of ``level`` into a :class:`Node` and add it to the level above."""
        hashes, packs, blobs = self._hashes[level], self._packs[level], self._blobs[level]
        first_key, first_hash = self._first[level]
        header = HEADER.pack(NODE_VERSION, level, self.fanout, self.leaf_fanout, self.sum_fields, len(hashes))
        total = sum(packs)
        total_bytes = total.to_bytes(self._width, "big")
        node_id = node_id_of(header, total_bytes, merkle_root(hashes, packs, self._width))
        count, sums = unpack_sums(total, self.sum_fields)
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
            blob = b"".join((TAG_LEN.pack(TAG_INTERNAL, len(first_key)), first_key, node_id, total_bytes))
            digest = blake3(blob).digest()
        else:
            blob, digest = entry
        hashes.append(digest)
        self._packs[level].append(total)
        self._blobs[level].append(blob)
        if len(hashes) == self._limit:
            self._close(level)

    def add_leaf(self, leaf: Node, last_key: bytes) -> None:
        """Add a leaf built apart (:func:`leaf_run`) whole, as adding its records one by one would.

        The leaf must start a node where it stands: its first key's hash passes the leaf
        boundary, or no records are open (the leaf before it was cut at the size limit).
        ``last_key`` is its last record's key, against which the next record is ordered.
        """
        first_hash = hash_key(leaf.first_key)
        if leaf.level != 0 or not self._can_take(0, first_hash):
            raise UsageError("this leaf does not start a node here; add its records instead")
        if self._last_key is not None and leaf.first_key <= self._last_key:
            raise InputError(
                f"leaf starting at {show_key(leaf.first_key)} does not sort after {show_key(self._last_key)}"
            )
        self._add_node(0, Child(leaf.node_id, leaf.first_key, leaf.count, leaf.sums), first_hash)
        self._received[0] += leaf.count
        self._last_key = last_key

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
            total = pack_sums(child.record_count, child.sums)
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
                count, totals = unpack_sums(total, self.sum_fields)
                self.result = Tree(
                    node_id, count, totals, level, self.fanout, self.leaf_fanout, self.sum_fields
                )
                return self.result
            if self._hashes[level]:
                self._close(level)
            level += 1
        # Nothing was added: the empty tree is one empty leaf.
        header = HEADER.pack(NODE_VERSION, 0, self.fanout, self.leaf_fanout, self.sum_fields, 0)
        node_id = node_id_of(header, bytes(self._width), EMPTY_MERKLE)
        zeros = (0,) * self.sum_fields
        self._out.append(Node(node_id, header, 0, 0, zeros, b""))
        self.result = Tree(node_id, 0, zeros, 1, self.fanout, self.leaf_fanout, self.sum_fields)
        return self.result


class _LeafBuilder(Builder):
    """A builder that only makes leaves (the levels above are another builder's)."""

    def _push(self, level: int, *args: object, **kwargs: object) -> None:
        return None


class LeafRun(NamedTuple):
    """A run of sorted records cut into leaves apart from the rest of the tree (:func:`leaf_run`).

    ``before``: the records ahead of the first leaf boundary (they belong to a leaf begun
    earlier); ``leaves``: the complete leaves from there, with the key of each one's last
    record; ``after``: the records of the last leaf, which may go on past the run.
    """

    before: list[tuple[bytes, bytes, tuple[int, ...]]]
    leaves: list[tuple[Node, bytes]]
    after: list[tuple[bytes, bytes, tuple[int, ...]]]


def leaf_run(
    records: list[tuple[bytes, bytes, tuple[int, ...]]],
    *,
    fanout: int = DEFAULT_FANOUT,
    leaf_fanout: int | None = None,
    sum_fields: int = 0,
) -> LeafRun:
    """Cut a run of sorted records into the leaves a whole build would make of them.

    Leaf boundaries depend on keys alone, and a key whose hash passes the leaf boundary starts
    a leaf whatever came before it: from the first such key on, the leaves are the tree's own.
    So runs taken from consecutive parts of the records can be cut apart (on other processes)
    and joined with :func:`build_runs`, giving the tree :func:`build` gives.
    """
    builder = _LeafBuilder(fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
    threshold = builder._thresholds[0]
    start = 0
    while start < len(records) and hash_key(records[start][0]) >= threshold:
        start += 1
    leaves: list[tuple[Node, bytes]] = []
    used = start
    iterator = iter(records[start:])
    while True:
        finished = builder._feed(iterator)
        for leaf in builder.take():
            used += leaf.count
            leaves.append((leaf, records[used - 1][0]))
        if finished:
            break
    return LeafRun(records[:start], leaves, records[used:])


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
    yield from _feed_all(records, builder)
    builder.finish()
    yield from builder.take()


def _feed_all(
    records: Iterable[Record | tuple[bytes, bytes, tuple[int, ...]]], builder: Builder
) -> Iterator[Node]:
    iterator = iter(records)
    while not builder._feed(iterator):
        yield from builder.take()
    yield from builder.take()


def build_runs(
    runs: Iterable[LeafRun],
    *,
    fanout: int = DEFAULT_FANOUT,
    leaf_fanout: int | None = None,
    sum_fields: int = 0,
) -> Build:
    """The nodes of the tree over consecutive :func:`leaf_run` runs (the tree :func:`build` makes
    of all their records), leaves first. The runs' leaves are yielded as they come."""
    builder = Builder(fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
    return Build(_build_runs(runs, builder), builder)


def _build_runs(runs: Iterable[LeafRun], builder: Builder) -> Iterator[Node]:
    for run in runs:
        yield from _feed_all(run.before, builder)
        for leaf, last_key in run.leaves:
            builder.add_leaf(leaf, last_key)
            yield leaf
            yield from builder.take()
        yield from _feed_all(run.after, builder)
    builder.finish()
    yield from builder.take()
