"""Claim trees: keccak256 Merkle trees in OpenZeppelin's StandardMerkleTree format (``standard-v1``).

A tree commits to a list of values, each a tuple ABI-encoded with the tree's ``leaf_encoding``
(``["address", "uint256"]`` for claims). The facts of the format, as ``@openzeppelin/merkle-tree``
and OpenZeppelin's ``MerkleProof`` define them:

* leaf = ``keccak256(keccak256(abi.encode(leaf_encoding, value)))``;
* node = ``keccak256(min(a, b) || max(a, b))`` (a sorted pair, so a proof needs no left/right bits);
* ``n`` leaves, sorted by hash (by default), fill a complete binary tree kept as one array of
  ``2n - 1`` hashes: node ``i`` has children ``2i + 1`` and ``2i + 2``, the root is ``tree[0]``,
  and the ``k``-th leaf in hash order is ``tree[2n - 2 - k]``;
* a proof is the siblings from the leaf up to the root's children;
* the JSON dump is ``{"format": "standard-v1", "leafEncoding": [...], "tree": ["0x..", ...],
  "values": [{"value": [...], "treeIndex": i}, ...]}`` with the values in the order given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from lifeboat.onchain.errors import OrderError

FORMAT = "standard-v1"
#: The leaf encoding of a claim: who is paid and how many wei.
CLAIM_ENCODING = ("address", "uint256")
#: At most this many leaves (a proof is then at most 20 hashes; the claim contract takes 32).
MAX_LEAVES = 1 << 20
MAX_LEAF_TYPES = 16
MAX_DYNAMIC_BYTES = 1 << 16

_HASH = re.compile(r"0x[0-9a-f]{64}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DECIMAL = re.compile(r"-?[0-9]{1,80}")
_HEX_NUMBER = re.compile(r"0x[0-9a-fA-F]{1,64}")
_INT_TYPE = re.compile(r"(u?)int([0-9]{1,3})")
_BYTES_TYPE = re.compile(r"bytes([0-9]{1,2})")

Hash = bytes
Value = tuple[Any, ...]


# --- hashing -----------------------------------------------------------------------------------


def node_hash(a: Hash, b: Hash) -> Hash:
    """The parent of two nodes: keccak256 of the pair in ascending byte order."""
    return bytes(keccak(a + b if a <= b else b + a))


def leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> Hash:
    """A value's leaf: keccak256(keccak256(abi.encode(leaf_encoding, value)))."""
    encoding = check_leaf_encoding(leaf_encoding)
    normal = normalize_value(encoding, value, what="the value")
    return _leaf_of_normal(encoding, normal)


def _leaf_of_normal(encoding: tuple[str, ...], value: Value) -> Hash:
    return bytes(keccak(keccak(encode(encoding, value))))


def encode(encoding: tuple[str, ...], value: Value) -> bytes:
    """``abi.encode`` of a checked value: static types word by word, dynamic ones by ``eth_abi``."""
    if any(kind in ("bytes", "string") for kind in encoding):
        return bytes(abi_encode(list(encoding), list(value)))
    return b"".join(_word(kind, item) for kind, item in zip(encoding, value, strict=True))


def _word(kind: str, item: Any) -> bytes:
    """One static ABI word: left-padded numbers and addresses, right-padded ``bytesN``."""
    if kind == "address":
        return bytes(12) + bytes.fromhex(item[2:])
    if kind == "bool":
        return int(item).to_bytes(32, "big")
    if kind.startswith("bytes"):
        return bytes(item).ljust(32, b"\x00")
    return int(item).to_bytes(32, "big", signed=kind.startswith("int"))


def process_proof(leaf: Hash, proof: Sequence[Hash]) -> Hash:
    """The root a proof leads to from ``leaf``."""
    node = leaf
    for sibling in proof:
        node = node_hash(node, sibling)
    return node


def verify(root: Hash, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[Hash]) -> bool:
    """Whether ``proof`` shows ``value`` in the tree of ``root`` (False for a malformed proof)."""
    if len(root) != 32 or any(not isinstance(p, bytes) or len(p) != 32 for p in proof):
        return False
    try:
        leaf = leaf_hash(leaf_encoding, value)
    except OrderError:
        return False
    return process_proof(leaf, proof) == root


# --- leaf types and values ---------------------------------------------------------------------


def check_leaf_encoding(leaf_encoding: object) -> tuple[str, ...]:
    """The leaf encoding as a tuple of ABI type names; only elementary types are taken."""
    if isinstance(leaf_encoding, str | bytes) or not isinstance(leaf_encoding, Sequence):
        raise OrderError("claim tree: leafEncoding must be a list of ABI type names")
    if not 1 <= len(leaf_encoding) <= MAX_LEAF_TYPES:
        raise OrderError(f"claim tree: leafEncoding must hold 1 to {MAX_LEAF_TYPES} types")
    for name in leaf_encoding:
        if not isinstance(name, str) or not _supported(name):
            raise OrderError(
                f"claim tree: leaf type {name!r} is not supported "
                "(address, bool, string, bytes, bytes1..bytes32, uint8..uint256, int8..int256)"
            )
    return tuple(leaf_encoding)


def _supported(name: str) -> bool:
    if name in ("address", "bool", "string", "bytes"):
        return True
    if m := _INT_TYPE.fullmatch(name):
        bits = int(m.group(2))
        return 8 <= bits <= 256 and bits % 8 == 0 and m.group(2) == str(bits)
    if m := _BYTES_TYPE.fullmatch(name):
        size = int(m.group(1))
        return 1 <= size <= 32 and m.group(1) == str(size)
    return False


def normalize_value(leaf_encoding: tuple[str, ...], value: object, *, what: str) -> Value:
    """``value`` checked against the leaf encoding, as Python values ABI encoding takes.

    Addresses may be any case (a mixed-case one must carry a valid EIP-55 checksum) and come out
    checksummed; integers may be ints, decimal strings or ``0x`` hex strings; bytes ``0x`` hex.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise OrderError(f"claim tree: {what} must be a list of {len(leaf_encoding)} items")
    if len(value) != len(leaf_encoding):
        raise OrderError(
            f"claim tree: {what} has {len(value)} items; the leaf encoding has {len(leaf_encoding)}"
        )
    return tuple(
        _item(kind, item, f"{what}, item {i} ({kind})")
        for i, (kind, item) in enumerate(zip(leaf_encoding, value, strict=True))
    )


def _item(kind: str, item: object, what: str) -> Any:
    if kind == "address":
        return checked_address(item, what)
    if kind == "bool":
        if not isinstance(item, bool):
            raise OrderError(f"claim tree: {what} must be true or false")
        return item
    if kind == "string":
        if not isinstance(item, str) or len(item) > MAX_DYNAMIC_BYTES:
            raise OrderError(f"claim tree: {what} must be a string of at most {MAX_DYNAMIC_BYTES} characters")
        return item
    if kind == "bytes" or kind.startswith("bytes"):
        data = _hex_bytes(item, what)
        if kind != "bytes" and len(data) != int(kind[5:]):
            raise OrderError(f"claim tree: {what} must be {int(kind[5:])} bytes")
        return data
    m = _INT_TYPE.fullmatch(kind)
    assert m is not None
    number = _integer(item, what)
    bits = int(m.group(2))
    low, high = (0, 1 << bits) if m.group(1) else (-(1 << (bits - 1)), 1 << (bits - 1))
    if not low <= number < high:
        raise OrderError(f"claim tree: {what} is out of range for {kind}")
    return number


def checked_address(item: object, what: str) -> str:
    """A 20-byte address (``0x`` and 40 hex digits, or 20 bytes), checksummed (EIP-55)."""
    if isinstance(item, bytes) and len(item) == 20:
        return checksummed(item.hex())
    if not isinstance(item, str) or not _ADDRESS.fullmatch(item):
        raise OrderError(f"{what}: {_show(item)} is not an address (0x and 40 hex digits)")
    digits = item[2:]
    lower = digits.lower()
    result = checksummed(lower)
    if digits != lower and digits != digits.upper() and item != result:
        raise OrderError(f"{what}: {item} has a wrong EIP-55 checksum (mixed case); did you mean {result}?")
    return result


def checksummed(lower: str) -> str:
    """EIP-55: hex digit ``i`` of the address is upper case when nibble ``i`` of
    ``keccak256(the 40 lowercase digits as ASCII)`` is 8 or more."""
    nibbles = bytes(keccak(lower.encode("ascii"))).hex()
    return "0x" + "".join(c.upper() if n in "89abcdef" else c for c, n in zip(lower, nibbles, strict=False))


def _integer(item: object, what: str) -> int:
    if isinstance(item, bool):
        raise OrderError(f"claim tree: {what} must be an integer, not a boolean")
    if isinstance(item, int):
        return item
    if isinstance(item, str):
        if _DECIMAL.fullmatch(item):
            return int(item)
        if _HEX_NUMBER.fullmatch(item):
            return int(item, 16)
    raise OrderError(
        f"claim tree: {what} must be an integer (a number, decimal digits or 0x hex), not {_show(item)}"
    )


def _hex_bytes(item: object, what: str) -> bytes:
    if isinstance(item, bytes):
        data = item
    elif isinstance(item, str) and _HEX.fullmatch(item):
        data = bytes.fromhex(item[2:])
    else:
        raise OrderError(f"claim tree: {what} must be 0x and an even number of hex digits, not {_show(item)}")
    if len(data) > MAX_DYNAMIC_BYTES:
        raise OrderError(f"claim tree: {what} is longer than {MAX_DYNAMIC_BYTES} bytes")
    return data


def _json_item(kind: str, item: Any) -> Any:
    """An item as the dump writes it: integers as decimal strings, bytes as ``0x`` hex."""
    if kind.startswith(("uint", "int")):
        return str(item)
    if isinstance(item, bytes):
        return "0x" + item.hex()
    return item


def _show(item: object) -> str:
    text = repr(item)
    return text if len(text) <= 80 else text[:77] + "..."


# --- the tree ----------------------------------------------------------------------------------


def make_tree(leaves: Sequence[Hash]) -> list[Hash]:
    """The array of ``2n - 1`` nodes over ``leaves`` (in the order given; leaf ``k`` at ``2n-2-k``)."""
    if not leaves:
        raise OrderError("claim tree: a tree needs at least one leaf")
    size = 2 * len(leaves) - 1
    tree: list[Hash] = [b""] * size
    for k, leaf in enumerate(leaves):
        tree[size - 1 - k] = leaf
    for i in range(size - 1 - len(leaves), -1, -1):
        tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
    return tree


def tree_proof(tree: Sequence[Hash], index: int) -> list[Hash]:
    """The siblings from node ``index`` (a leaf) up to the root."""
    proof: list[Hash] = []
    while index > 0:
        proof.append(tree[index + 1 if index % 2 else index - 1])
        index = (index - 1) // 2
    return proof


@dataclass(frozen=True)
class StandardMerkleTree:
    """A standard-v1 tree: the node array, the values in their given order, each value's node."""

    leaf_encoding: tuple[str, ...]
    tree: tuple[Hash, ...]
    values: tuple[Value, ...]
    tree_indices: tuple[int, ...]

    @classmethod
    def of(
        cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str], *, sort_leaves: bool = True
    ) -> StandardMerkleTree:
        """The tree of ``values``; leaves sorted by hash unless ``sort_leaves`` is False (as npm's)."""
        encoding = check_leaf_encoding(leaf_encoding)
        if not 1 <= len(values) <= MAX_LEAVES:
            raise OrderError(f"claim tree: a tree holds 1 to {MAX_LEAVES} values, not {len(values)}")
        normal = tuple(normalize_value(encoding, v, what=f"value {i}") for i, v in enumerate(values))
        hashed = [(_leaf_of_normal(encoding, v), i) for i, v in enumerate(normal)]
        if sort_leaves:
            hashed.sort(key=lambda pair: pair[0])
        tree = make_tree([h for h, _ in hashed])
        indices = [0] * len(normal)
        for k, (_, i) in enumerate(hashed):
            indices[i] = len(tree) - 1 - k
        return cls(encoding, tuple(tree), normal, tuple(indices))

    @property
    def root(self) -> Hash:
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def index_of(self, value: Sequence[Any]) -> int:
        """The position of ``value`` among the values (OrderError when it is not in the tree)."""
        wanted = leaf_hash(self.leaf_encoding, value)
        for i, node in enumerate(self.tree_indices):
            if self.tree[node] == wanted:
                return i
        raise OrderError(f"claim tree: {_show(list(value))} is not in the tree")

    def proof(self, index: int) -> list[Hash]:
        """The proof of the value at ``index`` (its position among the values)."""
        if not 0 <= index < len(self.values):
            raise OrderError(f"claim tree: no value at index {index} (the tree holds {len(self.values)})")
        return tree_proof(self.tree, self.tree_indices[index])

    def proof_of(self, value: Sequence[Any]) -> list[Hash]:
        return self.proof(self.index_of(value))

    def verify(self, value: Sequence[Any], proof: Sequence[Hash]) -> bool:
        return verify(self.root, self.leaf_encoding, value, proof)

    def dump(self) -> dict[str, Any]:
        """The ``standard-v1`` JSON object (integers as decimal strings, hashes as 0x lowercase hex)."""
        return {
            "format": FORMAT,
            "leafEncoding": list(self.leaf_encoding),
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [
                {
                    "value": [_json_item(k, item) for k, item in zip(self.leaf_encoding, v, strict=True)],
                    "treeIndex": t,
                }
                for v, t in zip(self.values, self.tree_indices, strict=True)
            ],
        }

    @classmethod
    def load(cls, data: object) -> StandardMerkleTree:
        """A tree from its ``standard-v1`` JSON object, every hash and index checked."""
        if not isinstance(data, Mapping):
            raise OrderError("claim tree: the file must hold a JSON object")
        members = {"format", "leafEncoding", "tree", "values"}
        if set(data) != members:
            extra, missing = sorted(set(data) - members), sorted(members - set(data))
            raise OrderError(
                "claim tree: the object must have exactly the members format, leafEncoding, tree, values"
                + (f" (unknown: {', '.join(map(str, extra))})" if extra else "")
                + (f" (missing: {', '.join(missing)})" if missing else "")
            )
        if data["format"] != FORMAT:
            raise OrderError(f"claim tree: format {_show(data['format'])} is not {FORMAT!r}")
        encoding = check_leaf_encoding(data["leafEncoding"])
        tree = _tree_hashes(data["tree"])
        values, indices = _indexed_values(data["values"], encoding, len(tree))
        for i, (value, node) in enumerate(zip(values, indices, strict=True)):
            if tree[node] != _leaf_of_normal(encoding, value):
                raise OrderError(f"claim tree: value {i} does not hash to its leaf tree[{node}]")
        for i in range(len(tree) // 2 - 1, -1, -1):
            if tree[i] != node_hash(tree[2 * i + 1], tree[2 * i + 2]):
                raise OrderError(f"claim tree: node tree[{i}] is not the hash of its children")
        return cls(encoding, tuple(tree), values, indices)


def _tree_hashes(nodes: object) -> list[Hash]:
    if not isinstance(nodes, list) or not nodes:
        raise OrderError("claim tree: tree must be a non-empty list of hashes")
    if len(nodes) > 2 * MAX_LEAVES - 1:
        raise OrderError(f"claim tree: tree has {len(nodes)} nodes; at most {2 * MAX_LEAVES - 1} are read")
    if len(nodes) % 2 == 0:
        raise OrderError(f"claim tree: tree has {len(nodes)} nodes; a tree of n leaves has 2n - 1")
    out: list[Hash] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, str) or not _HASH.fullmatch(node):
            raise OrderError(f"claim tree: tree[{i}] is not 0x and 64 lowercase hex digits: {_show(node)}")
        out.append(bytes.fromhex(node[2:]))
    return out


def _indexed_values(
    items: object, encoding: tuple[str, ...], size: int
) -> tuple[tuple[Value, ...], tuple[int, ...]]:
    leaves = (size + 1) // 2
    if not isinstance(items, list) or len(items) != leaves:
        count = len(items) if isinstance(items, list) else "no list of"
        raise OrderError(f"claim tree: values must be a list of {leaves} entries (one per leaf), not {count}")
    values: list[Value] = []
    indices: list[int] = []
    seen: set[int] = set()
    for i, entry in enumerate(items):
        if not isinstance(entry, Mapping) or set(entry) != {"value", "treeIndex"}:
            raise OrderError(f"claim tree: values[{i}] must be an object with exactly value and treeIndex")
        node = entry["treeIndex"]
        if isinstance(node, bool) or not isinstance(node, int) or not leaves - 1 <= node < size:
            raise OrderError(
                f"claim tree: values[{i}].treeIndex must be a leaf's index, {leaves - 1} to {size - 1}"
            )
        if node in seen:
            raise OrderError(f"claim tree: values[{i}].treeIndex {node} is another value's leaf too")
        seen.add(node)
        values.append(normalize_value(encoding, entry["value"], what=f"values[{i}].value"))
        indices.append(node)
    return tuple(values), tuple(indices)


def claim_of(tree: StandardMerkleTree, account: str) -> tuple[str, int, list[Hash]]:
    """An account's claim in a claim tree: ``(account, amount, proof)``, the arguments of
    ``MerkleClaim.claim``. OrderError when the tree is not a claim tree, or the account has no
    leaf or several."""
    if tree.leaf_encoding != CLAIM_ENCODING:
        raise OrderError(
            f"not a claim tree: its leaves are {list(tree.leaf_encoding)}, not {list(CLAIM_ENCODING)}"
        )
    wanted = checked_address(account, "the account")
    found = [i for i, value in enumerate(tree.values) if value[0] == wanted]
    if not found:
        raise OrderError(f"{wanted} has no claim in the tree")
    if len(found) > 1:
        raise OrderError(f"{wanted} has {len(found)} leaves in the tree; a claim tree has one per account")
    return wanted, int(tree.values[found[0]][1]), tree.proof(found[0])


def hex_proof(proof: Sequence[Hash]) -> list[str]:
    return ["0x" + node.hex() for node in proof]


def parse_hash(text: object, what: str) -> Hash:
    """A 32-byte hash from ``0x`` and 64 hex digits (either case)."""
    if not isinstance(text, str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", text):
        raise OrderError(f"{what} must be 0x and 64 hex digits, not {_show(text)}")
    return bytes.fromhex(text[2:])
