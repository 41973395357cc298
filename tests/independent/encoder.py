"""An independent encoder of record-snapshot trees and proof bundles, from docs/formats.md alone.

Used by the tests to check the "Tree shape" contract (same root as `lifeboat state snapshot`) and to
make bundles that Lifeboat itself would never write (edge cases of the value rules), signed with a
test key. No Lifeboat import.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from verify_state_proof import (
    TAG_INNER,
    TAG_KEY,
    TAG_NODE,
    canonical_json,
    empty_root,
    h,
    header,
    internal_entry,
    leaf_entry,
    s_bytes,
)

S = tuple[int, tuple[int, ...]]


def s_sum(values: Sequence[S], k: int) -> S:
    count = sum(v[0] for v in values)
    return count, tuple(sum(v[1][j] for v in values) for j in range(k))


@dataclass
class Entry:
    first_key: bytes
    digest: bytes  # h(entry bytes)
    s: S


@dataclass
class Node:
    level: int
    entries: list[Entry]
    node_id: bytes = b""
    s: S = (0, ())


@dataclass
class Tree:
    fanout: int
    leaf_fanout: int
    k: int
    records: list[tuple[bytes, bytes, tuple[int, ...]]]
    levels: list[list[Node]] = field(default_factory=list)

    @property
    def root(self) -> bytes:
        if not self.records:
            return empty_root(self.fanout, self.leaf_fanout, self.k)
        return self.levels[-1][0].node_id

    @property
    def totals(self) -> S:
        return s_sum([(1, r[2]) for r in self.records], self.k)


def merkle(items: list[tuple[bytes, S]], k: int) -> tuple[bytes, S]:
    if not items:
        return bytes(32), (0, (0,) * k)
    layer = items
    while len(layer) > 1:
        nxt = []
        for i in range(0, len(layer) - 1, 2):
            (ha, sa), (hb, sb) = layer[i], layer[i + 1]
            nxt.append((h(TAG_INNER + ha + s_bytes(*sa) + hb + s_bytes(*sb)), s_sum([sa, sb], k)))
        if len(layer) % 2:
            nxt.append(layer[-1])
        layer = nxt
    return layer[0]


def siblings_of(items: list[tuple[bytes, S]], index: int, k: int) -> list[tuple[bytes, S]]:
    out = []
    layer, i = items, index
    while len(layer) > 1:
        if i % 2 == 1:
            out.append(layer[i - 1])
        elif i + 1 < len(layer):
            out.append(layer[i + 1])
        nxt = []
        for j in range(0, len(layer) - 1, 2):
            (ha, sa), (hb, sb) = layer[j], layer[j + 1]
            nxt.append((h(TAG_INNER + ha + s_bytes(*sa) + hb + s_bytes(*sb)), s_sum([sa, sb], k)))
        if len(layer) % 2:
            nxt.append(layer[-1])
        layer, i = nxt, i >> 1
    return out


def number(value: int) -> bytes:
    if value == 0:
        return b"\x00"
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def encode_siblings(sibs: list[tuple[bytes, S]]) -> str:
    raw = b"".join(d + number(s[0]) + b"".join(number(x) for x in s[1]) for d, s in sibs)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def build(records: list[tuple[bytes, bytes, tuple[int, ...]]], fanout: int, leaf_fanout: int, k: int) -> Tree:
    records = sorted(records)
    tree = Tree(fanout, leaf_fanout, k, records)
    if not records:
        return tree
    entries = [Entry(key, h(leaf_entry(key, value, sums)), (1, sums)) for key, value, sums in records]
    level = 0
    while True:
        threshold = 2**256 // (leaf_fanout * fanout**level)
        cap = 4 * (leaf_fanout if level == 0 else fanout)
        nodes: list[Node] = []
        current: list[Entry] = []
        for e in entries:
            hashed = int.from_bytes(h(TAG_KEY + e.first_key), "big")
            if current and (hashed < threshold or len(current) >= cap):
                nodes.append(Node(level, current))
                current = []
            current.append(e)
        nodes.append(Node(level, current))
        for node in nodes:
            root, s = merkle([(e.digest, e.s) for e in node.entries], k)
            node.s = s
            head = header(level, fanout, leaf_fanout, k, len(node.entries))
            node.node_id = h(TAG_NODE + head + s_bytes(*s) + root)
        tree.levels.append(nodes)
        if len(nodes) == 1:
            return tree
        entries = [
            Entry(
                n.entries[0].first_key,
                h(internal_entry(n.entries[0].first_key, n.node_id, s_bytes(*n.s))),
                n.s,
            )
            for n in nodes
        ]
        level += 1


def b_json(raw: bytes) -> Any:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": raw.hex()}


def prove_record(tree: Tree, position: int) -> dict[str, Any]:
    key, value, sums = tree.records[position]
    path: list[list[Any]] = []
    flat = position  # index among this level's entries
    for level, nodes in enumerate(tree.levels):
        start = 0
        for node in nodes:
            if flat < start + len(node.entries):
                break
            start += len(node.entries)
        index = flat - start
        items = [(e.digest, e.s) for e in node.entries]
        sibs = encode_siblings(siblings_of(items, index, tree.k))
        if level == 0:
            path.append([len(node.entries), index, sibs])
        else:
            path.append([len(node.entries), index, b_json(node.entries[index].first_key), sibs])
        flat = nodes.index(node)
    return {"key": b_json(key), "value": b_json(value), "sums": [str(s) for s in sums], "path": path}


def make_proof(tree: Tree, key: bytes) -> dict[str, Any]:
    keys = [r[0] for r in tree.records]
    records = []
    if key in keys:
        kind = "inclusion"
        records.append(prove_record(tree, keys.index(key)))
    else:
        kind = "absence"
        below = [i for i, kk in enumerate(keys) if kk < key]
        if below:
            records.append(prove_record(tree, below[-1]))
        if len(below) < len(keys):
            records.append(prove_record(tree, len(below)))
    return {
        "format": "lifeboat-prolly-proof",
        "version": 2,
        "kind": kind,
        "key": b_json(key),
        "fanout": tree.fanout,
        "leaf_fanout": tree.leaf_fanout,
        "sum_fields": tree.k,
        "records": records,
    }


SEED = bytes(range(32))


def public_key_hex(seed: bytes = SEED) -> str:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw().hex()


def statement_for(tree: Tree, sum_fields: list[str], key_field: str = "key", **extra: Any) -> dict[str, Any]:
    count, totals = tree.totals
    st: dict[str, Any] = {
        "format": "lifeboat-state",
        "version": 1,
        "name": "crafted",
        "root": tree.root.hex(),
        "count": count,
        "sum_fields": sum_fields,
        "totals": [str(t) for t in totals],
        "fanout": tree.fanout,
        "leaf_fanout": tree.leaf_fanout,
        "key_field": key_field,
        "source": {"kind": "jsonl", "path": "crafted.jsonl"},
        "time": "2026-12-01T00:00:00.000000Z",
        "sequence": 0,
        "invariants": None,
        "previous": None,
        "signer": {"scheme": "ed25519", "public_key": public_key_hex()},
        "parent": None,
    }
    st.update(extra)
    return st


def sign(statement: dict[str, Any], seed: bytes = SEED) -> str:
    message = canonical_json(statement).encode("ascii")
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message).hex()


def bundle_bytes(statement: dict[str, Any], proof: dict[str, Any], signature: str | None = None) -> bytes:
    bundle = {
        "format": "lifeboat-state-proof",
        "version": 1,
        "statement": statement,
        "signature": signature if signature is not None else sign(statement),
        "proof": proof,
    }
    return (canonical_json(bundle) + "\n").encode("ascii")


def jsonl_records(
    lines: list[bytes], key_field: str, sum_fields: list[str]
) -> list[tuple[bytes, bytes, tuple[int, ...]]]:
    """Key and sums of JSON Lines values, by the verifier's own rules (for well-formed inputs)."""
    from verify_state_proof import parse_value, value_key, value_sum

    out = []
    for line in lines:
        obj = parse_value(line)
        out.append((value_key(obj, key_field), line, tuple(value_sum(obj, f) for f in sum_fields)))
    return out


def dumps_compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
