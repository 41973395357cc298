"""The tree blob format: canonical round trip, strict decoding, path-escape names."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.snapshot.tree import Node, check_name, decode_tree, encode_tree
from lifeboat.store.errors import FormatError

BLOB = bytes(range(32))


def sample_nodes() -> list[Node]:
    return [
        Node("b.txt", "file", 0o644, 1_700_000_000_123_456_789, 12, 5, 2049, (BLOB, BLOB[::-1])),
        Node("a", "dir", 0o755, -5, subtree=BLOB),
        Node("l", "symlink", 0o777, 0, target="../x"),
        Node("empty", "file", 0o600, 7),
    ]


def test_round_trip_sorts_by_name() -> None:
    data = encode_tree(sample_nodes())
    nodes = decode_tree(data)
    assert [node.name for node in nodes] == ["a", "b.txt", "empty", "l"]
    assert set(nodes) == set(sample_nodes())
    assert encode_tree(reversed(nodes)) == data
    document = json.loads(data)
    assert document["format"] == "lifeboat-tree" and document["version"] == 1
    assert document["nodes"][0] == {
        "name": "a",
        "type": "dir",
        "mode": 0o755,
        "mtime_ns": -5,
        "subtree": BLOB.hex(),
    }


def test_non_utf8_names_survive() -> None:
    name = os.fsdecode(b"caf\xe9-\xff")
    target = os.fsdecode(b"../\x80x")
    nodes = [Node(name, "symlink", 0o777, 1, target=target)]
    data = encode_tree(nodes)
    assert data.isascii()
    assert decode_tree(data) == nodes
    assert os.fsencode(decode_tree(data)[0].name) == b"caf\xe9-\xff"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "a\0b", "\ud800", "x" * 1025])
def test_check_name_refuses_escapes(name: str) -> None:
    with pytest.raises(FormatError):
        check_name(name)


def test_encode_refuses_duplicates_and_bad_nodes() -> None:
    with pytest.raises(FormatError, match="two tree entries"):
        encode_tree([Node("a", "file", 0o644, 0), Node("a", "dir", 0o755, 0, subtree=BLOB)])
    with pytest.raises(FormatError, match="path escape"):
        encode_tree([Node("..", "file", 0o644, 0)])
    with pytest.raises(FormatError, match="no subtree"):
        encode_tree([Node("d", "dir", 0o755, 0)])
    with pytest.raises(FormatError, match="out of range"):
        encode_tree([Node("f", "file", 0o100644, 0)])


def _tree(nodes: list[dict[str, object]], **extra: object) -> bytes:
    document = {"format": "lifeboat-tree", "version": 1, "nodes": nodes, **extra}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


FILE = {
    "name": "f",
    "type": "file",
    "mode": 420,
    "mtime_ns": 1,
    "size": 0,
    "inode": 0,
    "device": 0,
    "content": [],
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff", "canonical JSON"),
        (b"[]", "not a JSON object"),
        (_tree([], version=2), "version 2"),
        (_tree([], format="other"), "not a tree blob"),
        (_tree([], extra=1), "unexpected fields"),
        (_tree([{**FILE, "name": ".."}]), "path escape"),
        (_tree([{**FILE, "name": "a/b"}]), "path escape"),
        (_tree([FILE, FILE]), "duplicate"),
        (_tree([{**FILE, "name": "g"}, FILE]), "unsorted"),
        (_tree([{**FILE, "mode": True}]), "not an integer"),
        (_tree([{**FILE, "size": -1}]), "out of range"),
        (_tree([{**FILE, "content": ["AB" * 32]}]), "lowercase"),
        (_tree([{**FILE, "content": ["ab"]}]), "hex digits"),
        (_tree([{**FILE, "type": "socket"}]), "unknown type"),
        (_tree([{**FILE, "subtree": "00" * 32}]), "unexpected"),
        (_tree([{"name": "l", "type": "symlink", "mode": 511, "mtime_ns": 1, "target": ""}]), "target"),
        (_tree([FILE]).replace(b":", b": ", 1), "canonical form"),
    ],
)
def test_decode_refuses_malformed(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_tree(data)


names = (
    st.binary(min_size=1, max_size=20)
    .filter(lambda raw: b"/" not in raw and b"\0" not in raw and raw not in (b".", b".."))
    .map(os.fsdecode)
)
blob_ids = st.binary(min_size=32, max_size=32)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
u64 = st.integers(0, (1 << 64) - 1)
modes = st.integers(0, 0o7777)
nodes = st.one_of(
    st.builds(
        Node,
        name=names,
        type=st.just("file"),
        mode=modes,
        mtime_ns=i64,
        size=u64,
        inode=u64,
        device=u64,
        content=st.lists(blob_ids, max_size=4).map(tuple),
    ),
    st.builds(Node, name=names, type=st.just("dir"), mode=modes, mtime_ns=i64, subtree=blob_ids),
    st.builds(
        Node,
        name=names,
        type=st.just("symlink"),
        mode=modes,
        mtime_ns=i64,
        target=st.binary(min_size=1, max_size=40).filter(lambda raw: b"\0" not in raw).map(os.fsdecode),
    ),
)
trees = st.lists(nodes, max_size=8, unique_by=lambda node: node.name)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_round_trip_property(tree: list[Node]) -> None:
    data = encode_tree(tree)
    decoded = decode_tree(data)
    assert decoded == sorted(tree, key=lambda node: node.name)
    assert encode_tree(decoded) == data


@settings(max_examples=300, deadline=None)
@given(trees, st.data())
def test_mutated_blobs_raise_only_format_error(tree: list[Node], data: st.DataObject) -> None:
    blob = bytearray(encode_tree(tree))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        position = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if action == "flip" and blob:
            blob[position] ^= data.draw(st.integers(1, 255))
        elif action == "delete" and blob:
            del blob[position]
        else:
            blob.insert(position, data.draw(st.integers(0, 255)))
    try:
        decoded = decode_tree(bytes(blob))
    except FormatError:
        return
    assert encode_tree(decoded) == bytes(blob)


# --- special files (tree version 2) ------------------------------------------------------------


def test_fifos_and_devices_round_trip_in_version_2_and_plain_trees_stay_version_1() -> None:
    special = [
        Node("pipe", "fifo", 0o640, 3),
        Node("null", "chardev", 0o666, 4, major=1, minor=3),
        Node("disk", "blockdev", 0o660, 5, major=8, minor=2**20),
    ]
    data = encode_tree([*sample_nodes(), *special])
    document = json.loads(data)
    assert document["version"] == 2
    by_name = {node["name"]: node for node in document["nodes"]}
    assert by_name["pipe"] == {"name": "pipe", "type": "fifo", "mode": 0o640, "mtime_ns": 3}
    assert by_name["null"] == {
        "name": "null",
        "type": "chardev",
        "mode": 0o666,
        "mtime_ns": 4,
        "major": 1,
        "minor": 3,
    }
    assert set(decode_tree(data)) == {*sample_nodes(), *special}
    # a tree without special files is exactly what version 1 readers and earlier backups have
    assert json.loads(encode_tree(sample_nodes()))["version"] == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_tree([{"name": "p", "type": "fifo", "mode": 420, "mtime_ns": 1}]), "need version 2"),
        (_tree([FILE], version=2), "lists no special file"),
        (_tree([{"name": "p", "type": "fifo", "mode": 420, "mtime_ns": 1}], version=3), "upgrade"),
        (
            _tree(
                [{"name": "n", "type": "chardev", "mode": 420, "mtime_ns": 1, "major": 1}],
                version=2,
            ),
            "missing fields \\['minor'\\]",
        ),
        (
            _tree(
                [{"name": "n", "type": "blockdev", "mode": 420, "mtime_ns": 1, "major": 1, "minor": 2**32}],
                version=2,
            ),
            "minor .* out of range",
        ),
        (
            _tree([{"name": "s", "type": "socket", "mode": 420, "mtime_ns": 1}], version=2),
            "unknown type 'socket'",
        ),
    ],
)
def test_version_2_is_strict(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_tree(data)
