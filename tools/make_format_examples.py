#!/usr/bin/env python3
"""Print the worked examples of docs/formats.md, "Record snapshots": a tiny tree, a proof, a bundle.

    PYTHONPATH=src python tools/make_format_examples.py > /tmp/examples.md

Every value comes from the library (the tree from ``prolly.build``, the proofs from
``prolly.prove``, the bundle from ``statement.encode_bundle``); the hashes between them (entry
hashes, Merkle inner hashes) are computed here by the rules the document states, and the
script checks that they lead to the library's node ids. tests/test_formats_doc.py compares the
document's example block with this script's output and re-derives the hashes from the hex in
the document, so the document cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

from blake3 import blake3

from lifeboat.state import prolly
from lifeboat.state.statement import Signer, Statement, encode_bundle, public_key_of, sign, verify_bundle

#: The example's records: key field "key", one sum field "balance" (a string and a JSON integer).
RECORDS = (
    (b"acct:alice", b'{"key":"acct:alice","balance":"100"}', 100),
    (b"acct:bob", b'{"key":"acct:bob","balance":"250"}', 250),
    (b"acct:carol", b'{"key":"acct:carol","balance":42,"note":"integer form"}', 42),
)
FANOUT = 4
LEAF_FANOUT = 2
SUM_FIELDS = ("balance",)
#: A signing seed for the example only (bytes 0x00..0x1f); never use a published key.
EXAMPLE_SEED = bytes(range(32))
TIME = "2026-11-24T10:00:00.000000Z"
BEGIN = "<!-- format-examples:begin (tools/make_format_examples.py writes this block) -->"
END = "<!-- format-examples:end -->"


def _s(count: int, sums: tuple[int, ...]) -> bytes:
    """S = u64 count | k x u192 sum."""
    return count.to_bytes(8, "big") + b"".join(value.to_bytes(24, "big") for value in sums)


def _merkle(lines: list[str], hashes: list[bytes], packs: list[tuple[int, tuple[int, ...]]]) -> bytes:
    """The Merkle root over entry hashes, writing each inner hash's input and output."""
    layer = 0
    while len(hashes) > 1:
        upper: list[bytes] = []
        upper_packs: list[tuple[int, tuple[int, ...]]] = []
        for at in range(0, len(hashes) - 1, 2):
            (lc, ls), (rc, rs) = packs[at], packs[at + 1]
            data = b"\x03" + hashes[at] + _s(lc, ls) + hashes[at + 1] + _s(rc, rs)
            digest = blake3(data).digest()
            lines.append(f"inner hash input (layer {layer}, entries {at} and {at + 1}): {data.hex()}")
            lines.append(f"inner hash (layer {layer}, entries {at} and {at + 1}): {digest.hex()}")
            upper.append(digest)
            upper_packs.append((lc + rc, tuple(a + b for a, b in zip(ls, rs, strict=True))))
        if len(hashes) % 2:
            upper.append(hashes[-1])
            upper_packs.append(packs[-1])
        hashes, packs = upper, upper_packs
        layer += 1
    return hashes[0] if hashes else bytes(32)


def _node_lines(node: prolly.Node) -> Iterator[str]:
    decoded = prolly.decode_node(node.data)
    header = node.data[:9]
    kind = "leaf" if node.level == 0 else "internal node"
    count = len(decoded.records or decoded.children)
    yield f"--- {kind} {node.node_id.hex()[:16]}... (level {node.level}, {count} entries)"
    yield f"node bytes: {node.data.hex()}"
    yield f"header: {header.hex()}"
    hashes: list[bytes] = []
    packs: list[tuple[int, tuple[int, ...]]] = []
    position = 9
    sizes: list[tuple[int, tuple[int, tuple[int, ...]]]] = [
        (3 + len(record.key) + 4 + len(record.value) + 16 * len(SUM_FIELDS), (1, record.sums))
        for record in decoded.records
    ] + [
        (
            3 + len(child.first_key) + 32 + len(_s(child.record_count, child.sums)),
            (child.record_count, child.sums),
        )
        for child in decoded.children
    ]
    for index, (size, pack) in enumerate(sizes):
        blob = node.data[position : position + size]
        position += size
        digest = blake3(blob).digest()
        yield f"entry {index} bytes: {blob.hex()}"
        yield f"entry {index} hash: {digest.hex()}"
        yield f"entry {index} S: {_s(*pack).hex()}"
        hashes.append(digest)
        packs.append(pack)
    lines: list[str] = []
    merkle = _merkle(lines, hashes, packs)
    yield from lines
    yield f"merkle root: {merkle.hex()}"
    total = _s(decoded.count, decoded.sums)
    yield f"S(node): {total.hex()}"
    id_input = b"\x04" + header + total + merkle
    node_id = blake3(id_input).digest()
    if node_id != node.node_id:
        raise SystemExit(f"the rules give {node_id.hex()}, the library {node.node_id.hex()}")
    yield f"node id input: {id_input.hex()}"
    yield f"node id: {node_id.hex()}"


def _walk(path: prolly.RecordPath) -> Iterator[str]:
    """A path walked by the rules of the document, writing every hash input and output."""
    record = path.record
    k = len(record.sums)
    entry = (
        b"\x01"
        + len(record.key).to_bytes(2, "big")
        + record.key
        + len(record.value).to_bytes(4, "big")
        + record.value
        + b"".join(value.to_bytes(16, "big") for value in record.sums)
    )
    digest = blake3(entry).digest()
    count, sums = 1, record.sums
    position = 0
    yield f"record {record.key.decode()}: leaf entry hash {digest.hex()}, S {_s(count, sums).hex()}"
    for level, step in enumerate(path.steps):
        if level:
            assert step.first_key is not None
            entry = (
                b"\x02" + len(step.first_key).to_bytes(2, "big") + step.first_key + digest + _s(count, sums)
            )
            digest = blake3(entry).digest()
            yield f"level {level}: internal entry bytes {entry.hex()}"
            yield f"level {level}: internal entry hash {digest.hex()}"
        index, size, used = step.index, step.entries, 0
        while size > 1:
            if index % 2 == 1 or index + 1 < size:
                sibling = step.siblings[used]
                used += 1
                own = _s(count, sums)
                other = _s(sibling.record_count, sibling.sums)
                if index % 2 == 1:
                    position += sibling.record_count
                    data = b"\x03" + sibling.hash + other + digest + own
                    side = "left"
                else:
                    data = b"\x03" + digest + own + sibling.hash + other
                    side = "right"
                digest = blake3(data).digest()
                count += sibling.record_count
                sums = tuple(a + b for a, b in zip(sums, sibling.sums, strict=True))
                yield (
                    f"level {level}: sibling on the {side}: hash {sibling.hash.hex()}, count "
                    f"{sibling.record_count}, sums {list(sibling.sums)} -> inner hash {digest.hex()}"
                )
            index //= 2
            size = (size + 1) // 2
        header = bytes((1, level)) + FANOUT.to_bytes(2, "big") + LEAF_FANOUT.to_bytes(2, "big")
        header += bytes((k,)) + step.entries.to_bytes(2, "big")
        digest = blake3(b"\x04" + header + _s(count, sums) + digest).digest()
        yield f"level {level}: header {header.hex()}, S {_s(count, sums).hex()} -> node id {digest.hex()}"
    yield f"record {record.key.decode()}: position {position}, root {digest.hex()}"


def generate() -> str:
    """The markdown of the example block (between :data:`BEGIN` and :data:`END`)."""
    records = [prolly.Record(key, value, (amount,)) for key, value, amount in RECORDS]
    source = prolly.MemorySource()
    built = prolly.build(records, fanout=FANOUT, leaf_fanout=LEAF_FANOUT, sum_fields=len(SUM_FIELDS))
    nodes = list(built)
    for node in nodes:
        source.put(node)
    tree = built.tree
    out = [BEGIN, "", "```text"]
    out.append(f'# fanout {FANOUT}, leaf_fanout {LEAF_FANOUT}, k = 1 (sum field "balance"), key field "key"')
    for key, value, _amount in RECORDS:
        digest = blake3(b"\x00" + key).digest()
        out.append(f"key {key.decode()}: key hash {digest.hex()}")
        out.append(f"value {key.decode()}: {value.decode()}")
    out.append(
        f"leaf threshold (2**256 // {LEAF_FANOUT}): {(2**256 // LEAF_FANOUT).to_bytes(32, 'big').hex()}"
    )
    level1 = (2**256 // (LEAF_FANOUT * FANOUT)).to_bytes(32, "big")
    out.append(f"level-1 threshold (2**256 // {LEAF_FANOUT * FANOUT}): {level1.hex()}")
    for node in nodes:
        out.extend(_node_lines(node))
    out.append(f"root: {tree.root.hex()}")
    out.append(
        f"empty root (fanout {FANOUT}, leaf_fanout {LEAF_FANOUT}, k = 1): "
        f"{prolly.empty_root(fanout=FANOUT, leaf_fanout=LEAF_FANOUT, sum_fields=1).hex()}"
    )
    out.append("```")

    statement = Statement(
        name="example",
        root=tree.root,
        count=tree.count,
        sum_fields=SUM_FIELDS,
        totals=tree.totals,
        fanout=tree.fanout,
        leaf_fanout=tree.leaf_fanout,
        key_field="key",
        source={"kind": "jsonl", "path": "example.jsonl"},
        time=TIME,
        sequence=0,
        invariants=None,
        previous=None,
        signer=Signer("ed25519", public_key_of(EXAMPLE_SEED)),
    )
    signature = sign(statement, EXAMPLE_SEED)
    out += ["", "Statement, signed with the example seed `000102...1f` (never use a published key):", ""]
    out += ["```text", f"message: {statement.message().decode()}"]
    out.append(f"digest: {statement.digest().hex()}")
    out.append(f"public key: {statement.signer.public_key.hex()}")
    out.append(f"signature: {signature.hex()}")
    out.append("```")
    for key, label in ((b"acct:bob", "Inclusion"), (b"acct:bobby", "Absence")):
        proof = prolly.prove(source, tree.root, key)
        bundle = encode_bundle(statement, signature, proof)
        verified = verify_bundle(bundle).proof
        out += [
            "",
            f"{label} proof of `{key.decode()}`, as a bundle:",
            "",
            "```json",
            bundle.decode().rstrip("\n"),
            "```",
        ]
        out += ["", "Its walk (step 5 of the verification below):", "", "```text"]
        for path in proof.paths:
            walked = list(_walk(path))
            if not walked[-1].endswith(tree.root.hex()):
                raise SystemExit(f"the walk of {path.record.key!r} does not reach the library's root")
            out.extend(walked)
        out.append("```")
        result = {
            "present": verified.present,
            "record": None if verified.record is None else verified.record.key.decode(),
            "before": None if verified.before is None else verified.before.key.decode(),
            "after": None if verified.after is None else verified.after.key.decode(),
            "position": verified.position,
            "count": verified.count,
            "totals": [str(total) for total in verified.totals],
        }
        out += ["", "Expected result: valid, `" + json.dumps(result, separators=(", ", ": ")) + "`"]
    out += ["", END]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
