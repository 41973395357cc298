"""The prolly tree of record snapshots: canonical roots, reads, diff, update, proofs, hostile bytes."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib
import json
import math
import random
from collections.abc import Iterable, Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lifeboat.errors import InputError, UsageError
from lifeboat.state import prolly
from lifeboat.state.prolly import (
    Builder,
    Delete,
    MemorySource,
    Proof,
    ProofError,
    ProofStep,
    Record,
    RecordPath,
    Sibling,
    Tree,
    build,
    decode_node,
    diff,
    empty_root,
    iterate,
    lookup,
    prove,
    read_tree,
    scan,
    update,
    verify,
)
from lifeboat.state.prolly.node import DecodedNode, hash_key
from lifeboat.store.errors import FormatError

prolly_update = importlib.import_module("lifeboat.state.prolly.update")

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Records = dict[bytes, tuple[bytes, tuple[int, ...]]]


def make(
    records: Records, *, fanout: int = 4, leaf_fanout: int | None = None, sum_fields: int = 1
) -> tuple[MemorySource, Tree]:
    source = MemorySource()
    nodes = build(
        (Record(key, value, sums) for key, (value, sums) in sorted(records.items())),
        fanout=fanout,
        leaf_fanout=leaf_fanout,
        sum_fields=sum_fields,
    )
    for node in nodes:
        source.put(node)
    return source, nodes.tree


def apply(source: MemorySource, root: bytes, edits: Iterable[Record | Delete]) -> tuple[Tree, int]:
    """Apply edits, store the new nodes; the new tree and how many nodes were written."""
    result = update(source, root, edits)
    written = 0
    for node in result:
        source.put(node)
        written += 1
    return result.tree, written


def random_records(count: int, seed: int, sum_fields: int = 1) -> Records:
    rng = random.Random(seed)
    records: Records = {}
    while len(records) < count:
        key = b"acct:%08x" % rng.getrandbits(32)
        records[key] = (
            rng.randbytes(rng.randint(0, 40)),
            tuple(rng.randrange(10**24) for _ in range(sum_fields)),
        )
    return records


def reachable(source: MemorySource, root: bytes) -> set[bytes]:
    seen = {root}
    stack = [root]
    while stack:
        node = decode_node(source.get(stack.pop()))
        for child in node.children:
            seen.add(child.node_id)
            stack.append(child.node_id)
    return seen


def walk_nodes(source: MemorySource, root: bytes) -> list[DecodedNode]:
    return [decode_node(source.get(node_id)) for node_id in reachable(source, root)]


keys = st.binary(max_size=6)
sums_1 = st.tuples(st.integers(min_value=0, max_value=2**128 - 1))
record_sets = st.dictionaries(keys, st.tuples(st.binary(max_size=8), sums_1), max_size=120)
fanouts = st.sampled_from([2, 3, 4, 8])
leaf_fanouts = st.sampled_from([None, 2, 3, 16])


# --- building ---------------------------------------------------------------------------------


def test_build_summary_and_nodes() -> None:
    records = random_records(2000, seed=1, sum_fields=2)
    source, tree = make(records, fanout=8, sum_fields=2)
    assert tree.count == 2000
    assert tree.totals == tuple(sum(sums[i] for _, sums in records.values()) for i in range(2))
    assert (tree.fanout, tree.leaf_fanout, tree.sum_fields) == (8, 8, 2)
    assert read_tree(source, tree.root) == tree
    for node_id, data in source.nodes.items():
        node = decode_node(data)
        assert node.node_id == node_id
        assert 1 <= len(node.records) + len(node.children) <= 4 * 8
    root = decode_node(source.get(tree.root))
    assert root.level == tree.height - 1 >= 2
    assert root.first_key == min(records)


def test_last_node_is_the_root_and_nodes_come_bottom_up() -> None:
    nodes = list(build((Record(b"%05d" % i, b"v") for i in range(3000)), fanout=4))
    seen: set[bytes] = set()
    for node in nodes:
        for child in decode_node(node.data).children:
            assert child.node_id in seen
        seen.add(node.node_id)
    assert nodes[-1].level == max(node.level for node in nodes)
    assert nodes[-1].count == 3000


def test_build_streams() -> None:
    """Nodes come out while records go in: the builder holds one open node per level."""
    pulled = 0

    def records() -> Iterator[Record]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield Record(b"%08d" % i, b"x")

    nodes = build(records(), fanout=4)
    first = next(nodes)
    assert first.level == 0
    assert pulled <= 4 * 4 + 1
    for _ in range(500):
        next(nodes)
    assert pulled < 5000


def test_empty_and_single_record_trees() -> None:
    source, tree = make({})
    assert tree == Tree(empty_root(fanout=4, sum_fields=1), 0, (0,), 1, 4, 4, 1)
    assert list(iterate(source, tree.root)) == []
    assert lookup(source, tree.root, b"a") is None
    one_source, one = make({b"k": (b"v", (5,))})
    assert (one.count, one.totals, one.height) == (1, (5,), 1)
    assert list(iterate(one_source, one.root)) == [Record(b"k", b"v", (5,))]


def test_doctest_style_two_records() -> None:
    nodes = build([Record(b"a", b"1"), Record(b"b", b"2")])
    assert len(list(nodes)) == 1
    assert nodes.tree.count == 2


def test_hard_node_limit_against_hostile_keys() -> None:
    """Keys chosen so none starts a node still give nodes of at most 4 x fanout entries."""
    threshold = ((1 << 256) // 2).to_bytes(32, "big")
    chosen = [key for key in (b"%06d" % i for i in range(400)) if hash_key(key) >= threshold][:60]
    assert len(chosen) == 60
    source, tree = make({key: (b"", (1,)) for key in chosen}, fanout=2)
    sizes = sorted(len(decode_node(source.get(node_id)).records) for node_id in reachable(source, tree.root))
    sizes = [size for size in sizes if size]
    assert max(sizes) == 8
    assert sizes.count(8) == 7  # 60 records: seven full leaves and the rest


def test_leaves_and_internal_nodes_have_their_own_fanout() -> None:
    records = random_records(6000, seed=13)
    source, tree = make(records, fanout=32, leaf_fanout=4)
    nodes = [decode_node(source.get(node_id)) for node_id in reachable(source, tree.root)]
    leaves = [len(node.records) for node in nodes if node.level == 0]
    inner = [len(node.children) for node in nodes if node.level > 0 and node.node_id != tree.root]
    assert max(leaves) <= 16 and 3 <= sum(leaves) / len(leaves) <= 6
    assert max(inner) <= 128 and 16 <= sum(inner) / len(inner) <= 64
    assert tree.height in (3, 4)  # about 1500 leaves, 47 level-1 nodes, then one or two more levels
    assert all((node.fanout, node.leaf_fanout) == (32, 4) for node in nodes)


def test_refuses_duplicate_unsorted_and_bad_records() -> None:
    with pytest.raises(InputError, match=r"record 2: key b'b' repeats the key b'b'"):
        list(build([Record(b"a", b""), Record(b"b", b""), Record(b"b", b"")]))
    with pytest.raises(InputError, match=r"record 1: key b'a' is out of order after b'b'"):
        list(build([Record(b"b", b""), Record(b"a", b"")]))
    with pytest.raises(InputError, match=r"record 1 \(b'b'\): sum 0 is negative \(-1\)"):
        list(build([Record(b"a", b"", (1,)), Record(b"b", b"", (-1,))], sum_fields=1))
    with pytest.raises(InputError, match=r"2\*\*128 or more"):
        list(build([Record(b"a", b"", (2**128,))], sum_fields=1))
    with pytest.raises(InputError, match=r"sums must be a tuple of 2 integers"):
        list(build([Record(b"a", b"", (1,))], sum_fields=2))
    with pytest.raises(InputError, match=r"sum 0 is not an integer"):
        list(build([Record(b"a", b"", (True,))], sum_fields=1))
    with pytest.raises(InputError, match=r"declares none"):
        list(build([Record(b"a", b"", (1,))]))
    with pytest.raises(InputError, match=r"must be bytes"):
        list(build([Record("a", b"")]))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"expected \(key, value, sums\)"):
        list(build([(b"a", b"")]))  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"keys are at most"):
        list(build([Record(b"k" * (prolly.MAX_KEY_BYTES + 1), b"")]))
    with pytest.raises(UsageError):
        build([], fanout=1)
    with pytest.raises(UsageError):
        build([], sum_fields=prolly.MAX_SUM_FIELDS + 1)


def test_build_tree_is_only_ready_at_the_end() -> None:
    nodes = build(Record(b"%04d" % i, b"") for i in range(100))
    with pytest.raises(UsageError):
        _ = nodes.tree
    list(nodes)
    assert nodes.tree.count == 100
    builder = Builder()
    builder.add(Record(b"a", b""))
    builder.finish()
    with pytest.raises(UsageError):
        builder.add(Record(b"b", b""))


@PROPERTY
@given(record_sets, fanouts, leaf_fanouts, st.randoms(use_true_random=False))
def test_root_does_not_depend_on_how_the_set_was_built(
    records: Records, fanout: int, leaf_fanout: int | None, rng: random.Random
) -> None:
    """One build, or the same set reached through batches of updates in random order."""
    _, expected = make(records, fanout=fanout, leaf_fanout=leaf_fanout)
    source, tree = make({}, fanout=fanout, leaf_fanout=leaf_fanout)
    pending = list(records.items())
    rng.shuffle(pending)
    extra = {bytes([rng.randrange(256)]) + b"~extra": (b"x", (7,)) for _ in range(5)}
    batches: list[list[tuple[bytes, tuple[bytes, tuple[int, ...]]]]] = []
    while pending:
        cut = rng.randint(1, len(pending))
        batches.append(pending[:cut])
        pending = pending[cut:]
    batches.insert(rng.randint(0, len(batches)), list(extra.items()))
    for batch in batches:
        tree, _ = apply(source, tree.root, [Record(k, v, s) for k, (v, s) in sorted(batch)])
    removals = [Delete(key) for key in sorted(extra) if key not in records]
    tree, _ = apply(source, tree.root, removals)
    assert tree == expected


# --- reading ----------------------------------------------------------------------------------


@PROPERTY
@given(record_sets, fanouts, st.lists(keys, max_size=10))
def test_lookup_and_iterate_agree_with_a_dict(records: Records, fanout: int, probes: list[bytes]) -> None:
    source, tree = make(records, fanout=fanout)
    expected = [Record(key, value, sums) for key, (value, sums) in sorted(records.items())]
    assert list(iterate(source, tree.root)) == expected
    for probe in [*probes, *list(records)[:10]]:
        assert lookup(source, tree.root, probe) == (records[probe][0] if probe in records else None)
        assert list(iterate(source, tree.root, start=probe)) == [r for r in expected if r.key >= probe]
    assert tree.count == len(records)
    assert tree.totals == (sum(sums[0] for _, sums in records.values()),)


def test_readers_refuse_a_tampered_node() -> None:
    source, tree = make(random_records(500, seed=2), fanout=4)
    leaf_id = next(node_id for node_id, data in source.nodes.items() if decode_node(data).level == 0)
    data = bytearray(source.nodes[leaf_id])
    data[-1] ^= 1
    source.nodes[leaf_id] = bytes(data)
    with pytest.raises(FormatError, match="does not match its id"):
        list(iterate(source, tree.root))
    with pytest.raises(FormatError):
        read_tree(source, bytes(32))


# --- diff -------------------------------------------------------------------------------------


@PROPERTY
@given(record_sets, record_sets, fanouts)
def test_diff_is_the_dict_difference(first: Records, second: Records, fanout: int) -> None:
    # Share most records so that diff has identical subtrees to skip.
    second = {**first, **second}
    for key in list(second)[::3]:
        del second[key]
    source_a, tree_a = make(first, fanout=fanout)
    source_b, tree_b = make(second, fanout=fanout)
    changes = list(diff(source_a, tree_a.root, source_b, tree_b.root))
    expected = sorted(
        set(first) ^ set(second) | {k for k in set(first) & set(second) if first[k] != second[k]}
    )
    assert [change.key for change in changes] == expected
    for change in changes:
        before = first.get(change.key)
        after = second.get(change.key)
        assert change.before == (None if before is None else Record(change.key, *before))
        assert change.after == (None if after is None else Record(change.key, *after))
        assert change.kind == ("added" if before is None else "removed" if after is None else "changed")


def test_diff_reads_only_what_differs() -> None:
    records = random_records(20_000, seed=3)
    source, tree = make(records, fanout=16)
    key = sorted(records)[12_345]
    new, _ = apply(source, tree.root, [Record(key, b"new", (1,))])
    reads = 0

    class Counting(MemorySource):
        def get(self, node_id: bytes, /) -> bytes:
            nonlocal reads
            reads += 1
            return super().get(node_id)

    counting = Counting()
    counting.nodes = source.nodes
    changes = list(diff(counting, tree.root, counting, new.root))
    assert [change.key for change in changes] == [key]
    assert reads <= 2 * 2 * new.height  # the two paths, plus at most a neighbour per level


# --- update -----------------------------------------------------------------------------------

edit_lists = st.lists(
    st.tuples(keys, st.one_of(st.none(), st.tuples(st.binary(max_size=8), sums_1))),
    max_size=40,
)


@PROPERTY
@given(record_sets, edit_lists, fanouts, leaf_fanouts)
def test_update_equals_rebuild(
    records: Records,
    raw_edits: list[tuple[bytes, tuple[bytes, tuple[int, ...]] | None]],
    fanout: int,
    leaf_fanout: int | None,
) -> None:
    source, tree = make(records, fanout=fanout, leaf_fanout=leaf_fanout)
    # Edits touch existing keys too, and delete some that are absent (a no-op).
    raw_edits += [(key, None) for key in list(records)[::5]]
    raw_edits += [(key, (b"same", (1,))) for key in list(records)[1::7]]
    edits: dict[bytes, Record | Delete] = {}
    expected = dict(records)
    for key, change in raw_edits:
        if key in edits:
            continue
        if change is None:
            edits[key] = Delete(key)
            expected.pop(key, None)
        else:
            edits[key] = Record(key, *change)
            expected[key] = change
    new, _ = apply(source, tree.root, [edits[key] for key in sorted(edits)])
    _, rebuilt = make(expected, fanout=fanout, leaf_fanout=leaf_fanout)
    assert new == rebuilt
    assert list(iterate(source, new.root)) == [Record(k, v, s) for k, (v, s) in sorted(expected.items())]


def test_update_without_edits_writes_nothing() -> None:
    source, tree = make(random_records(300, seed=4))
    assert apply(source, tree.root, []) == (tree, 0)


def test_changing_a_value_rewrites_only_its_path() -> None:
    records = random_records(5000, seed=5)
    source, tree = make(records, fanout=8)
    before = reachable(source, tree.root)
    for key in random.Random(5).sample(sorted(records), 20):
        new, written = apply(source, tree.root, [Record(key, b"changed", (3,))])
        assert written == new.height == tree.height
        assert len(reachable(source, new.root) - before) == tree.height


def test_insert_and_delete_touch_few_nodes() -> None:
    records = random_records(20_000, seed=6)
    source, tree = make(records, fanout=16)
    rng = random.Random(6)
    written_total = 0
    for _ in range(40):
        key = rng.choice(sorted(records))
        _, deleted = apply(source, tree.root, [Delete(key)])
        _, inserted = apply(source, tree.root, [Record(key + b"!", b"new", (1,))])
        written_total += deleted + inserted
    assert written_total / 80 < 2 * tree.height


def test_update_refuses_unsorted_or_duplicate_edits() -> None:
    source, tree = make(random_records(50, seed=7))
    with pytest.raises(InputError, match=r"edit 1: key b'a' is out of order after b'b'"):
        list(update(source, tree.root, [Delete(b"b"), Delete(b"a")]))
    with pytest.raises(InputError, match=r"edit 1: key b'a' repeats the key"):
        list(update(source, tree.root, [Delete(b"a"), Record(b"a", b"", (1,))]))
    with pytest.raises(InputError, match=r"expected a Record or a Delete"):
        list(update(source, tree.root, [(b"a", b"", (1,))]))  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"edit 0 \(b'a'\): the value must be bytes and the sums 1 integers"):
        list(update(source, tree.root, [Record(b"a", b"", (-5,))]))


# --- proofs -----------------------------------------------------------------------------------


@PROPERTY
@given(record_sets, fanouts, leaf_fanouts, st.lists(keys, max_size=8))
def test_every_inclusion_and_absence_proof_verifies(
    records: Records, fanout: int, leaf_fanout: int | None, probes: list[bytes]
) -> None:
    source, tree = make(records, fanout=fanout, leaf_fanout=leaf_fanout)
    ordered = sorted(records)
    prover = prolly.Prover(source, tree.root)
    for key in [*ordered[:12], *probes]:
        proof = Proof.from_json(prover.prove(key).to_json())
        result = verify(proof, tree.root, totals=tree.totals)
        assert (result.present, result.count, result.totals) == (key in records, tree.count, tree.totals)
        assert result.key == key
        position = sum(1 for other in ordered if other < key)
        assert result.position == position
        if key in records:
            assert result.record == Record(key, *records[key])
        else:
            assert result.before == (
                Record(ordered[position - 1], *records[ordered[position - 1]]) if position else None
            )
            after = ordered[position] if position < len(ordered) else None
            assert result.after == (None if after is None else Record(after, *records[after]))


def test_proof_of_an_empty_tree() -> None:
    source, tree = make({}, fanout=4)
    proof = prove(source, tree.root, b"x")
    assert proof.paths == ()
    assert verify(proof, tree.root).count == 0
    with pytest.raises(ProofError, match="not the empty root"):
        verify(proof, empty_root(fanout=8, sum_fields=1))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6), st.booleans())
def test_any_byte_mutation_of_a_proof_fails(seed: int, present: bool) -> None:
    """Every byte of a proof matters: each one changed makes it fail, whatever the new byte."""
    records = random_records(300, seed=seed % 7, sum_fields=1)
    source, tree = make(records, fanout=4)
    rng = random.Random(seed)
    key = rng.choice(sorted(records)) if present else b"acct:%08x!" % rng.getrandbits(32)
    text = prove(source, tree.root, key).to_json()
    original = verify(Proof.from_json(text), tree.root)
    for position in range(len(text)):
        mutated = bytearray(text)
        mutated[position] = rng.choice([b for b in range(256) if b != text[position]])
        try:
            result = verify(Proof.from_json(bytes(mutated)), tree.root)
        except ProofError:
            continue
        # Only an absence proof's key may change and still verify: to another absent key in the same gap.
        assert not original.present
        assert result.key != original.key and result.key not in records
        assert (result.before, result.after, result.position) == (
            original.before,
            original.after,
            original.position,
        )


def test_proofs_for_another_root_or_with_other_totals_fail() -> None:
    records = random_records(400, seed=8)
    source, tree = make(records, fanout=4)
    other_records = dict(records)
    other_records[b"acct:zzz"] = (b"", (1,))
    other_source, other = make(other_records, fanout=4)
    key = sorted(records)[17]
    proof = prove(source, tree.root, key)
    with pytest.raises(ProofError, match="another"):
        verify(proof, other.root)
    with pytest.raises(ProofError, match="totals"):
        verify(proof, tree.root, totals=(tree.totals[0] + 1,))
    assert verify(prove(other_source, other.root, key), other.root).totals == (tree.totals[0] + 1,)


def test_a_proof_cannot_show_another_sum_or_value() -> None:
    records = random_records(400, seed=9)
    source, tree = make(records, fanout=4)
    key = sorted(records)[100]
    proof = prove(source, tree.root, key)
    path = proof.paths[0]
    value, sums = records[key]
    for record in (
        Record(key, value, (sums[0] + 1,)),
        Record(key, value, (sums[0] - 1,)),
        Record(key, value + b"x", sums),
        Record(key, value, (-1,)),
    ):
        forged = Proof(
            key, True, proof.fanout, proof.leaf_fanout, proof.sum_fields, (RecordPath(record, path.steps),)
        )
        with pytest.raises(ProofError):
            verify(forged, tree.root)
    # Moving value from a sibling into the record does not balance either.
    step = path.steps[0]
    sibling = step.siblings[0]
    shifted = Sibling(sibling.hash, sibling.record_count, (sibling.sums[0] - 1,))
    steps = (ProofStep(step.entries, step.index, (shifted, *step.siblings[1:])), *path.steps[1:])
    forged = Proof(
        key,
        True,
        proof.fanout,
        proof.leaf_fanout,
        proof.sum_fields,
        (RecordPath(Record(key, value, (sums[0] + 1,)), steps),),
    )
    with pytest.raises(ProofError):
        verify(forged, tree.root)


def test_absence_proofs_need_adjacent_neighbours() -> None:
    records = random_records(400, seed=10)
    source, tree = make(records, fanout=4)
    ordered = sorted(records)
    far = prove(source, tree.root, ordered[10]).paths[0]
    near = prove(source, tree.root, ordered[12]).paths[0]
    gap = Proof(ordered[11] + b"\x00", False, 4, 4, 1, (far, near))
    with pytest.raises(ProofError, match="not adjacent"):
        verify(gap, tree.root)
    claim_missing = Proof(ordered[12], False, 4, 4, 1, (far, near))
    with pytest.raises(ProofError, match="surround"):
        verify(claim_missing, tree.root)
    inside = prove(source, tree.root, ordered[50]).paths[0]
    with pytest.raises(ProofError, match="not the first"):
        verify(Proof(b"", False, 4, 4, 1, (inside,)), tree.root)
    with pytest.raises(ProofError, match="not the last"):
        verify(Proof(b"\xff", False, 4, 4, 1, (inside,)), tree.root)
    with pytest.raises(ProofError, match="exactly the record"):
        verify(Proof(ordered[11], True, 4, 4, 1, (far,)), tree.root)


def test_proof_json_is_versioned() -> None:
    source, tree = make(random_records(100, seed=11), fanout=4)
    document = json.loads(prove(source, tree.root, b"acct:").to_json())
    assert (document["format"], document["version"], document["kind"]) == (
        "lifeboat-prolly-proof",
        2,
        "absence",
    )
    for version in (3, 0, "2", True):
        with pytest.raises(ProofError, match="version"):
            Proof.from_json(json.dumps({**document, "version": version}))
    with pytest.raises(ProofError, match="version 1 is an older format .* make the proof again"):
        Proof.from_json(json.dumps({**document, "version": 1}))
    with pytest.raises(ProofError, match="unknown field"):
        Proof.from_json(json.dumps({**document, "extra": 1}))
    with pytest.raises(ProofError, match="not a Lifeboat record proof"):
        Proof.from_json(json.dumps({**document, "format": "other"}))
    with pytest.raises(ProofError, match="repeats"):
        Proof.from_json(b'{"format":"lifeboat-prolly-proof","format":"x"}')


def test_proof_siblings_have_one_compact_encoding() -> None:
    """A step is [entries, index, (first_key,) siblings]; the siblings are one base64url string of
    hash || (length byte, minimal big-endian) for the count and each sum. Any other spelling of
    the same numbers is refused, so a proof has exactly one JSON form."""
    source, tree = make(random_records(300, seed=13, sum_fields=2), fanout=4, sum_fields=2)
    key = sorted(random_records(300, seed=13, sum_fields=2))[40]
    proof = prove(source, tree.root, key)
    document = json.loads(proof.to_json())
    leaf = document["records"][0]["path"][0]
    assert [type(item) for item in leaf] == [int, int, str]
    assert all(len(step) == 4 for step in document["records"][0]["path"][1:])
    blob = base64.urlsafe_b64decode(leaf[2] + "=" * (-len(leaf[2]) % 4))
    first = proof.paths[0].steps[0].siblings[0]
    count_bytes = first.record_count.to_bytes((first.record_count.bit_length() + 7) // 8, "big")
    assert (
        blob[:32] == first.hash
        and blob[32] == len(count_bytes)
        and blob[33 : 33 + len(count_bytes)] == count_bytes
    )
    assert Proof.from_json(proof.to_json()) == proof

    def with_leaf_siblings(raw: bytes) -> bytes:
        changed = json.loads(proof.to_json())
        changed["records"][0]["path"][0][2] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return json.dumps(changed).encode()

    padded = blob[:32] + bytes((blob[32] + 1, 0)) + blob[33:]  # the count with a leading zero byte
    for raw, message in (
        (padded, "without a leading zero byte"),
        (blob[:-1], "cut short"),
        (blob[:20], "cut short"),
        (blob[:32] + b"\x09" + bytes(9) + blob[33:], "at most 8 bytes"),
    ):
        with pytest.raises(ProofError, match=message):
            Proof.from_json(with_leaf_siblings(raw))
    changed = json.loads(proof.to_json())
    changed["records"][0]["path"][0][2] += "="
    with pytest.raises(ProofError, match="unpadded base64url"):
        Proof.from_json(json.dumps(changed))
    changed["records"][0]["path"][0] = {"entries": 1, "index": 0, "siblings": []}
    with pytest.raises(ProofError, match=r"must be a list \[entries, index, siblings\]"):
        Proof.from_json(json.dumps(changed))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_junk_proof_json_only_raises_proof_error(data: bytes) -> None:
    with pytest.raises(ProofError):
        verify(Proof.from_json(data), bytes(32))


def test_proof_size_grows_with_log_n() -> None:
    """Measure proofs at two sizes, fit the log, and bound a 1,000,000-record proof below 4 KB."""

    def mean_size(count: int) -> float:
        rng = random.Random(count)
        records = [
            Record(b"acct:0x%040x" % rng.getrandbits(160), rng.randbytes(100), (rng.randrange(10**24),))
            for _ in range(count)
        ]
        source = MemorySource()
        nodes = build(sorted(records), sum_fields=1)
        for node in nodes:
            source.put(node)
        prover = prolly.Prover(source, nodes.tree.root)
        sizes = [len(prover.prove(record.key).to_json()) for record in rng.sample(records, 60)]
        return sum(sizes) / len(sizes)

    small, large = mean_size(2_000), mean_size(64_000)
    per_doubling = (large - small) / math.log2(64_000 / 2_000)
    assert 0 < per_doubling < 150  # about one sibling (hash, count, sum) per doubling
    projected = large + per_doubling * math.log2(1_000_000 / 64_000)
    assert projected < 4096, projected


def test_a_sibling_costs_under_90_bytes_with_two_large_sums() -> None:
    """Siblings are most of a proof (a 1,000,000-account ledger's has about 28): with two sums
    near 10**27 each one costs its 43-character hash and about 40 more characters, where the
    version-1 form ([hash, "count", "sum", "sum"]) took about 110."""
    rng = random.Random(14)
    records = sorted(
        Record(b"acct:0x%040x" % rng.getrandbits(160), rng.randbytes(40), (rng.randrange(10**24),) * 2)
        for _ in range(3000)
    )
    source = MemorySource()
    nodes = build(records, fanout=64, leaf_fanout=7, sum_fields=2)
    for node in nodes:
        source.put(node)
    prover = prolly.Prover(source, nodes.tree.root)
    for record in rng.sample(records, 20):
        proof = prover.prove(record.key)
        path = proof.paths[0]
        bare = RecordPath(path.record, tuple(dataclasses.replace(step, siblings=()) for step in path.steps))
        without = dataclasses.replace(proof, paths=(bare,))
        siblings = sum(len(step.siblings) for step in path.steps)
        per_sibling = (len(proof.to_json()) - len(without.to_json())) / siblings
        assert per_sibling < 90, per_sibling


# --- hostile node bytes -----------------------------------------------------------------------


def sample_nodes() -> list[bytes]:
    source, _ = make(random_records(200, seed=12, sum_fields=2), fanout=4, sum_fields=2)
    leaves = [data for data in source.nodes.values() if data[1] == 0]
    inner = [data for data in source.nodes.values() if data[1] > 0]
    return [leaves[0], inner[0], make({}, sum_fields=0)[0].nodes[empty_root(fanout=4, sum_fields=0)]]


SAMPLES = sample_nodes()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_mutated_node_bytes_raise_format_error_or_hash_differently(
    data: bytes, edits: list[tuple[int, int]]
) -> None:
    mutated = bytearray(data)
    for position, value in edits:
        if mutated:
            mutated[position % len(mutated)] = value
    assume(bytes(mutated) != data)
    try:
        node = decode_node(bytes(mutated))
    except FormatError:
        return
    assert node.node_id != decode_node(data).node_id


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(SAMPLES), st.integers(0, 600))
def test_random_or_truncated_node_bytes_only_raise_format_error(junk: bytes, sample: bytes, cut: int) -> None:
    for data in (junk, b"\x01" + junk, sample[:cut], sample + junk[:1]):
        with contextlib.suppress(FormatError):  # anything else propagates and fails the test
            decode_node(data)


def test_decode_refuses_unknown_version_and_bad_shapes() -> None:
    leaf = SAMPLES[0]
    with pytest.raises(FormatError, match="version 2 is not supported"):
        decode_node(b"\x02" + leaf[1:])
    with pytest.raises(FormatError, match="trailing|after its"):
        decode_node(leaf + b"\x00")
    with pytest.raises(FormatError, match="truncated"):
        decode_node(leaf[:-1])
    with pytest.raises(FormatError, match="shorter than"):
        decode_node(b"\x01")
    with pytest.raises(FormatError, match="fanout"):
        decode_node(b"\x01\x00\x00\x01\x00\x04\x00\x00\x00")
    with pytest.raises(FormatError, match="has no entries"):
        decode_node(b"\x01\x01\x00\x04\x00\x04\x00\x00\x00")
    with pytest.raises(FormatError, match="its fanout allows 8"):
        decode_node(b"\x01\x00\x00\x40\x00\x02\x00\x00\x09")


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=12), st.binary(max_size=20), max_size=300))
def test_scan_reads_what_iterate_reads(records: dict[bytes, bytes]) -> None:
    source = MemorySource()
    made = build([Record(k, v) for k, v in sorted(records.items())], fanout=4, leaf_fanout=2)
    for node in made:
        source.put(node)
    root = made.tree.root
    assert list(scan(source, root)) == [(r.key, r.value) for r in iterate(source, root)]


@PROPERTY
@given(
    st.integers(min_value=1, max_value=600),
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=0, max_value=4),
    fanouts,
    leaf_fanouts,
    st.booleans(),
    st.sampled_from([0, 1, 3]),
    st.sampled_from([0, 1, 255]),
)
def test_update_in_place_mixed_with_structural_edits(
    count: int,
    seed: int,
    structural: int,
    fanout: int,
    leaf_fanout: int | None,
    verify: bool,
    sum_fields: int,
    in_place_level: int,
) -> None:
    # Mostly value replacements (rewritten in place), with a few inserts and deletes among them
    # (some of a node's first key) that send an in-place attempt back to the builder.
    records = random_records(count, seed, sum_fields)
    source, tree = make(records, fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
    rng = random.Random(seed)
    keys_in = sorted(records)
    edits: dict[bytes, Record | Delete] = {}
    for key in rng.sample(keys_in, min(len(keys_in), rng.randint(1, 60))):
        sums = tuple(rng.randrange(2**128) for _ in range(sum_fields))
        edits[key] = Record(key, b"v%d" % rng.getrandbits(16), sums)
    firsts = [node.first_key for node in walk_nodes(source, tree.root) if node.level == 0]
    for _ in range(structural):
        kind = rng.randrange(3)
        if kind == 0:
            key = rng.choice(firsts)
            edits[key] = Delete(key)
        elif kind == 1:
            key = rng.choice(keys_in)
            edits[key] = Delete(key)
        else:
            key = rng.choice(keys_in) + b"+"
            edits[key] = Record(key, b"new", (7,) * sum_fields)
    expected = dict(records)
    for key, edit in edits.items():
        if isinstance(edit, Delete):
            expected.pop(key, None)
        else:
            expected[key] = (edit.value, edit.sums)
    # The level in-place attempts start at changes what is held, never the result (255: the root).
    with mock.patch.object(prolly_update, "IN_PLACE_LEVEL", in_place_level):
        result = update(source, tree.root, [edits[key] for key in sorted(edits)], verify=verify)
        for node in result:
            source.put(node)
    _, rebuilt = make(expected, fanout=fanout, leaf_fanout=leaf_fanout, sum_fields=sum_fields)
    assert result.tree == rebuilt
    assert list(iterate(source, result.tree.root)) == [
        Record(k, v, s) for k, (v, s) in sorted(expected.items())
    ]


def test_update_without_verify_still_checks_structure() -> None:
    records = random_records(2000, seed=11)
    source, tree = make(records, fanout=8)
    key = sorted(records)[777]
    # A leaf that lies about its content: its parent's entry no longer matches it.
    leaf = next(
        n for n in walk_nodes(source, tree.root) if n.level == 0 and key in [r.key for r in n.records]
    )
    data = bytearray(source.nodes[leaf.node_id])
    data[-1] ^= 1  # the last record's sum
    source.nodes[leaf.node_id] = bytes(data)
    with pytest.raises(FormatError, match="disagrees with its entry"):
        list(update(source, tree.root, [Record(key, b"x", (1,))], verify=False))
    with pytest.raises(FormatError, match="does not match its id"):
        list(update(source, tree.root, [Record(key, b"x", (1,))], verify=True))
