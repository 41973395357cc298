"""Claim trees: OpenZeppelin's standard-v1 Merkle tree, its proofs, its dump, and the npm package.

The interop tests run ``@openzeppelin/merkle-tree`` under Node (``tests/interop``) in both
directions: Node loads our dumps and checks our proofs; we load Node's dumps and give its proofs.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest_tools import INTEROP_DIR, require_npm_package, require_tool
from lifeboat.onchain.errors import OrderError
from lifeboat.onchain.merkle import (
    CLAIM_ENCODING,
    StandardMerkleTree,
    checked_address,
    claim_of,
    encode,
    leaf_hash,
    node_hash,
    normalize_value,
    process_proof,
    verify,
)

#: The two-value example of the npm package's README, and the root it gives.
README_VALUES = [
    ["0x1111111111111111111111111111111111111111", "5000000000000000000"],
    ["0x2222222222222222222222222222222222222222", "2500000000000000000"],
]
README_ROOT = "d4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
amounts = st.integers(min_value=0, max_value=2**256 - 1)
claims = st.lists(st.tuples(addresses, amounts), min_size=1, max_size=40, unique_by=lambda c: c[0])


def as_values(pairs: list[tuple[str, int]]) -> list[list[Any]]:
    return [[a, n] for a, n in pairs]


# --- the format's facts ------------------------------------------------------------------------


def test_the_readme_example_gives_the_published_root() -> None:
    tree = StandardMerkleTree.of(README_VALUES, ["address", "uint256"])
    assert tree.root.hex() == README_ROOT
    assert len(tree.tree) == 3
    for i, value in enumerate(README_VALUES):
        assert tree.verify(value, tree.proof(i))


def test_the_worked_example_of_the_docs() -> None:
    """docs/onchain-claims.md, section 4: three claims, their leaves, tree, indices and proofs."""
    values = [*README_VALUES, ["0x3333333333333333333333333333333333333333", "1"]]
    tree = StandardMerkleTree.of(values, CLAIM_ENCODING)
    dump = tree.dump()
    assert [node[2:10] for node in dump["tree"]] == [
        "d673f832",
        "8d00bd8d",
        "eb02c421",
        "c3d2e29c",
        "b92c48e9",
    ]
    assert dump["tree"][0] == "0xd673f832e8ae578ea16450035956e30f27212b91d6cd26edbef07c90546302ff"
    assert [v["treeIndex"] for v in dump["values"]] == [2, 4, 3]
    assert [[p.hex()[:4] for p in tree.proof(i)] for i in range(3)] == [
        ["8d00"],
        ["c3d2", "eb02"],
        ["b92c", "eb02"],
    ]
    assert encode(CLAIM_ENCODING, tree.values[0]).hex().endswith("4563918244f40000")


def test_one_value_is_its_own_root_with_an_empty_proof() -> None:
    tree = StandardMerkleTree.of([README_VALUES[0]], CLAIM_ENCODING)
    assert tree.root == leaf_hash(CLAIM_ENCODING, README_VALUES[0])
    assert tree.proof(0) == []
    assert verify(tree.root, CLAIM_ENCODING, README_VALUES[0], [])


def test_nodes_hash_the_sorted_pair_and_leaves_are_double_keccak() -> None:
    a, b = bytes(32), b"\xff" * 32
    assert node_hash(a, b) == node_hash(b, a)
    tree = StandardMerkleTree.of(README_VALUES, CLAIM_ENCODING)
    leaves = sorted(leaf_hash(CLAIM_ENCODING, v) for v in README_VALUES)
    # Leaves sorted by hash: the k-th at index 2n - 2 - k.
    assert tree.tree[2] == leaves[0] and tree.tree[1] == leaves[1]
    assert tree.root == node_hash(leaves[0], leaves[1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=claims, sort_leaves=st.booleans())
def test_every_proof_verifies_and_the_dump_loads_back(
    pairs: list[tuple[str, int]], sort_leaves: bool
) -> None:
    values = as_values(pairs)
    tree = StandardMerkleTree.of(values, CLAIM_ENCODING, sort_leaves=sort_leaves)
    assert len(tree.tree) == 2 * len(values) - 1
    for i, value in enumerate(values):
        proof = tree.proof(i)
        assert tree.verify(value, proof)
        assert process_proof(leaf_hash(CLAIM_ENCODING, value), proof) == tree.root
        assert tree.index_of(value) == i
    loaded = StandardMerkleTree.load(json.loads(json.dumps(tree.dump())))
    assert loaded == tree


@settings(max_examples=60, deadline=None)
@given(pairs=claims, data=st.data())
def test_a_changed_value_proof_or_root_does_not_verify(
    pairs: list[tuple[str, int]], data: st.DataObject
) -> None:
    values = as_values(pairs)
    tree = StandardMerkleTree.of(values, CLAIM_ENCODING)
    i = data.draw(st.integers(0, len(values) - 1))
    address, amount = values[i]
    proof = tree.proof(i)
    other = data.draw(amounts.filter(lambda n: n != amount))
    assert not tree.verify([address, other], proof)
    stranger = data.draw(addresses.filter(lambda a: a.lower() not in {v[0].lower() for v in values}))
    assert not tree.verify([stranger, amount], proof)
    root = bytearray(tree.root)
    root[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
    assert not verify(bytes(root), CLAIM_ENCODING, values[i], proof)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bad: list[bytes] = [*proof]
        bad[j] = bytes(x ^ 0xFF for x in bad[j])
        assert not tree.verify(values[i], bad)
        assert not tree.verify(values[i], proof[:-1])
        assert not tree.verify(values[i], [*proof, proof[-1]])


STATIC_TYPES = [
    "address",
    "bool",
    "uint8",
    "uint64",
    "uint256",
    "int8",
    "int256",
    "bytes1",
    "bytes20",
    "bytes32",
]


def _static_item(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return addresses
    if kind == "bool":
        return st.booleans()
    if kind.startswith("bytes"):
        return st.binary(min_size=int(kind[5:]), max_size=int(kind[5:]))
    bits = int(kind.lstrip("uint"))
    if kind.startswith("u"):
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), kinds=st.lists(st.sampled_from(STATIC_TYPES), min_size=1, max_size=6))
def test_static_values_encode_as_eth_abi_does(data: st.DataObject, kinds: list[str]) -> None:
    value = data.draw(st.tuples(*map(_static_item, kinds)))
    normal = normalize_value(tuple(kinds), value, what="v")
    assert encode(tuple(kinds), normal) == abi_encode(kinds, list(normal))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(min_size=20, max_size=20))
def test_addresses_are_checksummed_as_eth_utils_does(raw: bytes) -> None:
    expected = to_checksum_address(raw)
    assert checked_address("0x" + raw.hex(), "a") == checked_address(raw, "a") == expected
    assert (
        checked_address(expected, "a")
        == checked_address(expected.upper().replace("0X", "0x"), "a")
        == expected
    )


def test_malformed_proofs_are_false_not_errors() -> None:
    tree = StandardMerkleTree.of(README_VALUES, CLAIM_ENCODING)
    assert not tree.verify(README_VALUES[0], [b"short"])
    assert not tree.verify(["not an address", "1"], tree.proof(0))
    assert not verify(b"\x00" * 31, CLAIM_ENCODING, README_VALUES[0], tree.proof(0))


def test_values_are_checked_against_the_encoding() -> None:
    with pytest.raises(OrderError, match="not an address"):
        StandardMerkleTree.of([["0x12", 1]], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="EIP-55"):
        StandardMerkleTree.of([["0x52908400098527886E0F7030069857D2E4169Ee7", 1]], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="out of range"):
        StandardMerkleTree.of([["0x" + "11" * 20, 2**256]], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="out of range"):
        StandardMerkleTree.of([["0x" + "11" * 20, -1]], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="not a boolean"):
        StandardMerkleTree.of([["0x" + "11" * 20, True]], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="not supported"):
        StandardMerkleTree.of([[[1, 2]]], ["uint256[]"])
    with pytest.raises(OrderError, match="at least one leaf|1 to"):
        StandardMerkleTree.of([], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="has 1 items; the leaf encoding has 2"):
        StandardMerkleTree.of([["0x" + "11" * 20]], CLAIM_ENCODING)
    # Hex integers and mixed types go through.
    tree = StandardMerkleTree.of([["0x" + "11" * 20, "0x10", True, "0xabcd", "hi", "0x" + "00" * 32]],
                                 ["address", "uint8", "bool", "bytes", "string", "bytes32"])  # fmt: skip
    assert tree.values[0][1] == 16


def _tampered(change: Any) -> dict[str, Any]:
    dump = StandardMerkleTree.of(
        [*README_VALUES, ["0x3333333333333333333333333333333333333333", "7"]], CLAIM_ENCODING
    ).dump()
    changed = copy.deepcopy(dump)
    change(changed)
    return changed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="standard-v2"), "is not 'standard-v1'"),
        (lambda d: d.pop("values"), "missing: values"),
        (lambda d: d.update(extra=1), "unknown: extra"),
        (lambda d: d.update(leafEncoding="address"), "list of ABI type names"),
        (lambda d: d.update(leafEncoding=["address", "uint7"]), "not supported"),
        (lambda d: d["tree"].append(d["tree"][0]), "2n - 1"),
        (lambda d: d["tree"].__setitem__(0, d["tree"][0].upper()), "lowercase hex"),
        (lambda d: d["tree"].__setitem__(0, "0x" + "00" * 32), "tree[0] is not the hash of its children"),
        (lambda d: d["values"].pop(), "3 entries"),
        (lambda d: d["values"][0].update(treeIndex=0), "a leaf's index"),
        (lambda d: d["values"][0].update(treeIndex=True), "a leaf's index"),
        (lambda d: d["values"][1].update(treeIndex=d["values"][0]["treeIndex"]), "another value's leaf"),
        (
            lambda d: d["values"][0]["value"].__setitem__(1, "5000000000000000001"),
            "does not hash to its leaf",
        ),
        (lambda d: d["values"][0]["value"].__setitem__(1, 1.5), "must be an integer"),
        (lambda d: d["values"][0].update(extra=1), "exactly value and treeIndex"),
    ],
)
def test_malformed_or_inconsistent_dumps_are_refused(change: Any, message: str) -> None:
    with pytest.raises(OrderError, match=re.escape(message)):
        StandardMerkleTree.load(_tampered(change))


def test_a_dump_that_is_not_an_object_is_refused() -> None:
    bad: object
    for bad in ([], "x", None, {"format": "standard-v1"}):
        with pytest.raises(OrderError):
            StandardMerkleTree.load(bad)


def test_an_unknown_value_has_no_proof() -> None:
    tree = StandardMerkleTree.of(README_VALUES, CLAIM_ENCODING)
    with pytest.raises(OrderError, match="not in the tree"):
        tree.proof_of(["0x1111111111111111111111111111111111111111", "1"])
    with pytest.raises(OrderError, match="no value at index 2"):
        tree.proof(2)


# --- the npm package, both directions ----------------------------------------------------------


def run_node(request: dict[str, Any]) -> Any:
    node = require_tool("node")
    require_npm_package("@openzeppelin/merkle-tree")
    done = subprocess.run(
        [node, str(INTEROP_DIR / "oz_merkle_tree.js")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=INTEROP_DIR,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _claims(count: int, seed: int) -> list[list[Any]]:
    import random

    rng = random.Random(seed)
    return [[f"0x{rng.getrandbits(160):040x}", str(rng.randint(0, 10**24))] for _ in range(count)]


@pytest.mark.interop
@pytest.mark.parametrize("count", [1, 2, 3, 7, 64, 257])
def test_node_loads_our_dump_with_the_same_root_and_proofs(count: int) -> None:
    values = _claims(count, seed=count)
    tree = StandardMerkleTree.of(values, CLAIM_ENCODING)
    ours = [["0x" + p.hex() for p in tree.proof(i)] for i in range(count)]
    answer = run_node(
        {
            "op": "load",
            "dump": tree.dump(),
            "proofs": [{"value": tree.dump()["values"][i]["value"], "proof": ours[i]} for i in range(count)],
        }
    )
    assert answer["root"] == "0x" + tree.root.hex()
    assert answer["proofs"] == ours
    assert answer["verified"] == [True] * count


@pytest.mark.interop
@pytest.mark.parametrize(("count", "sort_leaves"), [(1, True), (2, True), (5, True), (100, True), (9, False)])
def test_we_load_nodes_dump_with_the_same_root_and_proofs(count: int, sort_leaves: bool) -> None:
    values = _claims(count, seed=1000 + count)
    answer = run_node(
        {"op": "build", "values": values, "leafEncoding": ["address", "uint256"], "sortLeaves": sort_leaves}
    )
    tree = StandardMerkleTree.load(answer["dump"])
    assert "0x" + tree.root.hex() == answer["root"]
    assert [["0x" + p.hex() for p in tree.proof(i)] for i in range(count)] == answer["proofs"]
    assert tree == StandardMerkleTree.of(values, CLAIM_ENCODING, sort_leaves=sort_leaves)


@pytest.mark.interop
def test_node_and_we_agree_on_other_leaf_types(tmp_path: Path) -> None:
    encoding = ["address", "uint8", "bool", "bytes", "string", "bytes32", "int256"]
    values = [
        ["0x" + "11" * 20, "255", True, "0xabcd", "héllo", "0x" + "ab" * 32, "-5"],
        ["0x" + "22" * 20, "0", False, "0x", "", "0x" + "00" * 32, "57896044618658097711785492504343953926634992332820282019728792003956564819967"],
        ["0x" + "33" * 20, "7", True, "0x00", "x", "0x" + "ff" * 32, "0"],
    ]  # fmt: skip
    answer = run_node({"op": "build", "values": values, "leafEncoding": encoding})
    tree = StandardMerkleTree.load(answer["dump"])
    assert tree == StandardMerkleTree.of(values, encoding)
    again = run_node({"op": "load", "dump": tree.dump(), "proofs": []})
    assert again["root"] == answer["root"]


def test_claim_of_gives_the_arguments_of_a_claim() -> None:
    tree = StandardMerkleTree.of(README_VALUES, CLAIM_ENCODING)
    account, amount, proof = claim_of(tree, README_VALUES[1][0])
    assert (account, amount, proof) == (README_VALUES[1][0], 2500000000000000000, tree.proof(1))
    with pytest.raises(OrderError, match="has no claim"):
        claim_of(tree, "0x" + "33" * 20)
    twice = StandardMerkleTree.of([README_VALUES[0], [README_VALUES[0][0], "7"]], CLAIM_ENCODING)
    with pytest.raises(OrderError, match="has 2 leaves"):
        claim_of(twice, README_VALUES[0][0])
    with pytest.raises(OrderError, match="not a claim tree"):
        claim_of(StandardMerkleTree.of([[README_VALUES[0][0]]], ["address"]), README_VALUES[0][0])
